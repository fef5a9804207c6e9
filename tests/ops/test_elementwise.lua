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
