-- The CNN ops of sg.F on cuda tensors against the CPU: conv2d and
-- conv_transpose2d through cuDNN, max/average/adaptive pooling and max
-- unpooling, batch norm (with the running statistics), group and layer norm,
-- nearest and bilinear upsampling; forward and every gradient.
--
-- References run on the CPU in f64 on the same values. Tolerances, relative
-- to the largest magnitude of the reference tensor (|got - want| <=
-- tol * (1 + max|want|) + tol * |want|): f32 1e-4 (convolutions; no TF32),
-- 1e-5 (pooling, norms, upsampling), f64 1e-9, bf16/f16 under autocast or
-- as inputs 2e-2 (inputs rounded to the 16-bit type first, so only the
-- output rounding and the accumulation order differ).
--
-- Every test skips without a CUDA device. SG_TEST_NN_DEVICE=cpu runs the
-- same comparisons with the "device" side on the CPU: a check of this file
-- itself on machines without a GPU (the cuDNN- and 16-bit-specific tests
-- skip then).
local F = sg.F
local DEV = os.getenv("SG_TEST_NN_DEVICE") or "cuda"

local function need_dev()
  if DEV == "cuda" and not sg.cuda.is_available() then
    skip("no CUDA device: " .. tostring(sg.cuda.why_unavailable()))
  end
end
local function need_cuda()
  need_dev()
  if DEV ~= "cuda" then skip("cuda-only behaviour (SG_TEST_NN_DEVICE=" .. DEV .. ")") end
end

local function copy(t) local r = {} for k, v in pairs(t) do r[k] = v end return r end
local function f64(t) return t:detach():cpu():to("f64") end

-- the values of t64 (cpu f64) as a leaf on the device under test (dtype dt) and as a cpu f64 leaf
local function leaf_pair(t64, dt)
  if not t64 then return nil, nil end
  return t64:clone():to(dt):to(DEV):requires_grad(), t64:clone():requires_grad()
end
-- t64 rounded to dt and back (what the device side sees)
local function rounded(t64, dt) return t64:to(dt):to("f64") end

-- |got - want| <= tol * (1 + max|want|) + tol * |want|
local function close(got, want, tol, what)
  local w = f64(want)
  local scale = w:abs():amax():item()
  check.near(f64(got), w, tol * (1 + scale), tol, what)
end
local function same_bits(a, b, what)
  local d = (f64(a) - f64(b)):abs():amax():item()
  check.eq(d, 0, what .. ": repeated runs differ by " .. tostring(d))
end

local function on_dev(t, what)
  check.eq(t.device, DEV, what .. ": device")
end

-- sg.randn of a shape, rounded to dt when given
local function randn(shape, dt)
  local t = sg.randn(shape, "f64")
  return dt and rounded(t, dt) or t
end

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
    local G = ({1, 1, 2, 3})[r(4)]
    local cin, cout = G * r(1, 5), G * r(1, 5)
    local kh, kw = r(1, 4), r(1, 4)
    local o = {stride={r(1, 2), r(1, 3)}, dilation={r(1, 2), r(1, 2)}, padding={r(0, 2), r(0, 2)}, groups=G}
    if r(5) == 1 then o.stride, o.padding = nil, "same" end
    local H = (kh - 1) * o.dilation[1] + r(1, 9)
    local W = (kw - 1) * o.dilation[2] + r(1, 9)
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

local function with_autocast(dt, fn) sg.amp.autocast({dtype = dt, device = "cuda"}, fn) end

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

-- ------------------------------------------------------------------ pooling
-- x (f64 values exact in dt) through op on the device and on the CPU in f64; g: upstream gradient.
-- (the device table has no fallback to the host: an op on a cuda tensor runs the cuda entries)
local function pool_case(label, x64, fn, dt, tol)
  dt, tol = dt or "f32", tol or 1e-5
  local xd, xc = leaf_pair(x64, dt)
  local yd, id = fn(xd)
  local yc, ic = fn(xc)
  on_dev(yd, label)
  check.eq(yd.dtype, dt, label .. ": dtype")
  close(yd, yc, tol, label .. ": output")
  if ic then
    check.eq(id.dtype, "i64", label .. ": index dtype")
    on_dev(id, label .. " indices")
    check.eq((id:cpu() - ic):abs():amax():item(), 0, label .. ": indices")
  end
  local gy = randn(yc.shape, dt)
  yd:backward(gy:to(dt):to(DEV))
  yc:backward(gy)
  close(xd.grad, xc.grad, tol, label .. ": input gradient")
end

local POOL_CASES = {
  {x={2, 3, 7, 9}, o={kernel=2}},                                  -- non-overlapping, odd sizes
  {x={1, 2, 9, 8}, o={kernel=3, stride=2, padding=1}},             -- overlapping windows, padding
  {x={2, 2, 6, 5}, o={kernel={3, 2}, stride={1, 2}, padding={1, 1}}},
  {x={1, 3, 5, 5}, o={kernel=5, stride=1}},
  {x={3, 1, 8, 8}, o={kernel=4, stride=3, padding=2}},
  {x={1, 1, 1, 1}, o={kernel=1}},
}

test("max_pool2d on cuda: values, indices and gradients as on the CPU", function()
  need_dev()
  sg.manual_seed(41)
  for k, c in ipairs(POOL_CASES) do
    for _, dt in ipairs({"f32", "f64"}) do
      pool_case("max case " .. k .. " " .. dt, randn(c.x, "f32"), function(x) return F.max_pool2d(x, c.o) end, dt)
    end
  end
  -- ties: the first maximum of the window, as the CPU
  local flat = sg.zeros({1, 1, 6, 6}, "f64")
  pool_case("max ties", flat, function(x) return F.max_pool2d(x, {kernel=3, stride=2, padding=1}) end)
  -- non-contiguous input
  local base = randn({2, 3, 8, 7}, "f32")
  local _, ic = F.max_pool2d(base:transpose(3, 4), {kernel=3, stride=2})
  local _, id = F.max_pool2d(base:to("f32"):to(DEV):transpose(3, 4), {kernel=3, stride=2})
  check.eq((id:cpu() - ic):abs():amax():item(), 0, "transposed input indices")
  -- values only, outside autograd: the device computes no positions for the caller
  local vd = sg.no_grad(function() return F.max_pool2d(base:to(DEV), {kernel=3, stride=2, indices=false}) end)
  on_dev(vd, "values only")
  close(vd, (F.max_pool2d(base, {kernel=3, stride=2})), 0, "values only")
end)

test("max_pool2d on cuda picks a NaN like the CPU", function()
  need_dev()
  local x = sg.randn({1, 1, 4, 4}, "f64")
  x = x:view({16})
  local vals = x:totable()
  vals[6] = 0 / 0
  local xn = sg.tensor(vals, "f64"):view({1, 1, 4, 4})
  local _, ic = F.max_pool2d(xn, {kernel=2, stride=1})
  local yd, id = F.max_pool2d(xn:to("f32"):to(DEV), {kernel=2, stride=1})
  check.eq((id:cpu() - ic):abs():amax():item(), 0, "indices with a NaN")
  local y = yd:cpu():to("f64"):view({9}):totable()
  check.truthy(y[1] ~= y[1], "the NaN is the maximum of its windows")
end)

test("max_pool2d on cuda in 16 bits", function()
  need_cuda()
  sg.manual_seed(42)
  for _, dt in ipairs({"bf16", "f16"}) do
    pool_case("max " .. dt, randn({2, 3, 9, 8}, dt), function(x) return F.max_pool2d(x, {kernel=3, stride=2, padding=1}) end,
              dt, 1e-2)
  end
end)

test("max_unpool2d on cuda: scatter by the pooling indices, last repeat wins, gather backward", function()
  need_dev()
  sg.manual_seed(43)
  for k, c in ipairs({{x={2, 3, 7, 9}, o={kernel=2}}, {x={1, 2, 9, 8}, o={kernel=3, stride=2, padding=1}}}) do
    local x64 = randn(c.x, "f32")
    local v, idx = F.max_pool2d(x64, c.o)
    local size = {c.x[3], c.x[4]}
    -- other values than the pooled ones, so repeated indices (overlapping windows) show which one wins
    local u64 = randn(v.shape, "f32")
    pool_case("unpool case " .. k, u64, function(u)
      local i = u.device == "cpu" and idx or idx:to(DEV)
      return F.max_unpool2d(u, i, {size = size})
    end)
  end
  check.errors(function()
    local idx = sg.tensor({0, 1, 2, 99}, "i64"):view({1, 1, 2, 2})
    return F.max_unpool2d(sg.randn({1, 1, 2, 2}):to(DEV), idx:to(DEV), {size = {4, 4}})
  end, "out of range")
  if DEV == "cuda" then
    check.errors(function()
      return F.max_unpool2d(sg.randn({1, 1, 2, 2}):cuda(), sg.zeros({1, 1, 2, 2}, "i64"), {size = {4, 4}})
    end, "indices must be a cuda i64")
  end
end)

test("avg_pool2d and adaptive_avg_pool2d on cuda match the CPU", function()
  need_dev()
  sg.manual_seed(44)
  for k, c in ipairs(POOL_CASES) do
    for _, cip in ipairs({true, false}) do
      local o = copy(c.o)
      o.count_include_pad = cip
      pool_case("avg case " .. k .. (cip and " incl" or " excl"), randn(c.x, "f32"),
                function(x) return F.avg_pool2d(x, o) end)
    end
  end
  local ADAPTIVE = {
    {x={1, 2, 7, 5}, o={3, 4}}, {x={2, 3, 9, 9}, o={1, 1}}, {x={1, 2, 5, 6}, o={5, 6}}, {x={1, 1, 4, 4}, o={8, 7}},
    {x={2, 4, 32, 40}, o={1, 1}}, {x={1, 3, 64, 64}, o={2, 3}}, {x={1, 2, 13, 11}, o={4, 3}},
  }
  for k, c in ipairs(ADAPTIVE) do
    pool_case("adaptive case " .. k, randn(c.x, "f32"), function(x) return F.adaptive_avg_pool2d(x, c.o) end)
    pool_case("adaptive case " .. k .. " f64", randn(c.x), function(x) return F.adaptive_avg_pool2d(x, c.o) end,
              "f64", 1e-10)
  end
  -- a non-contiguous input
  local base = randn({2, 3, 8, 6}, "f32")
  close(F.avg_pool2d(base:to("f32"):to(DEV):transpose(3, 4), {kernel=3, stride=2, padding=1}),
        F.avg_pool2d(base:transpose(3, 4), {kernel=3, stride=2, padding=1}), 1e-5, "transposed input")
end)

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

-- ------------------------------------------------------------------ upsampling
test("upsample on cuda: nearest and bilinear (both corner rules), sizes and scales, forward and backward", function()
  need_dev()
  sg.manual_seed(71)
  local CASES = {
    {x={2, 3, 4, 5}, o={scale=2}},
    {x={1, 2, 4, 5}, o={size={7, 9}}},
    {x={1, 2, 6, 4}, o={scale=1.5}},
    {x={1, 2, 7, 5}, o={size={3, 2}}},
    {x={2, 1, 5, 5}, o={size={5, 5}}},
    {x={1, 3, 5, 7}, o={scale={0.6, 1.7}}},
    {x={1, 1, 1, 1}, o={size={3, 4}}},
    {x={1, 2, 16, 12}, o={scale=4}},
  }
  for k, c in ipairs(CASES) do
    for _, mode in ipairs({"nearest", "bilinear"}) do
      for _, align in ipairs(mode == "bilinear" and {false, true} or {false}) do
        local o = copy(c.o)
        o.mode, o.align_corners = mode, align
        local label = "case " .. k .. " " .. mode .. (align and " align_corners" or "")
        pool_case(label, randn(c.x, "f32"), function(x) return F.upsample(x, o) end)
        pool_case(label .. " f64", randn(c.x), function(x) return F.upsample(x, o) end, "f64", 1e-10)
      end
    end
  end
end)

test("upsample on cuda in 16 bits", function()
  need_cuda()
  sg.manual_seed(72)
  for _, dt in ipairs({"bf16", "f16"}) do
    pool_case("bilinear " .. dt, randn({2, 3, 5, 6}, dt), function(x) return F.upsample(x, {scale=2, mode="bilinear"}) end,
              dt, 2e-2)
    pool_case("nearest " .. dt, randn({2, 3, 5, 6}, dt), function(x) return F.upsample(x, {size={7, 13}}) end, dt, 2e-2)
  end
end)

-- ------------------------------------------------------------------ determinism of the own kernels
test("pooling, norm and upsampling backwards on cuda repeat bit for bit", function()
  need_dev()
  sg.manual_seed(81)
  local x64 = sg.randn({4, 8, 33, 29}, "f64")
  local function grads(fn)
    local x = x64:to("f32"):to(DEV):requires_grad()
    local y = fn(x)
    y:backward(sg.ones(y.shape, "f64"):to("f32"):to(DEV))
    return x.grad
  end
  local FNS = {
    max_pool = function(x) return (F.max_pool2d(x, {kernel=3, stride=2, padding=1})) end,
    avg_pool = function(x) return F.avg_pool2d(x, {kernel=3, stride=2, padding=1}) end,
    adaptive = function(x) return F.adaptive_avg_pool2d(x, {5, 7}) end,
    batch_norm = function(x) return F.batch_norm(x, nil, nil, nil, nil, {training=true}) end,
    group_norm = function(x) return F.group_norm(x, 4) end,
    bilinear = function(x) return F.upsample(x, {scale=1.7, mode="bilinear"}) end,
  }
  for name, fn in pairs(FNS) do same_bits(grads(fn), grads(fn), name) end
end)

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
