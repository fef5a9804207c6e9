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
