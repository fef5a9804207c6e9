-- Indexing (the index family of the device table): the index-map ops flip, roll, pad, repeat, index_select;
-- gather, scatter, scatter_add; one_hot and the index checks. Every backend against the reference on random
-- shapes, dims, strided inputs and dtypes (integers included), bit for bit: they move data, and sums run in
-- index order everywhere. Out-of-range indices give the same error on every backend; empty tensors; the
-- reference's gradients against finite differences.
local B = require "tests.ops.backends"

local DTYPES = {"f32", "f64", "f16", "bf16", "i64", "i32", "u8"}

-- a random tensor of dtype dt (integers small enough for u8)
local function rand(shape, dt)
  if dt == "i64" or dt == "i32" or dt == "u8" then return sg.randint(0, 200, shape):to(dt) end
  return sg.randn(shape):to(dt)
end

local function rshape(r, nd)
  local s = {}
  for d = 1, nd do s[d] = r(1, 5) end
  return s
end

test("index maps: flip, roll, pad, repeat, index_select match the reference on every backend and dtype", function()
  sg.manual_seed(31)
  math.randomseed(31)
  local r = math.random
  for k = 1, 12 do
    local nd = r(1, 4)
    local shape = rshape(r, nd)
    local dim = r(1, nd)
    for _, dt in ipairs(DTYPES) do
      local x = rand(shape, dt)
      local what = string.format("#%d {%s} dim %d %s", k, table.concat(shape, ","), dim, dt)
      B.compare("flip " .. what, function(t) return t:flip(dim) end, {x}, {exact = true})
      -- the random parameters are drawn once, outside the functions every backend runs
      local s1, s2, w = r(-7, 7), r(-9, 9), shape[nd]
      local pc, pr, pp = {r(0, 2), r(-1, 2)}, {r(0, w - 1), r(0, w - 1)}, {r(0, 3), r(0, 3)}
      B.compare("roll " .. what, function(t) return t:roll(s1, dim) end, {x}, {exact = true})
      B.compare("roll flattened " .. what, function(t) return t:roll(s2) end, {x}, {exact = true})
      B.compare("pad constant " .. what, function(t) return t:pad(pc, "constant", 3) end, {x}, {exact = true})
      -- constant padding of the outer dims too: whole rows of the fill value
      local pall = {}
      for k2 = 1, nd do -- pairs from the last dim; crop only dims long enough
        local lo = shape[nd - k2 + 1] >= 3 and -1 or 0
        pall[2 * k2 - 1], pall[2 * k2] = r(lo, 2), r(lo, 2)
      end
      B.compare("pad constant every dim " .. what, function(t) return t:pad(pall, "constant", -2) end, {x},
        {exact = true})
      B.compare("pad reflect " .. what, function(t) return t:pad(pr, "reflect") end, {x}, {exact = true})
      B.compare("pad replicate " .. what, function(t) return t:pad(pp, "replicate") end, {x}, {exact = true})
      local reps = {}
      for d = 1, nd + 1 do reps[d] = r(1, 3) end
      B.compare("repeat " .. what, function(t) return t:repeat_tensor(reps) end, {x}, {exact = true})
      local ix = sg.randint(0, shape[dim], {r(0, 7)})
      B.compare("index_select " .. what, function(t, i) return t:index_select(dim, i) end, {x, ix}, {exact = true})
    end
  end
end)

test("index maps: strided (transposed, narrowed) inputs and several dims at once", function()
  sg.manual_seed(32)
  for _, dt in ipairs{"f32", "f64", "i64", "u8"} do
    local strided = function(f) return function(t) return f(t:transpose(1, 3):narrow(2, 2, 3)) end end
    local x = rand({4, 5, 6}, dt)
    B.compare("flip strided " .. dt, strided(function(t) return t:flip(1, 3) end), {x}, {exact = true})
    B.compare("roll strided " .. dt, strided(function(t) return t:roll({2, -1}, {1, 2}) end), {x}, {exact = true})
    B.compare("pad strided " .. dt, strided(function(t) return t:pad({1, 2, 2, 1, 0, 1}, "replicate") end), {x},
      {exact = true})
    B.compare("pad constant strided " .. dt, strided(function(t) return t:pad({1, 0, 2, 1, 1, 1}, "constant", 7) end),
      {x}, {exact = true})
    B.compare("repeat strided " .. dt, strided(function(t) return t:repeat_tensor{2, 1, 3, 2} end), {x}, {exact = true})
    B.compare("index_select strided " .. dt,
      function(t, i) return t:transpose(1, 3):narrow(2, 2, 3):index_select(3, i) end,
      {x, sg.tensor({3, 0, 3, 1}, "i64")}, {exact = true})
  end
end)

test("gather, scatter, scatter_add match the reference: every dim, smaller index shapes, repeated indices", function()
  sg.manual_seed(33)
  math.randomseed(33)
  local r = math.random
  for k = 1, 16 do
    local nd = r(1, 4)
    local shape = rshape(r, nd)
    local dim = r(1, nd)
    local ishape = {}
    for d = 1, nd do ishape[d] = d == dim and r(1, 6) or r(1, shape[d]) end
    local ix = sg.randint(0, shape[dim], ishape)
    for _, dt in ipairs(DTYPES) do
      local what = string.format("#%d {%s} dim %d index {%s} %s", k, table.concat(shape, ","), dim,
        table.concat(ishape, ","), dt)
      local x, src = rand(shape, dt), rand(ishape, dt)
      B.compare("gather " .. what, function(t, i) return t:gather(dim, i) end, {x, ix}, {exact = true})
      B.compare("scatter " .. what, function(t, i, s) return t:scatter(dim, i, s) end, {x, ix, src}, {exact = true})
      B.compare("scatter_add " .. what, function(t, i, s) return t:scatter_add(dim, i, s) end, {x, ix, src},
        {exact = true})
    end
    -- a strided input and a src larger than the index
    local x = sg.randn(shape):transpose(1, nd)
    local ix2 = sg.randint(0, x.shape[dim], x.shape)
    local big = {}
    for d = 1, nd do big[d] = x.shape[d] + 1 end
    B.compare("gather strided #" .. k, function(t, i) return t:gather(dim, i) end, {x, ix2}, {exact = true})
    B.compare("scatter_add strided, larger src #" .. k,
      function(t, i, s) return t:scatter_add(dim, i, s) end, {x, ix2, sg.randn(big)}, {exact = true})
  end
  -- many repeated indices: the sums' order decides the bits
  local x, src = sg.zeros(3, 4), sg.randn(3, 200)
  B.compare("scatter_add repeated", function(t, i, s) return t:scatter_add(2, i, s) end,
    {x, sg.randint(0, 4, {3, 200}), src}, {exact = true})
  B.compare("scatter repeated (the last wins)", function(t, i, s) return t:scatter(2, i, s) end,
    {x, sg.randint(0, 4, {3, 200}), src}, {exact = true})
end)

test("one_hot matches the reference: label dtypes, classes given or inferred", function()
  sg.manual_seed(34)
  for _, dt in ipairs{"i64", "i32", "u8"} do
    for _, shape in ipairs{{7}, {2, 3, 4}, {1}, {3, 1, 2}} do
      local l = sg.randint(0, 5, shape):to(dt)
      B.compare("one_hot given " .. dt, function(t) return sg.one_hot(t, 6) end, {l}, {exact = true})
      B.compare("one_hot inferred " .. dt, function(t) return sg.one_hot(t) end, {l}, {exact = true})
    end
  end
  for _, be in ipairs{"reference", "cpu", table.unpack(B.list(), 2)} do
    local o = B.on(be, function(dev) return sg.one_hot(sg.tensor({2, 0}, "i64"):to(dev)):cpu() end)
    check.eq(o:totable(), {{0, 0, 1}, {1, 0, 0}}, be)
  end
end)

-- fn(dev) fails with the same message (but for the position of the calling line) on every backend, and it has `want`
local function same_error(name, want, fn)
  local first
  for _, be in ipairs{"reference", "cpu", table.unpack(B.list(), 2)} do
    local ok, err = pcall(B.on, be, fn)
    check.eq(ok, false, name .. ": " .. be .. " must fail")
    err = tostring(err):gsub("^[^:]*:%d+: ", "")
    check.truthy(err:find(want, 1, true), name .. ": " .. be .. ": " .. err)
    first = first or err
    check.eq(err, first, name .. ": " .. be .. " gives another message")
  end
end

test("out-of-range indices: the same clear error on every backend", function()
  local i64 = function(v) return sg.tensor(v, "i64") end
  same_error("gather", "gather: index 4 is out of range for dim 2 of size 4",
    function(d) return sg.randn(3, 4):to(d):gather(2, i64{{0}, {4}, {1}}:to(d)) end)
  same_error("gather negative", "gather: index -1 is out of range for dim 1 of size 3",
    function(d) return sg.randn(3, 4):to(d):gather(1, i64{{0, -1}}:to(d)) end)
  same_error("scatter", "scatter: index 7 is out of range for dim 1 of size 3",
    function(d) return sg.zeros(3, 4):to(d):scatter(1, i64{{7, 0}}:to(d), sg.ones(1, 2):to(d)) end)
  same_error("scatter_add", "scatter_add: index 5 is out of range for dim 2 of size 4",
    function(d) return sg.zeros(2, 4):to(d):scatter_add(2, i64{{1, 5}}:to(d), sg.ones(1, 2):to(d)) end)
  same_error("index_select", "index_select: index 3 is out of range for dim 1 of size 3",
    function(d) return sg.randn(3, 2):to(d):index_select(1, sg.tensor({0, 3}, "i32"):to(d)) end)
  same_error("one_hot", "one_hot: label 4 is out of range for 3 classes",
    function(d) return sg.one_hot(i64{0, 4, 1}:to(d), 3) end)
  same_error("one_hot negative", "one_hot: label -2 is out of range for 1 classes",
    function(d) return sg.one_hot(i64{0, -2}:to(d)) end)
  same_error("one_hot empty", "one_hot: cannot infer the number of classes from empty labels",
    function(d) return sg.one_hot(sg.zeros(0, "i64"):to(d)) end)
end)

test("empty tensors: empty inputs, indices and results on every backend", function()
  local e = sg.zeros(0, "i64")
  B.compare("flip empty", function(t) return t:flip(2) end, {sg.randn(3, 0)}, {exact = true})
  B.compare("roll empty", function(t) return t:roll(2, 1) end, {sg.randn(0, 4)}, {exact = true})
  B.compare("pad empty dim", function(t) return t:pad({1, 2}) end, {sg.randn(0, 3)}, {exact = true})
  B.compare("pad to empty", function(t) return t:pad({-2, -1}) end, {sg.randn(2, 3)}, {exact = true})
  B.compare("repeat zero times", function(t) return t:repeat_tensor{0, 2} end, {sg.randn(2, 3)}, {exact = true})
  B.compare("index_select empty index", function(t, i) return t:index_select(1, i) end, {sg.randn(3, 2), e},
    {exact = true})
  B.compare("gather empty index", function(t, i) return t:gather(2, i) end, {sg.randn(3, 4), sg.zeros({3, 0}, "i64")},
    {exact = true})
  B.compare("scatter_add empty index", function(t, i, s) return t:scatter_add(1, i, s) end,
    {sg.randn(3, 4), sg.zeros({0, 4}, "i64"), sg.randn(0, 4)}, {exact = true})
  B.compare("one_hot empty labels", function(t) return sg.one_hot(t, 3) end, {sg.zeros({0, 2}, "i64")}, {exact = true})
end)

test("gradients: the reference against finite differences (f64)", function()
  sg.manual_seed(35)
  local x = sg.randn({3, 4, 5}, "f64")
  B.gradcheck("flip", function(t) return t:flip(1, 3) end, {x})
  B.gradcheck("roll", function(t) return t:roll({2, -3}, {2, 3}) end, {x})
  B.gradcheck("pad constant", function(t) return t:pad({2, -1, 1, 1}, "constant", 2) end, {x})
  B.gradcheck("pad reflect", function(t) return t:pad({3, 2, 1, 2}, "reflect") end, {x})
  B.gradcheck("pad replicate", function(t) return t:pad({4, 2, 0, 3}, "replicate") end, {x})
  B.gradcheck("repeat", function(t) return t:repeat_tensor{2, 1, 2, 1} end, {x})
  B.gradcheck("index_select repeated", function(t) return t:index_select(2, sg.tensor({3, 0, 3, 3}, "i64")) end,
    {x})
  local ix = sg.randint(0, 4, {3, 6, 5})
  B.gradcheck("gather", function(t) return t:gather(2, ix) end, {x})
  -- scatter's src gradient is defined where no two src elements land on one position: distinct along dim
  local sv = {}
  for i = 1, 2 do
    sv[i] = {}
    for j = 1, 3 do
      sv[i][j] = {}
      for k = 1, 5 do sv[i][j][k] = (i + j + k) % 4 end
    end
  end
  local sx = sg.tensor(sv, "i64")
  B.gradcheck("scatter", function(t, s) return t:scatter(2, sx, s) end, {x, sg.randn({2, 3, 5}, "f64")})
  B.gradcheck("scatter_add", function(t, s) return t:scatter_add(2, sx, s) end, {x, sg.randn({3, 4, 6}, "f64")})
  -- and the backends' gradients of the same ops against the reference's, f64 and f32
  for _, dt in ipairs{"f32", "f64"} do
    local y = sg.randn({3, 4, 5}, dt)
    B.compare("pad reflect grad " .. dt, function(t) return t:pad({3, 2, 1, 2}, "reflect") end, {y}, {exact = true})
    B.compare("scatter grads " .. dt, function(t, i, s) return t:scatter(2, i, s) end,
      {y, sx, sg.randn({2, 3, 5}, dt)}, {exact = true})
  end
end)
