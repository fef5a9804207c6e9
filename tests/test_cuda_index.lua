-- Shape and index ops on the GPU against the CPU: cat, stack, split/chunk,
-- flip, roll, pad, repeat/tile, index_select, gather, scatter, scatter_add,
-- one_hot. They move data, so forward results must equal the CPU's bit for
-- bit; the gradients sum in the CPU's order (no float atomics), so they must
-- too. Every test skips when no CUDA device is usable.

local function need_cuda()
  if not sg.cuda.is_available() then skip("no CUDA device: " .. tostring(sg.cuda.why_unavailable())) end
end
local function host(t) return t:detach():cpu() end
local function dev(t) return t:detach():cuda() end
local function same_bits(got, want, msg)
  got, want = host(got), host(want)
  check.eq(got.shape, want.shape, (msg or "") .. " shape")
  check.eq(got.dtype, want.dtype, (msg or "") .. " dtype")
  if got:to_bytes() ~= want:to_bytes() then
    local d = (got:to("f64") - want:to("f64")):abs():amax():item()
    error(string.format("%s: the bits differ (largest difference %.3g)", msg or "same_bits", d), 2)
  end
end
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
