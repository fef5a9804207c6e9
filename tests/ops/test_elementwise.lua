-- elementwise ops (binary with broadcasting and type promotion, unary with gradients, clamp, where): every
-- backend against the reference, forward and backward, and the reference's gradients against finite
-- differences.
local B = require "tests.ops.backends"

local BIN = {"add", "sub", "mul", "div", "minimum", "maximum"}
local CMP = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or"}

test("binary ops: every backend matches the reference with broadcasting (f32 and f64, forward and backward)", function()
  sg.manual_seed(31)
  local pairs_ = {{{3, 4, 5}, {3, 4, 5}}, {{3, 1, 5}, {4, 1}}, {{2, 3, 70, 80}, {1, 3, 1, 1}}, {{6}, {}}}
  for _, dt in ipairs{"f32", "f64"} do
    for _, sh in ipairs(pairs_) do
      local a, b = sg.randn(sh[1], dt), sg.randn(sh[2], dt) + 0.1
      for _, op in ipairs(BIN) do
        B.compare(op .. " " .. dt, function(x, y) return x[op](x, y) end, {a, b})
      end
      B.compare("pow " .. dt, function(x, y) return x:abs():add(0.5):pow(y) end, {a, b})
      for _, op in ipairs(CMP) do
        B.compare(op .. " " .. dt, function(x, y) return x[op](x, y) end, {a, b}, {exact = true})
      end
    end
  end
end)

test("binary ops: integer, bool and mixed dtypes give the reference's values exactly", function()
  sg.manual_seed(32)
  local function ints(shape, dt) return sg.randint(-6, 7, shape):to(dt) end
  local cases = {
    {ints({3, 4}, "i32"), ints({4}, "i32")}, {ints({3, 4}, "i64"), ints({3, 1}, "u8")},
    {ints({2, 5}, "i32"), sg.randn{2, 5}}, {sg.randn{3, 4}:gt(0), sg.randn{4}:gt(0)},
    {sg.randn{3, 4}:gt(0), ints({3, 4}, "i64")}, {sg.randn{3, 4}:to("f16"), sg.randn{4}},
    {sg.randn{3, 4}:to("bf16"), sg.randn({3, 4}, "f64")}, {sg.randn({3, 4}, "f64"):abs() + 0.5, sg.randn{1, 4}}, -- positive bases: pow has real gradients
  }
  for k, c in ipairs(cases) do
    for _, op in ipairs{"add", "mul", "div", "minimum", "maximum", "pow", table.unpack(CMP)} do
      if not (op == "sub" and c[1].dtype == "bool") then
        B.compare(string.format("%s %s %s (case %d)", op, c[1].dtype, c[2].dtype, k),
          function(x, y) return x[op](x, y) end, {c[1], c[2]}, {exact = true, backends = B.list()})
      end
    end
  end
end)

test("unary ops: every backend matches the reference (f32 and f64, forward and backward)", function()
  sg.manual_seed(33)
  local OPS = {"neg", "abs", "exp", "sigmoid", "tanh", "relu", "sign", "square", "gelu"}
  local POS = {"log", "log1p", "sqrt", "rsqrt"}
  for _, dt in ipairs{"f32", "f64"} do
    for _, shape in ipairs{{5, 7}, {2, 3, 80, 90}} do
      local x = sg.randn(shape, dt) * 2
      for _, op in ipairs(OPS) do B.compare(op .. " " .. dt, function(t) return t[op](t) end, {x}) end
      for _, op in ipairs(POS) do
        B.compare(op .. " " .. dt, function(t) local u = t:abs() + 0.1; return u[op](u) end, {x})
      end
      B.compare("clamp " .. dt, function(t) return t:clamp(-0.5, 0.7) end, {x})
      B.compare("unary of a view " .. dt, function(t) return t:transpose(1, 2):sigmoid() end, {x})
    end
  end
  local i = sg.randint(-5, 6, {4, 6}):to("i32")
  for _, op in ipairs{"neg", "abs", "relu", "sign", "square", "exp", "sigmoid", "logical_not"} do
    -- f32 results of integers: the cpu and cuda compute in float, the reference in double
    B.compare(op .. " i32", function(t) return t[op](t) end, {i}, {exact = op ~= "exp" and op ~= "sigmoid"})
  end
  B.compare("clamp i32", function(t) return t:clamp(-2, 3) end, {i}, {exact = true})
end)

test("where: every backend matches the reference with broadcasting and promotion", function()
  sg.manual_seed(34)
  local c = sg.randn{3, 1, 5}:gt(0)
  for _, dt in ipairs{"f32", "f64"} do
    B.compare("where " .. dt, function(k, a, b) return sg.where(k, a, b) end,
      {c, sg.randn({4, 5}, dt), sg.randn({3, 4, 1}, dt)})
  end
  B.compare("where i64 f32", function(k, a, b) return sg.where(k, a, b) end,
    {c, sg.randint(0, 9, {4, 5}), sg.randn{3, 4, 1}}, {exact = true})
end)

test("elementwise: reference gradients against finite differences (f64)", function()
  sg.manual_seed(35)
  local a, b = sg.randn({3, 4}, "f64"), sg.randn({4}, "f64")
  for _, op in ipairs{"add", "sub", "mul", "div", "minimum", "maximum"} do
    B.gradcheck(op, function(x, y) return x[op](x, y) end, {a, b:abs() + 0.5})
  end
  for _, op in ipairs{"exp", "sigmoid", "tanh", "square", "log", "sqrt", "rsqrt", "log1p"} do
    B.gradcheck(op, function(x) local u = x:abs() + 0.2; return u[op](u) end, {a})
  end
end)

-- ---------------------------------------------------------------- the oneDNN path (was tests/test_dnnl_eltwise.lua)
do
  -- The oneDNN eltwise path (relu, sigmoid, tanh, exp, sqrt, abs, square on
  -- large contiguous f32 tensors) against the engine's own loops, forward and
  -- backward, with its path hook and switches; and the OpenMP-chunked
  -- elementwise kernels against one thread (bit for bit).
  local F = sg.F
  local P = require "tests.proc"
  local compiled = F._dnnl()
  local MIN = 32768 -- SG_DNNL_ELTWISE_MIN

  local function need_dnnl()
    if not compiled then skip("built without oneDNN (SG_HAVE_DNNL undefined)") end
    F._dnnl(true)
  end

  local OPS = {"relu", "sigmoid", "tanh", "exp", "sqrt", "abs", "square"}
  -- |got - want| <= atol * (1 + max |want|) + rtol |want|
  local RTOL = {relu = 1e-6, sigmoid = 1e-5, tanh = 1e-5, exp = 1e-6, sqrt = 1e-6, abs = 1e-6, square = 1e-6}

  local function close(got, want, rtol, what)
    check.eq(got.dtype, want.dtype, what .. " dtype")
    local scale = want:numel() > 0 and want:abs():amax():item() or 0
    check.near(got, want, 1e-6 * (1 + scale), rtol, what)
  end

  local function input(op, shape)
    local x = sg.randn(shape) * 3
    if op == "sqrt" then x = x:abs() + 1e-3 end
    if op == "exp" then x = x:clamp(-20, 20) end
    return x
  end

  -- op on x (or on view(x)) with oneDNN on then off: outputs, gradients and the
  -- paths taken
  local function compare(op, x, want_path, label, view)
    view = view or function(t) return t end
    local gy = sg.randn(view(x).shape)
    local res = {}
    for k, on in ipairs{true, false} do
      F._dnnl(on)
      local leaf = x:clone():requires_grad()
      local v = view(leaf)
      local y = v[op](v)
      local fpath = F._eltwise_path()
      y:backward(gy)
      res[k] = {y = y, g = leaf.grad, fpath = fpath, bpath = F._eltwise_path()}
    end
    F._dnnl("env")
    check.eq(res[1].fpath, want_path, label .. ": forward path")
    check.eq(res[1].bpath, want_path, label .. ": backward path")
    check.eq(res[2].fpath, "loops", label .. ": forward path with oneDNN off")
    check.eq(res[2].bpath, "loops", label .. ": backward path with oneDNN off")
    close(res[1].y, res[2].y, RTOL[op], label .. ": output")
    close(res[1].g, res[2].g, RTOL[op], label .. ": gradient")
  end

  test("eltwise through oneDNN matches the loops on random shapes", function()
    need_dnnl()
    sg.manual_seed(41)
    math.randomseed(41)
    local r = math.random
    for k = 1, 28 do
      local op = OPS[(k - 1) % #OPS + 1]
      local shape
      repeat
        shape = {}
        for d = 1, r(1, 4) do shape[d] = r(1, d == 1 and 300000 or 90) end
        local n = 1
        for _, s in ipairs(shape) do n = n * s end
      until n >= MIN and n <= 400000
      compare(op, input(op, shape), "dnnl", string.format("%s case %d {%s}", op, k, table.concat(shape, ",")))
    end
  end)

  test("eltwise keeps the loops for small, strided, f64 and special-value inputs", function()
    need_dnnl()
    sg.manual_seed(42)
    for _, op in ipairs(OPS) do
      compare(op, input(op, {MIN - 1}), "loops", op .. " below the threshold")
      compare(op, input(op, {2, 128, 128}), "loops", op .. " transposed", function(t) return t:permute(3, 2, 1) end)
      local x64 = input(op, {MIN}):to("f64")
      F._dnnl(true)
      x64[op](x64)
      check.eq(F._eltwise_path(), "loops", op .. " f64")
    end
    -- NaN / inf where oneDNN would answer differently: the loops run
    local x = sg.randn{MIN}
    x[5] = 0 / 0
    F._dnnl(true)
    local y = x:relu()
    check.eq(F._eltwise_path(), "loops", "relu of NaN")
    check.truthy(y[5]:item() ~= y[5]:item(), "relu keeps NaN")
    local e = x:exp()
    check.eq(F._eltwise_path(), "loops", "exp of NaN")
    check.truthy(e[5]:item() ~= e[5]:item(), "exp keeps NaN")
    local a = x:clone():requires_grad()
    a:abs():backward(sg.ones{MIN})
    check.eq(F._eltwise_path(), "loops", "abs backward at NaN")
    check.eq(a.grad[5]:item(), 0)
    local b = sg.randn{MIN}:requires_grad()
    local g = sg.ones{MIN}
    g[7] = math.huge
    b:relu():backward(g)
    check.eq(F._eltwise_path(), "loops", "relu backward of an infinite gradient")
    check.eq(b.grad[7]:item(), b[7]:item() > 0 and math.huge or 0)
    -- values that stay on oneDNN: infinities through sigmoid / tanh / sqrt
    local z = sg.randn{MIN}
    z[1], z[2] = math.huge, -math.huge
    for _, op in ipairs{"sigmoid", "tanh"} do
      F._dnnl(true)
      local p = z[op](z)
      check.eq(F._eltwise_path(), "dnnl", op .. " of inf")
      F._dnnl(false)
      close(p, z[op](z), RTOL[op], op .. " of inf")
    end
    F._dnnl("env")
  end)

  test("in-place eltwise through oneDNN matches the loops", function()
    need_dnnl()
    sg.manual_seed(43)
    for _, op in ipairs(OPS) do
      local x = input(op, {4, 100, 100})
      F._dnnl(true)
      local a = x:clone()
      a[op .. "_"](a)
      check.eq(F._eltwise_path(), "dnnl", op .. "_ path")
      F._dnnl(false)
      local b = x:clone()
      b[op .. "_"](b)
      close(a, b, RTOL[op], op .. "_")
    end
    F._dnnl("env")
  end)

  test("F._dnnl(false) and SEMSEG_DNNL=0 switch the eltwise path off", function()
    need_dnnl()
    local x = sg.randn{MIN * 2}
    F._dnnl(false)
    x:sigmoid()
    check.eq(F._eltwise_path(), "loops")
    F._dnnl("env")
    local before = select(5, F._dnnl())
    x:tanh()
    check.truthy(select(5, F._dnnl()) >= 1 or before >= 1, "a cached eltwise primitive")
    local script = P.tmpdir() .. "/elt.lua"
    P.write(script, [[
  local sg = require "semseg"
  local F = sg.F
  sg.randn{100000}:sigmoid()
  io.write(F._eltwise_path(), " ", tostring(select(2, F._dnnl())))
  ]])
    for env, want in pairs{["SEMSEG_DNNL=0"] = "loops false", ["SEMSEG_DNNL=1"] = "dnnl true"} do
      local out, err, code = P.run(env .. " " .. P.semseg("run", script))
      check.eq(code, 0, env .. ": exit code (" .. err .. ")")
      check.eq(out, want, env)
    end
    P.cleanup()
  end)

  -- threads: every elementwise result equals the one-thread result bit for bit
  local function same(a, b, what)
    check.eq(a.shape, b.shape, what .. " shape")
    check.eq(a:eq(b):all():item(), true, what)
  end

  test("threaded elementwise kernels equal one thread exactly", function()
    local nmax = F._threads()
    if nmax < 2 then
      F._threads(4)
      if F._threads() < 2 then skip("built without OpenMP") end
      nmax = 4
    end
    local was_on = select(2, F._dnnl())
    F._dnnl(false) -- the engine's own unary kernels
    sg.manual_seed(44)
    local a, b = sg.randn{3, 70, 333}, sg.randn{3, 70, 333}
    local row, col = sg.randn{333}, sg.randn{70, 1}
    local cases = {
      {"add", function() return a + b end},
      {"mul broadcast row", function() return a * row end},
      {"sub broadcast column", function() return a - col end},
      {"div transposed", function() return a:permute(3, 2, 1) / b:permute(3, 2, 1) end},
      {"outer broadcast", function() return col * row:reshape{1, 333} + a end},
      {"maximum", function() return sg.maximum(a, b) end},
      {"pow", function() return a:abs() ^ b end},
      {"compare", function() return a:lt(b) end},
      {"f64 mul", function() return a:to("f64") * b:to("f64") end},
      {"i64 add", function() return (a * 100):to("i64") + (b * 100):to("i64") end},
      {"sigmoid", function() return a:sigmoid() end},
      {"tanh strided", function() return a:permute(2, 1, 3):tanh() end},
      {"exp", function() return a:exp() end},
      {"relu backward", function()
        local l = a:clone():requires_grad()
        l:tanh():backward(b)
        return l.grad
      end},
      {"in-place add", function() local t = a:clone(); t:add_(b); return t end},
      {"in-place mul broadcast", function() local t = a:clone(); t:mul_(row); return t end},
      {"in-place shifted alias", function()
        local t = a:clone():reshape{-1}
        local n = t:numel()
        t:narrow(1, 2, n - 1):add_(t:narrow(1, 1, n - 1))
        return t
      end},
    }
    for _, c in ipairs(cases) do
      F._threads(1)
      local one = c[2]()
      F._threads(nmax)
      local many = c[2]()
      same(many, one, c[1])
    end
    F._threads(nmax)
    F._dnnl(was_on)
    F._dnnl("env")
  end)
end

-- ---------------------------------------------------------------- on the GPU (was tests/test_cuda_elementwise.lua)
do
  -- Elementwise ops on the GPU against the CPU reference: every binary and
  -- unary op, broadcasting, non-contiguous views, scalars, type promotion over
  -- f32/f64/f16/bf16/i64/i32/u8/bool, NaN rules, in-place variants, clamp,
  -- where and masked_fill; forward values and the gradients of a weighted sum
  -- (autograd on each device). Every test skips when no CUDA device is usable.
  --
  -- Tolerances (relative, plus the same fraction of the largest magnitude):
  -- f64 1e-12 (GPU and CPU libm differ by an ulp or two), f32 1e-5 (float
  -- transcendental functions; large f32 tensors use oneDNN on the CPU), f16
  -- 2e-3 and bf16 1e-2 (one rounding step of the 16-bit type). Integer and bool
  -- results must be equal.

  local C = require("tests.cuda_compare")(check, skip)
  local need_cuda, is_float, TOL, close, compare, randn, positive =
    C.need_cuda, C.is_float, C.TOL, C.close, C.compare, C.randn, C.positive

  local BIN = {"add", "sub", "mul", "div", "minimum", "maximum"}
  local CMP = {"eq", "ne", "lt", "le", "gt", "ge"}

  test("binary ops, same shapes (the flat path), f32 f64 f16 bf16", function()
    need_cuda()
    sg.manual_seed(1)
    -- odd sizes exercise the tails of the vector loops
    for _, shape in ipairs{{1}, {7}, {1000}, {33, 65}, {3, 4, 5, 7}, {70001}} do
      for _, dt in ipairs{"f32", "f64", "bf16", "f16"} do
        local a, b = randn(shape, dt), randn(shape, dt)
        for _, op in ipairs(BIN) do
          compare(op .. " " .. dt .. " " .. #shape .. "d", function(x, y) return sg[op](x, y) end, {a, b})
        end
        compare("div by positive " .. dt, function(x, y) return x / y end, {a, positive(shape, dt)})
        compare("pow " .. dt, function(x, y) return x ^ y end, {positive(shape, dt), randn(shape, dt)})
      end
    end
  end)

  test("binary ops with broadcasting, numbers, 0-dim and host scalars", function()
    need_cuda()
    sg.manual_seed(2)
    local a, b, c = randn({4, 1, 5}), randn({3, 1}), randn({5})
    for _, op in ipairs(BIN) do
      compare(op .. " [4,1,5] [3,1]", function(x, y) return sg[op](x, y) end, {a, b})
      compare(op .. " [3,1] [4,1,5]", function(x, y) return sg[op](x, y) end, {b, a})
      compare(op .. " [4,1,5] [5]", function(x, y) return sg[op](x, y) end, {a, c})
    end
    compare("pow broadcast", function(x, y) return x ^ y end, {positive({2, 3, 1}), randn({4})})
    -- numbers on either side
    compare("x + 2", function(x) return x + 2 end, {a})
    compare("2 - x", function(x) return 2 - x end, {a})
    compare("x * 0.5", function(x) return x * 0.5 end, {a})
    compare("1 / x", function(x) return 1 / x end, {positive({6})})
    compare("x ^ 2", function(x) return x ^ 2 end, {a})
    compare("2 ^ x", function(x) return 2 ^ x end, {a})
    compare("x:div(3)", function(x) return x:div(3) end, {a})
    compare("maximum(x, 0.1)", function(x) return sg.maximum(x, 0.1) end, {a})
    -- a 0-dim GPU tensor on either side, and 0-dim with 0-dim
    compare("0-dim * x", function(s, x) return s * x end, {sg.tensor(1.5), a})
    compare("x - 0-dim", function(x, s) return x - s end, {a, sg.tensor(-0.25)})
    compare("0-dim + 0-dim", function(s, t) return s + t end, {sg.tensor(1.5), sg.tensor(2.25)})
    -- a 0-dim CPU tensor next to a GPU tensor is moved to the GPU (PyTorch's rule), gradient included
    local s = sg.tensor(3.0):requires_grad()
    local x = randn({2, 3}):cuda():requires_grad()
    local y = x * s
    check.eq(y.device, "cuda")
    y:sum():backward()
    check.eq(s.grad.device, "cpu")
    check.near(s.grad:item(), x:detach():sum():item(), 1e-5, 1e-5)
    check.near(x.grad:cpu(), sg.full(3.0, {2, 3}), 0, 0)
    check.eq((sg.tensor(2) + randn({3}):cuda()).device, "cuda")
    local big = sg.tensor({9223372036854775807, 3}, "i64")
    check.eq((sg.tensor({0, 1}, "i64"):cuda() + big[1]):cpu():totable(), {9223372036854775807, -9223372036854775807 - 1},
      "a host i64 scalar beyond 2^53 moves exactly")
    check.eq((sg.ones({2}, {dtype = "bf16"}):cuda() * sg.tensor({0.1}, "bf16")[1]).dtype, "bf16")
    check.eq(sg.where(sg.tensor(true), randn({3}):cuda(), 0).device, "cuda")
    -- anything larger on the CPU is an error
    check.errors(function() return randn({3}):cuda() + randn({3}) end, "different devices")
    check.errors(function() return randn({3}) * randn({1}):cuda() end, "different devices")
  end)

  test("binary ops on non-contiguous views", function()
    need_cuda()
    sg.manual_seed(3)
    local a, b = randn({6, 8}), randn({8, 6})
    for _, op in ipairs(BIN) do
      compare(op .. " transposed", function(x, y) return sg[op](x, y:t()) end, {a, b})
      compare(op .. " sliced with steps", function(x, y) return sg[op](x:slice(2, 1, 8, 2), y:slice(1, 2, 8, 2):t()) end,
        {a, b})
      compare(op .. " expanded", function(x, y) return sg[op](x:narrow(2, 1, 1):expand(6, 8), y:t()) end, {a, b})
    end
    local p = randn({2, 3, 4, 5})
    compare("permuted 4-d * broadcast", function(x, y) return x:permute({4, 2, 1, 3}) * y end, {p, randn({3, 1, 4})})
    compare("select + narrow", function(x) return x:select(1, 2):narrow(3, 2, 3) - 1 end, {p})
  end)

  test("comparisons and logical ops (bool results)", function()
    need_cuda()
    sg.manual_seed(4)
    local a = (sg.randn({5, 7}) * 2):to("i64"):to("f32") -- repeated values so == and <= matter
    local b = (sg.randn({7}) * 2):to("i64"):to("f32")
    for _, op in ipairs(CMP) do
      compare(op .. " f32", function(x, y) return sg[op](x, y) end, {a, b})
      compare(op .. " i64 vs f32", function(x, y) return sg[op](x:to("i64"), y) end, {a, b}, {grad = false})
      compare(op .. " with a number", function(x) return sg[op](x, 1) end, {a})
      compare(op .. " bf16", function(x, y) return sg[op](x, y) end, {a:to("bf16"), b:to("bf16")})
    end
    local m, n = sg.rand({4, 6}):gt(0.5), sg.rand({6}):gt(0.3)
    compare("logical_and", function(x, y) return x:logical_and(y) end, {m, n})
    compare("logical_or", function(x, y) return x:logical_or(y) end, {m, n})
    compare("logical_and of floats (nonzero is true)", function(x, y) return x:logical_and(y) end,
      {sg.tensor({0, 0.5, -2, 0, 0 / 0}), sg.tensor({1, 0, 3, 0, 1})}, {grad = false})
    compare("logical_or of ints", function(x, y) return x:logical_or(y) end,
      {sg.tensor({0, 256, -1, 0}, "i64"), sg.tensor({0, 0, 0, 7}, "i32")})
    compare("logical_not", function(x) return x:logical_not() end, {m})
    compare("logical_not of floats", function(x) return x:logical_not() end, {sg.tensor({0, 1.5, -0.0, 0 / 0})},
      {grad = false})
  end)

  test("integer and bool arithmetic, promotion, true division", function()
    need_cuda()
    sg.manual_seed(5)
    local i = sg.randint(-20, 20, {4, 5})
    local j = sg.randint(1, 9, {5})
    for _, op in ipairs{"add", "sub", "mul", "minimum", "maximum"} do
      compare(op .. " i64", function(x, y) return sg[op](x, y) end, {i, j})
      compare(op .. " i32", function(x, y) return sg[op](x, y) end, {i:to("i32"), j:to("i32")})
      compare(op .. " u8 (wraps)", function(x, y) return sg[op](x, y) end, {(i + 20):to("u8"), j:to("u8")})
      compare(op .. " i64 and f32 promote to f32", function(x, y) return sg[op](x, y) end, {i, randn({5})})
      compare(op .. " i32 and i64", function(x, y) return sg[op](x, y) end, {i:to("i32"), j})
      compare(op .. " bool and i64", function(x, y) return sg[op](x, y) end, {i:gt(0), j})
    end
    compare("i64 / i64 is true division (f32)", function(x, y) return x / y end, {i, j})
    compare("i64 / f64", function(x, y) return x / y end, {i, positive({5}, "f64")})
    compare("bool + bool stays bool", function(x, y) return x + y end, {i:gt(0), j:gt(4)})
    compare("bool * bool", function(x, y) return x * y end, {i:gt(0), j:gt(4)})
    compare("u8 * f16", function(x, y) return x * y end, {(i + 20):to("u8"), randn({5}, "f16")}, {grad = false})
    compare("f16 + bf16 meet at f32", function(x, y) return x + y end, {randn({3}, "f16"), randn({3}, "bf16")})
    compare("f32 + f64", function(x, y) return x + y end, {randn({2, 3}), randn({3}, "f64")})
    -- integer pow: negative exponents, 1 and -1 bases, wrapping
    local base = sg.tensor({2, -2, 1, -1, 0, 3, 7, 10}, "i64")
    local ex = sg.tensor({3, 3, -5, -3, 2, -1, 0, 30}, "i64")
    compare("pow i64", function(x, y) return x ^ y end, {base, ex})
    compare("pow i64 by a number", function(x) return x ^ 3 end, {base})
    -- wrapping of int64
    local big = sg.tensor({9223372036854775807, -9223372036854775807 - 1}, "i64")
    compare("i64 overflow wraps", function(x) return x + 1 end, {big})
    compare("i64 product wraps", function(x) return x * 3 end, {big})
    check.errors(function() return i:gt(0):cuda() - j:gt(0):cuda() end, "subtracting two bool tensors")
  end)

  test("NaN and infinity rules", function()
    need_cuda()
    local nan, inf = 0 / 0, math.huge
    local a = sg.tensor({nan, 1, nan, -inf, 2, 0.0, -0.0, inf})
    local b = sg.tensor({1, nan, nan, 3, inf, -0.0, 0.0, inf})
    for _, dt in ipairs{"f32", "f64", "bf16"} do
      for _, op in ipairs{"minimum", "maximum", "add", "sub", "mul", "div"} do
        compare(op .. " with NaN " .. dt, function(x, y) return sg[op](x, y) end, {a:to(dt), b:to(dt)}, {grad = false})
      end
      for _, op in ipairs(CMP) do
        compare(op .. " with NaN " .. dt, function(x, y) return sg[op](x, y) end, {a:to(dt), b:to(dt)}, {grad = false})
      end
      compare("pow with NaN " .. dt, function(x, y) return x ^ y end, {a:to(dt), b:to(dt)}, {grad = false})
      for _, op in ipairs{"relu", "abs", "neg", "sign", "square", "exp", "sigmoid", "tanh", "sqrt", "log"} do
        compare(op .. " of NaN/inf " .. dt, function(x) return x[op](x) end, {a:to(dt)}, {grad = false})
      end
    end
    compare("sigmoid of large magnitudes", function(x) return x:sigmoid() end, {sg.tensor({-100, -30, 30, 100})})
    compare("float to int cast saturates (in-kernel promotion)", function(x, y) return x:to("i32") + y end,
      {sg.tensor({1e20, -1e20, 2.9, -2.9}), sg.tensor({1, 1, 1, 1}, "i32")}, {grad = false})
  end)

  local UNARY = {"neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "sigmoid", "tanh", "relu", "sign", "square"}
  local NEEDS_POSITIVE = {log = true, sqrt = true, rsqrt = true, log1p = true}

  test("unary ops on every float dtype, forward and backward", function()
    need_cuda()
    sg.manual_seed(6)
    for _, shape in ipairs{{5}, {3, 7}, {2, 3, 4, 5}, {40000}} do
      for _, dt in ipairs{"f32", "f64", "bf16", "f16"} do
        for _, op in ipairs(UNARY) do
          local x = NEEDS_POSITIVE[op] and positive(shape, dt) or randn(shape, dt)
          compare(op .. " " .. dt .. " " .. #shape .. "d", function(t) return t[op](t) end, {x})
        end
      end
    end
    -- the large f32 tensor above goes through oneDNN on the CPU; check the path hooks
    local F = sg.F
    local x = randn({64}):cuda():requires_grad()
    local y = x:sigmoid()
    check.eq(F._eltwise_path(), "cuda", "forward path")
    y:sum():backward()
    check.eq(F._eltwise_path(), "cuda", "backward path")
  end)

  test("unary ops on views and on integer and bool tensors", function()
    need_cuda()
    sg.manual_seed(7)
    local x = randn({6, 5})
    for _, op in ipairs(UNARY) do
      local src = NEEDS_POSITIVE[op] and positive({6, 5}) or x
      compare(op .. " of a transposed view", function(t) return t:t()[op](t:t()) end, {src})
      compare(op .. " of an expanded view", function(t) local v = t:narrow(1, 2, 1):expand(4, 5); return v[op](v) end,
        {src})
    end
    local i = sg.randint(-9, 9, {4, 6})
    for _, op in ipairs{"neg", "abs", "relu", "sign", "square", "logical_not"} do
      compare(op .. " i64", function(t) return t[op](t) end, {i})
      compare(op .. " i32", function(t) return t[op](t) end, {i:to("i32")})
      compare(op .. " u8", function(t) return t[op](t) end, {(i + 9):to("u8")})
      compare(op .. " bool", function(t) return t[op](t) end, {i:gt(0)})
    end
    -- integer inputs of float ops compute in f32
    for _, op in ipairs{"exp", "sigmoid", "tanh", "sqrt", "log1p"} do
      compare(op .. " of i64 gives f32", function(t) return t[op](t) end, {(i + 10)})
      compare(op .. " of bool gives f32", function(t) return t[op](t) end, {i:gt(0)})
    end
    compare("abs of the smallest i64 wraps", function(t) return t:abs() end,
      {sg.tensor({-9223372036854775807 - 1, -5}, "i64")})
  end)

  test("in-place variants", function()
    need_cuda()
    sg.manual_seed(8)
    local a, b = randn({4, 5}), randn({5})
    for _, op in ipairs{"add", "sub", "mul", "div", "minimum", "maximum"} do
      compare(op .. "_ broadcast", function(x, y) local z = x * 1; return z[op .. "_"](z, y) end, {a, positive({5})})
      compare(op .. "_ with a number", function(x) local z = x * 1; return z[op .. "_"](z, 2) end, {a})
    end
    compare("pow_", function(x, y) local z = x * 1; return z:pow_(y) end, {positive({4, 5}), b})
    for _, op in ipairs(UNARY) do
      local src = NEEDS_POSITIVE[op] and positive({4, 5}) or a
      compare(op .. "_", function(x) local z = x * 1; return z[op .. "_"](z) end, {src})
    end
    compare("clamp_", function(x) local z = x * 1; return z:clamp_(-0.5, 0.5) end, {a})
    compare("add_ into a strided view (no grad)", function(x, y) x:t():add_(y); return x end, {randn({5, 4}), b},
      {grad = false})
    compare("mul_ of ints", function(x, y) return x:mul_(y) end, {sg.randint(-5, 5, {3, 4}), sg.randint(-5, 5, {4})})
    compare("bf16 add_", function(x, y) return x:add_(y) end, {randn({3, 4}, "bf16"), randn({4}, "bf16")},
      {grad = false})
    -- an input that aliases the output: the same view is fine, a different one is read before any write
    local x = randn({5, 5})
    local g = x:cuda()
    g:add_(g)
    close(g, x * 2, "x:add_(x)")
    local h = x:cuda()
    h:add_(h:t())
    close(h, x + x:t(), "x:add_(x:t()) reads the old values")
    local k = x:cuda()
    k:narrow(1, 2, 4):mul_(k:narrow(1, 1, 4))
    local want = x:clone()
    want:narrow(1, 2, 4):mul_(x:narrow(1, 1, 4):clone())
    close(k, want, "shifted alias")
    -- in-place errors as on the CPU
    check.errors(function() local t = randn({3}):cuda(); return t:add_(randn({2, 3}):cuda()) end, "does not fit")
    check.errors(function() local t = sg.randint(0, 3, {3}):cuda(); return t:div_(2) end, "cannot be stored in place")
  end)

  test("clamp: bounds, integers, NaN, gradient", function()
    need_cuda()
    sg.manual_seed(9)
    local x = randn({7, 9}) * 2
    for _, dt in ipairs{"f32", "f64", "bf16", "f16"} do
      compare("clamp both " .. dt, function(t) return t:clamp(-1, 0.5) end, {x:to(dt)})
      compare("clamp min " .. dt, function(t) return t:clamp(0.1) end, {x:to(dt)})
      compare("clamp max " .. dt, function(t) return t:clamp(nil, -0.3) end, {x:to(dt)})
    end
    compare("clamp of a view", function(t) return t:t():clamp(-1, 1) end, {x})
    compare("clamp i64", function(t) return t:clamp(-3, 4) end, {sg.randint(-9, 9, {10})})
    compare("clamp u8 with fractional bounds", function(t) return t:clamp(2.5, 7.5) end, {sg.randint(0, 12, {10}):to("u8")})
    compare("clamp keeps NaN", function(t) return t:clamp(-1, 1) end, {sg.tensor({0 / 0, 5, -5, 0.5})}, {grad = false})
    check.errors(function() return x:cuda():clamp(1, -1) end, "min 1 is greater than max -1")
  end)

  test("where and masked_fill", function()
    need_cuda()
    sg.manual_seed(10)
    local c = sg.rand({4, 5}):gt(0.5)
    local a, b = randn({4, 5}), randn({5})
    compare("where broadcast", function(m, x, y) return sg.where(m, x, y) end, {c, a, b})
    compare("where with a number", function(m, x) return sg.where(m, x, 0) end, {c, a})
    compare("where number first", function(m, x) return sg.where(m, 1.5, x) end, {c, a})
    compare("where of a broadcast condition", function(m, x, y) return sg.where(m, x, y) end,
      {sg.rand({4, 1}):gt(0.5), a, b})
    compare("where with a transposed condition", function(m, x) return sg.where(m:t(), x:t(), 2) end, {c, a})
    compare("where with a float condition (nonzero)", function(m, x, y) return sg.where(m, x, y) end,
      {sg.tensor({0, 1, -2, 0, 0.5}), randn({5}), randn({5})})
    compare("where promotes i64 and f32", function(m, x, y) return sg.where(m, x, y) end,
      {c, sg.randint(-5, 5, {4, 5}), b})
    for _, dt in ipairs{"i64", "i32", "u8", "bool", "f16", "bf16", "f64"} do
      compare("where " .. dt, function(m, x, y) return sg.where(m, x, y) end, {c, a:to(dt), b:to(dt)}, {grad = false})
    end
    compare("masked_fill", function(x, m) return x:masked_fill(m, -7) end, {a, c})
    compare("masked_fill broadcast mask", function(x, m) return x:masked_fill(m, 0.25) end, {a, sg.rand({5}):gt(0.5)})
    compare("masked_fill i64", function(x, m) return x:masked_fill(m, 3) end, {sg.randint(0, 9, {4, 5}), c})
    check.errors(function() return a:cuda():masked_fill(c:cuda():to("i64"), 1) end, "mask must be a bool tensor")
    check.errors(function() return sg.where(c:cuda(), a:cuda(), b) end, "different devices")
  end)

  test("large tensors (grid-stride loops, vector paths, 32-bit index limits of the strided path)", function()
    need_cuda()
    sg.manual_seed(11)
    local n = 3 * 1024 * 1024 + 5
    local a, b = randn({n}), randn({n})
    compare("add large", function(x, y) return x + y end, {a, b})
    compare("sigmoid large", function(x) return x:sigmoid() end, {a})
    compare("mul large, strided", function(x, y) return x:view(3, -1):slice(2, 1, nil, 2) * y:view(3, -1):slice(2, 2, nil, 2) end,
      {a:narrow(1, 1, 3 * 1024 * 1024), b:narrow(1, 1, 3 * 1024 * 1024)}, {grad = false})
    -- a view not 16-byte aligned takes the scalar loop
    compare("add unaligned", function(x, y) return x:narrow(1, 2, n - 2) + y:narrow(1, 3, n - 2) end, {a, b})
  end)

  test("gradients through chains of GPU ops match the CPU", function()
    need_cuda()
    sg.manual_seed(12)
    compare("mixed chain", function(x, y, z)
      local t = (x * y):sigmoid() + (x - z):relu():square() / (y:abs() + 1)
      return sg.where(t:gt(0.5), t:tanh(), t:exp():log1p()) - sg.maximum(x, z) * sg.minimum(y, 0.3)
    end, {randn({3, 4}), randn({4}), randn({3, 1})}, {rtol = 1e-5})
    compare("pow both sides", function(x, y) return x ^ y end, {positive({3, 4}, "f64"), randn({3, 4}, "f64")})
    compare("rsqrt and sqrt f64", function(x) return x:rsqrt() + x:sqrt() end, {positive({5}, "f64")})
    compare("clamp then mul", function(x, y) return x:clamp(-0.5, 0.5) * y end, {randn({6}), randn({6})})
  end)
end

-- ---------------------------------------------------------------- values and dtype rules (was tests/test_elementwise.lua)
do
  -- Elementwise ops: values (torch goldens), broadcasting, promotion, in-place variants.
  local X = {{-1.5, 0.5, 2.0}, {3.0, -0.25, 1.0}}
  local P = {0.5, 1.0, 2.0, 3.0}

  test("arithmetic with broadcasting", function()
    local a = sg.tensor({{1, 2, 3}, {4, 5, 6}})
    local r = sg.tensor({10, 20, 30})
    local c = sg.tensor({{100}, {200}})
    check.eq((a + r):totable(), {{11, 22, 33}, {14, 25, 36}})
    check.eq((a - c):totable(), {{-99, -98, -97}, {-196, -195, -194}})
    check.eq((a * r).shape, {2, 3})
    check.eq((a * r):totable(), {{10, 40, 90}, {40, 100, 180}})
    check.eq((r / sg.tensor({{2}, {10}})):totable(), {{5, 10, 15}, {1, 2, 3}})
    check.eq((c + r).shape, {2, 3}) -- [2,1] + [3] -> [2,3]
    check.eq((c + r):totable(), {{110, 120, 130}, {210, 220, 230}})
    check.eq(sg.add(a, 1):totable(), {{2, 3, 4}, {5, 6, 7}})
    check.eq(a:sub(1):totable(), {{0, 1, 2}, {3, 4, 5}})
    check.eq(a:mul(2):totable(), {{2, 4, 6}, {8, 10, 12}})
    check.eq(a:div(2):totable(), {{0.5, 1, 1.5}, {2, 2.5, 3}})
    check.eq((-a):totable(), {{-1, -2, -3}, {-4, -5, -6}})
    check.eq(a:neg():totable(), {{-1, -2, -3}, {-4, -5, -6}})
    -- 0-dim with anything
    check.eq((sg.tensor(2) * a):totable(), {{2, 4, 6}, {8, 10, 12}})
    check.eq((sg.tensor(2) + sg.tensor(3)).ndim, 0)
    -- empty
    check.eq((sg.zeros(0, 3) + r).shape, {0, 3})
  end)

  test("numbers on either side", function()
    local t = sg.tensor({1, 2, 4})
    check.eq((2 - t):totable(), {1, 0, -2})
    check.eq((t - 2):totable(), {-1, 0, 2})
    check.eq((t / 2):totable(), {0.5, 1, 2})
    check.eq((8 / t):totable(), {8, 4, 2})
    check.eq((3 * t):totable(), {3, 6, 12})
    check.eq((t ^ 2):totable(), {1, 4, 16})
    check.near(2 ^ sg.tensor({0.5, 1.5}), {1.4142135382, 2.8284270763}, 1e-6)
    check.eq((2 ^ t):totable(), {2, 4, 16})
    check.eq((1 + t).dtype, "f32")
  end)

  test("unary math (torch values)", function()
    local x = sg.tensor(X, "f64")
    check.near(x:exp(), {{0.22313016014842982, 1.6487212707001282, 7.38905609893065},
                         {20.085536923187668, 0.7788007830714049, 2.718281828459045}}, 1e-12)
    check.near(x:abs():log1p(), {{0.9162907318741551, 0.4054651081081644, 1.0986122886681098},
                                 {1.3862943611198906, 0.22314355131420976, 0.6931471805599453}}, 1e-12)
    check.near(x:sigmoid(), {{0.18242552380635635, 0.6224593312018546, 0.8807970779778823},
                             {0.9525741268224334, 0.43782349911420193, 0.7310585786300049}}, 1e-12)
    check.near(x:tanh(), {{-0.9051482536448664, 0.46211715726000974, 0.9640275800758169},
                          {0.9950547536867305, -0.24491866240370913, 0.7615941559557649}}, 1e-12)
    check.eq(x:abs():totable(), {{1.5, 0.5, 2}, {3, 0.25, 1}})
    check.eq(x:relu():totable(), {{0, 0.5, 2}, {3, 0, 1}})
    check.eq(x:sign():totable(), {{-1, 1, 1}, {1, -1, 1}})
    check.eq(x:square():totable(), {{2.25, 0.25, 4}, {9, 0.0625, 1}})
    local p = sg.tensor(P, "f64")
    check.near(p:log(), {-0.6931471805599453, 0.0, 0.6931471805599453, 1.0986122886681098}, 1e-12)
    check.near(p:sqrt(), {0.7071067811865476, 1.0, 1.4142135623730951, 1.7320508075688772}, 1e-12)
    check.near(p:rsqrt(), {1.414213562373095, 1.0, 0.7071067811865475, 0.5773502691896258}, 1e-12)
    check.near(p ^ sg.tensor({2.0, -1.0, 0.5, 1.5}, "f64"), {0.25, 1.0, 1.4142135623730951, 5.196152422706632}, 1e-12)
    -- f32 paths agree with f64
    check.near(sg.tensor(X):exp(), x:exp(), 1e-6, 1e-6)
    check.near(sg.tensor(X):sigmoid(), x:sigmoid(), 1e-6)
    check.near(sg.tensor(X):tanh(), x:tanh(), 1e-6)
    check.near(sg.tensor(P):rsqrt(), p:rsqrt(), 1e-6)
    check.near(sg.tensor(P):log1p(), p:log1p(), 1e-6)
    -- extremes
    check.near(sg.tensor({-100, 100}):sigmoid(), {0, 1}, 1e-30, 0)
    check.eq(sg.tensor({-1}):sqrt():item() ~= sg.tensor({-1}):sqrt():item(), true) -- NaN
    check.eq(sg.tensor({0}):log():item(), -math.huge)
    -- f16 / bf16 go through f32
    check.near(sg.tensor(P, "f16"):sqrt():to("f64"), p:sqrt(), 1e-3, 1e-3)
    check.eq(sg.tensor(P, "bf16"):exp().dtype, "bf16")
  end)

  test("integer unary ops", function()
    local i = sg.tensor({-3, 4}, "i64")
    check.eq(i:abs():totable(), {3, 4}); check.eq(i:abs().dtype, "i64")
    check.eq(i:relu():totable(), {0, 4})
    check.eq((-i):totable(), {3, -4})
    check.eq(i:square():totable(), {9, 16})
    check.eq(i:exp().dtype, "f32") -- float ops on ints give f32
    check.near(i:abs():sqrt(), {1.7320508, 2}, 1e-6)
  end)

  test("clamp and where", function()
    local x = sg.tensor({-2, -0.5, 0.5, 2})
    check.eq(x:clamp(-1, 1):totable(), {-1, -0.5, 0.5, 1})
    check.eq(x:clamp(0):totable(), {0, 0, 0.5, 2})
    check.eq(x:clamp(nil, 0):totable(), {-2, -0.5, 0, 0})
    check.eq(sg.tensor({1, 5, 9}, "i64"):clamp(2, 6):totable(), {2, 5, 6})
    local n = sg.tensor({0 / 0}):clamp(0, 1):item()
    check.truthy(n ~= n, "clamp keeps NaN")
    local c = sg.tensor({true, false, true}, "bool")
    check.eq(sg.where(c, sg.tensor({1, 2, 3}), sg.tensor({10, 20, 30})):totable(), {1, 20, 3})
    check.eq(sg.where(c, sg.tensor({1, 2, 3}), 0):totable(), {1, 0, 3})
    check.eq(sg.where(c, 5, sg.tensor({10, 20, 30})):totable(), {5, 20, 5})
    -- broadcasting of all three
    local w = sg.where(sg.tensor({{true}, {false}}, "bool"), sg.tensor({1, 2}), sg.tensor(9))
    check.eq(w:totable(), {{1, 2}, {9, 9}})
    -- non-bool conditions: nonzero is true
    check.eq(sg.where(sg.tensor({0, 2}, "i64"), sg.tensor({1, 1}), sg.tensor({0, 0})):totable(), {0, 1})
    -- promotion of the branches
    check.eq(sg.where(c, sg.tensor({1, 2, 3}, "i64"), sg.tensor({0.5, 0.5, 0.5})).dtype, "f32")
    check.eq(sg.masked_fill(sg.tensor({1, 2, 3}), c, -1):totable(), {-1, 2, -1})
  end)

  test("minimum / maximum and NaN", function()
    local a, b = sg.tensor({1, 5, 3}), sg.tensor({4, 2, 3})
    check.eq(sg.minimum(a, b):totable(), {1, 2, 3})
    check.eq(sg.maximum(a, b):totable(), {4, 5, 3})
    check.eq(a:max(b):totable(), {4, 5, 3})
    check.eq(a:min(b):totable(), {1, 2, 3})
    check.eq(sg.maximum(sg.tensor({{1}, {6}}), b):totable(), {{4, 2, 3}, {6, 6, 6}})
    local m = sg.maximum(sg.tensor({0 / 0, 1}), sg.tensor({1, 0 / 0})):totable()
    check.truthy(m[1] ~= m[1] and m[2] ~= m[2], "NaN propagates through maximum")
    check.eq(sg.minimum(sg.tensor({3}, "i64"), sg.tensor({-2}, "i32")):totable(), {-2})
  end)

  test("comparisons give bool; logical ops", function()
    local a, b = sg.tensor({1, 2, 3}), sg.tensor({3, 2, 1})
    check.eq(a:eq(b):totable(), {false, true, false}); check.eq(a:eq(b).dtype, "bool")
    check.eq(a:ne(b):totable(), {true, false, true})
    check.eq(a:lt(b):totable(), {true, false, false})
    check.eq(a:le(b):totable(), {true, true, false})
    check.eq(a:gt(b):totable(), {false, false, true})
    check.eq(a:ge(b):totable(), {false, true, true})
    check.eq(a:gt(2):totable(), {false, false, true})
    check.eq(sg.tensor({1, 2}, "i64"):eq(sg.tensor({1, 2.5})):totable(), {true, false})
    check.eq(sg.eq(a, 2):totable(), {false, true, false})
    local nan = sg.tensor({0 / 0})
    check.eq(nan:eq(nan):item(), false); check.eq(nan:ne(nan):item(), true)
    local p, q = sg.tensor({true, true, false, false}, "bool"), sg.tensor({true, false, true, false}, "bool")
    check.eq(sg.logical_and(p, q):totable(), {true, false, false, false})
    check.eq(sg.logical_or(p, q):totable(), {true, true, true, false})
    check.eq(sg.logical_not(p):totable(), {false, false, true, true})
    check.eq(sg.logical_and(sg.tensor({2, 0}), sg.tensor({0.5, 1})):totable(), {true, false})
    check.eq(sg.tensor({0, 3}, "i64"):logical_not():totable(), {true, false})
  end)

  test("dtype promotion (torch rules)", function()
    local i64, i32, u8 = sg.tensor({1, 2}, "i64"), sg.tensor({1, 2}, "i32"), sg.tensor({1, 2}, "u8")
    local f32, f16, bf16, b = sg.tensor({1, 2}), sg.tensor({1, 2}, "f16"), sg.tensor({1, 2}, "bf16"),
      sg.tensor({true, false}, "bool")
    check.eq((i64 + f32).dtype, "f32")
    check.eq((i64 / i64).dtype, "f32"); check.eq((i64 / i64):totable(), {1, 1})
    check.eq((sg.tensor({7, -7}, "i64") / 2):totable(), {3.5, -3.5})
    check.eq((i32 + 1.5).dtype, "f32"); check.eq((i32 + 1.5):totable(), {2.5, 3.5})
    check.eq((i32 + 1).dtype, "i32")
    check.eq((u8 + i32).dtype, "i32")
    check.eq((i32 + i64).dtype, "i64")
    check.eq((b + b).dtype, "bool"); check.eq((b + b):totable(), {true, false})
    check.eq((b * b):totable(), {true, false})
    check.eq((b + 1).dtype, "i64"); check.eq((b + 1):totable(), {2, 1})
    check.eq((i64 * b).dtype, "i64")
    check.eq((f16 + bf16).dtype, "f32")
    check.eq((f16 + f16).dtype, "f16"); check.eq((f16 + 1.5).dtype, "f16")
    check.eq((bf16 + f32).dtype, "bf16" == "x" and "" or "f32")
    check.eq((i64 + f16).dtype, "f16")
    check.eq((f32 + sg.tensor({1}, "f64")).dtype, "f64")
    check.eq(i64:lt(f32).dtype, "bool")
    check.eq((i64 ^ 2):totable(), {1, 4}); check.eq((i64 ^ 2).dtype, "i64")
    check.eq((sg.tensor({2, 3}, "i64") ^ sg.tensor({2, 0}, "i64")):totable(), {4, 1})
    check.eq((i64 ^ 0.5).dtype, "f32")
    check.errors(function() return b - b end, "bool")
  end)

  test("integer arithmetic wraps instead of overflowing", function()
    local big = sg.tensor({math.maxinteger}, "i64")
    check.eq((big + 1):item(), math.mininteger)
    check.eq((sg.tensor({250}, "u8") + sg.tensor({10}, "u8")):item(), 4)
  end)

  test("non-contiguous inputs: transposed, sliced, expanded", function()
    local a = sg.arange(6):view(2, 3):float()
    local t = a:t()                                  -- [3,2], strides {1,3}
    check.truthy(not t:is_contiguous())
    check.eq((t + 1):totable(), {{1, 4}, {2, 5}, {3, 6}})
    check.eq((t * t):totable(), {{0, 9}, {1, 16}, {4, 25}})
    check.eq((t + t:contiguous()):totable(), {{0, 6}, {2, 8}, {4, 10}})
    check.eq(t:exp():log():sub(t):abs():amax():item() < 1e-5, true)
    local s = sg.arange(10):float():slice(1, 2, 10, 3)  -- {1, 4, 7}
    check.eq(s:totable(), {1, 4, 7})
    check.eq((s * 2):totable(), {2, 8, 14})
    check.eq(s:neg():totable(), {-1, -4, -7})
    local e = sg.tensor({{1}, {2}}):expand(2, 3)
    check.eq((e + sg.tensor({10, 20, 30})):totable(), {{11, 21, 31}, {12, 22, 32}})
    check.near(e:sqrt():square(), {{1, 1, 1}, {2, 2, 2}}, 1e-6)
    check.eq(sg.where(e:gt(1), t:t(), e):totable(), {{1, 1, 1}, {3, 4, 5}})
    -- f64 and f16 through the strided reference paths
    check.eq((a:double():t() * 2):totable(), {{0, 6}, {2, 8}, {4, 10}})
    check.eq((a:to("f16"):t() + 1):to("f64"):totable(), {{1, 4}, {2, 5}, {3, 6}})
  end)

  test("in-place variants", function()
    local t = sg.tensor({1, 2, 3})
    local r = t:add_(1)
    check.eq(rawequal(r, t), true)
    check.eq(t:totable(), {2, 3, 4})
    t:sub_(sg.tensor({1, 1, 1})); check.eq(t:totable(), {1, 2, 3})
    t:mul_(2); check.eq(t:totable(), {2, 4, 6})
    t:div_(sg.tensor(2)); check.eq(t:totable(), {1, 2, 3})
    t:pow_(2); check.eq(t:totable(), {1, 4, 9})
    t:sqrt_(); check.eq(t:totable(), {1, 2, 3})
    t:neg_(); check.eq(t:totable(), {-1, -2, -3})
    t:abs_(); check.eq(t:totable(), {1, 2, 3})
    t:clamp_(1.5, 2.5); check.eq(t:totable(), {1.5, 2, 2.5})
    t:maximum_(sg.tensor({2, 2, 2})); check.eq(t:totable(), {2, 2, 2.5})
    t:exp_():log_(); check.near(t, {2, 2, 2.5}, 1e-6)
    t:relu_(); t:sigmoid_(); t:tanh_()
    check.eq(t.shape, {3})
    local i = sg.tensor({1, 2}, "i64")
    i:add_(3); check.eq(i:totable(), {4, 5})
    i:mul_(sg.tensor({true, false}, "bool")); check.eq(i:totable(), {4, 0})
    -- broadcast source into the destination
    local m = sg.zeros(2, 3)
    m:add_(sg.tensor({1, 2, 3})); check.eq(m:totable(), {{1, 2, 3}, {1, 2, 3}})
    -- in place through a view writes the base
    local base = sg.zeros(2, 2)
    base[1]:add_(5)
    check.eq(base:totable(), {{5, 5}, {0, 0}})
    base:t():mul_(sg.tensor({1, 2}))
    check.eq(base:totable(), {{5, 5}, {0, 0}})
    -- version counter
    local v0 = base.version; base:add_(1); check.eq(base.version, v0 + 1)
    -- fill_ / zero_ / copy_
    local f = sg.zeros(2, 2); f:fill_(3); check.eq(f:totable(), {{3, 3}, {3, 3}})
    f:zero_(); check.eq(f:totable(), {{0, 0}, {0, 0}})
    f:copy_(sg.tensor({1, 2}, "i64")); check.eq(f:totable(), {{1, 2}, {1, 2}})
  end)

  test("in-place errors", function()
    local leaf = sg.tensor({1, 2}):requires_grad()
    check.errors(function() leaf:add_(1) end, "leaf tensor that requires grad cannot be modified in place")
    check.errors(function() leaf:exp_() end, "leaf tensor that requires grad")
    check.errors(function() leaf:clamp_(0, 1) end, "leaf tensor that requires grad")
    sg.no_grad(function() leaf:add_(1) end) -- allowed without grad
    check.eq(leaf:totable(), {2, 3})
    local i = sg.tensor({1, 2}, "i64")
    check.errors(function() i:add_(1.5) end, "cannot be stored in place into a i64 tensor")
    check.errors(function() i:div_(2) end, "the result type f32 cannot be stored in place into a i64 tensor")
    check.errors(function() i:exp_() end, "cannot be stored in place")
    check.errors(function() sg.tensor({true}, "bool"):add_(sg.tensor({2}, "i64")) end, "into a bool tensor")
    check.errors(function() sg.zeros(3):add_(sg.zeros(2, 3)) end, "does not fit the destination")
    check.errors(function() sg.zeros(3):add_(sg.zeros(4)) end, "cannot be broadcast")
    check.eq(i:totable(), {1, 2}) -- nothing was written
  end)
end
