-- conv2d and conv_transpose2d (groups, stride, padding incl. 'same', dilation,
-- output_padding, bias): every backend against the reference loops, forward
-- and backward (the three kinds of the conv entry, the bias add and its
-- gradient), and the reference's gradients against finite differences.
local B = require "tests.ops.backends"
local F = sg.F

-- a random conv2d geometry: groups, channels (at most maxc per group), kernel, options (sometimes 'same'), and an
-- input of at most maxhw rows and columns beyond the dilated kernel
local function random_geometry(r, maxc, maxhw)
  local G = ({1, 1, 2, 3})[r(4)]
  local cin, cout = G * r(1, maxc), G * r(1, maxc)
  local kh, kw = r(1, 4), r(1, 4)
  local o = {stride = {r(1, 2), r(1, 3)}, dilation = {r(1, 2), r(1, 2)}, padding = {r(0, 2), r(0, 2)}, groups = G}
  if r(5) == 1 then o.stride, o.padding = nil, "same" end
  local H = (kh - 1) * o.dilation[1] + r(1, maxhw)
  local W = (kw - 1) * o.dilation[2] + r(1, maxhw)
  return G, cin, cout, kh, kw, o, H, W
end

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
    local G, cin, cout, kh, kw, o, H, W = random_geometry(r, 4, 7)
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

-- ---------------------------------------------------------------- the oneDNN path against f64 loops (was tests/test_dnnl_conv.lua)
do
  -- The oneDNN convolution path (f32) against the direct reference loops in f64:
  -- forward output and every gradient, on fixed awkward geometries and random
  -- ones, for conv2d and conv_transpose2d. Skipped when built without oneDNN.
  local F = sg.F
  local compiled = F._dnnl()

  local function need_dnnl()
    if not compiled then skip("built without oneDNN (SG_HAVE_DNNL undefined)") end
    F._dnnl(true)
  end

  local function copy(t) local r = {} for k, v in pairs(t) do r[k] = v end return r end

  -- |got - want| <= 1e-4 * (|want| + max |want|): relative to the tensor's scale
  local function close(got, want, what)
    check.eq(got.dtype, "f32", what .. " dtype")
    local scale = want:abs():amax():item()
    check.near(got, want, 1e-4 * (1 + scale), 1e-4, what)
  end

  -- runs op(x, w, b, o) in f32 through oneDNN and in f64 through the reference
  -- loops (forward and backward), then compares output and grads
  local function compare(op, xs, ws, bs, o, label, want_path)
    local x64, w64 = sg.randn(xs, "f64"), sg.randn(ws, "f64")
    local b64 = bs and sg.randn({bs}, "f64") or nil
    local function leaf(t, dt) return t and t:to(dt):clone():requires_grad() or nil end
    local x, w, b = leaf(x64, "f32"), leaf(w64, "f32"), leaf(b64, "f32")
    local y = F[op](x, w, b, o)
    check.eq(F._conv_path(), want_path or "dnnl", label .. ": forward path")
    local gy64 = sg.randn(y.shape, "f64")
    y:backward(gy64:to("f32"))
    check.eq(F._conv_path(), want_path or "dnnl", label .. ": backward path")
    local xr, wr, br = leaf(x64, "f64"), leaf(w64, "f64"), leaf(b64, "f64")
    local ro = copy(o)
    ro.reference = true
    local yr = F[op](xr, wr, br, ro)
    yr:backward(gy64)
    close(y, yr, label .. ": output")
    close(x.grad, xr.grad, label .. ": input gradient")
    close(w.grad, wr.grad, label .. ": weight gradient")
    if b then close(b.grad, br.grad, label .. ": bias gradient") end
  end

  test("conv2d through oneDNN matches the reference on chosen geometries", function()
    need_dnnl()
    sg.manual_seed(21)
    local cases = {
      {x={1, 3, 7, 9}, w={5, 3, 3, 3}, o={}},                                         -- odd sizes
      {x={3, 4, 9, 8}, w={6, 2, 3, 2}, o={stride=2, padding={1, 0}, groups=2}},       -- stride 2, groups 2
      {x={2, 2, 11, 7}, w={3, 2, 3, 3}, o={dilation=2, padding=2}},                   -- dilation 2
      {x={1, 6, 5, 5}, w={6, 1, 3, 3}, o={groups=6, padding=1}},                      -- depthwise
      {x={2, 4, 9, 7}, w={8, 1, 3, 3}, o={groups=4, padding=1, stride=2}},            -- depthwise x2
      {x={3, 5, 4, 6}, w={7, 5, 1, 1}, o={}},                                         -- 1x1
      {x={1, 4, 7, 7}, w={2, 4, 1, 1}, o={stride=2}},                                 -- 1x1 stride 2
      {x={2, 3, 8, 6}, w={5, 3, 4, 3}, o={padding="same", dilation={2, 1}}},          -- same, even kernel
      {x={3, 3, 9, 9}, w={4, 3, 3, 3}, o={padding="same"}},                           -- same, batch 3
      {x={1, 2, 13, 10}, w={4, 1, 5, 3}, o={stride={3, 2}, padding={2, 1}, dilation={1, 2}, groups=2}},
      {x={2, 32, 10, 11}, w={48, 32, 3, 3}, o={padding=1}},                           -- blocked layouts
      {x={3, 16, 15, 13}, w={32, 16, 3, 3}, o={stride=2, padding=1}},
      {x={1, 64, 6, 6}, w={64, 16, 3, 3}, o={groups=4, padding=1}},
      {x={2, 32, 7, 9}, w={32, 1, 5, 5}, o={groups=32, padding=2}},
    }
    for k, c in ipairs(cases) do
      compare("conv2d", c.x, c.w, c.w[1], c.o, "case " .. k .. " with bias")
      compare("conv2d", c.x, c.w, nil, c.o, "case " .. k .. " without bias")
    end
  end)

  test("conv2d through oneDNN matches the reference on random geometries", function()
    need_dnnl()
    sg.manual_seed(22)
    math.randomseed(22)
    local r = math.random
    for k = 1, 40 do
      local G, cin, cout, kh, kw, o, H, W = random_geometry(r, 5, 9)
      local N = ({1, 3, 2})[r(3)]
      compare("conv2d", {N, cin, H, W}, {cout, cin // G, kh, kw}, r(2) == 1 and cout or nil, o,
        string.format("random case %d (x {%d,%d,%d,%d}, w {%d,%d,%d,%d}, groups %d)", k, N, cin, H, W, cout,
          cin // G, kh, kw, G))
    end
  end)

  test("conv_transpose2d through oneDNN matches the reference", function()
    need_dnnl()
    sg.manual_seed(23)
    local cases = {
      {x={2, 4, 3, 5}, w={4, 3, 3, 3}, o={stride=2, padding=1, output_padding=1}},
      {x={1, 4, 4, 4}, w={4, 2, 2, 3}, o={stride={1, 2}, groups=2, dilation={2, 1}}},
      {x={3, 3, 5, 3}, w={3, 4, 1, 1}, o={}},
      {x={1, 16, 6, 7}, w={16, 8, 4, 4}, o={stride=2, padding=1}},
      {x={2, 32, 5, 5}, w={32, 32, 2, 2}, o={stride=2}},
      {x={1, 6, 5, 4}, w={6, 1, 3, 3}, o={groups=6, padding=1}},
    }
    for k, c in ipairs(cases) do
      local cout = c.w[2] * (c.o.groups or 1)
      compare("conv_transpose2d", c.x, c.w, cout, c.o, "transposed case " .. k .. " with bias")
      compare("conv_transpose2d", c.x, c.w, nil, c.o, "transposed case " .. k .. " without bias")
    end
  end)

  test("geometries oneDNN cannot express fall back to BLAS", function()
    need_dnnl()
    sg.manual_seed(24)
    -- output_padding 1 with stride 1 (allowed by dilation 2) leaves a row no kernel reaches
    compare("conv_transpose2d", {1, 2, 4, 4}, {2, 3, 2, 2}, 3, {dilation=2, output_padding=1}, "output_padding",
      "blas")
  end)

  test("the switch, f64 and the reference option choose the path", function()
    need_dnnl()
    local x, w = sg.randn{1, 3, 6, 6}, sg.randn{4, 3, 3, 3}
    local y = F.conv2d(x, w, nil, {padding=1})
    check.eq(F._conv_path(), "dnnl")
    local _, on = F._dnnl(false)
    check.eq(on, false)
    local y2 = F.conv2d(x, w, nil, {padding=1})
    check.eq(F._conv_path(), "blas")
    check.near(y, y2, 1e-5, 1e-5)
    F._dnnl(true)
    F.conv2d(x:to("f64"), w:to("f64"))
    check.eq(F._conv_path(), "blas")
    F.conv2d(x, w, nil, {reference=true})
    check.eq(F._conv_path(), "reference")
    F._dnnl("env")
  end)

  test("a training loop builds its primitives once", function()
    need_dnnl()
    local w = sg.randn{8, 4, 3, 3}:requires_grad()
    local b = sg.randn{8}:requires_grad()
    local x = sg.randn{2, 4, 12, 17}:requires_grad()
    local function step() F.conv2d(x, w, b, {padding=1, dilation=1, stride={1, 2}}):sum():backward() end
    step()
    local _, _, n1 = F._dnnl()
    for _ = 1, 3 do step() end
    local _, _, n2 = F._dnnl()
    check.eq(n2, n1, "cached primitives after more steps")
  end)

  test("oneDNN errors leave conv2d usable and shapes are checked before dispatch", function()
    need_dnnl()
    check.errors(function() F.conv2d(sg.randn{2, 3, 8, 8}, sg.randn{8, 4, 3, 3}) end,
      "conv2d: input has 3 channels but weight expects 4")
    -- an empty batch never reaches oneDNN
    local y = F.conv2d(sg.randn{0, 3, 8, 8}, sg.randn{4, 3, 3, 3}, nil, {padding=1})
    check.eq(y.shape, {0, 4, 8, 8})
  end)

  test("winograd (3x3, stride 1, 32+ channels, N x 32x32 output) matches the reference; deterministic mode goes direct",
    function()
    need_dnnl()
    local d0 = F._deterministic()
    F._deterministic(false)
    F.conv2d(sg.randn{4, 32, 16, 16}, sg.randn{32, 32, 3, 3}, nil, {padding=1})
    local _, wino = F._conv_path()
    F._deterministic(d0)
    if not wino then skip("oneDNN has no Winograd convolution on this CPU (it needs AVX-512)") end
    sg.manual_seed(23)
    local cases = {
      {x={4, 32, 16, 16}, w={32, 32, 3, 3}, o={padding=1}},
      {x={1, 32, 40, 36}, w={48, 32, 3, 3}, o={padding=1}},
      {x={4, 40, 18, 18}, w={32, 40, 3, 3}, o={}},           -- no padding: 16x16 out
    }
    for k, c in ipairs(cases) do
      local bs = c.w[1]
      F._deterministic(false)
      compare("conv2d", c.x, c.w, bs, c.o, "winograd case " .. k)
      F._deterministic(true)
      compare("conv2d", c.x, c.w, bs, c.o, "direct case " .. k)
    end
    compare("conv_transpose2d", {4, 32, 16, 16}, {32, 32, 3, 3}, 32, {padding=1}, "transposed, direct")
    F._deterministic(false)
    compare("conv_transpose2d", {4, 32, 16, 16}, {32, 32, 3, 3}, 32, {padding=1}, "transposed, winograd")
    -- the two algorithms round differently: the winograd one really ran
    local x, w = sg.randn{4, 32, 16, 16}, sg.randn{32, 32, 3, 3}
    local yw = F.conv2d(x, w, nil, {padding=1})
    F._deterministic(true)
    local yd = F.conv2d(x, w, nil, {padding=1})
    F._deterministic(d0)
    check.truthy(yw:ne(yd):any():item(), "winograd and direct results differ in the last bits")
    check.near(yw, yd, 1e-4 * (1 + yd:abs():amax():item()), 0, "winograd against direct")
  end)
end

-- ---------------------------------------------------------------- convolution on the GPU (was tests/test_cuda_nn_ops.lua)
do
  local G = require "tests.ops.gpu_nn"
  local F, DEV, need_dev, need_cuda, copy, f64, leaf_pair, rounded, close, same_bits, on_dev, randn, with_autocast =
    G.F, G.DEV, G.need_dev, G.need_cuda, G.copy, G.f64, G.leaf_pair, G.rounded, G.close, G.same_bits, G.on_dev, G.randn,
    G.with_autocast
  -- ------------------------------------------------------------------ convolution
  -- op(x, w, b, o) on the device in dt (or f32 inputs under autocast when ac is
  -- given) against the CPU's f64 reference loops on the same values
  local function conv_case(op, xs, ws, bs, o, label, dt, tol, ac)
    dt, tol = dt or "f32", tol or 1e-4
    local round = (dt == "bf16" or dt == "f16") and dt or (ac or nil)
    local x64, w64 = randn(xs, round), randn(ws, round)
    local b64 = bs and randn({bs}, round) or nil
    local xd, xc = leaf_pair(x64, dt)
    local wd, wc = leaf_pair(w64, dt)
    local bd, bc = leaf_pair(b64, dt)
    local yd = F[op](xd, wd, bd, o)
    on_dev(yd, label)
    check.eq(yd.dtype, ac or dt, label .. ": output dtype")
    if DEV == "cuda" then check.eq(F._conv_path(), "cudnn", label .. ": forward path") end
    local ro = copy(o)
    ro.reference = true
    local yc = F[op](xc, wc, bc, ro)
    local gy64 = randn(yc.shape, round)
    yd:backward(gy64:to(yd.dtype):to(DEV))
    if DEV == "cuda" then check.eq(F._conv_path(), "cudnn", label .. ": backward path") end
    yc:backward(gy64)
    close(yd, yc, tol, label .. ": output")
    check.eq(xd.grad.dtype, dt, label .. ": input gradient dtype")
    close(xd.grad, xc.grad, tol, label .. ": input gradient")
    close(wd.grad, wc.grad, tol, label .. ": weight gradient")
    if bd then close(bd.grad, bc.grad, tol, label .. ": bias gradient") end
  end

  local CONV_CASES = {
    {x={1, 3, 7, 9}, w={5, 3, 3, 3}, o={}},                                         -- odd sizes
    {x={3, 4, 9, 8}, w={6, 2, 3, 2}, o={stride=2, padding={1, 0}, groups=2}},       -- stride 2, groups 2
    {x={2, 2, 11, 7}, w={3, 2, 3, 3}, o={dilation=2, padding=2}},                   -- dilation 2
    {x={1, 6, 5, 5}, w={6, 1, 3, 3}, o={groups=6, padding=1}},                      -- depthwise
    {x={2, 4, 9, 7}, w={8, 1, 3, 3}, o={groups=4, padding=1, stride=2}},            -- depthwise x2
    {x={3, 5, 4, 6}, w={7, 5, 1, 1}, o={}},                                         -- 1x1
    {x={1, 4, 7, 7}, w={2, 4, 1, 1}, o={stride=2}},                                 -- 1x1 stride 2
    {x={2, 3, 8, 6}, w={5, 3, 4, 3}, o={padding="same", dilation={2, 1}}},          -- same, even kernel
    {x={2, 3, 8, 6}, w={5, 3, 4, 2}, o={padding="same"}},                           -- same, odd total padding
    {x={1, 2, 7, 9}, w={4, 2, 2, 2}, o={padding="same", dilation={3, 1}}},          -- same, odd totals both ways
    {x={3, 3, 9, 9}, w={4, 3, 3, 3}, o={padding="same"}},                           -- same, batch 3
    {x={1, 2, 13, 10}, w={4, 1, 5, 3}, o={stride={3, 2}, padding={2, 1}, dilation={1, 2}, groups=2}},
    {x={2, 32, 10, 11}, w={48, 32, 3, 3}, o={padding=1}},
    {x={3, 16, 15, 13}, w={32, 16, 3, 3}, o={stride=2, padding=1}},
    {x={1, 64, 6, 6}, w={64, 16, 3, 3}, o={groups=4, padding=1}},
    {x={2, 32, 7, 9}, w={32, 1, 5, 5}, o={groups=32, padding=2}},
    {x={2, 3, 4, 5}, w={2, 3, 3, 3}, o={padding=4}},                                -- padding larger than the kernel
    {x={1, 1, 1, 1}, w={3, 1, 1, 1}, o={}},                                         -- one pixel
  }

  test("conv2d on cuda matches the CPU on chosen geometries (f32)", function()
    need_dev()
    sg.manual_seed(31)
    for k, c in ipairs(CONV_CASES) do
      conv_case("conv2d", c.x, c.w, c.w[1], c.o, "case " .. k .. " with bias")
      conv_case("conv2d", c.x, c.w, nil, c.o, "case " .. k .. " without bias")
    end
  end)

  test("conv2d on cuda matches the CPU on random geometries (f32)", function()
    need_dev()
    sg.manual_seed(32)
    math.randomseed(32)
    local r = math.random
    for k = 1, 30 do
      local G, cin, cout, kh, kw, o, H, W = random_geometry(r, 5, 9)
      conv_case("conv2d", {r(1, 3), cin, H, W}, {cout, cin // G, kh, kw}, r(2) == 1 and cout or nil, o,
                "random case " .. k)
    end
  end)

  local CONVT_CASES = {
    {x={2, 4, 3, 4}, w={4, 3, 3, 3}, o={stride=2, padding=1, output_padding=1}},
    {x={1, 2, 3, 3}, w={2, 3, 2, 3}, o={stride={2, 3}, dilation={2, 1}, padding={1, 0}}},
    {x={2, 4, 5, 5}, w={4, 2, 3, 3}, o={groups=2, stride=2, padding=1, output_padding={1, 0}}},
    {x={1, 3, 4, 5}, w={3, 2, 3, 3}, o={dilation=2, padding=1, output_padding=1}},    -- output_padding >= stride
    {x={2, 3, 4, 4}, w={3, 5, 1, 1}, o={stride=2, output_padding=1}},
    {x={1, 2, 6, 6}, w={2, 2, 5, 5}, o={padding=2}},
    {x={1, 4, 5, 6}, w={4, 1, 3, 3}, o={groups=4, stride=2, padding=1}},              -- depthwise
    {x={2, 16, 7, 6}, w={16, 8, 4, 4}, o={stride=2, padding=1}},                      -- the U-Net up-convolution
    {x={1, 6, 3, 2}, w={6, 2, 2, 3}, o={stride={3, 2}, dilation={1, 3}, output_padding={2, 1}, groups=3}},
  }

  test("conv_transpose2d on cuda matches the CPU on chosen geometries (f32)", function()
    need_dev()
    sg.manual_seed(33)
    for k, c in ipairs(CONVT_CASES) do
      local cout = c.w[2] * (c.o.groups or 1)
      conv_case("conv_transpose2d", c.x, c.w, cout, c.o, "case " .. k .. " with bias")
      conv_case("conv_transpose2d", c.x, c.w, nil, c.o, "case " .. k .. " without bias")
    end
  end)

  test("conv_transpose2d on cuda matches the CPU on random geometries (f32)", function()
    need_dev()
    sg.manual_seed(34)
    math.randomseed(34)
    local r = math.random
    for k = 1, 20 do
      local G = ({1, 1, 2})[r(3)]
      local cin, cout = G * r(1, 4), G * r(1, 4)
      local kh, kw = r(1, 4), r(1, 4)
      local s, d = {r(1, 3), r(1, 2)}, {r(1, 2), r(1, 2)}
      local o = {stride=s, dilation=d, groups=G,
                 padding={r(0, d[1] * (kh - 1) // 2), r(0, d[2] * (kw - 1) // 2)},
                 output_padding={r(0, math.max(s[1], d[1]) - 1), r(0, math.max(s[2], d[2]) - 1)}}
      conv_case("conv_transpose2d", {r(1, 3), cin, r(1, 6), r(1, 6)}, {cin, cout // G, kh, kw},
                r(2) == 1 and cout or nil, o, "random case " .. k)
    end
  end)

  test("conv2d and conv_transpose2d in f64 on cuda match the CPU to 1e-9", function()
    need_dev()
    sg.manual_seed(35)
    for k, c in ipairs({CONV_CASES[2], CONV_CASES[3], CONV_CASES[9], CONV_CASES[12]}) do
      conv_case("conv2d", c.x, c.w, c.w[1], c.o, "f64 case " .. k, "f64", 1e-9)
    end
    for k, c in ipairs({CONVT_CASES[1], CONVT_CASES[4]}) do
      conv_case("conv_transpose2d", c.x, c.w, c.w[2] * (c.o.groups or 1), c.o, "f64 transposed case " .. k, "f64", 1e-9)
    end
  end)

  test("conv2d takes non-contiguous and broadcast inputs on cuda", function()
    need_dev()
    sg.manual_seed(36)
    local base, w64, b64 = sg.randn({2, 3, 9, 7}, "f64"), sg.randn({4, 3, 3, 3}, "f64"), sg.randn({4}, "f64")
    local xd = base:to("f32"):to(DEV):transpose(3, 4)                   -- [2,3,7,9], not contiguous
    check.eq(xd:is_contiguous(), false, "a transposed view")
    local yd = F.conv2d(xd, w64:to("f32"):to(DEV), b64:to("f32"):to(DEV), {padding=1})
    local yc = F.conv2d(base:transpose(3, 4), w64, b64, {padding=1, reference=true})
    close(yd, yc, 1e-4, "transposed input")
    -- one image broadcast over the batch, a bias that is a stride-0 view
    local one = sg.randn({1, 3, 6, 6}, "f64")
    local bb = sg.randn({1}, "f64")
    yd = F.conv2d(one:to("f32"):to(DEV):expand({3, 3, 6, 6}), w64:to("f32"):to(DEV), bb:to("f32"):to(DEV):expand({4}))
    yc = F.conv2d(one:expand({3, 3, 6, 6}):contiguous(), w64, bb:expand({4}):contiguous(), {reference=true})
    close(yd, yc, 1e-4, "expanded input and bias")
  end)

  test("conv2d and conv_transpose2d under bf16 and f16 autocast run in 16 bits with f32 gradients", function()
    need_cuda()
    sg.manual_seed(37)
    with_autocast("bf16", function()
      for k, c in ipairs({CONV_CASES[1], CONV_CASES[2], CONV_CASES[9], CONV_CASES[13], CONV_CASES[16]}) do
        conv_case("conv2d", c.x, c.w, c.w[1], c.o, "bf16 autocast case " .. k, "f32", 2e-2, "bf16")
      end
      for k, c in ipairs({CONVT_CASES[1], CONVT_CASES[4], CONVT_CASES[8]}) do
        conv_case("conv_transpose2d", c.x, c.w, c.w[2] * (c.o.groups or 1), c.o, "bf16 autocast transposed " .. k,
                  "f32", 2e-2, "bf16")
      end
      -- f64 work is left alone
      local y = F.conv2d(sg.randn({1, 2, 5, 5}, "f64"):to(DEV), sg.randn({3, 2, 3, 3}, "f64"):to(DEV))
      check.eq(y.dtype, "f64", "f64 under autocast")
    end)
    with_autocast("f16", function()
      local c = CONV_CASES[14]
      conv_case("conv2d", c.x, c.w, c.w[1], c.o, "f16 autocast", "f32", 2e-2, "f16")
    end)
    check.eq(sg.amp.autocast_dtype("cuda"), nil, "autocast restored")
  end)

  test("conv2d on bf16 and f16 cuda tensors (no autocast)", function()
    need_cuda()
    sg.manual_seed(38)
    for _, dt in ipairs({"bf16", "f16"}) do
      for k, c in ipairs({CONV_CASES[3], CONV_CASES[8], CONV_CASES[15]}) do
        conv_case("conv2d", c.x, c.w, c.w[1], c.o, dt .. " case " .. k, dt, 2e-2)
      end
      conv_case("conv_transpose2d", CONVT_CASES[3].x, CONVT_CASES[3].w, 4, CONVT_CASES[3].o, dt .. " transposed", dt, 2e-2)
    end
  end)

  test("cuDNN benchmark and deterministic modes agree with the heuristics; timing runs once per shape", function()
    need_cuda()
    sg.manual_seed(39)
    local x64, w64, b64 = sg.randn({4, 16, 20, 18}, "f64"), sg.randn({24, 16, 3, 3}, "f64"), sg.randn({24}, "f64")
    local gy64 = sg.randn({4, 24, 10, 9}, "f64")
    local function run()
      local x, w, b = leaf_pair(x64, "f32"), leaf_pair(w64, "f32"), leaf_pair(b64, "f32")
      local y = F.conv2d(x, w, b, {stride=2, padding=1})
      y:backward(gy64:to("f32"):cuda())
      return {y = f64(y), gx = f64(x.grad), gw = f64(w.grad), gb = f64(b.grad)}
    end
    local function agree(a, b, what)
      for _, k in ipairs({"y", "gx", "gw", "gb"}) do close(a[k], b[k], 1e-4, what .. " " .. k) end
    end
    local ok, err = pcall(function()
      F._cudnn("clear")
      local base = run()
      local s0 = F._cudnn()
      check.truthy(s0.entries >= 3 and s0.heuristics >= 3, "heuristics chose fwd, bwd_data and bwd_filter")
      sg.cuda.benchmark(true)
      local b1 = run()
      local s1 = F._cudnn()
      check.truthy(s1.finds >= s0.finds + 3, "benchmark mode times fwd, bwd_data and bwd_filter")
      local b2 = run()
      local s2 = F._cudnn()
      check.eq(s2.finds, s1.finds, "no second timing for the same shapes")
      check.truthy(s2.hits > s1.hits, "cache hits")
      agree(b1, base, "benchmark vs heuristics")
      agree(b2, b1, "benchmark twice")
      sg.cuda.deterministic(true)
      local d1, d2 = run(), run()
      sg.cuda.benchmark(false)
      local d3 = run()
      for _, k in ipairs({"y", "gx", "gw", "gb"}) do
        same_bits(d1[k], d2[k], "deterministic benchmark " .. k)
        close(d3[k], d1[k], 1e-4, "deterministic heuristics " .. k)
      end
      local d4 = run()
      for _, k in ipairs({"y", "gx", "gw", "gb"}) do same_bits(d3[k], d4[k], "deterministic heuristics " .. k) end
      agree(d1, base, "deterministic vs default")
      F._cudnn({tf32 = true})
      local t = run()
      for _, k in ipairs({"y", "gx", "gw", "gb"}) do close(t[k], base[k], 1e-2, "tf32 " .. k) end
      check.eq(F._cudnn().tf32, true, "tf32 switch")
    end)
    sg.cuda.benchmark(false)
    sg.cuda.deterministic(false)
    F._cudnn({tf32 = false})
    if not ok then error(err, 0) end
    check.truthy(F._cudnn().last:find("algo", 1, true), "last algorithm reported")
  end)

  test("conv ops on cuda reject tensors on two devices", function()
    need_cuda()
    local x, w = sg.randn({1, 2, 5, 5}):cuda(), sg.randn({3, 2, 3, 3})
    check.errors(function() return F.conv2d(x, w) end, "expected all tensors on one device")
    check.errors(function() return F.conv2d(x, w:cuda(), sg.randn({3})) end, "expected all tensors on one device")
    check.errors(function() return F.conv_transpose2d(x, sg.randn({2, 3, 3, 3})) end, "expected all tensors on one device")
  end)
end

-- ---------------------------------------------------------------- hooks (every build) (was tests/test_cuda_nn_ops.lua)
do
  local G = require "tests.ops.gpu_nn"
  local F, DEV, need_dev, need_cuda, copy, f64, leaf_pair, rounded, close, same_bits, on_dev, randn, with_autocast =
    G.F, G.DEV, G.need_dev, G.need_cuda, G.copy, G.f64, G.leaf_pair, G.rounded, G.close, G.same_bits, G.on_dev, G.randn,
    G.with_autocast
  -- ------------------------------------------------------------------ hooks (every build)
  test("_cudnn hook; cuda autocast leaves cpu convolutions alone", function()
    check.eq(sg.amp.autocast_dtype("cuda"), nil, "off by default")
    with_autocast("bf16", function()
      check.eq(sg.amp.autocast_dtype("cuda"), "bf16", "set")
      local y = F.conv2d(sg.randn({1, 2, 5, 5}), sg.randn({3, 2, 3, 3}))
      check.eq(y.dtype, "f32", "a cpu convolution under cuda autocast")
    end)
    check.eq(sg.amp.autocast_dtype("cuda"), nil, "restored")
    check.errors(function() return sg.amp.autocast({dtype = "nonsense", device = "cuda"}, function() end) end, "nonsense")
    local info = F._cudnn()
    check.eq(type(info.built), "boolean", "_cudnn().built")
    if info.built then
      check.eq(math.type(info.entries), "integer", "_cudnn().entries")
      check.eq(info.tf32, false, "no TF32 by default")
    end
  end)
end
