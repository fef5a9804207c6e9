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

-- ---------------------------------------------------------------- group and layer norm against PyTorch's rules (was tests/test_group_norm.lua)
do
  -- The fused group_norm / layer_norm C ops (semseg.core, behind sg.F.group_norm
  -- and sg.F.layer_norm) against the composed versions (F.*_reference) on random
  -- shapes, forward and every gradient, f32 and f64; gradcheck; argument errors.
  -- (The PyTorch golden values of GroupNorm / InstanceNorm2d / LayerNorm are in
  -- test_layers.lua.)
  local F = sg.F
  -- the fused C ops themselves, with their own calling convention (layer_norm takes a dim count as a number;
  -- sg.F.layer_norm reads a number as a normalized shape {n}, like PyTorch)
  local C = require("semseg.core").nn_functional

  -- max |a - b| / max |b| (max |b| floored at 1e-6: results that should be 0)
  local function relerr(a, b)
    local a64, b64 = a:to("f64"), b:to("f64")
    if b64:numel() == 0 then return 0 end
    return (a64 - b64):abs():amax():item() / math.max(b64:abs():amax():item(), 1e-6)
  end

  local function near_rel(got, want, tol, what)
    check.eq(got.dtype, want.dtype, what .. " dtype")
    check.eq(got.shape, want.shape, what .. " shape")
    local e = relerr(got, want)
    if not (e <= tol) then error(string.format("%s: relative error %.3g > %.3g", what, e, tol), 2) end
  end

  -- runs fn(x, w, b) on fresh leaves, backward with gy; returns y and the three gradients
  local function run(fn, x0, w0, b0, gy)
    local x = x0:detach():clone():requires_grad()
    local w = w0 and w0:detach():clone():requires_grad()
    local b = b0 and b0:detach():clone():requires_grad()
    local y = fn(x, w, b)
    y:backward(gy)
    return y, x.grad, w and w.grad, b and b.grad
  end

  -- The fused op against the composed one. An f32 case runs the composed op on
  -- the same (f32) values in f64: the fused op accumulates in double and rounds
  -- once, while the composed f32 chain loses whole digits to cancellation in
  -- small groups (the gradient of a 2-value group can be 50% off), so only the
  -- f64 evaluation is a reference at 1e-5. ref32_tol: also against the f32
  -- composition, at that looser tolerance.
  local function compare(label, fast, ref, x, w, b, tol, ref32_tol)
    local gy = sg.randn(x.shape, x.dtype)
    local y1, gx1, gw1, gb1 = run(fast, x, w, b, gy)
    local up = function(t) return t and t:to("f64") end
    local y2, gx2, gw2, gb2 = run(ref, up(x), up(w), up(b), up(gy))
    if x.dtype == "f32" then
      if ref32_tol then
        local r = {run(ref, x, w, b, gy)}
        local f = {y1, gx1, gw1, gb1}
        for i = 1, 4 do if r[i] then near_rel(f[i], r[i], ref32_tol, label .. " vs f32 composition " .. i) end end
      end
      local down = function(t) return t and t:to("f32") end
      y2, gx2, gw2, gb2 = down(y2), down(gx2), down(gw2), down(gb2)
    end
    near_rel(y1, y2, tol, label .. " forward")
    near_rel(gx1, gx2, tol, label .. " grad x")
    if w then near_rel(gw1, gw2, tol, label .. " grad weight") end
    if b then near_rel(gb1, gb2, tol, label .. " grad bias") end
  end

  local function rint(lo, hi) return math.floor(sg.rand({1}, "f64"):item() * (hi - lo + 1)) + lo end

  -- a random input: offset and scaled so the statistics are not trivially 0 / 1;
  -- sometimes a non-contiguous view
  local function rand_input(shape, dt)
    local x = sg.randn(shape, dt) * (0.5 + rint(0, 3)) + (rint(-2, 2) * 0.7)
    if #shape >= 2 and rint(0, 2) == 0 then
      local s = {}
      for i, v in ipairs(shape) do s[i] = v end
      s[1], s[#s] = s[#s], s[1]
      x = (sg.randn(s, dt) + 0.3):transpose(1, #s)
    end
    return x
  end

  local TOL = {f32 = 1e-5, f64 = 1e-10}

  test("group_norm matches the composed reference on random shapes (f32, f64, all gradients)", function()
    sg.manual_seed(11)
    for _, dt in ipairs{"f64", "f32"} do
      for _ = 1, 40 do
        local groups, cg = rint(1, 4), rint(1, 3)
        local shape = {rint(1, 3), groups * cg}
        for _ = 1, rint(0, 3) do shape[#shape + 1] = rint(1, 5) end
        local x = rand_input(shape, dt)
        local affine = rint(0, 3)
        local w = (affine == 1 or affine == 3) and sg.randn({shape[2]}, dt) or nil
        local b = (affine == 2 or affine == 3) and sg.randn({shape[2]}, dt) or nil
        local eps = ({1e-5, 1e-3, 0.1})[rint(1, 3)]
        compare(string.format("group_norm %s %s groups %d", dt, table.concat(shape, "x"), groups),
          function(a, c, d) return F.group_norm(a, groups, c, d, eps) end,
          function(a, c, d) return F.group_norm_reference(a, groups, c, d, eps) end, x, w, b, TOL[dt])
      end
    end
  end)

  test("instance norm (groups == C) and a larger group norm match the reference", function()
    sg.manual_seed(12)
    for _, dt in ipairs{"f64", "f32"} do
      local x = sg.randn({2, 6, 7, 9}, dt) * 3 + 1
      local w, b = sg.randn({6}, dt), sg.randn({6}, dt)
      compare("instance " .. dt, function(a, c, d) return F.group_norm(a, 6, c, d) end,
        function(a, c, d) return F.group_norm_reference(a, 6, c, d) end, x, w, b, TOL[dt], 1e-4)
      x = sg.randn({2, 32, 16, 20}, dt) * 2 - 1
      w, b = sg.randn({32}, dt), sg.randn({32}, dt)
      compare("group 8 " .. dt, function(a, c, d) return F.group_norm(a, 8, c, d) end,
        function(a, c, d) return F.group_norm_reference(a, 8, c, d) end, x, w, b, TOL[dt], 1e-4)
    end
  end)

  test("layer_norm matches the composed reference on random shapes (f32, f64, all gradients)", function()
    sg.manual_seed(13)
    for _, dt in ipairs{"f64", "f32"} do
      for _ = 1, 40 do
        local shape = {}
        for _ = 1, rint(1, 4) do shape[#shape + 1] = rint(1, 6) end
        local k = rint(1, #shape)
        local nshape = {}
        for i = #shape - k + 1, #shape do nshape[#nshape + 1] = shape[i] end
        local x = rand_input(shape, dt)
        local affine = rint(0, 3)
        local w = (affine == 1 or affine == 3) and sg.randn(nshape, dt) or nil
        local b = (affine == 2 or affine == 3) and sg.randn(nshape, dt) or nil
        local eps = ({1e-5, 1e-3, 0.1})[rint(1, 3)]
        compare(string.format("layer_norm %s %s over %d", dt, table.concat(shape, "x"), k),
          function(a, c, d) return F.layer_norm(a, nshape, c, d, eps) end,
          function(a, c, d) return F.layer_norm_reference(a, nshape, c, d, eps) end, x, w, b, TOL[dt])
      end
      -- a wide row, the transformer case
      local x = sg.randn({4, 5, 256}, dt) * 2 + 0.5
      compare("layer_norm wide " .. dt, function(a, c, d) return F.layer_norm(a, 256, c, d) end,
        function(a, c, d) return F.layer_norm_reference(a, 256, c, d) end, x, sg.randn({256}, dt),
        sg.randn({256}, dt), TOL[dt], 1e-4)
    end
  end)

  test("gradcheck of group_norm and layer_norm (x, weight, bias)", function()
    sg.manual_seed(14)
    local x = sg.randn({2, 6, 2, 3}, "f64"):requires_grad()
    local w, b = sg.randn({6}, "f64"):requires_grad(), sg.randn({6}, "f64"):requires_grad()
    check.grad(function(a, c, d) return C.group_norm(a, 3, c, d, 1e-3) end, {x, w, b})
    check.grad(function(a, c, d) return C.group_norm(a, 6, c, d, 1e-3) end, {x, w, b})
    check.grad(function(a) return C.group_norm(a, 2) end, {x})
    -- a non-contiguous input
    check.grad(function(a, c, d) return C.group_norm(a:transpose(3, 4), 2, c, d) end, {x, w, b})
    local y = sg.randn({3, 2, 4}, "f64"):requires_grad()
    local lw, lb = sg.randn({2, 4}, "f64"):requires_grad(), sg.randn({2, 4}, "f64"):requires_grad()
    check.grad(function(a, c, d) return C.layer_norm(a, {2, 4}, c, d, 1e-3) end, {y, lw, lb})
    check.grad(function(a, c, d) return C.layer_norm(a, 1, c, d) end,
      {y, lw:select(1, 1):detach():requires_grad(), lb:select(1, 1):detach():requires_grad()})
  end)

  test("group_norm and layer_norm: dtypes, mixed affine dtype, no graph without grad, empty batch", function()
    sg.manual_seed(15)
    local x = sg.randn({2, 4, 3}, "f64")
    local w32 = sg.randn({4}, "f32"):requires_grad()
    local y = C.group_norm(x, 2, w32, nil)
    check.eq(y.dtype, "f64")
    y:sum():backward()
    check.eq(w32.grad.dtype, "f32")
    check.eq(w32.grad.shape, {4})
    local lw = sg.ones({3}, "f32"):requires_grad()
    local z = C.layer_norm(x, 1, lw, nil)
    z:sum():backward()
    check.eq(lw.grad.shape, {3})
    check.eq(lw.grad.dtype, "f32")
    check.truthy(not C.group_norm(x, 2):needs_grad(), "no inputs need grad: no graph")
    local xr = x:detach():requires_grad()
    check.truthy(not sg.no_grad(function() return C.group_norm(xr, 4) end):needs_grad(), "no_grad: no graph")
    -- default eps, a number or an options table
    check.near(C.group_norm(x, 2), F.group_norm_reference(x, 2, nil, nil, 1e-5), 1e-12)
    check.near(C.group_norm(x, 2, nil, nil, {eps = 0.5}), F.group_norm_reference(x, 2, nil, nil, 0.5), 1e-12)
    check.near(C.layer_norm(x, 2, nil, nil, 0.5), F.layer_norm_reference(x, {4, 3}, nil, nil, 0.5), 1e-12)
    -- an empty batch
    local e = sg.zeros({0, 4, 3}, "f32"):requires_grad()
    local ye = C.group_norm(e, 2, sg.ones({4}, "f32"):requires_grad())
    check.eq(ye.shape, {0, 4, 3})
    ye:sum():backward()
    check.eq(e.grad.shape, {0, 4, 3})
    -- statistics of an f32 input in double: a large offset does not swamp the variance
    local big = (sg.randn({1, 2, 4096}, "f64") + 1e4)
    near_rel(C.group_norm(big:to("f32"), 1), C.group_norm(big:to("f32"):to("f64"), 1):to("f32"), 1e-5, "offset f32")
  end)

  test("group_norm and layer_norm argument errors", function()
    local x = sg.randn({2, 4, 3, 3})
    check.errors(function() C.group_norm(x, 3) end, "group_norm: 4 channels do not split into 3 groups (input [2,4,3,3])")
    check.errors(function() F.group_norm(x, 3) end, "4 channels do not split into 3 groups")
    check.errors(function() C.group_norm(x, 0) end, "group_norm: groups must be at least 1 (got 0)")
    check.errors(function() C.group_norm(sg.randn({4}), 2) end,
      "group_norm: input must have at least 2 dims [N,C,...] (got [4])")
    check.errors(function() C.group_norm(x, 2, sg.ones({3})) end,
      "group_norm: weight must have shape [4] for input [2,4,3,3] (got [3])")
    check.errors(function() C.group_norm(x, 2, nil, sg.ones({4, 1})) end,
      "group_norm: bias must have shape [4] for input [2,4,3,3] (got [4,1])")
    check.errors(function() C.group_norm(sg.ones({2, 4}, "i64"), 2) end, "group_norm: input must be f32 or f64 (got i64)")
    check.errors(function() C.group_norm(x, 2, sg.ones({4}, "i32")) end, "group_norm: weight must be f32 or f64")
    check.errors(function() C.group_norm(x, 2, nil, nil, -1) end, "group_norm: eps must be a finite number >= 0 (got -1)")
    check.errors(function() C.group_norm(x, 2, nil, nil, "x") end, "group_norm: argument #5 must be eps")
    check.errors(function() C.group_norm(x) end, "group_norm")

    check.errors(function() C.layer_norm(sg.randn({3}), 2) end,
      "layer_norm: input [3] has too few dims to normalise over the last 2")
    check.errors(function() C.layer_norm(x, 0) end, "layer_norm: the number of normalized dims must be at least 1 (got 0)")
    check.errors(function() F.layer_norm(x, {3, 4}) end,
      "layer_norm: normalized shape [3,4] does not match the last dims of input [2,4,3,3]")
    check.errors(function() F.layer_norm(sg.randn({3}), {1, 3}) end,
      "layer_norm: normalized shape [1,3] does not match the last dims of input [3]")
    check.errors(function() F.layer_norm(x, {}) end, "layer_norm: normalized shape must have 1 to 8 dims")
    check.errors(function() F.layer_norm(x, {3, 3}, sg.ones({9})) end,
      "layer_norm: weight must have shape [3,3] for input [2,4,3,3] (got [9])")
    check.errors(function() F.layer_norm(x, {3}, nil, sg.ones({3, 3})) end,
      "layer_norm: bias must have shape [3] for input [2,4,3,3] (got [3,3])")
    check.errors(function() C.layer_norm(x, "a") end, "layer_norm: argument #2 must be the normalized shape")
  end)
end

-- ---------------------------------------------------------------- batch, group and layer norm on the GPU (was tests/test_cuda_nn_ops.lua)
do
  local G = require "tests.ops.gpu_nn"
  local F, DEV, need_dev, need_cuda, copy, f64, leaf_pair, rounded, close, same_bits, on_dev, randn =
    G.F, G.DEV, G.need_dev, G.need_cuda, G.copy, G.f64, G.leaf_pair, G.rounded, G.close, G.same_bits, G.on_dev, G.randn
  -- ------------------------------------------------------------------ batch norm
  local function bn_case(label, xs, opts, with_affine, with_running, dt, wdt, tol)
    dt, wdt, tol = dt or "f32", wdt or "f32", tol or 1e-5
    local C = xs[2]
    local x64 = randn(xs, dt ~= "f64" and dt or nil)
    local w64 = with_affine and randn({C}, wdt) or nil
    local b64 = with_affine and randn({C}, wdt) or nil
    local xd, xc = leaf_pair(x64, dt)
    local wd, wc = leaf_pair(w64, wdt)
    local bd, bc = leaf_pair(b64, wdt)
    local rmd, rvd, rmc, rvc
    if with_running then
      local rm64, rv64 = randn({C}, wdt), sg.rand({C}, "f64") + 0.5
      rv64 = rounded(rv64, wdt)
      rmd, rvd = rm64:to(wdt):to(DEV), rv64:to(wdt):to(DEV)
      rmc, rvc = rm64:clone(), rv64:clone()
    end
    local yd = F.batch_norm(xd, rmd, rvd, wd, bd, opts)
    if DEV == "cuda" then check.eq(F._bn_path(), "cuda", label .. ": path") end -- before the cpu run notes its own
    local yc = F.batch_norm(xc, rmc, rvc, wc, bc, opts)
    on_dev(yd, label)
    check.eq(yd.dtype, dt, label .. ": output dtype")
    close(yd, yc, tol, label .. ": output")
    if with_running then
      close(rmd, rmc, tol, label .. ": running mean")
      close(rvd, rvc, tol, label .. ": running var")
    end
    local gy = randn(yc.shape, dt ~= "f64" and dt or nil)
    yd:backward(gy:to(dt):to(DEV))
    yc:backward(gy)
    close(xd.grad, xc.grad, tol, label .. ": input gradient")
    if with_affine then
      check.eq(wd.grad.dtype, wdt, label .. ": weight gradient dtype")
      close(wd.grad, wc.grad, tol, label .. ": weight gradient")
      close(bd.grad, bc.grad, tol, label .. ": bias gradient")
    end
  end

  test("batch_norm on cuda: training and evaluation, running statistics, gradients", function()
    need_dev()
    sg.manual_seed(51)
    local SHAPES = {{4, 3, 5, 6}, {8, 5}, {2, 4, 3, 2, 3}, {1, 3, 1, 2}, {3, 2, 40, 33}, {64, 3}}
    for k, xs in ipairs(SHAPES) do
      for _, aff in ipairs({true, false}) do
        local l = "shape " .. k .. (aff and " affine" or "")
        bn_case(l .. " training", xs, {training=true, momentum=0.1, eps=1e-5}, aff, true)
        bn_case(l .. " training, momentum 0.3, eps 1e-3", xs, {training=true, momentum=0.3, eps=1e-3}, aff, true)
        bn_case(l .. " training without running stats", xs, {training=true}, aff, false)
        bn_case(l .. " evaluation", xs, {training=false}, aff, true)
      end
    end
    bn_case("f64 training", {3, 4, 5, 5}, {training=true}, true, true, "f64", "f64", 1e-10)
    bn_case("f64 evaluation", {3, 4, 5, 5}, {training=false}, true, true, "f64", "f64", 1e-10)
    bn_case("f32 input, f64 parameters", {3, 4, 5, 5}, {training=true}, true, true, "f32", "f64")
  end)

  test("batch_norm on cuda: 16-bit activations with f32 parameters (autocast layout)", function()
    need_cuda()
    sg.manual_seed(52)
    for _, dt in ipairs({"bf16", "f16"}) do
      bn_case(dt .. " training", {4, 6, 7, 5}, {training=true}, true, true, dt, "f32", 2e-2)
      bn_case(dt .. " evaluation", {4, 6, 7, 5}, {training=false}, true, true, dt, "f32", 2e-2)
    end
  end)

  test("batch_norm on cuda: non-contiguous input and stride-0 parameters", function()
    need_dev()
    sg.manual_seed(53)
    local base = randn({3, 4, 6, 5}, "f32")
    local w, b = randn({1}, "f32"), randn({1}, "f32")
    local yd = F.batch_norm(base:to("f32"):to(DEV):transpose(3, 4), nil, nil, w:to("f32"):to(DEV):expand({4}),
                            b:to("f32"):to(DEV):expand({4}), {training=true})
    local yc = F.batch_norm(base:transpose(3, 4), nil, nil, w:expand({4}), b:expand({4}), {training=true})
    close(yd, yc, 1e-5, "strided batch norm")
    if DEV == "cuda" then
      check.errors(function()
        return F.batch_norm(sg.randn({2, 3, 4}):cuda(), sg.zeros({3}), sg.ones({3}), nil, nil, {training=true})
      end, "expected all tensors on one device")
    end
  end)

  -- ------------------------------------------------------------------ group and layer norm
  local function gn_case(label, fn, xs, ws, dt, tol)
    dt, tol = dt or "f32", tol or 1e-5
    local wdt = dt == "f64" and "f64" or "f32" -- 16-bit activations keep f32 parameters
    local x64 = randn(xs, dt ~= "f64" and dt or nil)
    local w64 = ws and randn(ws, wdt) or nil
    local b64 = ws and randn(ws, wdt) or nil
    local xd, xc = leaf_pair(x64, dt)
    local wd, wc = leaf_pair(w64, wdt)
    local bd, bc = leaf_pair(b64, wdt)
    local yd, yc = fn(xd, wd, bd), fn(xc, wc, bc)
    on_dev(yd, label)
    check.eq(yd.dtype, dt, label .. ": output dtype")
    close(yd, yc, tol, label .. ": output")
    local gy = randn(yc.shape, dt ~= "f64" and dt or nil)
    yd:backward(gy:to(dt):to(DEV))
    yc:backward(gy)
    close(xd.grad, xc.grad, tol, label .. ": input gradient")
    if ws then
      close(wd.grad, wc.grad, tol, label .. ": weight gradient")
      close(bd.grad, bc.grad, tol, label .. ": bias gradient")
    end
  end

  test("group_norm and instance norm on cuda match the CPU", function()
    need_dev()
    sg.manual_seed(61)
    local CASES = {
      {x={2, 6, 5, 7}, g={1, 2, 3, 6}}, {x={2, 4, 10}, g={2, 4}}, {x={2, 8, 16, 16}, g={1, 4, 8}},
      {x={3, 4}, g={2}}, {x={1, 2, 3, 1, 2}, g={1, 2}}, {x={2, 32, 40, 36}, g={8}},
    }
    for k, c in ipairs(CASES) do
      for _, G in ipairs(c.g) do
        local fn = function(x, w, b) return F.group_norm(x, G, w, b, 1e-5) end
        gn_case("case " .. k .. " groups " .. G .. " affine", fn, c.x, {c.x[2]})
        gn_case("case " .. k .. " groups " .. G, fn, c.x, nil)
      end
    end
    gn_case("f64", function(x, w, b) return F.group_norm(x, 2, w, b, 1e-3) end, {3, 4, 5, 6}, {4}, "f64", 1e-10)
  end)

  test("layer_norm on cuda matches the CPU", function()
    need_dev()
    sg.manual_seed(62)
    gn_case("last dim", function(x, w, b) return F.layer_norm(x, {8}, w, b) end, {3, 5, 8}, {8})
    gn_case("last two dims", function(x, w, b) return F.layer_norm(x, {5, 8}, w, b) end, {3, 5, 8}, {5, 8})
    gn_case("no affine", function(x) return F.layer_norm(x, {64}) end, {4, 64}, nil)
    gn_case("long rows", function(x, w, b) return F.layer_norm(x, {1000}, w, b, 1e-6) end, {6, 1000}, {1000})
    gn_case("many rows", function(x, w, b) return F.layer_norm(x, {16}, w, b) end, {2000, 16}, {16})
    gn_case("f64", function(x, w, b) return F.layer_norm(x, {3, 4}, w, b) end, {2, 3, 4}, {3, 4}, "f64", 1e-10)
  end)

  test("group_norm and layer_norm on cuda in 16 bits", function()
    need_cuda()
    sg.manual_seed(63)
    for _, dt in ipairs({"bf16", "f16"}) do
      gn_case("group " .. dt, function(x, w, b) return F.group_norm(x, 4, w, b) end, {2, 8, 9, 7}, {8}, dt, 2e-2)
      gn_case("layer " .. dt, function(x, w, b) return F.layer_norm(x, {48}, w, b) end, {5, 48}, {48}, dt, 2e-2)
    end
  end)
end

-- ---------------------------------------------------------------- the f32 cpu kernels against the f64 loops (was tests/test_cpu_kernels.lua)
do
  local C = require "tests.ops.cpu_fast"
  local F, same, both, on_threads, close = C.F, C.same, C.both, C.on_threads, C.close
  test("batch norm (f32 kernels, with and without the fused ReLU) matches the f64 loops", function()
    sg.manual_seed(34)
    math.randomseed(34)
    local r = math.random
    for k = 1, 40 do
      local shape = ({{r(1, 4), r(1, 9), r(1, 8), r(1, 8)}, {r(2, 6), r(1, 9)}, {r(1, 3), r(1, 5), r(2, 9)},
                      {r(1, 3), r(1, 20), r(9, 40), r(9, 40)}})[r(4)]
      local C = shape[2]
      local training, relu = r(2) == 1, r(2) == 1
      local n = 1
      for _, s in ipairs(shape) do n = n * s end
      if training and n // C <= 1 then shape[1] = shape[1] + 1 end
      local with_w, with_b, with_stats = r(3) > 1, r(3) > 1, not training or r(2) == 1
      local label = string.format("case %d (x {%s}, %s%s, weight %s, bias %s, stats %s)", k, table.concat(shape, ","),
        training and "training" or "eval", relu and ", relu" or "", tostring(with_w), tostring(with_b),
        tostring(with_stats))
      local rm0, rv0 = sg.randn{C}, sg.rand{C} + 0.5
      local inputs = {sg.randn(shape) * 3 + 1}
      if with_w then inputs[#inputs + 1] = sg.randn{C} end
      if with_b then inputs[#inputs + 1] = sg.randn{C} end
      local stats = {}
      local function fn(x, a, b)
        local w = with_w and a or nil
        local bias = with_b and (with_w and b or a) or nil
        local rm, rv = with_stats and rm0:to(x.dtype):clone() or nil, with_stats and rv0:to(x.dtype):clone() or nil
        local y = F.batch_norm(x, rm, rv, w, bias, {training = training, momentum = 0.3, eps = 1e-4, relu = relu})
        stats[#stats + 1] = rm and {rm, rv} or nil
        check.eq(F._bn_path(), x.dtype == "f32" and "kernel" or "loops", label .. ": path")
        return y
      end
      local y, yr, g, gr = both(inputs, fn)
      close(y, yr, 1e-5, label .. ": output")
      for i = 1, #g do close(g[i], gr[i], 1e-5, label .. ": gradient " .. i) end
      if with_stats then
        close(stats[1][1], stats[2][1]:to("f32"), 1e-6, label .. ": running mean")
        close(stats[1][2], stats[2][2]:to("f32"), 1e-6, label .. ": running var")
      end
    end
  end)

  test("batch norm kernels: the fused ReLU equals relu(batch_norm), results do not depend on threads", function()
    sg.manual_seed(35)
    local x0, w0, b0 = sg.randn{4, 24, 33, 31} * 2 + 0.5, sg.randn{24}, sg.randn{24}
    local gy = sg.randn{4, 24, 33, 31}
    local function run(threads, fused, training)
      F._threads(threads)
      local x, w, b = x0:clone():requires_grad(), w0:clone():requires_grad(), b0:clone():requires_grad()
      local rm, rv = sg.zeros{24}, sg.ones{24}
      local o = {training = training, relu = fused}
      local y = fused and F.batch_norm(x, rm, rv, w, b, o) or F.batch_norm(x, rm, rv, w, b, o):relu()
      y:backward(gy)
      return {y:detach(), x.grad, w.grad, b.grad, rm, rv}
    end
    local t0 = F._threads()
    for _, training in ipairs{true, false} do
      local a, b, c = run(1, true, training), run(3, true, training), run(2, false, training)
      for i = 1, #a do
        same(a[i], b[i], string.format("result %d (training %s) on 1 and 3 threads", i, tostring(training)))
        close(a[i], c[i], 1e-6, string.format("result %d (training %s) fused against two ops", i, tostring(training)))
      end
    end
    F._threads(t0)
  end)
end
