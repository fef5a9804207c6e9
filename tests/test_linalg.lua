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
