-- Joining, splitting, indexing and rearranging ops: values (golden values from
-- PyTorch 1.13), gradients (gradcheck in f64) and error messages.

local function flat(t) return t:reshape(-1):totable() end
local function i64(v) return sg.tensor(v, "i64") end
-- exact comparison of a (float) tensor with nested Lua numbers
local function same(t, want) check.near(t, want, 0, 0) end

-- ------------------------------------------------------------------ cat / stack
test("cat joins along a dim, negative dims count from the end", function()
  local a = sg.arange(6):view(2, 3)
  local b = sg.arange(6, 12):view(2, 3)
  check.eq(sg.cat({a, b}).shape, {4, 3})
  check.eq(flat(sg.cat({a, b}, 1)), {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
  check.eq(sg.cat({a, b}, -1):totable(), {{0, 1, 2, 6, 7, 8}, {3, 4, 5, 9, 10, 11}})
  check.eq(sg.cat({a, b:narrow(2, 1, 1), a}, 2).shape, {2, 7})
  check.eq(sg.cat({a}):totable(), a:totable())
  check.eq(sg.cat({a, sg.zeros(0, 3, "i64")}, 1).shape, {2, 3})
end)

test("cat promotes dtypes and reads non-contiguous inputs", function()
  local a = sg.arange(6):view(2, 3)
  local r = sg.cat({a, a:float() * 0.5}, 1)
  check.eq(r.dtype, "f32")
  check.near(r, {{0, 1, 2}, {3, 4, 5}, {0, 0.5, 1}, {1.5, 2, 2.5}})
  local t = a:transpose(1, 2)
  check.eq(sg.cat({t, t}, 2):totable(), {{0, 3, 0, 3}, {1, 4, 1, 4}, {2, 5, 2, 5}})
end)

test("cat gradients, also for more than four inputs", function()
  sg.manual_seed(1)
  local a, b, c = sg.randn(2, 3), sg.randn(2, 1), sg.randn(2, 2)
  check.grad(function(x, y, z) return sg.cat({x, y, z}, 2) end, {a:requires_grad(), b:requires_grad(), c})
  local xs = {}
  for i = 1, 7 do xs[i] = sg.randn(i % 3 + 1, 2):requires_grad() end
  check.grad(function(...) return sg.cat({...}, 1) end, xs)
  -- mixed dtypes with grad: the f32 inputs get f32 gradients
  local p, q = sg.randn(1, 2):requires_grad(), sg.randn(1, 2, "f64"):requires_grad()
  local outs = {}
  for i = 1, 5 do outs[i] = i % 2 == 0 and p or q end
  local r = sg.cat(outs, 1)
  check.eq(r.dtype, "f64")
  r:sum():backward()
  check.eq(p.grad.dtype, "f32")
  check.near(p.grad, {{2, 2}})
  check.near(q.grad, {{3, 3}})
end)

test("cat errors name the op, the tensor and the shapes", function()
  local a, b = sg.zeros(2, 3), sg.zeros(2, 4)
  check.errors(function() return sg.cat({a, b}, 1) end, "cat: tensor 2 has shape [2,4], expected [*,3]")
  check.errors(function() return sg.cat({a, sg.zeros(3)}, 1) end, "cat: tensor 2 has shape [3]")
  check.errors(function() return sg.cat({}) end, "cat: expected a non-empty table")
  check.errors(function() return sg.cat(a) end, "cat: argument #1 must be a table of tensors")
  check.errors(function() return sg.cat({a, 3}) end, "cat: element 2 of the table must be a tensor (got number)")
  check.errors(function() return sg.cat({a, a}, 3) end, "cat: dim 3 is out of range")
  check.errors(function() return sg.cat({sg.tensor(1), sg.tensor(2)}) end, "0-dim")
end)

test("stack adds a dim; gradients; errors", function()
  local a, b = sg.tensor{1, 2}, sg.tensor{3, 4}
  same(sg.stack({a, b}), {{1, 2}, {3, 4}})
  same(sg.stack({a, b}, 2), {{1, 3}, {2, 4}})
  same(sg.stack({a, b}, -1), {{1, 3}, {2, 4}})
  same(sg.stack({sg.tensor(1), sg.tensor(2)}), {1, 2})
  sg.manual_seed(2)
  local xs = {}
  for i = 1, 6 do xs[i] = sg.randn(2, 3):requires_grad() end
  check.grad(function(...) return sg.stack({...}, 2) end, xs)
  check.errors(function() return sg.stack({a, sg.zeros(3)}) end,
    "stack: tensor 2 has shape [3], expected [2] like tensor 1")
  check.errors(function() return sg.stack({a, a}, 3) end, "stack: dim 3 is out of range")
end)

-- ------------------------------------------------------------------ split / chunk
test("split and chunk give views like PyTorch", function()
  local t = sg.arange(10):view(5, 2)
  local s = t:split(2)
  check.eq(#s, 3)
  check.eq(s[3]:totable(), {{8, 9}})
  check.truthy(s[2]:is_view_of(t))
  local u = t:split({1, 4}, 1)
  check.eq(u[2].shape, {4, 2})
  check.eq(#t:split(1, 2), 2)
  local c = t:chunk(2)
  check.eq(#c, 2); check.eq(c[1].shape, {3, 2}); check.eq(c[2].shape, {2, 2})
  check.eq(#sg.arange(6):chunk(4), 3) -- ceil(6/4) = 2 per chunk: 3 chunks, as PyTorch
  check.eq(#sg.arange(5):chunk(5), 5)
  check.eq(#sg.zeros(0):chunk(3), 1)
  local x = sg.randn(4, 3, "f64"):requires_grad()
  local parts = x:chunk(2, 1)
  ;(parts[1] * 2 + parts[2]):sum():backward()
  check.near(x.grad, {{2, 2, 2}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}})
  check.errors(function() return t:split({1, 1}) end, "split: sizes must add up to 5")
  check.errors(function() return t:split(0) end, "split: split size must be positive")
  check.errors(function() return t:chunk(0) end, "chunk: number of chunks must be positive")
  check.errors(function() return t:split(2, 3) end, "split: dim 3 is out of range")
end)

-- ------------------------------------------------------------------ gather / scatter
test("gather picks values along a dim (0-based indices)", function()
  local a = sg.arange(12):view(3, 4)
  check.eq(a:gather(2, i64{{3, 0}, {1, 1}, {2, 0}}):totable(), {{3, 0}, {5, 5}, {10, 8}})
  check.eq(a:gather(1, i64{{2, 0, 1, 1}}):totable(), {{8, 1, 6, 7}})
  check.eq(a:transpose(1, 2):gather(1, i64{{0, 2, 1}}):totable(), {{0, 6, 9}})
  check.eq(a:gather(2, sg.tensor({{1}, {2}, {3}}, "i32")):totable(), {{1}, {6}, {11}})
  check.eq(a:gather(2, i64{{}, {}, {}}).shape, {3, 0})
end)

test("gather gradient accumulates repeated indices", function()
  sg.manual_seed(3)
  local x = sg.randn(3, 4)
  check.grad(function(t) return t:gather(2, i64{{0, 0, 3}, {1, 2, 1}, {3, 3, 3}}) end, {x:requires_grad()})
  check.grad(function(t) return t:gather(1, i64{{2, 0, 1, 2}, {2, 2, 0, 0}}) end, {x})
  local y = sg.zeros(2, 3):requires_grad()
  y:gather(2, i64{{1, 1}, {0, 2}}):sum():backward()
  check.near(y.grad, {{0, 2, 0}, {1, 0, 1}})
end)

test("scatter and scatter_add", function()
  local i = i64{{0, 2, 1, 0}, {2, 2, 0, 1}}
  local src = sg.arange(8):view(2, 4):float()
  same(sg.zeros(3, 4):scatter_add(1, i, src), {{0, 0, 6, 3}, {0, 0, 2, 7}, {4, 6, 0, 0}})
  same(sg.zeros(3, 4):scatter(1, i64{{0, 2, 1, 0}}, src), {{0, 0, 0, 3}, {0, 0, 2, 0}, {0, 1, 0, 0}})
  same(sg.zeros(2, 3):scatter(2, i64{{2}, {0}}, 7), {{0, 0, 7}, {7, 0, 0}})
  check.eq(sg.zeros(2, 3, "i64"):scatter_add(2, i64{{1, 1}, {0, 2}}, i64{{1, 2}, {3, 4}}):totable(),
    {{0, 3, 0}, {3, 0, 4}})
  -- src larger than the index: only the index's corner is used
  same(sg.zeros(3):scatter(1, i64{2, 0}, sg.tensor{5, 6, 7}), {6, 0, 5})
  -- the input is not modified
  local z = sg.zeros(2)
  z:scatter(1, i64{1}, 3)
  same(z, {0, 0})
end)

test("scatter gradients flow to the input and to src", function()
  sg.manual_seed(4)
  local a, s = sg.randn(3, 4), sg.randn(2, 5)
  local idx = i64{{0, 2, 1, 0}, {1, 0, 2, 2}} -- no repeats within a column: scatter is well defined
  check.grad(function(x, y) return x:scatter(1, idx, y) end, {a:requires_grad(), s:requires_grad()})
  local rep = i64{{0, 2, 1, 0}, {0, 2, 2, 1}}
  check.grad(function(x, y) return x:scatter_add(1, rep, y) end, {a, s})
  check.grad(function(x, y) return x:scatter_add(2, i64{{3, 3}, {0, 1}, {2, 2}}, y) end, {a, sg.randn(3, 2):requires_grad()})
  -- the value form: no gradient at overwritten positions
  local b = sg.ones(2, 2):requires_grad()
  b:scatter(2, i64{{1}, {0}}, 0):sum():backward()
  check.near(b.grad, {{1, 0}, {0, 1}})
end)

test("gather and scatter errors", function()
  local a = sg.zeros(3, 4)
  check.errors(function() return a:gather(2, i64{{4}}) end,
    "gather: index 4 is out of range for dim 2 of size 4 (indices count from 0)")
  check.errors(function() return a:gather(2, i64{{-1}}) end, "index -1 is out of range")
  check.errors(function() return a:gather(2, sg.tensor{{1}}) end, "gather: index must be an integer tensor")
  check.errors(function() return a:gather(2, i64{1, 2}) end,
    "gather: index of shape [2] has 1 dims but the input of shape [3,4] has 2")
  check.errors(function() return a:gather(2, i64{{0}, {0}, {0}, {0}}) end,
    "gather: index of shape [4,1] is larger than the input of shape [3,4] in dim 1")
  check.errors(function() return a:gather(3, i64{{0}}) end, "gather: dim 3 is out of range")
  check.errors(function() return a:gather(1, "x") end, "gather: argument #3 must be a tensor")
  check.errors(function() return a:scatter(1, i64{{3}}, 1) end, "scatter: index 3 is out of range for dim 1 of size 3")
  check.errors(function() return a:scatter(1, i64{{0, 0}}, sg.zeros(1, 1)) end,
    "scatter: index of shape [1,2] is larger than src of shape [1,1] in dim 2")
  check.errors(function() return a:scatter_add(1, i64{{0}}, {}) end, "scatter_add: argument #4 must be a tensor or a number")
  check.errors(function() return sg.zeros(2, "i64"):scatter(1, i64{0}, sg.tensor{1.5}) end,
    "scatter: cannot write a f32 src into a i64 tensor")
end)

-- ------------------------------------------------------------------ index_select / one_hot
test("index_select and its gradient", function()
  local a = sg.arange(12):view(3, 4)
  check.eq(a:index_select(1, i64{2, 0, 2}):totable(), {{8, 9, 10, 11}, {0, 1, 2, 3}, {8, 9, 10, 11}})
  check.eq(a:index_select(-1, sg.tensor({3, 1}, "i32")):totable(), {{3, 1}, {7, 5}, {11, 9}})
  check.eq(a:index_select(2, i64(1)).shape, {3, 1})
  check.eq(a:index_select(1, sg.zeros(0, "i64")).shape, {0, 4})
  sg.manual_seed(5)
  check.grad(function(x) return x:index_select(2, i64{1, 1, 0, 3}) end, {sg.randn(2, 4):requires_grad()})
  check.grad(function(x) return x:transpose(1, 2):index_select(1, i64{2, 2}) end, {sg.randn(2, 4):requires_grad()})
  check.errors(function() return a:index_select(1, i64{3}) end, "index_select: index 3 is out of range for dim 1 of size 3")
  check.errors(function() return a:index_select(1, i64{{0}}) end, "index_select: index must be 1-D, got shape [1,1]")
  check.errors(function() return a:index_select(1, sg.tensor{0}) end, "index_select: index must be an integer tensor")
end)

test("one_hot", function()
  local oh = sg.one_hot(i64{0, 2, 1}, 4)
  check.eq(oh.dtype, "i64")
  check.eq(oh:totable(), {{1, 0, 0, 0}, {0, 0, 1, 0}, {0, 1, 0, 0}})
  check.eq(sg.one_hot(i64{{0, 2}, {1, 1}}).shape, {2, 2, 3})
  check.eq(sg.tensor({1, 0}, "u8"):one_hot():totable(), {{0, 1}, {1, 0}})
  -- N x H x W labels -> N x C x H x W like a segmentation target
  local y = i64{{{0, 1}, {2, 1}}}
  check.eq(sg.one_hot(y, 3):permute(1, 4, 2, 3):totable(),
    {{{{1, 0}, {0, 0}}, {{0, 1}, {0, 1}}, {{0, 0}, {1, 0}}}})
  check.errors(function() return sg.one_hot(sg.tensor({0, 255}, "u8"), 3) end,
    "one_hot: label 255 is out of range for 3 classes")
  check.errors(function() return sg.one_hot(i64{-1}, 3) end, "label -1 is out of range")
  check.errors(function() return sg.one_hot(sg.tensor{1.0}, 3) end, "one_hot: labels must be an integer tensor")
  check.errors(function() return sg.one_hot(sg.zeros(0, "i64")) end, "cannot infer the number of classes")
end)

-- ------------------------------------------------------------------ flip / roll
test("flip", function()
  local a = sg.arange(6):view(2, 3)
  check.eq(a:flip(2):totable(), {{2, 1, 0}, {5, 4, 3}})
  check.eq(a:flip{1, 2}:totable(), {{5, 4, 3}, {2, 1, 0}})
  check.eq(a:flip(1, -1):totable(), {{5, 4, 3}, {2, 1, 0}})
  check.eq(a:transpose(1, 2):flip(1):totable(), {{2, 5}, {1, 4}, {0, 3}})
  check.eq(sg.tensor({true, false}, "bool"):flip(1):totable(), {false, true})
  check.eq(a:flip(2):flip(2):totable(), a:totable())
  sg.manual_seed(6)
  check.grad(function(x) return x:flip{1, 3} end, {sg.randn(2, 3, 2):requires_grad()})
  check.errors(function() return a:flip() end, "flip: give the dims to flip")
  check.errors(function() return a:flip{2, 2} end, "flip: dim 2 is given twice")
  check.errors(function() return a:flip(3) end, "flip: dim 3 is out of range")
end)

test("roll", function()
  local a = sg.arange(12):view(3, 4)
  check.eq(a:roll({1, -2}, {1, 2}):totable(), {{10, 11, 8, 9}, {2, 3, 0, 1}, {6, 7, 4, 5}})
  check.eq(a:roll(5):totable(), {{7, 8, 9, 10}, {11, 0, 1, 2}, {3, 4, 5, 6}})
  check.eq(a:roll(1, 2):totable(), {{3, 0, 1, 2}, {7, 4, 5, 6}, {11, 8, 9, 10}})
  check.eq(a:roll(4, 2):totable(), a:totable())
  check.eq(a:roll(-13, 2):totable(), a:roll(-1, 2):totable())
  check.eq(a:roll({1, 1}, {2, 2}):totable(), a:roll(2, 2):totable())
  sg.manual_seed(7)
  check.grad(function(x) return x:roll({2, -1}, {1, 2}) end, {sg.randn(3, 4):requires_grad()})
  check.grad(function(x) return x:roll(3) end, {sg.randn(2, 3):requires_grad()})
  check.errors(function() return a:roll({1, 2}) end, "roll: 2 shifts given without dims")
  check.errors(function() return a:roll({1, 2}, 1) end, "roll: 2 shifts for 1 dims")
  check.errors(function() return a:roll(1.5, 1) end, "roll: shift must be an integer")
end)

-- ------------------------------------------------------------------ pad
test("pad constant, reflect and replicate match PyTorch", function()
  local x = sg.arange(24):view(1, 2, 3, 4):float()
  same(x:pad({2, 1, 1, 2}, "reflect"):reshape(-1), {6, 5, 4, 5, 6, 7, 6, 2, 1, 0, 1, 2, 3, 2, 6, 5, 4, 5, 6, 7, 6, 10,
    9, 8, 9, 10, 11, 10, 6, 5, 4, 5, 6, 7, 6, 2, 1, 0, 1, 2, 3, 2, 18, 17, 16, 17, 18, 19, 18, 14, 13, 12, 13, 14,
    15, 14, 18, 17, 16, 17, 18, 19, 18, 22, 21, 20, 21, 22, 23, 22, 18, 17, 16, 17, 18, 19, 18, 14, 13, 12, 13, 14,
    15, 14})
  check.eq(x:pad({2, 1, 1, 2}, "reflect").shape, {1, 2, 6, 7})
  same(x:pad({1, 3, 2, 0}, "replicate"):reshape(-1), {0, 0, 1, 2, 3, 3, 3, 3, 0, 0, 1, 2, 3, 3, 3, 3, 0, 0, 1, 2, 3, 3,
    3, 3, 4, 4, 5, 6, 7, 7, 7, 7, 8, 8, 9, 10, 11, 11, 11, 11, 12, 12, 13, 14, 15, 15, 15, 15, 12, 12, 13, 14, 15, 15,
    15, 15, 12, 12, 13, 14, 15, 15, 15, 15, 16, 16, 17, 18, 19, 19, 19, 19, 20, 20, 21, 22, 23, 23, 23, 23})
  -- negative padding crops
  same(x:pad({-1, 2, 1, -1}, "constant", 7):reshape(-1), {7, 7, 7, 7, 7, 1, 2, 3, 7, 7, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 13,
    14, 15, 7, 7, 17, 18, 19, 7, 7})
  same(sg.pad(sg.tensor{1, 2}, {1, 1}), {0, 1, 2, 0})
  check.eq(sg.tensor({1, 2}, "u8"):pad({0, 2}, "constant", 9):totable(), {1, 2, 9, 9})
  same(x:transpose(3, 4):pad({1, 0}, "replicate")[1][1][1], {0, 0, 4, 8})
  check.eq(x:pad({}).shape, {1, 2, 3, 4})
end)

test("pad gradients for every mode", function()
  sg.manual_seed(8)
  local x = sg.randn(1, 2, 3, 4):requires_grad()
  check.grad(function(t) return t:pad({1, 2, 2, 1}) end, {x})
  check.grad(function(t) return t:pad({-1, 2, 1, -1}, "constant", 3) end, {x})
  check.grad(function(t) return t:pad({3, 2, 2, 1}, "reflect") end, {x})
  check.grad(function(t) return t:pad({2, 3, 4, 1}, "replicate") end, {x})
  check.grad(function(t) return t:pad({1, 1}, "reflect") end, {sg.randn(2, 5):requires_grad()})
end)

test("pad errors", function()
  local x = sg.zeros(2, 3)
  check.errors(function() return x:pad({1}) end, "pad: paddings come in (before, after) pairs")
  check.errors(function() return x:pad({1, 1, 1, 1, 1, 1}) end, "pad: 3 pairs of paddings for a tensor of shape [2,3]")
  check.errors(function() return x:pad({3, 0}, "reflect") end,
    "pad: reflect padding (3, 0) must be less than the size 3 of dim 2")
  check.errors(function() return x:pad({1, 1}, "wrap") end, "pad: unknown mode 'wrap'")
  check.errors(function() return x:pad({-2, -2}) end, "gives a negative size")
  check.errors(function() return x:pad({1, 1}, "reflect", 3) end, "only applies to mode 'constant'")
  check.errors(function() return x:pad(1) end, "pad: argument #2 must be a table of paddings")
  check.errors(function() return x:pad({1, 2 ^ 60 // 1}) end, "pad:")
  check.errors(function() return sg.zeros(2, 0):pad({1, 1}, "replicate") end, "pad: replicate padding of the empty dim 2")
end)

-- ------------------------------------------------------------------ repeat / tile
test("repeat and tile", function()
  local a = sg.arange(12):view(3, 4)
  local r = a:repeat_tensor(2, 1, 3)
  check.eq(r.shape, {2, 3, 12})
  check.eq(flat(r), {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 8, 9, 10, 11, 8, 9, 10,
    11, 8, 9, 10, 11, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 8, 9, 10, 11, 8, 9, 10,
    11, 8, 9, 10, 11})
  check.eq(a["repeat"](a, {1, 1}):totable(), a:totable())
  same(sg.tensor{1, 2}:tile(2), {1, 2, 1, 2})
  check.eq(a:tile(2).shape, {3, 8})
  same(sg.tensor{{1}, {2}}:repeat_tensor(1, 3), {{1, 1, 1}, {2, 2, 2}})
  same(sg.tensor(5):repeat_tensor(2, 2), {{5, 5}, {5, 5}})
  check.eq(a:repeat_tensor(0, 2).shape, {0, 8})
  sg.manual_seed(9)
  check.grad(function(t) return t:repeat_tensor(2, 1, 3) end, {sg.randn(2, 2):requires_grad()})
  check.grad(function(t) return t:repeat_tensor(3, 2) end, {sg.randn(1, 2):requires_grad()})
  check.errors(function() return a:repeat_tensor(2) end, "repeat: 1 repeat counts for a tensor of 2 dims")
  check.errors(function() return a:repeat_tensor(-1, 1) end, "repeat: negative repeat count -1")
  check.errors(function() return a:repeat_tensor(2 ^ 40 // 1, 2 ^ 20 // 1) end, "too large")
end)

-- ------------------------------------------------------------------ others
test("masked_fill values and gradient", function()
  local a = sg.arange(4):float()
  same(a:masked_fill(a:gt(1), -1), {0, 1, -1, -1})
  sg.manual_seed(10)
  local m = sg.tensor({{true, false, true}}, "bool")
  check.grad(function(x) return x:masked_fill(m, 2) end, {sg.randn(2, 3):requires_grad()})
end)

test("16-bit float tensors keep their dtype and get gradients", function()
  for _, dt in ipairs{"f16", "bf16"} do
    local x = sg.tensor({{1, 2}, {3, 4}}, dt):requires_grad()
    local y = sg.cat({x:flip(1), x:pad({1, 0}, "replicate"), x:index_select(2, i64{0, 0, 1})}, 2)
    check.eq(y.dtype, dt)
    same(y, {{3, 4, 1, 1, 2, 1, 1, 2}, {1, 2, 3, 3, 4, 3, 3, 4}})
    y:sum():backward()
    check.eq(x.grad.dtype, dt)
    same(x.grad, {{5, 3}, {5, 3}})
  end
end)

test("no tensors leak through errors and backward", function()
  collectgarbage(); collectgarbage()
  local before = sg.memory_stats().tensors
  for _ = 1, 3 do
    local leaf = sg.randn(3, 4):requires_grad()
    local x = leaf * 1 -- the leaf gets one gradient (several uses meet at the mul node)
    local y = sg.cat({x, x:roll(1, 1), x:gather(2, i64{{0}, {1}, {2}}):repeat_tensor(1, 4)}, 1)
    y = y:pad({1, 1}, "reflect"):index_select(1, i64{0, 5}):scatter_add(1, i64{{1, 0, 0, 0, 1, 1}}, sg.ones(1, 6))
    y:sum():backward()
    pcall(function() return sg.cat({x, sg.zeros(2, 2)}) end)
    pcall(function() return x:gather(2, i64{{9}}) end)
    pcall(function() return sg.one_hot(i64{7}, 2) end)
  end
  collectgarbage(); collectgarbage()
  check.eq(sg.memory_stats().tensors, before)
end)
