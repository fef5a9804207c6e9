-- The oneDNN average-pooling paths (f32) against the engine's own loops (the
-- same f32 inputs with oneDNN switched off), on plain layouts (few channels) and
-- blocked ones (8 or more channels, reordered inside): outputs and gradients.
-- Max pooling and batch norm run the cpu kernels (tests/test_cpu_kernels.lua).
-- Skipped when built without oneDNN.
local F = sg.F
local compiled = F._dnnl()

local function need_dnnl()
  if not compiled then skip("built without oneDNN (SG_HAVE_DNNL undefined)") end
  F._dnnl(true)
end

-- |got - want| <= 1e-5 * (1 + max |want|) + 1e-5 |want|
local function close(got, want, what)
  check.eq(got.dtype, want.dtype, what .. " dtype")
  local scale = want:numel() > 0 and want:abs():amax():item() or 0
  check.near(got, want, 1e-5 * (1 + scale), 1e-5, what)
end

-- runs fn(inputs...) -> out (and extra results) with oneDNN on then off, the
-- same f32 leaves and the same output gradient; compares everything.
-- path_fn tells which path ran; want_path is what the oneDNN run must take.
local function compare(label, path_fn, want_path, inputs, fn)
  local function run(on)
    F._dnnl(on)
    local leaves = {}
    for k, t in ipairs(inputs) do leaves[k] = t:clone():requires_grad() end
    local res = table.pack(fn(table.unpack(leaves)))
    local fpath = path_fn()
    return leaves, res, fpath
  end
  local l1, r1, p1 = run(true)
  check.eq(p1, want_path, label .. ": forward path")
  local gy = sg.randn(r1[1].shape)
  r1[1]:backward(gy)
  check.eq(path_fn(), want_path, label .. ": backward path")
  local l2, r2, p2 = run(false)
  check.eq(p2, "loops", label .. ": forward path with oneDNN off")
  r2[1]:backward(gy)
  check.eq(path_fn(), "loops", label .. ": backward path with oneDNN off")
  F._dnnl("env")
  for k = 1, r1.n do
    if r1[k].dtype == "i64" then check.eq(r1[k]:eq(r2[k]):all():item(), true, label .. ": result " .. k)
    else close(r1[k], r2[k], label .. ": result " .. k) end
  end
  for k = 1, #l1 do close(l1[k].grad, l2[k].grad, label .. ": gradient " .. k) end
end

local CHANNELS = {1, 2, 3, 5, 6, 8, 12, 16, 20, 32}
local function pool_opts(r, H, W)
  local kh, kw = r(1, math.min(4, H)), r(1, math.min(4, W))
  local o = {kernel={kh, kw}, stride={r(1, 3), r(1, 3)}, padding={r(0, kh // 2), r(0, kw // 2)}}
  return o
end

test("avg_pool2d through oneDNN matches the loops", function()
  need_dnnl()
  sg.manual_seed(32)
  math.randomseed(32)
  local r = math.random
  for k = 1, 40 do
    local H, W = r(1, 12), r(1, 12)
    local xs = {r(1, 3), CHANNELS[r(#CHANNELS)], H, W}
    local o = pool_opts(r, H, W)
    o.count_include_pad = r(2) == 1
    compare(string.format("random case %d (x {%d,%d,%d,%d}, kernel {%d,%d}, stride {%d,%d}, padding {%d,%d}, %s)", k,
      xs[1], xs[2], xs[3], xs[4], o.kernel[1], o.kernel[2], o.stride[1], o.stride[2], o.padding[1], o.padding[2],
      o.count_include_pad and "include pad" or "exclude pad"), F._pool_path, "dnnl", {sg.randn(xs)},
      function(t) return F.avg_pool2d(t, o) end)
  end
end)

test("adaptive_avg_pool2d uses oneDNN when its windows tile the plane", function()
  need_dnnl()
  sg.manual_seed(33)
  compare("global", F._pool_path, "dnnl", {sg.randn{2, 8, 7, 5}},
    function(x) return F.adaptive_avg_pool2d(x, 1) end)
  compare("4x2 of 12x6", F._pool_path, "dnnl", {sg.randn{3, 4, 12, 6}},
    function(x) return F.adaptive_avg_pool2d(x, {4, 2}) end)
  compare("3 of 7x8 (overlapping windows)", F._pool_path, "loops", {sg.randn{1, 2, 7, 8}},
    function(x) return F.adaptive_avg_pool2d(x, 3) end)
end)

test("f64, non-contiguous and empty inputs", function()
  need_dnnl()
  local x = sg.randn{2, 3, 6, 6}
  F.max_pool2d(x:to("f64"), {kernel=2})
  check.eq(F._pool_path(), "loops", "f64 max pool")
  F.batch_norm(x:to("f64"), nil, nil, nil, nil, {training=true})
  check.eq(F._bn_path(), "loops", "f64 batch norm")
  -- a transposed view is made contiguous first, then goes to oneDNN
  local xt = x:transpose(3, 4)
  local v = F.avg_pool2d(xt, {kernel=2})
  check.eq(F._pool_path(), "dnnl", "transposed input")
  F._dnnl(false)
  close(v, F.avg_pool2d(xt, {kernel=2}), "transposed input")
  F._dnnl(true)
  local e = F.avg_pool2d(sg.randn{0, 3, 4, 4}, {kernel=2})
  check.eq(e.shape, {0, 3, 2, 2})
  check.eq(F._pool_path(), "loops", "empty batch")
  F._dnnl("env")
end)

test("a training loop builds its primitives once", function()
  need_dnnl()
  local x = sg.randn{2, 4, 12, 10}:requires_grad()
  local w, b = sg.randn{4}:requires_grad(), sg.randn{4}:requires_grad()
  local rm, rv = sg.zeros{4}, sg.ones{4}
  local function step()
    local y = F.batch_norm(x, rm, rv, w, b, {training=true})
    local p = F.max_pool2d(y, {kernel=2})
    F.avg_pool2d(p, {kernel=3, stride=1, padding=1}):sum():backward()
  end
  step()
  local _, _, _, n1 = F._dnnl()
  for _ = 1, 3 do step() end
  local _, _, _, n2 = F._dnnl()
  check.eq(n2, n1, "cached primitives after more steps")
  check.truthy(n1 >= 2, "forward and backward primitives are cached")
  F._dnnl("env")
end)
