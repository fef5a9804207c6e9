-- Matrix products (matmul with 1-D operands and broadcast batch dims, bmm): every backend against the
-- reference's plain loops on random shapes, dtypes (f32, f64 through BLAS; f16, bf16 and integers through the
-- plain loops on the cpu) and operand layouts (row-major, transposed, sliced so BLAS cannot read it, broadcast),
-- forward and input gradients; empty products; the reference's gradients against finite differences.
local B = require "tests.ops.backends"

local function make(shape, dt)
  if dt == "f32" or dt == "f64" or dt == "f16" or dt == "bf16" then return sg.randn(shape, dt) end
  if dt == "u8" then return sg.randint(0, 4, shape, "i32"):to("u8") end
  return sg.randint(-4, 5, shape, dt)
end

-- an operand of `shape` in a layout: "plain"; "transposed" (its last two dims stored the other way round:
-- column-major matrices); "strided" (every other column of a wider tensor: no unit stride, copied for BLAS)
local function operand(shape, dt, how)
  local nd = #shape
  if how == "transposed" and nd >= 2 then
    local s = {table.unpack(shape)}
    s[nd - 1], s[nd] = shape[nd], shape[nd - 1]
    return make(s, dt):transpose(nd - 1, nd)
  elseif how == "strided" then
    local s = {table.unpack(shape)}
    s[nd] = 2 * shape[nd]
    return make(s, dt):slice(nd, 1, s[nd], 2)
  end
  return make(shape, dt)
end

local SHAPES = { -- a, b
  {{5}, {5}}, {{4}, {4, 3}}, {{3, 4}, {4}}, {{3, 4}, {4, 6}}, {{1, 7}, {7, 1}},
  {{2, 3, 4}, {4, 5}},         -- one shared B: folded into one [6,4] x [4,5] product
  {{2, 3, 4}, {2, 4, 5}}, {{4}, {2, 4, 3}}, {{2, 3, 4}, {4}},
  {{2, 1, 3, 4}, {5, 4, 2}},   -- broadcast batch dims
  {{1, 3, 4}, {2, 2, 4, 3}}, {{3, 2, 8, 16}, {16, 9}},
}

local function tol(dt, cuda)
  if dt == "f16" or dt == "bf16" then return {atol = 3e-2, rtol = 3e-2} end
  if cuda then return {atol = 1e-4, rtol = 1e-4} end
  return {atol = 1e-5, rtol = 1e-5}
end

local function name(sa, sb, dt, ha, hb)
  return string.format("{%s} %s x {%s} %s %s", table.concat(sa, ","), ha, table.concat(sb, ","), hb, dt)
end

-- the cpu (exactly where it runs the same plain loops as the reference) and every other backend
local function compare(what, fn, inputs, dt)
  local exact = not (dt == "f32" or dt == "f64")
  B.compare(what, fn, inputs, {backends = {"cpu"}, exact = exact, atol = tol(dt).atol, rtol = tol(dt).rtol})
  for _, b in ipairs(B.list()) do
    if b ~= "cpu" then
      local t = tol(dt, true)
      B.compare(what, fn, inputs, {backends = {b}, exact = dt:sub(1, 1) ~= "f", atol = t.atol, rtol = t.rtol})
    end
  end
end

local mm = function(x, y) return sg.matmul(x, y) end

test("matmul: every backend matches the reference (shapes, dtypes, layouts)", function()
  sg.manual_seed(51)
  for _, c in ipairs(SHAPES) do
    for _, dt in ipairs{"f32", "f64", "f16", "bf16", "i32", "i64", "u8"} do
      for _, ha in ipairs{"plain", "transposed", "strided"} do
        local hb = ({plain = "transposed", transposed = "strided", strided = "plain"})[ha]
        local a, b = operand(c[1], dt, ha), operand(c[2], dt, hb)
        compare("matmul " .. name(c[1], c[2], dt, ha, hb), mm, {a, b}, dt)
      end
    end
  end
end)

test("matmul: random shapes and broadcasts, bmm, mixed dtypes", function()
  sg.manual_seed(52)
  math.randomseed(52)
  local r = math.random
  local LAY = {"plain", "transposed", "strided"}
  for it = 1, 30 do
    local n, k, m = r(1, 9), r(1, 9), r(1, 9)
    local bat = {}
    for d = 1, r(0, 2) do bat[d] = r(1, 3) end
    local sa, sb = {}, {}
    for d, s in ipairs(bat) do sa[d] = r(2) == 1 and 1 or s; sb[d] = r(3) == 1 and 1 or s end
    if r(4) == 1 then sb = {} end -- a shared B
    sa[#sa + 1], sa[#sa + 2] = n, k
    sb[#sb + 1], sb[#sb + 2] = k, m
    local dt = ({"f32", "f64", "i64"})[r(3)]
    local ha, hb = LAY[r(3)], LAY[r(3)]
    compare("random " .. name(sa, sb, dt, ha, hb), mm, {operand(sa, dt, ha), operand(sb, dt, hb)}, dt)
  end
  for _, dt in ipairs{"f32", "f64", "i32"} do
    compare("bmm " .. dt, function(x, y) return sg.bmm(x, y) end,
      {operand({3, 4, 5}, dt, "transposed"), operand({3, 5, 2}, dt, "plain")}, dt)
  end
  -- mixed dtypes promote first
  compare("f32 x i32", mm, {sg.randn{3, 4}, make({4, 2}, "i32")}, "f32")
  compare("i32 x i64", mm, {make({3, 4}, "i32"), make({4, 2}, "i64")}, "i64")
end)

test("matmul: the forced plain path (sg._matmul_reference) is the reference's bits on every backend", function()
  sg.manual_seed(53)
  for _, dt in ipairs{"f32", "f64"} do
    local a, b = operand({2, 5, 6}, dt, "transposed"), operand({6, 3}, dt, "strided")
    B.compare("plain path " .. dt, function(x, y) return sg._matmul_reference(x, y) end, {a, b},
      {exact = true, backends = {"cpu"}})
  end
end)

test("matmul: empty products", function()
  for _, dt in ipairs{"f32", "f64", "i64"} do
    local cases = {{{3, 0}, {0, 4}}, {{0, 3}, {3, 4}}, {{3, 2}, {2, 0}}, {{0, 2, 3}, {3, 4}}, {{2, 3, 0}, {2, 0, 5}},
      {{0}, {0}}}
    for _, c in ipairs(cases) do
      compare("empty " .. name(c[1], c[2], dt, "plain", "plain"), mm, {make(c[1], dt), make(c[2], dt)}, dt)
    end
  end
  check.eq(sg.matmul(sg.ones(3, 0), sg.ones(0, 2)):totable(), {{0, 0}, {0, 0}, {0, 0}})
end)

test("matmul: reference gradients against finite differences (f64)", function()
  sg.manual_seed(54)
  local function g(a, b, what)
    B.gradcheck(what, mm, {sg.randn(a, "f64"), sg.randn(b, "f64")})
  end
  g({3, 4}, {4, 2}, "2-d")
  g({4}, {4, 3}, "1-d a")
  g({3, 4}, {4}, "1-d b")
  g({2, 3, 4}, {4, 5}, "folded")
  g({2, 1, 3, 4}, {3, 4, 2}, "broadcast batch")
  g({4}, {2, 4, 3}, "1-d a, batched b")
  B.gradcheck("bmm", function(x, y) return sg.bmm(x, y) end, {sg.randn({2, 3, 4}, "f64"), sg.randn({2, 4, 2}, "f64")})
end)

-- ---------------------------------------------------------------- on the GPU (was tests/test_cuda_linalg.lua)
do
  -- matmul / bmm on the GPU against the CPU: values for many shapes (1-D,
  -- batched, broadcast, folded, empty), strided and expanded operands, dtypes
  -- (f32, f64, bf16, f16 through cuBLAS; integers and the reference path through
  -- the plain kernel), gradients, autocast, TF32, errors.
  -- Every test skips when no CUDA device is usable.

  local CC = require("tests.cuda_compare")(check, skip)
  local need_cuda, host, dev, same_bits = CC.need_cuda, CC.host, CC.dev, CC.same_bits
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
end

-- ---------------------------------------------------------------- values, broadcasting and errors (was tests/test_linalg.lua)
do
  -- matmul / bmm: values, shapes, dtypes, strided operands, errors, gradients.

  -- An independent reference built from broadcasting mul + sum (no matmul code):
  -- works in f64 and follows matmul's 1-D rules.
  local function naive(a, b)
    local a64, b64 = a:to("f64"), b:to("f64")
    local a1, b1 = a64:dim() == 1, b64:dim() == 1
    if a1 then a64 = a64:unsqueeze(1) end
    if b1 then b64 = b64:unsqueeze(2) end
    local r = (a64:unsqueeze(-1) * b64:unsqueeze(-3)):sum(-2) -- [..,n,k,1]*[..,1,k,m] -> [..,n,m]
    if a1 then r = r:squeeze(-2) end
    if b1 then r = r:squeeze(-1) end
    return r
  end

  local function ref_path()
    if not sg._matmul_reference then skip("sg._matmul_reference is not bound") end
    return sg._matmul_reference
  end

  local function randn(shape, dt) return sg.randn(shape, dt or "f32") end

  test("2-D x 2-D by hand", function()
    local a = sg.arange(6):view(2, 3):float()
    local b = sg.arange(12):view(3, 4):float()
    local r = sg.matmul(a, b)
    check.eq(r.shape, {2, 4})
    check.eq(r.dtype, "f32")
    check.near(r, {{20, 23, 26, 29}, {56, 68, 80, 92}}, 0, 0)
    check.near(a:matmul(b), r, 0, 0, "method form")
    check.near(a:transpose():matmul(a), {{9, 12, 15}, {12, 17, 22}, {15, 22, 29}}, 0, 0)
  end)

  test("1-D cases follow PyTorch", function()
    local v = sg.arange(3):float()
    local d = sg.matmul(v, v)
    check.eq(d:dim(), 0, "dot gives a 0-dim tensor")
    check.eq(d:item(), 5)
    local a = sg.arange(12):view(3, 4):float()
    local w = sg.arange(4):float() - 1
    local mv = sg.matmul(a, w)
    check.eq(mv.shape, {3})
    check.near(mv, {8, 16, 24}, 0, 0)
    local vm = sg.matmul(w, a:transpose())
    check.eq(vm.shape, {3})
    check.near(vm, {8, 16, 24}, 0, 0)
    local x = sg.arange(24):view(2, 3, 4):float()
    check.near(sg.matmul(x, w), {{8, 16, 24}, {32, 40, 48}}, 0, 0)
    local y = sg.arange(24):view(2, 4, 3):float()
    check.near(sg.matmul(w, y), {{24, 26, 28}, {48, 50, 52}}, 0, 0)
    check.eq(sg.matmul(w, y).shape, {2, 3})
  end)

  test("batched matmul broadcasts batch dims (golden from PyTorch)", function()
    local a = sg.arange(24):view(2, 1, 3, 4):double()
    local b = sg.arange(40):view(5, 4, 2):double() - 10
    local r = sg.matmul(a, b)
    check.eq(r.shape, {2, 5, 3, 2})
    check.eq(r:sum():item(), 26820)
    check.eq((r * r):sum():item(), 38059960)
    check.near(r[2][4], {{928, 982}, {1200, 1270}, {1472, 1558}}, 0, 0)
  end)

  test("result shapes", function()
    local cases = {
      {{3}, {3}, {}}, {{2, 3}, {3}, {2}}, {{3}, {3, 4}, {4}}, {{2, 3}, {3, 4}, {2, 4}},
      {{5, 2, 3}, {3}, {5, 2}}, {{3}, {5, 3, 4}, {5, 4}}, {{5, 2, 3}, {3, 4}, {5, 2, 4}},
      {{2, 3}, {5, 3, 4}, {5, 2, 4}}, {{2, 1, 2, 3}, {5, 3, 4}, {2, 5, 2, 4}},
      {{1, 2, 3}, {6, 3, 4}, {6, 2, 4}}, {{7, 1, 1, 2, 3}, {1, 4, 3, 1}, {7, 1, 4, 2, 1}},
    }
    for i, c in ipairs(cases) do
      check.eq(sg.matmul(sg.ones(c[1]), sg.ones(c[2])).shape, c[3], "case " .. i)
    end
  end)

  test("random shapes match the broadcast-sum reference (f32 and f64)", function()
    sg.manual_seed(7)
    local cases = {
      {{4}, {4}}, {{3, 5}, {5}}, {{5}, {5, 2}}, {{3, 5}, {5, 2}}, {{17, 33}, {33, 9}},
      {{2, 3, 5}, {5, 4}}, {{3, 5}, {2, 5, 4}}, {{2, 3, 5}, {2, 5, 4}}, {{2, 1, 3, 5}, {4, 5, 2}},
      {{3, 1, 2, 5}, {1, 2, 5, 3}}, {{2, 3, 5}, {5}}, {{5}, {2, 5, 3}}, {{1, 1}, {1, 1}}, {{6, 1}, {1, 7}},
    }
    for _, dt in ipairs{"f32", "f64"} do
      local tol = dt == "f32" and 1e-4 or 1e-12
      for i, c in ipairs(cases) do
        local a, b = randn(c[1], dt), randn(c[2], dt)
        local r = sg.matmul(a, b)
        check.eq(r.dtype, dt)
        check.near(r, naive(a, b), tol, tol, dt .. " case " .. i)
      end
    end
  end)

  test("transposed, sliced and expanded operands", function()
    sg.manual_seed(11)
    for _, dt in ipairs{"f32", "f64"} do
      local tol = dt == "f32" and 1e-4 or 1e-12
      -- column-major operands (BLAS reads them with Trans)
      local at = randn({6, 4}, dt):transpose() -- [4,6], strides {1,4}
      local bt = randn({3, 6}, dt):transpose() -- [6,3]
      check.truthy(not at:is_contiguous())
      check.near(sg.matmul(at, bt), naive(at, bt), tol, tol, dt .. " both transposed")
      check.near(sg.matmul(at, bt:contiguous()), naive(at, bt), tol, tol, dt .. " a transposed")
      -- batched transposes
      local xa = randn({2, 5, 4}, dt):transpose(2, 3) -- [2,4,5]
      local xb = randn({2, 3, 5}, dt):transpose(2, 3) -- [2,5,3]
      check.near(sg.matmul(xa, xb), naive(xa, xb), tol, tol, dt .. " batched transposes")
      check.near(sg.bmm(xa, xb), naive(xa, xb), tol, tol, dt .. " bmm transposes")
      -- permuted batch dim (batch stride smaller than the matrix strides)
      local pa = randn({4, 3, 5}, dt):permute(2, 1, 3) -- [3,4,5]
      local w = randn({5, 2}, dt)
      check.near(sg.matmul(pa, w), naive(pa, w), tol, tol, dt .. " permuted batch, 2-D right")
      -- stepped slices: no unit stride anywhere -> copied first
      local big = randn({8, 10}, dt)
      local sa = big:slice(1, 1, -1, 2):slice(2, 1, -1, 2) -- [4,5] strides {20,2}
      local sb = randn({10, 6}, dt):slice(1, 1, -1, 2) -- [5,6] strides {12,1}
      check.near(sg.matmul(sa, sb), naive(sa, sb), tol, tol, dt .. " stepped slices")
      -- 1-D operands with a stride
      local v = randn({10}, dt):slice(1, 1, -1, 2) -- [5] stride 2
      check.near(sg.matmul(sa, v), naive(sa, v), tol, tol, dt .. " strided vector right")
      local u = randn({8}, dt):slice(1, 1, -1, 2) -- [4] stride 2
      check.near(sg.matmul(u, sa), naive(u, sa), tol, tol, dt .. " strided vector left")
      check.near(sg.matmul(v, v), naive(v, v), tol, tol, dt .. " strided dot")
      -- expanded operands (stride 0)
      local ea = randn({1, 5}, dt):expand(4, 5)
      local eb = randn({5, 1}, dt):expand(5, 3)
      check.near(sg.matmul(ea, eb), naive(ea, eb), tol, tol, dt .. " expanded")
      local ebat = randn({1, 5, 3}, dt):expand(6, 5, 3)
      local abat = randn({6, 2, 5}, dt)
      check.near(sg.matmul(abat, ebat), naive(abat, ebat), tol, tol, dt .. " expanded batch")
      check.near(sg.bmm(abat, ebat), naive(abat, ebat), tol, tol, dt .. " bmm expanded batch")
      local ones = sg.ones({1}, dt):expand(5)
      check.near(sg.matmul(abat, ones), naive(abat, ones), tol, tol, dt .. " expanded vector")
    end
  end)

  test("folded and per-batch paths agree", function()
    sg.manual_seed(5)
    local x = sg.randn({4, 6, 8}, "f64")
    local w = sg.randn({8, 3}, "f64")
    local folded = sg.matmul(x, w)                                     -- one [24,8]x[8,3] product
    local looped = sg.matmul(x:permute(2, 1, 3):contiguous():permute(2, 1, 3), w) -- not mergeable
    check.near(folded, looped, 1e-12, 1e-12)
    check.near(folded, naive(x, w), 1e-12, 1e-12)
    -- a batch-broadcast right operand that is shared by every batch
    local w3 = sg.randn({1, 8, 3}, "f64")
    check.near(sg.matmul(x, w3), naive(x, w3), 1e-12, 1e-12)
  end)

  test("matches the reference path on random shapes", function()
    local ref = ref_path()
    sg.manual_seed(3)
    for trial = 1, 40 do
      local n, k, m = math.random(1, 9), math.random(1, 9), math.random(1, 9)
      local nb = math.random(0, 2)
      local ash, bsh = {}, {}
      for d = 1, nb do
        local s = math.random(1, 3)
        ash[d] = (math.random() < 0.3) and 1 or s
        bsh[d] = (math.random() < 0.3) and 1 or s
        if ash[d] ~= 1 and bsh[d] ~= 1 then bsh[d] = ash[d] end
      end
      local ad, bd = math.random() < 0.15, math.random() < 0.15 -- 1-D operands
      if ad then ash = {k} else ash[#ash + 1] = n; ash[#ash + 1] = k end
      if bd then bsh = {k} else bsh[#bsh + 1] = k; bsh[#bsh + 1] = m end
      local dt = trial % 2 == 0 and "f64" or "f32"
      local a, b = sg.randn(ash, dt), sg.randn(bsh, dt)
      if not ad and math.random() < 0.5 then a = a:transpose(-1, -2):contiguous():transpose(-1, -2) end
      if not bd and math.random() < 0.5 then b = b:transpose(-1, -2):contiguous():transpose(-1, -2) end
      local tol = dt == "f32" and 1e-4 or 1e-12
      local r = sg.matmul(a, b)
      local rr = ref(a, b)
      check.eq(r.shape, rr.shape, "trial " .. trial)
      check.near(r, rr, tol, tol, "trial " .. trial)
    end
    -- a larger product, where BLAS blocks the computation
    local a, b = sg.randn({65, 130}), sg.randn({130, 33})
    check.near(sg.matmul(a, b), ref(a, b), 1e-3, 1e-4, "65x130x33")
    check.near(sg.matmul(a:double(), b:double()), ref(a:double(), b:double()), 1e-10, 1e-10)
  end)

  test("integer matmul is exact (reference loop, int64 accumulation)", function()
    local a = sg.arange(6):view(2, 3)
    local b = sg.arange(12):view(3, 4)
    local r = sg.matmul(a, b)
    check.eq(r.dtype, "i64")
    check.eq(r:totable(), {{20, 23, 26, 29}, {56, 68, 80, 92}})
    -- exact beyond 2^53, and wrapping on overflow like PyTorch
    local big = sg.tensor({(1 << 40) + 1, 3}, "i64")
    check.eq(sg.matmul(big, sg.tensor({(1 << 20) + 1, 5}, "i64")):item(), ((1 << 40) + 1) * ((1 << 20) + 1) + 15)
    check.eq(sg.matmul(sg.tensor({1 << 62, 3}, "i64"), sg.tensor({4, 5}, "i64")):item(), 15)
    local i32 = sg.matmul(a:to("i32"), b:to("i32"))
    check.eq(i32.dtype, "i32")
    check.eq(i32:totable(), {{20, 23, 26, 29}, {56, 68, 80, 92}})
    local u8 = sg.matmul(sg.tensor({{200, 100}}, "u8"), sg.tensor({{1}, {1}}, "u8"))
    check.eq(u8.dtype, "u8")
    check.eq(u8:item(), 44, "u8 wraps (300 mod 256)")
    -- batched integers against the f64 computation
    sg.manual_seed(9)
    local x, y = sg.randint(-50, 50, {3, 4, 5}), sg.randint(-50, 50, {5, 6})
    check.eq(sg.matmul(x, y):totable(), naive(x, y):to("i64"):totable())
    check.eq(sg.bmm(x, y:unsqueeze(1):expand(3, 5, 6)):totable(), naive(x, y):to("i64"):totable())
  end)

  test("f16 and bf16 accumulate in double and round once", function()
    sg.manual_seed(2)
    for _, dt in ipairs{"f16", "bf16"} do
      local a, b = sg.randn({5, 7}):to(dt), sg.randn({7, 3}):to(dt)
      local r = sg.matmul(a, b)
      check.eq(r.dtype, dt)
      -- products of 16-bit floats and their short sums are exact in f64
      check.eq(r:totable(), naive(a, b):to(dt):totable(), dt)
      local rb = sg.matmul(a:unsqueeze(1):expand(2, 5, 7), b)
      check.eq(rb[2]:totable(), r:totable(), dt .. " batched")
    end
    check.eq(sg.matmul(sg.ones({2, 2}, "f16"), sg.ones({2, 2}, "bf16")).dtype, "f32")
  end)

  test("dtypes promote like elementwise ops", function()
    local a = sg.arange(6):view(2, 3)
    check.eq(sg.matmul(a:float(), sg.ones({3, 2}, "f64")).dtype, "f64")
    check.eq(sg.matmul(a, sg.ones({3, 2}, "f32")).dtype, "f32")
    check.near(sg.matmul(a, sg.ones({3, 2}, "f32")), {{3, 3}, {12, 12}}, 0, 0)
    check.eq(sg.matmul(a:to("i32"), sg.ones({3, 2}, "i64")).dtype, "i64")
    check.eq(sg.matmul(sg.ones({2, 3}, "f16"), sg.ones({3}, "f32")).dtype, "f32")
  end)

  test("reference path handles every dtype", function()
    local ref = ref_path()
    sg.manual_seed(4)
    local a, b = sg.randn({3, 2, 5}), sg.randn({5, 4})
    check.near(ref(a, b), sg.matmul(a, b), 1e-5, 1e-5)
    check.eq(ref(a, b).dtype, "f32")
    check.near(ref(a:double(), b:double()), naive(a, b), 1e-12, 1e-12)
    local ia, ib = sg.randint(-9, 9, {4, 3}), sg.randint(-9, 9, {3, 2})
    check.eq(ref(ia, ib):totable(), sg.matmul(ia, ib):totable())
    check.eq(ref(ia:to("f16"), ib:to("f16")):totable(), sg.matmul(ia:to("f16"), ib:to("f16")):totable())
    check.eq(ref(sg.arange(3), sg.arange(3)):item(), 5)
  end)

  test("empty operands", function()
    check.eq(sg.matmul(sg.ones{0, 3}, sg.ones{3, 4}).shape, {0, 4})
    check.eq(sg.matmul(sg.ones{2, 3}, sg.ones{3, 0}).shape, {2, 0})
    local z = sg.matmul(sg.ones{2, 0}, sg.ones{0, 3})
    check.near(z, {{0, 0, 0}, {0, 0, 0}}, 0, 0, "k = 0 gives zeros")
    check.eq(sg.matmul(sg.ones{0}, sg.ones{0}):item(), 0)
    check.eq(sg.matmul(sg.ones{0, 2, 3}, sg.ones{3, 4}).shape, {0, 2, 4})
    check.eq(sg.matmul(sg.ones({2, 0}, "i64"), sg.ones({0, 3}, "i64")):totable(), {{0, 0, 0}, {0, 0, 0}})
    check.eq(sg.bmm(sg.ones{0, 2, 3}, sg.ones{0, 3, 4}).shape, {0, 2, 4})
  end)

  test("error messages name both shapes", function()
    check.errors(function() return sg.matmul(sg.zeros{4, 3}, sg.zeros{5, 2}) end, "matmul: cannot multiply [4,3] by [5,2]")
    check.errors(function() return sg.matmul(sg.zeros{3}, sg.zeros{4}) end, "cannot multiply [3] by [4]")
    check.errors(function() return sg.matmul(sg.zeros{2, 3}, sg.zeros{4}) end, "cannot multiply [2,3] by [4]")
    check.errors(function() return sg.matmul(sg.zeros{2, 4, 3}, sg.zeros{3, 3, 2}) end, "[2,4,3] by [3,3,2]")
    check.errors(function() return sg.matmul(sg.zeros{}, sg.zeros{3}) end, "at least 1 dim")
    check.errors(function() return sg.matmul(sg.zeros{3}, sg.tensor(2)) end, "at least 1 dim")
    check.errors(function() return sg.matmul(sg.zeros({2, 2}, "bool"), sg.zeros({2, 2}, "bool")) end, "bool")
    check.errors(function() return sg.matmul(sg.zeros{2, 2}, 3) end, "matmul: argument #2 must be a tensor")
    check.errors(function() return sg.bmm(sg.zeros{2, 3}, sg.zeros{3, 2}) end, "bmm: expected two 3-D tensors")
    check.errors(function() return sg.bmm(sg.zeros{2, 4, 3}, sg.zeros{3, 3, 2}) end, "bmm: batch sizes differ")
    check.errors(function() return sg.bmm(sg.zeros{2, 4, 3}, sg.zeros{2, 4, 2}) end, "bmm: cannot multiply [2,4,3] by [2,4,2]")
    check.errors(function() return sg.bmm(sg.zeros{1, 4, 3}, sg.zeros{2, 3, 2}) end, "bmm: batch sizes differ")
  end)

  local function leaf(shape) return sg.randn(shape, "f64"):requires_grad() end

  test("gradcheck: every shape case", function()
    sg.manual_seed(21)
    local cases = {
      {{3, 4}, {4, 2}}, {{4}, {4}}, {{4}, {4, 2}}, {{3, 4}, {4}}, {{2, 3, 4}, {4}}, {{4}, {2, 4, 3}},
      {{2, 3, 4}, {4, 5}}, {{3, 4}, {2, 4, 5}}, {{2, 3, 4}, {2, 4, 5}}, {{2, 1, 3, 4}, {5, 4, 2}},
      {{1, 3, 4}, {2, 4, 2}}, {{2, 3, 4}, {1, 4, 2}}, {{3, 1, 2, 4}, {2, 4, 1}},
    }
    for i, c in ipairs(cases) do
      local ok, msg = pcall(check.grad, sg.matmul, {leaf(c[1]), leaf(c[2])})
      if not ok then error("case " .. i .. ": " .. tostring(msg)) end
    end
    check.grad(sg.bmm, {leaf{2, 3, 4}, leaf{2, 4, 5}})
    check.grad(sg.bmm, {leaf{1, 1, 4}, leaf{1, 4, 1}})
  end)

  test("gradcheck: strided inputs and one-sided gradients", function()
    sg.manual_seed(22)
    check.grad(function(a, b) return sg.matmul(a:transpose(), b:transpose()) end, {leaf{4, 3}, leaf{5, 4}})
    check.grad(function(a, b) return sg.bmm(a:transpose(2, 3), b) end, {leaf{2, 4, 3}, leaf{2, 4, 5}})
    check.grad(function(a, b) return sg.matmul(a:expand(3, 2, 4), b) end, {leaf{1, 2, 4}, leaf{3, 4, 2}})
    check.grad(function(a, b) return sg.matmul(a, b) end, {leaf{3, 4}, sg.randn({4, 2}, "f64")})
    check.grad(function(a, b) return sg.matmul(a, b) end, {sg.randn({2, 3, 4}, "f64"), leaf{4, 2}})
    check.grad(function(a) return sg.matmul(a, a) end, {leaf{3, 3}})
    check.grad(function(a) return sg.matmul(a, a:transpose()) end, {leaf{3, 2}})
  end)

  test("gradients: dtypes, leaves and graph", function()
    sg.manual_seed(23)
    local a = sg.randn{3, 4}:requires_grad()
    local b = sg.randn({4, 2}, "f64"):requires_grad()
    local r = sg.matmul(a, b)
    check.eq(r.dtype, "f64")
    check.eq(r.grad_fn, "matmul")
    r:sum():backward()
    check.eq(a.grad.dtype, "f32")
    check.eq(b.grad.dtype, "f64")
    -- d sum(a@b)/da = ones @ b^T: row sums of b repeated
    local want = sg.ones{3, 2}:double():matmul(b:detach():transpose())
    check.near(a.grad, want, 1e-5, 1e-5)
    check.near(b.grad, a:detach():double():transpose():matmul(sg.ones({3, 2}, "f64")), 1e-5, 1e-5)
    -- integers do not record history
    local i = sg.matmul(sg.arange(4):view(2, 2), sg.arange(4):view(2, 2))
    check.eq(i.grad_fn, nil)
    -- an integer operand next to a float leaf
    local w = sg.randn{2, 3}:requires_grad()
    local y = sg.matmul(sg.arange(4):view(2, 2), w)
    check.eq(y.dtype, "f32")
    y:sum():backward()
    check.near(w.grad, {{2, 2, 2}, {4, 4, 4}}, 0, 0)
    -- no_grad records nothing
    local z = sg.no_grad(function() return sg.matmul(a, b) end)
    check.eq(z.grad_fn, nil)
    check.eq(sg.bmm(a:unsqueeze(1), b:unsqueeze(1)).grad_fn, "bmm")
  end)

  test("matmul with backward leaks nothing", function()
    collectgarbage(); collectgarbage()
    local base = sg.memory_stats()
    do
      local x = sg.randn({4, 5, 6}):requires_grad()
      local w = sg.randn({6, 3}):requires_grad()
      local v = sg.randn({3}):requires_grad()
      local loss = sg.matmul(sg.matmul(x, w), v):sum()
      loss:backward()
      check.eq(x.grad.shape, {4, 5, 6})
      local y = sg.bmm(x, sg.randn({4, 6, 2}):transpose(2, 3):contiguous():transpose(2, 3))
      check.eq(y.shape, {4, 5, 2})
    end
    collectgarbage(); collectgarbage()
    local now = sg.memory_stats()
    check.eq(now.tensors, base.tensors, "live tensors")
    check.eq(now.bytes, base.bytes, "live bytes")
  end)
end
