-- Normalisation (batch norm in training and evaluation, with the running
-- statistics and the fused ReLU; group norm; layer norm): every backend
-- against the reference, forward (outputs and updated running statistics) and
-- backward (input, weight and bias gradients), f32 and f64, edge cases, and
-- the reference's gradients against finite differences.
local B = require "tests.ops.backends"
local check = require("tests.harness").check
local F = sg.F

-- inputs: x, then the weight and bias when present (their gradients are compared too)
local function bn_inputs(shape, dt, with_w, with_b, wdt)
  local C = shape[2]
  local xs = {sg.randn(shape, dt) * 2 + 0.5}
  if with_w then xs[#xs + 1] = (sg.randn({C}, wdt or dt) + 1.5) end
  if with_b then xs[#xs + 1] = sg.randn({C}, wdt or dt) end
  return xs
end

-- batch_norm over fresh copies of rm0, rv0 (nil: none); returns the output and the updated statistics
local function bn_fn(o, rm0, rv0, with_w, with_b)
  return function(x, a, b)
    local w = with_w and a or nil
    local bias = with_b and (with_w and b or a) or nil
    local rm = rm0 and rm0:to(x.device):clone() or nil
    local rv = rv0 and rv0:to(x.device):clone() or nil
    local y = F.batch_norm(x, rm, rv, w, bias, o)
    if rm then return {y, rm, rv} end
    return y
  end
end

local bn_cases = {
  -- name, shape, training, relu, weight, bias, running stats
  {"train 4d", {3, 4, 5, 6}, true, false, true, true, true},
  {"train 4d relu", {2, 5, 7, 3}, true, true, true, true, true},
  {"train 2d no affine", {6, 3}, true, false, false, false, false},
  {"train 3d relu weight only", {2, 3, 9}, true, true, true, false, true},
  {"train two values per channel", {2, 3, 1, 1}, true, false, true, true, true},
  {"train one sample 1x2", {1, 2, 1, 2}, true, true, false, true, true},
  {"train wide (threaded kernels)", {2, 8, 40, 40}, true, true, true, true, true},
  {"eval 4d", {2, 4, 5, 5}, false, false, true, true, true},
  {"eval relu", {3, 3, 4, 2}, false, true, true, true, true},
  {"eval one pixel", {1, 3, 1, 1}, false, true, false, false, true},
  {"eval empty batch", {0, 3, 2, 2}, false, false, true, true, true},
  {"eval empty channels", {2, 0, 3}, false, true, false, false, true},
}

test("batch_norm: every backend matches the reference (f32 and f64, forward, running stats, backward)", function()
  sg.manual_seed(21)
  for _, c in ipairs(bn_cases) do
    local name, shape, training, relu, with_w, with_b, with_stats = table.unpack(c)
    local C = shape[2]
    for _, dt in ipairs{"f32", "f64"} do
      local rm0 = with_stats and sg.randn({C}, dt) or nil
      local rv0 = with_stats and sg.rand({C}, dt) + 0.5 or nil
      local o = {training = training, relu = relu, momentum = 0.3, eps = 1e-4}
      B.compare("batch_norm " .. name .. " " .. dt, bn_fn(o, rm0, rv0, with_w, with_b),
        bn_inputs(shape, dt, with_w, with_b), {atol = 2e-5, rtol = 2e-4})
    end
  end
end)

test("batch_norm: parameters and statistics of another dtype, strided running statistics", function()
  sg.manual_seed(22)
  for _, training in ipairs{true, false} do
    for _, relu in ipairs{false, true} do
      local name = string.format("mixed %s%s", training and "train" or "eval", relu and " relu" or "")
      -- f32 input with f64 weight/bias and f64 running statistics, and the reverse
      B.compare(name .. " f32/f64", bn_fn({training = training, relu = relu}, sg.randn({4}, "f64"),
        sg.rand({4}, "f64") + 0.5, true, true), bn_inputs({2, 4, 3, 3}, "f32", true, true, "f64"), {atol = 2e-5})
      B.compare(name .. " f64/f32", bn_fn({training = training, relu = relu}, sg.randn{4}, sg.rand{4} + 0.5, true,
        true), bn_inputs({2, 4, 3, 3}, "f64", true, true, "f32"), {atol64 = 1e-6, rtol64 = 1e-6})
    end
  end
  -- running statistics that are every other element of a longer vector: updated in place through the stride
  for _, dt in ipairs{"f32", "f64"} do
    B.compare("strided running stats " .. dt, function(x)
      local rm = sg.zeros({6}, dt):to(x.device)
      local rv = sg.ones({6}, dt):to(x.device)
      local rms, rvs = rm:slice(1, 1, 6, 2), rv:slice(1, 1, 6, 2)
      local y = F.batch_norm(x, rms, rvs, nil, nil, {training = true, momentum = 0.5})
      return {y, rm, rv}
    end, {sg.randn({4, 3, 2}, dt)})
  end
end)

test("layer_norm and group_norm: every backend matches the reference (f32 and f64, forward and backward)", function()
  sg.manual_seed(23)
  local cases = {
    -- name, shape, fn(x, w, b), affine shape (nil: no weight and bias)
    {"group_norm 2 groups", {2, 6, 4, 5}, function(x, w, b) return F.group_norm(x, 2, w, b) end, {6}},
    {"group_norm groups = 1", {3, 4, 3, 3}, function(x, w, b) return F.group_norm(x, 1, w, b) end, {4}},
    {"group_norm instance (groups = C)", {2, 5, 6}, function(x, w, b) return F.group_norm(x, 5, w, b) end, {5}},
    {"group_norm no affine", {2, 4, 3, 7}, function(x) return F.group_norm(x, 2) end, nil},
    {"group_norm 2d input", {4, 6}, function(x, w, b) return F.group_norm(x, 3, w, b, 1e-3) end, {6}},
    {"group_norm one value per row", {3, 4}, function(x, w, b) return F.group_norm(x, 4, w, b) end, {4}},
    {"group_norm one pixel", {2, 4, 1, 1}, function(x, w, b) return F.group_norm(x, 2, w, b) end, {4}},
    {"group_norm empty batch", {0, 4, 2, 2}, function(x, w, b) return F.group_norm(x, 2, w, b) end, {4}},
    {"group_norm large rows", {2, 8, 24, 24}, function(x, w, b) return F.group_norm(x, 4, w, b) end, {8}},
    {"layer_norm last dim", {3, 5, 7}, function(x, w, b) return F.layer_norm(x, 7, w, b) end, {7}},
    {"layer_norm last two dims", {2, 3, 4, 5}, function(x, w, b) return F.layer_norm(x, {4, 5}, w, b) end, {4, 5}},
    {"layer_norm whole tensor", {3, 4}, function(x, w, b) return F.layer_norm(x, {3, 4}, w, b, 1e-2) end, {3, 4}},
    {"layer_norm no affine", {4, 9}, function(x) return F.layer_norm(x, 9) end, nil},
    {"layer_norm one element", {5, 1}, function(x, w, b) return F.layer_norm(x, 1, w, b) end, {1}},
    {"layer_norm empty rows", {0, 6}, function(x, w, b) return F.layer_norm(x, 6, w, b) end, {6}},
  }
  for _, c in ipairs(cases) do
    for _, dt in ipairs{"f32", "f64"} do
      local xs = {sg.randn(c[2], dt) * 3 - 1}
      if c[4] then
        xs[2] = sg.randn(c[4], dt) + 1
        xs[3] = sg.randn(c[4], dt)
      end
      B.compare(c[1] .. " " .. dt, c[3], xs, {atol = 2e-5, rtol = 2e-4})
    end
  end
end)

-- fn on the reference and on the cpu table: NaN in the same places, the rest near
local function same_specials(name, fn, x)
  local outs = {}
  for _, ref in ipairs{true, false} do
    local prev = sg.config.reference
    sg.config.reference = ref
    local ok, y = pcall(fn, x)
    sg.config.reference = prev
    if not ok then error(y, 0) end
    outs[#outs + 1] = y
  end
  local want, got = outs[1], outs[2]
  local function special(t) return (t - t):ne(t - t) end -- NaN or infinite
  local same = got:eq(want):float() + got:ne(got):float() * want:ne(want):float()
  check.eq(special(got):eq(special(want)):all():item(), true, name .. ": positions of NaN and inf")
  check.eq(special(want):float():le(same):all():item(), true, name .. ": the same NaN and inf")
  local zero = sg.zeros(want.shape, want.dtype)
  check.near(special(got):where(zero, got), special(want):where(zero, want), 1e-5, 1e-4, name .. ": values")
  return want
end

test("normalisation: NaN and inf poison their channel or row only", function()
  local x = sg.randn{2, 3, 2, 2}
  x[{1, 2, 1, 1}] = 0 / 0
  x[{2, 3, 2, 1}] = math.huge
  local rm, rv = sg.zeros{3}, sg.ones{3}
  for _, relu in ipairs{false, true} do
    local y = same_specials("batch_norm train" .. (relu and " relu" or ""), function(t)
      return F.batch_norm(t, nil, nil, nil, nil, {training = true, relu = relu})
    end, x)
    check.eq(y:narrow(2, 1, 1):ne(y:narrow(2, 1, 1)):any():item(), false, "channel 1 stays finite")
    same_specials("batch_norm eval" .. (relu and " relu" or ""), function(t)
      return F.batch_norm(t, rm, rv, nil, nil, {training = false, relu = relu})
    end, x)
  end
  local y = same_specials("group_norm", function(t) return F.group_norm(t, 3) end, x)
  check.eq(y:narrow(2, 1, 1):ne(y:narrow(2, 1, 1)):any():item(), false, "group 1 stays finite")
  same_specials("layer_norm", function(t) return F.layer_norm(t, {2, 2}) end, x)
end)

test("normalisation: reference gradients against finite differences (f64)", function()
  sg.manual_seed(24)
  local C = 3
  local rm, rv = sg.randn({C}, "f64"), sg.rand({C}, "f64") + 0.5
  for _, training in ipairs{true, false} do
    for _, relu in ipairs{false, true} do
      B.gradcheck(string.format("batch_norm %s%s", training and "train" or "eval", relu and " relu" or ""),
        function(x, w, b)
          return F.batch_norm(x, not training and rm or nil, not training and rv or nil, w, b,
            {training = training, relu = relu, eps = 1e-3})
        end, {sg.randn({2, C, 2, 3}, "f64"), sg.randn({C}, "f64") + 1, sg.randn({C}, "f64")})
    end
  end
  B.gradcheck("group_norm", function(x, w, b) return F.group_norm(x, 2, w, b) end,
    {sg.randn({2, 4, 2, 3}, "f64"), sg.randn({4}, "f64"), sg.randn({4}, "f64")})
  B.gradcheck("group_norm instance", function(x, w, b) return F.group_norm(x, 3, w, b) end,
    {sg.randn({2, 3, 5}, "f64"), sg.randn({3}, "f64"), sg.randn({3}, "f64")})
  B.gradcheck("layer_norm", function(x, w, b) return F.layer_norm(x, {2, 3}, w, b) end,
    {sg.randn({3, 2, 3}, "f64"), sg.randn({2, 3}, "f64"), sg.randn({2, 3}, "f64")})
end)

test("batch_norm: the fused ReLU's path and the two ops agree", function()
  sg.manual_seed(25)
  for _, dt in ipairs{"f32", "f64"} do
    local x = sg.randn({2, 3, 4, 4}, dt)
    local y1 = F.batch_norm(x, nil, nil, nil, nil, {training = true, relu = true})
    local y2 = F.batch_norm(x, nil, nil, nil, nil, {training = true}):relu()
    check.near(y1, y2, 1e-6, 1e-5, "fused relu " .. dt)
  end
end)
