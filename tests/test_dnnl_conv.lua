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
    local G = ({1, 1, 2, 3})[r(4)]
    local cin, cout = G * r(1, 5), G * r(1, 5)
    local kh, kw = r(1, 4), r(1, 4)
    local o = {stride={r(1, 2), r(1, 3)}, dilation={r(1, 2), r(1, 2)}, padding={r(0, 2), r(0, 2)}, groups=G}
    if r(5) == 1 then o.stride, o.padding = nil, "same" end
    local H = (kh - 1) * o.dilation[1] + r(1, 9)
    local W = (kw - 1) * o.dilation[2] + r(1, 9)
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
