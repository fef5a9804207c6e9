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
