-- matmul / bmm on the GPU against the CPU: values for many shapes (1-D,
-- batched, broadcast, folded, empty), strided and expanded operands, dtypes
-- (f32, f64, bf16, f16 through cuBLAS; integers and the reference path through
-- the plain kernel), gradients, autocast, TF32, errors.
-- Every test skips when no CUDA device is usable.

local function need_cuda()
  if not sg.cuda.is_available() then skip("no CUDA device: " .. tostring(sg.cuda.why_unavailable())) end
end
local function host(t) return t:detach():cpu() end
local function dev(t) return t:detach():cuda() end
-- same shape, dtype and bytes
local function same_bits(got, want, msg)
  got, want = host(got), host(want)
  check.eq(got.shape, want.shape, (msg or "") .. " shape")
  check.eq(got.dtype, want.dtype, (msg or "") .. " dtype")
  if got:to_bytes() ~= want:to_bytes() then
    local d = (got:to("f64") - want:to("f64")):abs():amax():item()
    error(string.format("%s: the bits differ (largest difference %.3g)", msg or "same_bits", d), 2)
  end
end
local function near(got, want, atol, rtol, msg)
  local g = host(got)
  check.eq(g.device, "cpu")
  check.eq(g.dtype, host(want).dtype, (msg or "") .. " dtype")
  check.near(g, host(want), atol, rtol, msg)
end
local function randn(shape, dt) return sg.randn(shape, dt or "f32") end
local function sz(t) return "[" .. table.concat(t, ",") .. "]" end

-- shape pairs covering every path: plain, 1-D on either side, fold (shared B), per-batch, broadcast batch dims
local CASES = {
  {{3, 4}, {4, 5}}, {{1, 1}, {1, 1}}, {{5}, {5}}, {{4}, {4, 3}}, {{3, 4}, {4}}, {{2, 3, 4}, {4}}, {{4}, {2, 4, 3}},
  {{2, 3, 4}, {4, 5}}, {{2, 3, 4}, {2, 4, 5}}, {{2, 1, 3, 4}, {5, 4, 2}}, {{1, 3, 4}, {2, 4, 5}},
  {{3, 1, 2, 4}, {1, 2, 4, 6}}, {{7, 1, 4}, {1, 4, 1}}, {{2, 2, 2, 3, 4}, {2, 1, 2, 4, 3}}, {{65, 130}, {130, 97}},
  {{4, 33, 70}, {70, 40}}, {{6, 17, 9}, {6, 9, 31}},
}

test("f32 products match the CPU on every shape path", function()
  need_cuda()
  sg.manual_seed(101)
  for _, c in ipairs(CASES) do
    local a, b = randn(c[1]), randn(c[2])
    local want = sg.matmul(a, b)
    local got = sg.matmul(dev(a), dev(b))
    check.eq(got.device, "cuda")
    check.eq(got.shape, want.shape, sz(c[1]) .. " x " .. sz(c[2]))
    near(got, want, 2e-4, 1e-4, sz(c[1]) .. " x " .. sz(c[2]))
  end
end)

test("f64 products match the CPU closely", function()
  need_cuda()
  sg.manual_seed(102)
  for _, c in ipairs(CASES) do
    local a, b = randn(c[1], "f64"), randn(c[2], "f64")
    near(sg.matmul(dev(a), dev(b)), sg.matmul(a, b), 1e-12, 1e-12, sz(c[1]) .. " x " .. sz(c[2]))
  end
end)

test("transposed, sliced, expanded and permuted operands", function()
  need_cuda()
  sg.manual_seed(103)
  -- fa/fb build a view; the same view is taken of the CPU tensor and of its GPU copy
  local function views(a, fa, b, fb, msg)
    near(sg.matmul(fa(dev(a)), fb(dev(b))), sg.matmul(fa(a), fb(b)), 2e-4, 1e-4, msg)
  end
  local function id(t) return t end
  local function tr(t) return t:transpose(-2, -1) end
  local A, B = randn{6, 5}, randn{5, 7}
  views(randn{5, 6}, tr, B, id, "a column-major (op T)")
  views(A, id, randn{7, 5}, tr, "b column-major (op T)")
  views(randn{5, 6}, tr, randn{7, 5}, tr, "both column-major")
  views(A, function(t) return t:narrow(2, 2, 3) end, B, function(t) return t:narrow(1, 1, 3) end,
    "narrowed k: leading dimension larger than k")
  views(randn{11, 5}, function(t) return t:slice(1, 1, 11, 2) end, B, id, "every other row")
  views(A, id, randn{5, 13}, function(t) return t:slice(2, 1, 13, 2) end, "every other column (made contiguous)")
  views(randn{4, 5, 6}, tr, randn{4, 5, 7}, id, "batched column-major a")
  views(A, function(t) return t:unsqueeze(1):expand(4, 6, 5) end, randn{4, 5, 7}, id, "expanded a (batch stride 0)")
  views(randn{4, 6, 5}, id, B, function(t) return t:unsqueeze(1):expand(4, 5, 7) end, "expanded b (folded)")
  views(randn{3, 4, 6, 5}, function(t) return t:permute{2, 1, 3, 4} end, randn{4, 3, 5, 2}, id,
    "permuted batch dims (a loop of strided calls)")
  views(randn{2, 3, 4, 6, 5}, function(t) return t:permute{1, 3, 2, 4, 5} end, randn{2, 4, 3, 5, 2}, id,
    "three batch dims, two mergeable")
  views(A, id, randn{10}, function(t) return t:slice(1, 1, 10, 2) end, "strided vector b")
  views(randn{12}, function(t) return t:slice(1, 1, 12, 2) end, randn{6, 3}, id, "strided vector a")
  views(randn{6, 1}, id, randn{1, 7}, id, "outer product (k = 1)")
end)

test("empty operands give empty or zero results", function()
  need_cuda()
  local z = sg.matmul(dev(sg.ones(3, 0)), dev(sg.ones(0, 4)))
  check.eq(z.shape, {3, 4})
  same_bits(z, sg.zeros(3, 4))
  check.eq(sg.matmul(dev(sg.ones(0, 2)), dev(sg.ones(2, 4))).shape, {0, 4})
  check.eq(sg.matmul(dev(sg.ones(2, 0, 3)), dev(sg.ones(3, 4))).shape, {2, 0, 4})
  same_bits(sg.matmul(dev(sg.ones(2, 3, 0, "f64")), dev(sg.ones(2, 0, 5, "f64"))), sg.zeros(2, 3, 5, "f64"))
end)

test("bf16 and f16 through cuBLAS accumulate in f32 and round once", function()
  need_cuda()
  sg.manual_seed(104)
  for _, dt in ipairs{"bf16", "f16"} do
    for _, c in ipairs{{{8, 16}, {16, 8}}, {{3, 5, 40}, {40, 7}}, {{2, 9, 33}, {2, 33, 12}}, {{64, 64}, {64, 64}}} do
      local a, b = randn(c[1]):to(dt), randn(c[2]):to(dt)
      local got = sg.matmul(dev(a), dev(b))
      check.eq(got.dtype, dt)
      -- the CPU reference sums in double and rounds once; f32 accumulation differs by far less than one 16-bit ulp
      local ulp = dt == "bf16" and 2 ^ -7 or 2 ^ -10
      near(got:to("f32"), sg.matmul(a, b):to("f32"), 1e-3, ulp, dt .. " " .. sz(c[1]) .. " x " .. sz(c[2]))
    end
  end
end)

test("the reference path gives the CPU reference loop's bits for every dtype", function()
  need_cuda()
  sg.manual_seed(105)
  for _, dt in ipairs{"f32", "f64", "bf16", "f16"} do
    for _, c in ipairs{{{3, 4}, {4, 5}}, {{2, 3, 7}, {7}}, {{2, 1, 3, 4}, {5, 4, 2}}, {{9}, {9}}} do
      local a, b = randn(c[1]):to(dt), randn(c[2]):to(dt)
      same_bits(sg._matmul_reference(dev(a), dev(b)), sg._matmul_reference(a, b), dt .. " " .. sz(c[1]))
    end
  end
  local a = randn{5, 6}
  same_bits(sg._matmul_reference(dev(a):transpose(1, 2), dev(a)), sg._matmul_reference(a:transpose(1, 2), a),
    "strided operands")
end)

test("integer products are exact and wrap like the CPU", function()
  need_cuda()
  sg.manual_seed(106)
  for _, dt in ipairs{"i64", "i32", "u8"} do
    local a, b = sg.randint(-50, 50, {3, 4, 5}):to(dt), sg.randint(-50, 50, {5, 6}):to(dt)
    local got = sg.matmul(dev(a), dev(b))
    check.eq(got.dtype, dt)
    same_bits(got, sg.matmul(a, b), dt)
    same_bits(sg.matmul(dev(a):transpose(2, 3):contiguous():transpose(2, 3), dev(b)), sg.matmul(a, b), dt .. " strided")
  end
  -- overflow wraps (unsigned 64-bit accumulation)
  local big, four = sg.full(1 << 62, {2, 2}, "i64"), sg.full(4, {2, 2}, "i64")
  same_bits(sg.matmul(dev(big), dev(four)), sg.matmul(big, four), "wrap")
  -- mixed int/float promotes
  local r = sg.matmul(dev(sg.arange(6):view(2, 3)), dev(sg.ones(3, 2)))
  check.eq(r.dtype, "f32")
  same_bits(r, sg.matmul(sg.arange(6):view(2, 3), sg.ones(3, 2)))
end)

test("bmm on the GPU", function()
  need_cuda()
  sg.manual_seed(107)
  local a, b = randn{5, 7, 9}, randn{5, 9, 4}
  near(sg.bmm(dev(a), dev(b)), sg.bmm(a, b), 2e-4, 1e-4, "bmm")
  near(sg.bmm(dev(a):transpose(2, 3):contiguous():transpose(2, 3), dev(b)), sg.bmm(a, b), 2e-4, 1e-4, "strided bmm")
  check.errors(function() return sg.bmm(dev(a), dev(randn{4, 9, 4})) end, "bmm: batch sizes differ")
end)

test("gradients on the GPU match the CPU", function()
  need_cuda()
  sg.manual_seed(108)
  for _, c in ipairs(CASES) do
    for _, dt in ipairs{"f32", "f64"} do
      local a, b = randn(c[1], dt):requires_grad(), randn(c[2], dt):requires_grad()
      local y = sg.matmul(a, b)
      local gy = sg.randn(y.shape, dt)
      y:backward(gy)
      local ga, gb = dev(a):requires_grad(), dev(b):requires_grad()
      sg.matmul(ga, gb):backward(dev(gy))
      check.eq(ga.grad.device, "cuda")
      local tol = dt == "f64" and 1e-11 or 2e-4
      local msg = dt .. " " .. sz(c[1]) .. " x " .. sz(c[2])
      near(ga.grad, a.grad, tol, tol, msg .. " grad a")
      near(gb.grad, b.grad, tol, tol, msg .. " grad b")
    end
  end
end)

test("gradients reach strided leaves and bf16 leaves", function()
  need_cuda()
  sg.manual_seed(109)
  local a, b = randn{4, 6}:requires_grad(), randn{4, 5}:requires_grad()
  local y = sg.matmul(a:transpose(1, 2), b)
  local gy = sg.randn(y.shape)
  y:backward(gy)
  local ga, gb = dev(a):requires_grad(), dev(b):requires_grad()
  sg.matmul(ga:transpose(1, 2), gb):backward(dev(gy))
  near(ga.grad, a.grad, 2e-4, 1e-4, "grad a")
  near(gb.grad, b.grad, 2e-4, 1e-4, "grad b")
  local h1, h2 = randn({6, 8}, "bf16"), randn({8, 3}, "bf16")
  local d1, d2 = dev(h1):requires_grad(), dev(h2):requires_grad()
  sg.matmul(d1, d2):backward(dev(sg.ones({6, 3}, "bf16")))
  check.eq(d1.grad.dtype, "bf16")
  local c1, c2 = h1:clone():requires_grad(), h2:clone():requires_grad()
  sg.matmul(c1, c2):backward(sg.ones({6, 3}, "bf16"))
  near(d1.grad:to("f32"), c1.grad:to("f32"), 1e-2, 2 ^ -7, "bf16 grad")
end)

test("autocast runs f32 products in bf16/f16 and returns f32 gradients", function()
  need_cuda()
  sg.manual_seed(110)
  for _, dt in ipairs{"bf16", "f16"} do
    local a, b = randn{3, 16, 24}, randn{24, 8}
    local ga, gb = dev(a):requires_grad(), dev(b):requires_grad()
    local y = sg.amp.autocast({dtype = dt, device = "cuda"}, function() return sg.matmul(ga, gb) end)
    check.eq(y.dtype, dt, "the product runs and returns in the autocast type")
    -- the same product with the casts done by hand on the CPU (double accumulation there)
    local want = sg.matmul(a:to(dt), b:to(dt))
    near(y:to("f32"), want:to("f32"), 1e-2, dt == "bf16" and 2 ^ -7 or 2 ^ -10, dt .. " values")
    y:backward(dev(sg.ones(y.shape, dt)))
    check.eq(ga.grad.dtype, "f32", "gradients reach the f32 leaves in f32")
    check.eq(gb.grad.dtype, "f32")
    local ca, cb = a:to(dt):requires_grad(), b:to(dt):requires_grad()
    sg.matmul(ca, cb):backward(sg.ones(y.shape, dt))
    near(ga.grad, ca.grad:to("f32"), 5e-2, 2e-2, dt .. " grad a")
    near(gb.grad, cb.grad:to("f32"), 5e-2, 2e-2, dt .. " grad b")
    -- outside the region f32 stays f32
    check.eq(sg.matmul(ga, gb).dtype, "f32")
  end
end)

test("allow_tf32 switches f32 products to TF32 and back", function()
  need_cuda()
  sg.manual_seed(111)
  check.eq(sg.cuda.allow_tf32(), false, "off by default")
  local a, b = randn{64, 256}, randn{256, 32}
  local want = sg.matmul(a, b)
  local ok, err = pcall(function()
    check.eq(sg.cuda.allow_tf32(true), true)
    near(sg.matmul(dev(a), dev(b)), want, 0.1, 1e-2, "tf32 (about 10 mantissa bits)")
  end)
  sg.cuda.allow_tf32(false)
  if not ok then error(err, 0) end
  check.eq(sg.cuda.allow_tf32(), false)
  near(sg.matmul(dev(a), dev(b)), want, 1e-3, 1e-4, "f32 again")
end)

test("operands on different devices are an error naming both", function()
  need_cuda()
  local a = sg.ones(2, 3)
  check.errors(function() return sg.matmul(dev(a), sg.ones(3, 2)) end, "matmul: expected all tensors on one device")
  check.errors(function() return sg.bmm(sg.ones(1, 2, 3), dev(sg.ones(1, 3, 2))) end, "bmm: expected all tensors on one device")
  check.errors(function() return sg.matmul(dev(a), dev(sg.ones(4, 2))) end, "matmul: cannot multiply [2,3] by [4,2]")
end)
