-- conv2d and conv_transpose2d (groups, stride, padding incl. 'same', dilation,
-- output_padding, bias): every backend against the reference loops, forward
-- and backward (the three kinds of the conv entry, the bias add and its
-- gradient), and the reference's gradients against finite differences.
local B = require "tests.ops.backends"
local F = sg.F

-- x shape, weight shape, options; the bias has the output's channels
local CONV = {
  {"3x3", {2, 3, 7, 9}, {4, 3, 3, 3}, {}},
  {"3x3 padding 1", {1, 4, 6, 5}, {5, 4, 3, 3}, {padding = 1}},
  {"stride 2, groups 2", {3, 4, 9, 8}, {6, 2, 3, 2}, {stride = 2, padding = {1, 0}, groups = 2}},
  {"dilation 2", {2, 2, 11, 7}, {3, 2, 3, 3}, {dilation = 2, padding = 2}},
  {"depthwise", {1, 6, 5, 5}, {6, 1, 3, 3}, {groups = 6, padding = 1}},
  {"1x1", {3, 5, 4, 6}, {7, 5, 1, 1}, {}},
  {"1x1 stride 2", {1, 4, 7, 7}, {2, 4, 1, 1}, {stride = 2}},
  {"same, even kernel", {2, 3, 8, 6}, {5, 3, 4, 3}, {padding = "same", dilation = {2, 1}}},
  {"mixed", {1, 2, 13, 10}, {4, 1, 5, 3}, {stride = {3, 2}, padding = {2, 1}, dilation = {1, 2}, groups = 2}},
  {"blocked layouts", {2, 16, 6, 7}, {16, 16, 3, 3}, {padding = 1}},
  {"kernel as large as the input", {2, 2, 3, 4}, {3, 2, 3, 4}, {}},
}

local CONVT = {
  {"stride 2, output_padding 1", {2, 4, 3, 5}, {4, 3, 3, 3}, {stride = 2, padding = 1, output_padding = 1}},
  {"groups 2, dilation", {1, 4, 4, 4}, {4, 2, 2, 3}, {stride = {1, 2}, groups = 2, dilation = {2, 1}}},
  {"1x1", {3, 3, 5, 3}, {3, 4, 1, 1}, {}},
  {"4x4 stride 2", {1, 16, 4, 5}, {16, 8, 4, 4}, {stride = 2, padding = 1}},
  {"2x2 stride 2", {2, 8, 3, 3}, {8, 8, 2, 2}, {stride = 2}},
  {"depthwise", {1, 6, 5, 4}, {6, 1, 3, 3}, {groups = 6, padding = 1}},
  -- a row no kernel reaches: oneDNN refuses it, the cpu takes BLAS
  {"output_padding past the kernel", {1, 2, 4, 4}, {2, 3, 2, 2}, {dilation = 2, output_padding = 1}},
}

local function out_channels(op, w, o) return op == "conv2d" and w[1] or w[2] * (o.groups or 1) end

local function each_case(fn)
  for _, c in ipairs(CONV) do fn("conv2d", c) end
  for _, c in ipairs(CONVT) do fn("conv_transpose2d", c) end
end

test("conv: every backend matches the reference (f32 and f64, with and without bias, forward and backward)",
  function()
  sg.manual_seed(31)
  each_case(function(op, c)
    for _, dt in ipairs{"f32", "f64"} do
      local x, w = sg.randn(c[2], dt), sg.randn(c[3], dt)
      local b = sg.randn({out_channels(op, c[3], c[4])}, dt)
      local name = op .. " " .. c[1] .. " " .. dt
      B.compare(name .. " with bias", function(a, k, d) return F[op](a, k, d, c[4]) end, {x, w, b})
      B.compare(name, function(a, k) return F[op](a, k, nil, c[4]) end, {x, w})
    end
  end)
end)

test("conv: each gradient alone (input, weight or bias only) matches the reference", function()
  sg.manual_seed(32)
  for _, op in ipairs{"conv2d", "conv_transpose2d"} do
    local c = op == "conv2d" and CONV[3] or CONVT[1]
    local x, w = sg.randn(c[2]), sg.randn(c[3])
    local b = sg.randn{out_channels(op, c[3], c[4])}
    -- the others are constants (captured, not inputs), so autograd asks for one gradient only
    local function on(t, like) return t:to(like.device) end
    B.compare(op .. " input gradient only", function(a) return F[op](a, on(w, a), on(b, a), c[4]) end, {x})
    B.compare(op .. " weight gradient only", function(k) return F[op](on(x, k), k, on(b, k), c[4]) end, {w})
    B.compare(op .. " bias gradient only", function(d) return F[op](on(x, d), on(w, d), d, c[4]) end, {b})
    B.compare(op .. " weight and bias gradients", function(k, d) return F[op](on(x, k), k, d, c[4]) end, {w, b})
  end
end)

test("conv: random geometries on every backend", function()
  sg.manual_seed(33)
  math.randomseed(33)
  local r = math.random
  for k = 1, 20 do
    local G = ({1, 1, 2, 3})[r(4)]
    local cin, cout = G * r(1, 4), G * r(1, 4)
    local kh, kw = r(1, 4), r(1, 4)
    local o = {stride = {r(1, 2), r(1, 3)}, dilation = {r(1, 2), r(1, 2)}, padding = {r(0, 2), r(0, 2)}, groups = G}
    if r(5) == 1 then o.stride, o.padding = nil, "same" end
    local H, W = (kh - 1) * o.dilation[1] + r(1, 7), (kw - 1) * o.dilation[2] + r(1, 7)
    local N = r(1, 3)
    local x, w, b = sg.randn{N, cin, H, W}, sg.randn{cout, cin // G, kh, kw}, sg.randn{cout}
    B.compare("random conv2d " .. k, function(a, q, d) return F.conv2d(a, q, d, o) end, {x, w, b})
    if o.padding ~= "same" then
      local t = {stride = o.stride, dilation = o.dilation, padding = o.padding, groups = G}
      -- the transposed op maps cout channels back to cin: weight [cout, cin / G, kh, kw]
      local y = sg.randn{N, cout, r(1, 5), r(1, 5)}
      local ok = pcall(F.conv_transpose2d, y, w, nil, t)
      if ok then
        B.compare("random conv_transpose2d " .. k, function(a, q, d) return F.conv_transpose2d(a, q, d, t) end,
          {y, w, sg.randn{cin}})
      end
    end
  end
end)

test("conv: edge cases (empty batch, one pixel, non-contiguous inputs, reference option)", function()
  sg.manual_seed(34)
  -- an empty batch: empty outputs, zero weight and bias gradients (on the reference and the cpu table)
  local prev = sg.config.reference
  for _, ref in ipairs{true, false} do
    sg.config.reference = ref
    local ok, err = pcall(function()
      for _, op in ipairs{"conv2d", "conv_transpose2d"} do
        local x = sg.randn{0, 4, 5, 5}:requires_grad()
        local w, b = sg.randn{4, 4, 3, 3}:requires_grad(), sg.randn{4}:requires_grad()
        local y = F[op](x, w, b, {padding = 1})
        check.eq(y.shape, {0, 4, 5, 5}, op .. " empty batch: output shape")
        y:sum():backward()
        check.eq(w.grad:abs():sum():item(), 0, op .. " empty batch: weight gradient")
        check.eq(b.grad:abs():sum():item(), 0, op .. " empty batch: bias gradient")
      end
    end)
    sg.config.reference = prev
    if not ok then error(err, 0) end
  end
  -- a 1x1 image through a 1x1 kernel, and a one-pixel output
  B.compare("one pixel", function(a, k, d) return F.conv2d(a, k, d) end, {sg.randn{2, 3, 1, 1}, sg.randn{2, 3, 1, 1},
    sg.randn{2}})
  B.compare("one output pixel", function(a, k) return F.conv2d(a, k) end, {sg.randn{1, 2, 3, 3}, sg.randn{3, 2, 3, 3}})
  -- strided views go through the op's contiguous copies
  local base = sg.randn{2, 3, 6, 8}
  B.compare("transposed view", function(a, k) return F.conv2d(a:transpose(3, 4), k, nil, {padding = 1}) end,
    {base, sg.randn{4, 3, 3, 3}})
  -- opts.reference runs the reference loops on the cpu whatever sg.config.reference says
  local x, w, b = sg.randn{2, 3, 6, 5}, sg.randn{4, 3, 3, 3}, sg.randn{4}
  F.conv2d(x, w, b, {reference = true})
  check.eq(F._conv_path(), "reference", "reference option: forward")
  local xr = x:clone():requires_grad()
  F.conv2d(xr, w, b, {reference = true}):sum():backward()
  check.eq(F._conv_path(), "reference", "reference option: backward")
  check.near(F.conv2d(x, w, b, {reference = true}), F.conv2d(x, w, b), 1e-5, 1e-4, "reference option agrees")
  if sg.cuda.is_available() then
    check.errors(function() F.conv2d(x:cuda(), w:cuda(), nil, {reference = true}) end, "cpu tensors")
  end
end)

test("conv: the cpu reports what ran; the reference table reports 'reference'", function()
  local x, w = sg.randn{1, 3, 6, 6}, sg.randn{4, 3, 3, 3}
  local prev = sg.config.reference
  sg.config.reference = true
  F.conv2d(x, w, nil, {padding = 1})
  sg.config.reference = prev
  check.eq(F._conv_path(), "reference")
  F.conv2d(x:to("f64"), w:to("f64"), nil, {padding = 1})
  check.eq(F._conv_path(), "blas", "f64 on the cpu")
  F.conv2d(x, w, nil, {padding = 1})
  local compiled, enabled = F._dnnl()
  check.eq(F._conv_path(), compiled and enabled and "dnnl" or "blas", "f32 on the cpu")
end)

test("conv: reference gradients against finite differences (f64)", function()
  sg.manual_seed(35)
  each_case(function(op, c)
    if c[1] ~= "blocked layouts" and c[1] ~= "4x4 stride 2" then
      local x, w = sg.randn(c[2], "f64"), sg.randn(c[3], "f64")
      local b = sg.randn({out_channels(op, c[3], c[4])}, "f64")
      B.gradcheck(op .. " " .. c[1], function(a, k, d) return F[op](a, k, d, c[4]) end, {x, w, b})
    end
  end)
end)
