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

-- ---------------------------------------------------------------- on the GPU (was tests/test_cuda_index.lua)
do
  -- Shape and index ops on the GPU against the CPU: cat, stack, split/chunk,
  -- flip, roll, pad, repeat/tile, index_select, gather, scatter, scatter_add,
  -- one_hot. They move data, so forward results must equal the CPU's bit for
  -- bit; the gradients sum in the CPU's order (no float atomics), so they must
  -- too. Every test skips when no CUDA device is usable.

  local CC = require("tests.cuda_compare")(check, skip)
  local need_cuda, host, dev, same_bits = CC.need_cuda, CC.host, CC.dev, CC.same_bits
  local function i64(shape, hi) return sg.randint(0, hi, shape) end

  -- f(x) on the CPU and on the GPU: the same values, and for float inputs the same
  -- gradient for a random output gradient.
  local function both(x, f, msg)
    local float = x.dtype == "f32" or x.dtype == "f64" or x.dtype == "bf16" or x.dtype == "f16"
    local xc = float and x:clone():requires_grad() or x
    local y = f(xc)
    local xd = float and dev(x):requires_grad() or dev(x)
    local yd = f(xd)
    check.eq(yd.device, "cuda", msg .. " device")
    same_bits(yd, y, msg .. " forward")
    if float then
      local gy = sg.randn(y.shape):to(y.dtype)
      y:backward(gy)
      yd:backward(dev(gy))
      check.eq(xd.grad.device, "cuda")
      same_bits(xd.grad, xc.grad, msg .. " gradient")
    end
  end

  -- the error f raises on the CPU is the one it raises on the GPU
  local function same_error(fc, fd, msg)
    local ok1, e1 = pcall(fc)
    local ok2, e2 = pcall(fd)
    check.eq(ok1, false, msg .. ": the CPU call must fail")
    check.eq(ok2, false, msg .. ": the GPU call must fail")
    local function strip(e) return (tostring(e):gsub("^[^:]*:%d+: ", "")) end -- the position of the calling line
    check.eq(strip(e2), strip(e1), msg)
  end

  -- ------------------------------------------------------------------ cat, stack, split, chunk
  test("cat and stack on the GPU: dtypes, strided inputs, many inputs, gradients", function()
    need_cuda()
    sg.manual_seed(201)
    local a, b, c = sg.randn(2, 3), sg.randn(2, 5), sg.randn(3, 2)
    for _, dim in ipairs{2, -1} do
      local r = sg.cat({dev(a), dev(b), dev(c):transpose(1, 2)}, dim)
      same_bits(r, sg.cat({a, b, c:transpose(1, 2)}, dim), "cat dim " .. dim)
    end
    same_bits(sg.cat({dev(a), dev(a):to("f64")}, 1), sg.cat({a, a:to("f64")}, 1), "promotion")
    same_bits(sg.cat({dev(sg.arange(6):view(2, 3)), dev(sg.zeros(0, 3, "i64"))}, 1), sg.arange(6):view(2, 3), "empty part")
    -- gradients, also through the grouping of more than four inputs
    local xs, xd = {}, {}
    for i = 1, 7 do xs[i] = sg.randn(i % 3 + 1, 4):requires_grad(); xd[i] = dev(xs[i]):requires_grad() end
    local y, yd = sg.cat(xs, 1), sg.cat(xd, 1)
    same_bits(yd, y, "cat of 7")
    local gy = sg.randn(y.shape)
    y:backward(gy)
    yd:backward(dev(gy))
    for i = 1, 7 do same_bits(xd[i].grad, xs[i].grad, "cat grad " .. i) end
    both(sg.randn(3, 4), function(t) return sg.stack({t, t:clone(), t:narrow(2, 1, 4)}, 2) end, "stack")
    both(sg.randn(3, 4), function(t) return sg.stack({t, t}, 1) end, "stack dim 1")
  end)

  test("cat refuses tensors on two devices", function()
    need_cuda()
    check.errors(function() return sg.cat({sg.ones(2), dev(sg.ones(2))}) end,
      "cat: expected all tensors on one device, got cpu (tensor 1) and cuda (tensor 2)")
    check.errors(function() return sg.stack({dev(sg.ones(2)), sg.ones(2)}) end, "expected all tensors on one device")
  end)

  test("split and chunk give GPU views; pieces join back", function()
    need_cuda()
    local t = sg.randn(10, 3)
    local d = dev(t)
    local ps, pd = t:split(4), d:split(4)
    check.eq(#pd, #ps)
    for k = 1, #ps do
      same_bits(pd[k], ps[k], "split piece " .. k)
      check.truthy(pd[k]:is_view_of(d), "a view")
    end
    local cs, cd = t:chunk(3, 2), d:chunk(3, 2)
    for k = 1, #cs do same_bits(cd[k], cs[k], "chunk piece " .. k) end
    same_bits(sg.cat(pd, 1), t, "rejoined")
    same_bits(sg.cat(d:split({1, 6, 3}), 1), t, "split sizes")
  end)

  -- ------------------------------------------------------------------ flip, roll, pad, repeat
  test("flip matches the CPU for dims, dtypes and strided inputs", function()
    need_cuda()
    sg.manual_seed(202)
    local x = sg.randn(3, 4, 5)
    both(x, function(t) return t:flip(1) end, "flip 1")
    both(x, function(t) return t:flip{2, 3} end, "flip 2,3")
    both(x, function(t) return t:flip{-1, 1, 2} end, "flip all")
    both(x, function(t) return t:transpose(1, 3):flip(2) end, "flip of a transposed view")
    both(x:to("bf16"), function(t) return t:flip(3) end, "bf16")
    both(x:to("f64"), function(t) return t:flip{1, 3} end, "f64")
    both(sg.randint(-9, 9, {4, 5}):to("i32"), function(t) return t:flip(1) end, "i32")
    both(sg.randn(300, 257), function(t) return t:flip{1, 2} end, "large")
  end)

  test("roll matches the CPU: shifts, several dims, flattened", function()
    need_cuda()
    sg.manual_seed(203)
    local x = sg.randn(4, 5, 6)
    both(x, function(t) return t:roll(2, 1) end, "roll 2 dim 1")
    both(x, function(t) return t:roll(-3, 3) end, "negative shift")
    both(x, function(t) return t:roll({1, 7}, {2, 3}) end, "two dims")
    both(x, function(t) return t:roll({1, 2}, {2, 2}) end, "a dim twice")
    both(x, function(t) return t:roll(11) end, "flattened")
    both(x:to("f64"), function(t) return t:permute{3, 1, 2}:roll(4, 1) end, "permuted f64")
    both(sg.arange(24):view(4, 6), function(t) return t:roll(-1, 2) end, "i64")
  end)

  test("pad matches the CPU: constant (with value), reflect, replicate, cropping", function()
    need_cuda()
    sg.manual_seed(204)
    local x = sg.randn(2, 3, 6, 7)
    both(x, function(t) return t:pad{1, 2} end, "constant last dim")
    both(x, function(t) return t:pad({2, 1, 3, 0}, "constant", 1.5) end, "constant value")
    both(x, function(t) return t:pad({2, 3, 1, 4}, "reflect") end, "reflect")
    both(x, function(t) return t:pad({5, 5, 4, 4}, "replicate") end, "replicate (large)")
    both(x, function(t) return t:pad{-1, 2, 0, -2} end, "negative padding crops")
    both(x, function(t) return t:pad({1, 1, 1, 1, 1, 1}) end, "three dims")
    both(x:to("bf16"), function(t) return t:pad({3, 2, 2, 3}, "reflect") end, "bf16 reflect")
    both(x:to("f64"), function(t) return t:transpose(3, 4):pad({1, 2}, "replicate") end, "f64 strided")
    both(sg.arange(12):view(3, 4), function(t) return t:pad({1, 1}, "constant", 7) end, "i64 value")
    both(sg.randn(4, 1, 64, 64), function(t) return t:pad({8, 8, 8, 8}, "reflect") end, "image")
  end)

  test("repeat and tile match the CPU, with leading dims", function()
    need_cuda()
    sg.manual_seed(205)
    local x = sg.randn(2, 3)
    both(x, function(t) return t:repeat_tensor{2, 3} end, "repeat")
    both(x, function(t) return t:repeat_tensor{4, 1, 2} end, "a leading dim")
    both(x, function(t) return t:repeat_tensor{2, 2, 1, 3} end, "two leading dims")
    both(x, function(t) return t:repeat_tensor{1, 0} end, "zero count")
    both(x, function(t) return t:tile{3} end, "tile")
    both(x:to("f16"), function(t) return t:transpose(1, 2):repeat_tensor{3, 2} end, "f16 transposed")
    both(sg.randn(1, 3, 8, 8), function(t) return t:repeat_tensor{2, 1, 3, 3} end, "image")
    both(sg.tensor(2.5), function(t) return t:repeat_tensor{3} end, "0-dim")
  end)

  test("index_select matches the CPU, with repeated indices and a GPU index", function()
    need_cuda()
    sg.manual_seed(206)
    local x = sg.randn(5, 6, 7)
    for dim = 1, 3 do
      local idx = i64({9}, x.shape[dim])
      local xc = x:clone():requires_grad()
      local y = xc:index_select(dim, idx)
      local xd = dev(x):requires_grad()
      local yd = xd:index_select(dim, dev(idx))
      same_bits(yd, y, "dim " .. dim)
      local gy = sg.randn(y.shape)
      y:backward(gy)
      yd:backward(dev(gy))
      same_bits(xd.grad, xc.grad, "gradient dim " .. dim .. " (repeated indices sum in order)")
    end
    same_bits(dev(x):index_select(2, dev(sg.tensor({}, "i64"))), x:index_select(2, sg.tensor({}, "i64")), "empty")
    same_bits(dev(sg.arange(10)):index_select(1, dev(sg.tensor({3, 3, 0}, "i32"))),
      sg.arange(10):index_select(1, sg.tensor({3, 3, 0}, "i32")), "i32 index, i64 data")
    same_error(function() return x:index_select(2, sg.tensor({1, 6}, "i64")) end,
      function() return dev(x):index_select(2, dev(sg.tensor({1, 6}, "i64"))) end, "out of range")
    check.errors(function() return dev(x):index_select(1, sg.tensor({0}, "i64")) end,
      "index_select: expected all tensors on one device")
  end)

  -- ------------------------------------------------------------------ gather, scatter
  test("gather matches the CPU in every dim, with smaller index shapes", function()
    need_cuda()
    sg.manual_seed(207)
    local x = sg.randn(4, 5, 6)
    for dim = 1, 3 do
      local ishape = {4, 5, 6}
      ishape[dim] = 8
      local idx = i64(ishape, x.shape[dim])
      both(x, function(t) return t:gather(dim, t.device == "cuda" and dev(idx) or idx) end, "gather dim " .. dim)
      local small = i64({2, 3, 4}, math.min(x.shape[dim], 4))
      both(x, function(t) return t:gather(dim, t.device == "cuda" and dev(small) or small) end, "smaller index dim " .. dim)
    end
    local idx = i64({3, 1}, 7)
    both(sg.randn(3, 7):to("bf16"), function(t) return t:gather(2, t.device == "cuda" and dev(idx) or idx) end, "bf16")
    both(sg.randn(7, 3):transpose(1, 2), function(t) return t:gather(2, t.device == "cuda" and dev(idx) or idx) end,
      "strided input")
    local idx4 = i64({3, 2}, 4)
    same_bits(dev(sg.arange(12):view(3, 4)):gather(2, dev(idx4)), sg.arange(12):view(3, 4):gather(2, idx4), "i64 data")
    -- the log-probability pick of a classification loss: [N, C, H, W] gathered along C
    local logp, target = sg.randn(2, 4, 8, 8), i64({2, 1, 8, 8}, 4)
    both(logp, function(t) return t:gather(2, t.device == "cuda" and dev(target) or target) end, "loss pick")
    same_error(function() return x:gather(2, sg.tensor({{{5}}}, "i64")) end,
      function() return dev(x):gather(2, dev(sg.tensor({{{5}}}, "i64"))) end, "out of range")
    same_error(function() return x:gather(2, sg.tensor({{{-1}}}, "i64")) end,
      function() return dev(x):gather(2, dev(sg.tensor({{{-1}}}, "i64"))) end, "negative")
    check.errors(function() return dev(x):gather(1, sg.zeros({1, 1, 1}, "i64")) end, "gather: expected all tensors on one device")
  end)

  test("scatter and scatter_add match the CPU, repeated indices included", function()
    need_cuda()
    sg.manual_seed(208)
    for _, dt in ipairs{"f32", "f64", "bf16"} do
      for dim = 1, 3 do
        local a = sg.randn(4, 5, 6):to(dt)
        local ishape = {3, 4, 5}
        ishape[dim] = 9 -- more positions than the dim has: indices repeat
        local idx = i64(ishape, a.shape[dim])
        local src = sg.randn(ishape[1] + 1, ishape[2], ishape[3] + 2):to(dt) -- larger than the index: its grad is padded
        for _, op in ipairs{"scatter", "scatter_add"} do
          local ac, sc = a:clone():requires_grad(), src:clone():requires_grad()
          local y = ac[op](ac, dim, idx, sc)
          local ad, sd = dev(a):requires_grad(), dev(src):requires_grad()
          local yd = ad[op](ad, dim, dev(idx), sd)
          local msg = string.format("%s %s dim %d", op, dt, dim)
          same_bits(yd, y, msg)
          local gy = sg.randn(y.shape):to(dt)
          y:backward(gy)
          yd:backward(dev(gy))
          same_bits(ad.grad, ac.grad, msg .. " grad self")
          same_bits(sd.grad, sc.grad, msg .. " grad src")
        end
      end
    end
    -- integers: i64/i32 adds run on atomics (exact), u8 in order; a number as src
    for _, dt in ipairs{"i64", "i32", "u8"} do
      local a, src, idx = sg.randint(0, 50, {6, 7}):to(dt), sg.randint(0, 50, {9, 7}):to(dt), i64({9, 7}, 6)
      same_bits(dev(a):scatter_add(1, dev(idx), dev(src)), a:scatter_add(1, idx, src), dt .. " scatter_add")
      same_bits(dev(a):scatter(1, dev(idx), dev(src)), a:scatter(1, idx, src), dt .. " scatter")
    end
    local idx = i64({2, 3}, 4)
    same_bits(dev(sg.zeros(2, 4)):scatter(2, dev(idx), 1.5), sg.zeros(2, 4):scatter(2, idx, 1.5), "number src")
    -- class counts: a long line of adds into a few bins
    local labels = i64({5000}, 7)
    same_bits(dev(sg.zeros({7}, "i64")):scatter_add(1, dev(labels), dev(sg.ones({5000}, "i64"))),
      sg.zeros({7}, "i64"):scatter_add(1, labels, sg.ones({5000}, "i64")), "histogram")
    local vals = sg.randn(5000)
    same_bits(dev(sg.zeros(7)):scatter_add(1, dev(labels), dev(vals)), sg.zeros(7):scatter_add(1, labels, vals),
      "float histogram (sums in order)")
    same_error(function() return sg.zeros(3):scatter_add(1, sg.tensor({3}, "i64"), sg.ones(1)) end,
      function() return dev(sg.zeros(3)):scatter_add(1, dev(sg.tensor({3}, "i64")), dev(sg.ones(1))) end, "out of range")
  end)

  test("one_hot matches the CPU, classes given or inferred", function()
    need_cuda()
    sg.manual_seed(209)
    local l = i64({2, 8, 8}, 5)
    same_bits(sg.one_hot(dev(l), 5), sg.one_hot(l, 5), "given")
    same_bits(sg.one_hot(dev(l), 7), sg.one_hot(l, 7), "more classes")
    same_bits(sg.one_hot(dev(l)), sg.one_hot(l), "inferred")
    same_bits(sg.one_hot(dev(l:to("u8")), 5), sg.one_hot(l:to("u8"), 5), "u8 labels")
    same_bits(sg.one_hot(dev(l:to("i32")):transpose(1, 3), 5), sg.one_hot(l:to("i32"):transpose(1, 3), 5), "strided")
    same_bits(sg.one_hot(dev(sg.zeros({0}, "i64")), 3), sg.one_hot(sg.zeros({0}, "i64"), 3), "empty")
    check.eq(sg.one_hot(dev(l), 5).device, "cuda")
    same_error(function() return sg.one_hot(l, 4) end, function() return sg.one_hot(dev(l), 4) end, "out of range")
    same_error(function() return sg.one_hot(l - 1) end, function() return sg.one_hot(dev(l - 1)) end, "negative, inferred")
    same_error(function() return sg.one_hot(sg.zeros({0}, "i64")) end,
      function() return sg.one_hot(dev(sg.zeros({0}, "i64"))) end, "empty, inferred")
  end)
end
