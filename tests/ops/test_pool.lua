-- Pooling (max_pool2d with and without indices, max_unpool2d, avg_pool2d, adaptive_avg_pool2d): every
-- backend against the reference, forward and backward, on fixed and random windows; the reference's
-- gradients against finite differences; which cpu path ran (the f32 max pooling kernels, oneDNN average
-- pooling on plain and blocked layouts, the reference loops otherwise); NaN, inf and ties; thread counts.
local B = require "tests.ops.backends"
local F = sg.F

-- a max pool's values and indices as one result list
local function maxpool(o) return function(t) return {F.max_pool2d(t, o)} end end

local MAX_CASES = {
  {"2x2", {2, 3, 8, 8}, {kernel = 2}},
  {"3x3 s2 p1", {1, 4, 9, 11}, {kernel = 3, stride = 2, padding = 1}},
  {"3x2 s(1,2) p(1,0)", {3, 2, 7, 5}, {kernel = {3, 2}, stride = {1, 2}, padding = {1, 0}}},
  {"3x3 s1 p1, 16 channels", {2, 16, 13, 13}, {kernel = 3, stride = 1, padding = 1}},
  {"1x1", {1, 1, 1, 1}, {kernel = 1}},
  {"2x2 p1", {2, 8, 6, 7}, {kernel = 2, padding = 1}},
  {"2x2 odd sizes", {2, 3, 7, 9}, {kernel = 2}},
  {"whole plane", {1, 3, 5, 5}, {kernel = 5, stride = 1}},
  {"4x4 s3 p2", {3, 1, 8, 8}, {kernel = 4, stride = 3, padding = 2}},
}

local AVG_CASES = {
  {"2x2", {2, 3, 8, 8}, {kernel = 2}},
  {"3x3 s2 p1", {1, 2, 9, 8}, {kernel = 3, stride = 2, padding = 1}},
  {"3x2 s(1,2) p1", {2, 2, 6, 5}, {kernel = {3, 2}, stride = {1, 2}, padding = {1, 1}}},
  {"3x3 s1 p1, 16 channels", {2, 16, 12, 10}, {kernel = 3, stride = 1, padding = 1}},
  {"whole plane", {1, 3, 5, 5}, {kernel = 5, stride = 1}},
  {"4x4 s3 p2", {3, 1, 8, 8}, {kernel = 4, stride = 3, padding = 2}},
  {"1x1", {1, 1, 1, 1}, {kernel = 1}},
}

-- output sizes; "tiles" marks the ones whose windows tile the plane (oneDNN runs them on f32)
local ADAPTIVE_CASES = {
  {"global", {2, 8, 7, 5}, 1, true}, {"4x2 of 12x6", {3, 4, 12, 6}, {4, 2}, true},
  {"3 of 7x8 (overlapping windows)", {1, 2, 7, 8}, 3}, {"3x4 of 7x5", {1, 2, 7, 5}, {3, 4}},
  {"identity", {1, 2, 5, 6}, {5, 6}, true}, {"8x7 of 4x4 (upsampling)", {1, 1, 4, 4}, {8, 7}},
  {"2x3 of 64x64, 16 channels", {1, 16, 64, 64}, {2, 3}}, {"4x3 of 13x11", {1, 2, 13, 11}, {4, 3}},
}

-- random windows: kernel up to 4, stride up to 3, padding up to half the kernel
local function random_window(r, H, W)
  local kh, kw = r(1, math.min(4, H)), r(1, math.min(4, W))
  return {kernel = {kh, kw}, stride = {r(1, 3), r(1, 3)}, padding = {r(0, kh // 2), r(0, kw // 2)}}
end

local function describe(xs, o)
  return string.format("x {%s}, kernel {%d,%d}, stride {%d,%d}, padding {%d,%d}%s", table.concat(xs, ","),
    o.kernel[1], o.kernel[2], o.stride[1], o.stride[2], o.padding[1], o.padding[2],
    o.count_include_pad == nil and "" or (o.count_include_pad and ", include pad" or ", exclude pad"))
end

local CHANNELS = {1, 2, 3, 5, 6, 8, 12, 16, 20, 32} -- oneDNN runs 8 and 16 or more in blocked layouts
local dnnl = F._dnnl() and select(2, F._dnnl()) -- oneDNN built and switched on (SEMSEG_DNNL)

-- runs fn on the cpu table (forward and backward) and checks the path it reports both times
local function path_is(want, what, fn, x)
  local leaf = x:clone():requires_grad()
  local y = fn(leaf)
  check.eq(F._pool_path(), want, what .. ": forward path")
  y:backward(sg.randn(y.shape, y.dtype))
  check.eq(F._pool_path(), want, what .. ": backward path")
end

test("max_pool2d: every backend matches the reference (values and indices exactly, gradients)", function()
  sg.manual_seed(21)
  for _, c in ipairs(MAX_CASES) do
    for _, dt in ipairs{"f32", "f64"} do
      B.compare("max " .. c[1] .. " " .. dt, maxpool(c[3]), {sg.randn(c[2], dt)}, {exact = true})
      -- many tied maxima (zeros): the first one in row-major order wins
      B.compare("max ties " .. c[1] .. " " .. dt, maxpool(c[3]), {sg.randn(c[2], dt):relu()}, {exact = true})
    end
  end
  math.randomseed(21)
  local r = math.random
  for k = 1, 30 do
    local H, W = r(1, 12), r(1, 12)
    local xs, o = {r(1, 3), r(1, 20), H, W}, random_window(r, H, W)
    local x = sg.randn(xs)
    if r(2) == 1 then x = x:relu() end
    B.compare("max random " .. k .. " (" .. describe(xs, o) .. ")", maxpool(o), {x}, {exact = true})
  end
end)

test("max_pool2d without indices: the same values on every backend, inference and training", function()
  sg.manual_seed(22)
  for _, c in ipairs(MAX_CASES) do
    local o = {kernel = c[3].kernel, stride = c[3].stride, padding = c[3].padding, indices = false}
    local x = sg.randn(c[2])
    local only = {F.max_pool2d(x, o)}
    check.eq(#only, 1, c[1] .. ": indices = false returns the values only")
    -- no autograd: no backend computes positions
    B.compare("values only, no grad " .. c[1], function(t) return sg.no_grad(function() return F.max_pool2d(t, o) end) end,
      {x}, {exact = true})
    -- autograd still gets its positions
    B.compare("values only " .. c[1], function(t) return F.max_pool2d(t, o) end, {x}, {exact = true})
    check.eq(only[1]:eq((F.max_pool2d(x, c[3]))):all():item(), true, c[1] .. ": the same values as with indices")
  end
  check.errors(function() F.avg_pool2d(sg.randn{1, 1, 4, 4}, {kernel = 2, indices = false}) end, "indices")
end)

test("max_unpool2d: every backend matches the reference; repeated positions, the last wins", function()
  sg.manual_seed(23)
  for _, c in ipairs(MAX_CASES) do
    local _, idx = F.max_pool2d(sg.randn(c[2]), c[3])
    local size = {c[2][3], c[2][4]}
    for _, dt in ipairs{"f32", "f64"} do
      -- other values than the pooled ones, so repeated indices (overlapping windows) show which one wins
      B.compare("unpool " .. c[1] .. " " .. dt, function(u, i) return F.max_unpool2d(u, i, {size = size}) end,
        {sg.randn(idx.shape, dt), idx}, {exact = true})
    end
  end
  local u = sg.tensor{{{{1, 2}, {3, 4}}}}
  local idx = sg.tensor({0, 5, 5, 0}, "i64"):view{1, 1, 2, 2}
  check.eq(F.max_unpool2d(u, idx, {size = {2, 3}}):flatten():totable(), {4, 0, 0, 0, 0, 3})
end)

test("max_unpool2d: an index outside the output plane is an error on every backend", function()
  local idx = sg.tensor({0, 1, 2, 99}, "i64"):view{1, 1, 2, 2}
  local prev = sg.config.reference
  for _, ref in ipairs{true, false} do
    sg.config.reference = ref
    local ok, err = pcall(F.max_unpool2d, sg.randn{1, 1, 2, 2}, idx, {size = {4, 4}})
    sg.config.reference = prev
    check.eq(ok, false, "reference " .. tostring(ref))
    check.truthy(tostring(err):find("max_unpool2d: index 99 is out of range for an output plane of 4x4", 1, true),
      tostring(err))
  end
  for _, dev in ipairs(B.list()) do
    if dev ~= "cpu" then
      check.errors(function() return F.max_unpool2d(sg.randn{1, 1, 2, 2}:to(dev), idx:to(dev), {size = {4, 4}}) end,
        "out of range")
    end
  end
end)

test("avg_pool2d: every backend matches the reference (count_include_pad true and false)", function()
  sg.manual_seed(24)
  for _, c in ipairs(AVG_CASES) do
    for _, cip in ipairs{true, false} do
      local o = {kernel = c[3].kernel, stride = c[3].stride, padding = c[3].padding, count_include_pad = cip}
      for _, dt in ipairs{"f32", "f64"} do
        B.compare(string.format("avg %s%s %s", c[1], cip and " incl" or " excl", dt),
          function(t) return F.avg_pool2d(t, o) end, {sg.randn(c[2], dt)})
      end
    end
  end
  math.randomseed(24)
  local r = math.random
  for k = 1, 40 do
    local H, W = r(1, 12), r(1, 12)
    local xs, o = {r(1, 3), CHANNELS[r(#CHANNELS)], H, W}, random_window(r, H, W)
    o.count_include_pad = r(2) == 1
    local what, x = "avg random " .. k .. " (" .. describe(xs, o) .. ")", sg.randn(xs)
    B.compare(what, function(t) return F.avg_pool2d(t, o) end, {x})
    path_is(dnnl and "dnnl" or "loops", what, function(t) return F.avg_pool2d(t, o) end, x) -- oneDNN takes them all
  end
end)

test("adaptive_avg_pool2d: every backend matches the reference", function()
  sg.manual_seed(25)
  for _, c in ipairs(ADAPTIVE_CASES) do
    for _, dt in ipairs{"f32", "f64"} do
      B.compare("adaptive " .. c[1] .. " " .. dt, function(t) return F.adaptive_avg_pool2d(t, c[3]) end,
        {sg.randn(c[2], dt)})
    end
  end
end)

test("pooling: reference gradients against finite differences", function()
  sg.manual_seed(26)
  for _, c in ipairs(MAX_CASES) do
    if c[2][3] * c[2][4] * c[2][1] * c[2][2] <= 400 then
      B.gradcheck("max " .. c[1], function(t) return (F.max_pool2d(t, c[3])) end, {sg.randn(c[2], "f64")})
    end
  end
  for _, c in ipairs(AVG_CASES) do
    for _, cip in ipairs{true, false} do
      local o = {kernel = c[3].kernel, stride = c[3].stride, padding = c[3].padding, count_include_pad = cip}
      B.gradcheck("avg " .. c[1], function(t) return F.avg_pool2d(t, o) end, {sg.randn({1, 2, c[2][3], c[2][4]}, "f64")})
    end
  end
  for _, c in ipairs(ADAPTIVE_CASES) do
    if c[2][3] * c[2][4] <= 100 then
      B.gradcheck("adaptive " .. c[1], function(t) return F.adaptive_avg_pool2d(t, c[3]) end,
        {sg.randn({1, 2, c[2][3], c[2][4]}, "f64")})
    end
  end
  -- unpooling by distinct positions (with repeats, the backward gathers for every input, as PyTorch's)
  local _, idx = F.max_pool2d(sg.randn{1, 2, 5, 6}, {kernel = 2})
  B.gradcheck("unpool", function(u) return F.max_unpool2d(u, idx, {size = {5, 6}}) end, {sg.randn(idx.shape, "f64")})
end)

test("pooling: the cpu table runs the f32 kernels and oneDNN, the reference loops otherwise", function()
  sg.manual_seed(27)
  local x = sg.randn{2, 16, 12, 10}
  path_is("kernel", "f32 max", function(t) return (F.max_pool2d(t, {kernel = 3, stride = 2, padding = 1})) end, x)
  path_is("kernel", "f32 max 2x2", function(t) return (F.max_pool2d(t, 2)) end, x)
  path_is("loops", "f64 max", function(t) return (F.max_pool2d(t, 2)) end, x:to("f64"))
  path_is(dnnl and "dnnl" or "loops", "f32 avg", function(t) return F.avg_pool2d(t, {kernel = 3, padding = 1}) end, x)
  path_is("loops", "f64 avg", function(t) return F.avg_pool2d(t, 2) end, x:to("f64"))
  for _, c in ipairs(ADAPTIVE_CASES) do
    path_is(c[4] and dnnl and "dnnl" or "loops", "f32 adaptive " .. c[1],
      function(t) return F.adaptive_avg_pool2d(t, c[3]) end, sg.randn(c[2]))
  end
  if F._dnnl() then
    F._dnnl(false)
    local ok, err = pcall(path_is, "loops", "f32 avg with oneDNN off", function(t) return F.avg_pool2d(t, 2) end, x)
    F._dnnl("env")
    if not ok then error(err, 0) end
  end
  -- a transposed view is made contiguous first; an empty batch runs the loops
  path_is(dnnl and "dnnl" or "loops", "transposed input", function(t) return F.avg_pool2d(t:transpose(3, 4), 2) end, x)
  local e = F.avg_pool2d(sg.randn{0, 3, 4, 4}, {kernel = 2})
  check.eq(e.shape, {0, 3, 2, 2})
  check.eq(F._pool_path(), "loops", "empty batch")
  local ev, ei = F.max_pool2d(sg.randn{0, 3, 4, 4}, {kernel = 2})
  check.eq(ev.shape, {0, 3, 2, 2})
  check.eq(ei.shape, {0, 3, 2, 2})
end)

test("avg_pool2d through oneDNN: a training loop builds its primitives once", function()
  if not F._dnnl() then skip("built without oneDNN (SG_HAVE_DNNL undefined)") end
  F._dnnl(true)
  local x = sg.randn{2, 4, 12, 10}:requires_grad()
  local function step()
    local p = F.max_pool2d(x:relu(), {kernel = 2})
    F.avg_pool2d(p, {kernel = 3, stride = 1, padding = 1}):sum():backward()
  end
  step()
  local _, _, _, n1 = F._dnnl()
  for _ = 1, 3 do step() end
  local _, _, _, n2 = F._dnnl()
  F._dnnl("env")
  check.eq(n2, n1, "cached primitives after more steps")
  check.truthy(n1 >= 2, "forward and backward primitives are cached")
end)

test("max_pool2d: NaN wins its window, -inf windows give their first position, every 2x2 order", function()
  local x = sg.randn{1, 2, 4, 4}
  x[{1, 1, 2, 3}] = 0 / 0
  local v, i = F.max_pool2d(x, {kernel = 2})
  check.truthy(v[{1, 1, 1, 2}]:item() ~= v[{1, 1, 1, 2}]:item(), "NaN wins its window")
  check.eq(i[{1, 1, 1, 2}]:item(), 6)
  B.compare("NaN", maxpool{kernel = 2}, {x}, {exact = true})
  B.compare("NaN overlapping", maxpool{kernel = 3, stride = 1, padding = 1}, {x}, {exact = true})
  local ninf = sg.full(-math.huge, {1, 1, 4, 4})
  local v2, i2 = F.max_pool2d(ninf, {kernel = 2})
  check.eq(v2:amax():item(), -math.huge)
  check.eq(i2:flatten():totable(), {0, 2, 8, 10})
  B.compare("-inf", maxpool{kernel = 3, stride = 2, padding = 1}, {ninf}, {exact = true})
  -- the 2x2 kernel (branchless): every order of NaN, +-inf and ties within a window
  local vals, flat = {0 / 0, math.huge, -math.huge, 1, 1, -2}, {}
  for a = 1, #vals do for b = 1, #vals do for c = 1, #vals do for d = 1, #vals do
    flat[#flat + 1] = {vals[a], vals[b], vals[c], vals[d]}
  end end end end
  local n = #flat -- windows side by side: row 1 holds (a, b), row 2 (c, d)
  local grid = sg.zeros{1, 1, 2, 2 * n}
  for k, w in ipairs(flat) do
    grid[{1, 1, 1, 2 * k - 1}] = w[1]; grid[{1, 1, 1, 2 * k}] = w[2]
    grid[{1, 1, 2, 2 * k - 1}] = w[3]; grid[{1, 1, 2, 2 * k}] = w[4]
  end
  B.compare("2x2 windows with NaN, inf and ties", maxpool{kernel = 2}, {grid}, {exact = true})
  B.compare("2x2 windows with NaN, inf and ties, values only",
    function(t) return sg.no_grad(function() return F.max_pool2d(t, {kernel = 2, indices = false}) end) end, {grid},
    {exact = true})
end)

test("pooling: f32 cpu results do not depend on the thread count", function()
  sg.manual_seed(28)
  local x0 = sg.randn{4, 24, 64, 66}
  local gy = {}
  local ops = {
    {"max 2x2", function(t) return (F.max_pool2d(t, 2)) end},
    {"max 3x3 s2 p1", function(t) return (F.max_pool2d(t, {kernel = 3, stride = 2, padding = 1})) end},
    {"avg 3x3 s1 p1", function(t) return F.avg_pool2d(t, {kernel = 3, stride = 1, padding = 1}) end},
  }
  local t0 = F._threads()
  local first = {}
  for _, threads in ipairs{1, 2, 3} do
    F._threads(threads)
    for k, op in ipairs(ops) do
      local x = x0:clone():requires_grad()
      local y = op[2](x)
      gy[k] = gy[k] or sg.randn(y.shape)
      y:backward(gy[k])
      if not first[k] then first[k] = {y:detach(), x.grad}
      else
        check.eq(y:detach():eq(first[k][1]):all():item(), true, op[1] .. ": output on " .. threads .. " threads")
        check.eq(x.grad:eq(first[k][2]):all():item(), true, op[1] .. ": gradient on " .. threads .. " threads")
      end
    end
  end
  F._threads(t0)
end)

-- ---------------------------------------------------------------- pooling on the GPU (was tests/test_cuda_nn_ops.lua)
do
  local G = require "tests.ops.gpu_nn"
  local F, DEV, need_dev, need_cuda, copy, f64, leaf_pair, rounded, close, same_bits, on_dev, randn, pool_case =
    G.F, G.DEV, G.need_dev, G.need_cuda, G.copy, G.f64, G.leaf_pair, G.rounded, G.close, G.same_bits, G.on_dev, G.randn,
    G.pool_case
  -- ------------------------------------------------------------------ pooling
  -- x (f64 values exact in dt) through op on the device and on the CPU in f64; g: upstream gradient.
  -- (the device table has no fallback to the host: an op on a cuda tensor runs the cuda entries)
  local POOL_CASES = {
    {x={2, 3, 7, 9}, o={kernel=2}},                                  -- non-overlapping, odd sizes
    {x={1, 2, 9, 8}, o={kernel=3, stride=2, padding=1}},             -- overlapping windows, padding
    {x={2, 2, 6, 5}, o={kernel={3, 2}, stride={1, 2}, padding={1, 1}}},
    {x={1, 3, 5, 5}, o={kernel=5, stride=1}},
    {x={3, 1, 8, 8}, o={kernel=4, stride=3, padding=2}},
    {x={1, 1, 1, 1}, o={kernel=1}},
  }

  test("max_pool2d on cuda: values, indices and gradients as on the CPU", function()
    need_dev()
    sg.manual_seed(41)
    for k, c in ipairs(POOL_CASES) do
      for _, dt in ipairs({"f32", "f64"}) do
        pool_case("max case " .. k .. " " .. dt, randn(c.x, "f32"), function(x) return F.max_pool2d(x, c.o) end, dt)
      end
    end
    -- ties: the first maximum of the window, as the CPU
    local flat = sg.zeros({1, 1, 6, 6}, "f64")
    pool_case("max ties", flat, function(x) return F.max_pool2d(x, {kernel=3, stride=2, padding=1}) end)
    -- non-contiguous input
    local base = randn({2, 3, 8, 7}, "f32")
    local _, ic = F.max_pool2d(base:transpose(3, 4), {kernel=3, stride=2})
    local _, id = F.max_pool2d(base:to("f32"):to(DEV):transpose(3, 4), {kernel=3, stride=2})
    check.eq((id:cpu() - ic):abs():amax():item(), 0, "transposed input indices")
    -- values only, outside autograd: the device computes no positions for the caller
    local vd = sg.no_grad(function() return F.max_pool2d(base:to(DEV), {kernel=3, stride=2, indices=false}) end)
    on_dev(vd, "values only")
    close(vd, (F.max_pool2d(base, {kernel=3, stride=2})), 0, "values only")
  end)

  test("max_pool2d on cuda picks a NaN like the CPU", function()
    need_dev()
    local x = sg.randn({1, 1, 4, 4}, "f64")
    x = x:view({16})
    local vals = x:totable()
    vals[6] = 0 / 0
    local xn = sg.tensor(vals, "f64"):view({1, 1, 4, 4})
    local _, ic = F.max_pool2d(xn, {kernel=2, stride=1})
    local yd, id = F.max_pool2d(xn:to("f32"):to(DEV), {kernel=2, stride=1})
    check.eq((id:cpu() - ic):abs():amax():item(), 0, "indices with a NaN")
    local y = yd:cpu():to("f64"):view({9}):totable()
    check.truthy(y[1] ~= y[1], "the NaN is the maximum of its windows")
  end)

  test("max_pool2d on cuda in 16 bits", function()
    need_cuda()
    sg.manual_seed(42)
    for _, dt in ipairs({"bf16", "f16"}) do
      pool_case("max " .. dt, randn({2, 3, 9, 8}, dt), function(x) return F.max_pool2d(x, {kernel=3, stride=2, padding=1}) end,
                dt, 1e-2)
    end
  end)

  test("max_unpool2d on cuda: scatter by the pooling indices, last repeat wins, gather backward", function()
    need_dev()
    sg.manual_seed(43)
    for k, c in ipairs({{x={2, 3, 7, 9}, o={kernel=2}}, {x={1, 2, 9, 8}, o={kernel=3, stride=2, padding=1}}}) do
      local x64 = randn(c.x, "f32")
      local v, idx = F.max_pool2d(x64, c.o)
      local size = {c.x[3], c.x[4]}
      -- other values than the pooled ones, so repeated indices (overlapping windows) show which one wins
      local u64 = randn(v.shape, "f32")
      pool_case("unpool case " .. k, u64, function(u)
        local i = u.device == "cpu" and idx or idx:to(DEV)
        return F.max_unpool2d(u, i, {size = size})
      end)
    end
    check.errors(function()
      local idx = sg.tensor({0, 1, 2, 99}, "i64"):view({1, 1, 2, 2})
      return F.max_unpool2d(sg.randn({1, 1, 2, 2}):to(DEV), idx:to(DEV), {size = {4, 4}})
    end, "out of range")
    if DEV == "cuda" then
      check.errors(function()
        return F.max_unpool2d(sg.randn({1, 1, 2, 2}):cuda(), sg.zeros({1, 1, 2, 2}, "i64"), {size = {4, 4}})
      end, "indices must be a cuda i64")
    end
  end)

  test("avg_pool2d and adaptive_avg_pool2d on cuda match the CPU", function()
    need_dev()
    sg.manual_seed(44)
    for k, c in ipairs(POOL_CASES) do
      for _, cip in ipairs({true, false}) do
        local o = copy(c.o)
        o.count_include_pad = cip
        pool_case("avg case " .. k .. (cip and " incl" or " excl"), randn(c.x, "f32"),
                  function(x) return F.avg_pool2d(x, o) end)
      end
    end
    local ADAPTIVE = {
      {x={1, 2, 7, 5}, o={3, 4}}, {x={2, 3, 9, 9}, o={1, 1}}, {x={1, 2, 5, 6}, o={5, 6}}, {x={1, 1, 4, 4}, o={8, 7}},
      {x={2, 4, 32, 40}, o={1, 1}}, {x={1, 3, 64, 64}, o={2, 3}}, {x={1, 2, 13, 11}, o={4, 3}},
    }
    for k, c in ipairs(ADAPTIVE) do
      pool_case("adaptive case " .. k, randn(c.x, "f32"), function(x) return F.adaptive_avg_pool2d(x, c.o) end)
      pool_case("adaptive case " .. k .. " f64", randn(c.x), function(x) return F.adaptive_avg_pool2d(x, c.o) end,
                "f64", 1e-10)
    end
    -- a non-contiguous input
    local base = randn({2, 3, 8, 6}, "f32")
    close(F.avg_pool2d(base:to("f32"):to(DEV):transpose(3, 4), {kernel=3, stride=2, padding=1}),
          F.avg_pool2d(base:transpose(3, 4), {kernel=3, stride=2, padding=1}), 1e-5, "transposed input")
  end)
end
