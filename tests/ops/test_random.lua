-- random: rand, randn, randint on every backend draw bit for bit the reference's numbers for the same seed
-- (counter-based Philox: the numbers depend on neither threads nor device), in every dtype they accept,
-- and advance the generator the same way.
local B = require "tests.ops.backends"

local function draws(backend)
  return B.on(backend, function(dev)
    sg.manual_seed(1234)
    local out = {}
    for _, dt in ipairs{"f32", "f64", "f16", "bf16"} do
      out[#out + 1] = sg.rand({5, 7}, {dtype = dt, device = dev}):cpu():to("f64")
      out[#out + 1] = sg.randn({9}, {dtype = dt, device = dev}):cpu():to("f64")
    end
    for _, dt in ipairs{"i64", "i32", "u8"} do
      out[#out + 1] = sg.randint(-3 * (dt == "u8" and 0 or 1), 200, {6, 5}, {dtype = dt, device = dev}):cpu():to("f64")
    end
    out[#out + 1] = sg.rand({3}, {device = dev}):cpu():to("f64") -- after the others: the offsets advanced alike
    return out
  end)
end

test("random: every backend draws the reference's numbers, bit for bit", function()
  local want = draws("reference")
  for _, backend in ipairs(B.list()) do
    local got = draws(backend)
    for k = 1, #want do
      check.eq(got[k]:eq(want[k]):all():item(), true, "draw " .. k .. " on " .. backend)
    end
  end
end)

test("random: the reference's numbers are in range and look uniform / normal", function()
  local r = B.on("reference", function()
    sg.manual_seed(9)
    return {sg.rand{20000}, sg.randn{20000}, sg.randint(0, 10, {20000})}
  end)
  check.truthy(r[1]:min():item() >= 0 and r[1]:max():item() < 1, "rand in [0, 1)")
  check.near(r[1]:mean():item(), 0.5, 0.01, 0)
  check.near(r[2]:mean():item(), 0, 0.03, 0)
  check.near(r[2]:std():item(), 1, 0.03, 0)
  check.eq(r[3]:min():item(), 0)
  check.eq(r[3]:max():item(), 9)
end)

-- ---------------------------------------------------------------- on the GPU (was tests/test_cuda_random.lua)
do
  -- Random numbers on the GPU: for the same seed and offset sg.rand, sg.randn and
  -- sg.randint with device = "cuda" give bit for bit the CPU's numbers and move
  -- the generator the same way, so a run can switch devices without changing
  -- its random stream; dropout masks therefore agree too. The GPU tests skip
  -- without a usable device; the option's error without one is tested on the CPU.

  local CC = require("tests.cuda_compare")(check, skip)
  local need_cuda, host, same_bits = CC.need_cuda, CC.host, CC.same_bits

  -- draw(device) under a fresh seed on each device: the same numbers and the same generator state after
  local function agree(seed, draw, msg)
    sg.manual_seed(seed)
    local c = draw("cpu")
    local sc = sg.rng_state()
    sg.manual_seed(seed)
    local d = draw("cuda")
    local sd = sg.rng_state()
    check.eq(d.device, "cuda", msg .. " device")
    same_bits(d, c, msg)
    check.eq(sd.offset, sc.offset, msg .. ": the offset advances the same")
    check.eq(sd.seed, sc.seed)
  end

  local SHAPES = {{}, {0}, {1}, {3}, {4}, {5}, {7, 3}, {2, 3, 5, 7}, {1000003}}

  test("rand: the CPU's bits in every float dtype", function()
    need_cuda()
    for _, dt in ipairs{"f32", "f64", "f16", "bf16"} do
      for i, shape in ipairs(SHAPES) do
        agree(1000 + i, function(d) return sg.rand(shape, {dtype = dt, device = d}) end,
          "rand " .. dt .. " [" .. table.concat(shape, ",") .. "]")
      end
    end
  end)

  test("randn: the CPU's bits (Box-Muller in portable double arithmetic)", function()
    need_cuda()
    for _, dt in ipairs{"f32", "f64", "f16", "bf16"} do
      for i, shape in ipairs(SHAPES) do
        agree(2000 + i, function(d) return sg.randn(shape, {dtype = dt, device = d}) end,
          "randn " .. dt .. " [" .. table.concat(shape, ",") .. "]")
      end
    end
    -- many seeds on a large draw: every double the transform makes is compared
    for _, seed in ipairs{0, 1, 7, 123456789, -1, 1 << 40} do
      agree(seed, function(d) return sg.randn({1 << 20}, {dtype = "f64", device = d}) end, "randn f64 seed " .. seed)
    end
  end)

  test("randint: the CPU's bits for ranges and dtypes", function()
    need_cuda()
    local cases = {{0, 10, "i64"}, {-5, 5, "i32"}, {0, 256, "u8"}, {0, 2, "bool"}, {-1000, 1000, "f32"},
                   {0, 1 << 40, "i64"}, {-(1 << 62), 1 << 62, "i64"}, {3, 4, "i64"}, {0, 7, "f64"}}
    for i, c in ipairs(cases) do
      for _, shape in ipairs{{5}, {4, 9}, {100001}} do
        agree(3000 + i, function(d) return sg.randint(c[1], c[2], shape, {dtype = c[3], device = d}) end,
          string.format("randint [%d, %d) %s", c[1], c[2], c[3]))
      end
    end
  end)

  test("one stream across devices: interleaved CPU and GPU draws", function()
    need_cuda()
    local function run(devs)
      sg.manual_seed(77)
      local out = {}
      out[1] = host(sg.rand({5}, {device = devs[1]}))
      out[2] = host(sg.randn({2, 7}, {dtype = "f64", device = devs[2]}))
      out[3] = host(sg.randint(-5, 5, {9}, {dtype = "i32", device = devs[3]}))
      out[4] = host(sg.randn({13}, {device = devs[4]}))
      return out, sg.rng_state().offset
    end
    local a, oa = run{"cpu", "cpu", "cpu", "cpu"}
    local b, ob = run{"cuda", "cpu", "cuda", "cpu"}
    local c, oc = run{"cuda", "cuda", "cuda", "cuda"}
    check.eq(ob, oa)
    check.eq(oc, oa)
    for k = 1, #a do
      same_bits(b[k], a[k], "mixed, draw " .. k)
      same_bits(c[k], a[k], "gpu, draw " .. k)
    end
    -- a saved state replays on the other device
    sg.manual_seed(5)
    sg.rand{3}
    local st = sg.rng_state()
    local x = sg.randn({33}, {device = "cuda"})
    sg.rng_state(st)
    same_bits(sg.randn{33}, x, "restored state, other device")
  end)

  test("requires_grad and dtype options with a device", function()
    need_cuda()
    local t = sg.randn({3}, {device = "cuda", requires_grad = true})
    check.eq(t.device, "cuda")
    check.truthy(t:needs_grad())
    check.errors(function() return sg.rand({3}, {dtype = "i64", device = "cuda"}) end, "rand: dtype must be floating point")
    check.errors(function() return sg.randint(5, 5, {3}, {device = "cuda"}) end, "randint: empty range")
  end)

  test("dropout masks agree between the CPU and the GPU", function()
    need_cuda()
    sg.manual_seed(9)
    local x = sg.randn(4, 8, 16, 16)
    for _, p in ipairs{0.1, 0.5, 0.9} do
      sg.manual_seed(10)
      local c = sg.F.dropout(x, p, true)
      sg.manual_seed(10)
      local d = sg.F.dropout(x:cuda(), p, true)
      check.eq(d.device, "cuda")
      same_bits(d, c, "dropout p=" .. p)
      sg.manual_seed(11)
      local c2 = sg.F.dropout2d(x, p, true)
      sg.manual_seed(11)
      local d2 = sg.F.dropout2d(x:cuda(), p, true)
      same_bits(d2, c2, "dropout2d p=" .. p)
    end
    -- the nn module too
    local m = sg.nn.Dropout(0.3)
    m:train()
    sg.manual_seed(12)
    local c = m(x)
    sg.manual_seed(12)
    same_bits(m(x:cuda()), c, "nn.Dropout")
  end)

  test("device = 'cuda' without a usable device is a clear error and draws nothing", function()
    if sg.cuda.is_available() then skip("a CUDA device is available: this checks the error without one") end
    sg.manual_seed(3)
    for _, f in ipairs{function() return sg.rand({2, 3}, {device = "cuda"}) end,
                       function() return sg.randn(4, {device = "cuda"}) end,
                       function() return sg.randint(0, 5, {3}, {device = "cuda"}) end} do
      local err = check.errors(f, "device 'cuda' is not available")
      check.truthy(err:find(sg.cuda.is_built() and tostring(sg.cuda.why_unavailable()) or "built without", 1, true),
        "the reason is given: " .. err)
    end
    check.eq(sg.rng_state().offset, 0, "a failed draw consumes no numbers")
    check.errors(function() return sg.rand({2}, {device = "tpu"}) end, "rand: unknown device 'tpu'")
    check.eq(sg.rand({2}, {device = "cpu"}).device, "cpu")
  end)
end

-- ---------------------------------------------------------------- the generator: seeds, state, distributions (was tests/test_random.lua)
do
  -- Random numbers: seeding, reproducibility, ranges, moments, dtypes, rng state.

  local function same(a, b) return a:eq(b):all():item() end

  test("same seed gives the same rand, randn and randint", function()
    for _, seed in ipairs{0, 1, 42, 123456789, -1} do
      sg.manual_seed(seed)
      local a1, b1, c1 = sg.rand{7, 3}, sg.randn{5}, sg.randint(0, 1000, {9})
      sg.manual_seed(seed)
      local a2, b2, c2 = sg.rand{7, 3}, sg.randn{5}, sg.randint(0, 1000, {9})
      check.truthy(same(a1, a2), "rand, seed " .. seed)
      check.truthy(same(b1, b2), "randn, seed " .. seed)
      check.truthy(same(c1, c2), "randint, seed " .. seed)
    end
  end)

  test("different seeds give different numbers", function()
    sg.manual_seed(1)
    local a, n, i = sg.rand{64}, sg.randn{64}, sg.randint(0, 1 << 30, {64})
    sg.manual_seed(2)
    local b, m, j = sg.rand{64}, sg.randn{64}, sg.randint(0, 1 << 30, {64})
    check.truthy(a:ne(b):sum():item() > 60, "rand")
    check.truthy(n:ne(m):sum():item() > 60, "randn")
    check.truthy(i:ne(j):sum():item() > 60, "randint")
    -- and successive draws under one seed differ from each other
    sg.manual_seed(1)
    local x, y = sg.rand{64}, sg.rand{64}
    check.truthy(x:ne(y):sum():item() > 60, "successive draws")
  end)

  test("the same sequence of calls reproduces the same numbers", function()
    local function run()
      sg.manual_seed(77)
      local out = {}
      out[#out + 1] = sg.rand{3}
      out[#out + 1] = sg.randn({2, 5}, "f64")
      out[#out + 1] = sg.randint(-5, 5, {7}, "i32")
      out[#out + 1] = sg.rand({1}, "f64")
      out[#out + 1] = sg.randn{13}
      return out
    end
    local a, b = run(), run()
    for k = 1, #a do
      check.eq(a[k].dtype, b[k].dtype)
      check.truthy(same(a[k], b[k]), "call " .. k)
    end
  end)

  test("the counter advances by blocks of four per call", function()
    sg.manual_seed(3)
    check.eq(sg.rng_state().offset, 0, "manual_seed resets the offset")
    local all = sg.rand{16}
    check.eq(sg.rng_state().offset, 4)
    -- draws in multiples of four are chunking-invariant
    sg.manual_seed(3)
    local p, q = sg.rand{8}, sg.rand{8}
    check.truthy(same(all:slice(1, 1, 8), p) and same(all:slice(1, 9, 16), q), "8 then 8 == first 16")
    -- other sizes start the next call on a fresh block: 5 draws use 2 blocks
    sg.manual_seed(3)
    local r, s = sg.rand{5}, sg.rand{3}
    check.eq(sg.rng_state().offset, 3)
    check.truthy(same(all:slice(1, 1, 5), r), "first call")
    check.truthy(same(all:slice(1, 9, 11), s), "second call starts at element 9")
    sg.manual_seed(3)
    sg.rand{0}
    check.eq(sg.rng_state().offset, 0, "an empty draw uses no block")
  end)

  test("rng_state save and restore", function()
    sg.manual_seed(2024)
    sg.rand{10}
    local st = sg.rng_state()
    check.eq(type(st.seed), "number")
    check.eq(type(st.offset), "number")
    check.eq(st.seed, 2024)
    local a, b, c = sg.randn{6}, sg.rand({4}, "f64"), sg.randint(0, 100, {5})
    sg.manual_seed(9) -- somewhere else entirely
    sg.randn{100}
    sg.rng_state(st)
    check.eq(sg.rng_state().offset, st.offset)
    local a2, b2, c2 = sg.randn{6}, sg.rand({4}, "f64"), sg.randint(0, 100, {5})
    check.truthy(same(a, a2) and same(b, b2) and same(c, c2), "restored state reproduces the draws")
    -- a state table survives a round trip through plain numbers (e.g. a checkpoint)
    local saved = {seed = st.seed, offset = st.offset}
    sg.rng_state(saved)
    check.truthy(same(sg.randn{6}, a))
    -- negative seeds (large unsigned) round-trip too
    sg.manual_seed(-7)
    local neg = sg.rng_state()
    local x = sg.rand{4}
    sg.rng_state(neg)
    check.truthy(same(sg.rand{4}, x))
  end)

  test("rand is in [0,1) and uniform", function()
    sg.manual_seed(11)
    for _, dt in ipairs{"f32", "f64"} do
      local u = sg.rand({100000}, dt)
      check.eq(u.dtype, dt)
      check.truthy(u:min():item() >= 0, dt .. " min >= 0")
      check.truthy(u:max():item() < 1, dt .. " max < 1")
      check.near(u:mean():item(), 0.5, 0.01, 0, dt .. " mean")
      check.near(u:var():item(), 1 / 12, 0.005, 0, dt .. " var")
      -- ten equal bins each get about a tenth
      for k = 0, 9 do
        local frac = u:ge(k / 10):logical_and(u:lt((k + 1) / 10)):to("f64"):mean():item()
        check.near(frac, 0.1, 0.006, 0, dt .. " bin " .. k)
      end
    end
  end)

  test("rand in f16 and bf16 stays below 1", function()
    sg.manual_seed(12)
    for _, dt in ipairs{"f16", "bf16"} do
      local u = sg.rand({200000}, dt)
      check.eq(u.dtype, dt)
      check.truthy(u:min():item() >= 0, dt .. " min")
      check.truthy(u:max():item() < 1, dt .. " max < 1 (got " .. u:max():item() .. ")")
      check.near(u:to("f32"):mean():item(), 0.5, 0.01, 0, dt .. " mean")
    end
  end)

  test("randn has mean 0 and std 1", function()
    sg.manual_seed(13)
    for _, dt in ipairs{"f32", "f64"} do
      local z = sg.randn({100000}, dt)
      check.eq(z.dtype, dt)
      check.near(z:mean():item(), 0, 0.02, 0, dt .. " mean")
      check.near(z:std():item(), 1, 0.02, 0, dt .. " std")
      local within1 = z:abs():lt(1):to("f64"):mean():item()
      check.near(within1, 0.6827, 0.01, 0, dt .. " P(|z|<1)")
      local within2 = z:abs():lt(2):to("f64"):mean():item()
      check.near(within2, 0.9545, 0.006, 0, dt .. " P(|z|<2)")
      check.near(z:gt(0):to("f64"):mean():item(), 0.5, 0.01, 0, dt .. " symmetric")
      check.truthy(z:abs():max():item() < 7, dt .. " no absurd values")
    end
    local h = sg.randn({10000}, "f16")
    check.eq(h.dtype, "f16")
    check.near(h:to("f32"):std():item(), 1, 0.05, 0, "f16 std")
  end)

  test("one stream, any dtype: f32 draws are the f64 draws rounded", function()
    sg.manual_seed(14)
    local d = sg.randn({1000}, "f64")
    sg.manual_seed(14)
    local f = sg.randn{1000}
    check.truthy(same(f, d:to("f32")), "randn")
    sg.manual_seed(15)
    local ud = sg.rand({1000}, "f64")
    sg.manual_seed(15)
    check.truthy(same(sg.rand{1000}, ud:to("f32")), "rand")
  end)

  test("randint stays in [lo, hi) and covers it", function()
    sg.manual_seed(16)
    local r = sg.randint(-3, 4, {100000})
    check.eq(r.dtype, "i64")
    check.eq(r:min():item(), -3)
    check.eq(r:max():item(), 3)
    for v = -3, 3 do
      local frac = r:eq(v):to("f64"):mean():item()
      check.near(frac, 1 / 7, 0.01, 0, "value " .. v)
    end
    -- randint(hi, shape): from 0
    local h = sg.randint(5, {1000})
    check.eq(h.shape, {1000})
    check.eq(h:min():item(), 0)
    check.eq(h:max():item(), 4)
    -- a one-value range
    check.eq(sg.randint(7, 8, {10}):eq(7):all():item(), true)
    -- a wide range
    local w = sg.randint(0, 1 << 40, {1000})
    check.truthy(w:min():item() >= 0 and w:max():item() < (1 << 40), "wide range")
    check.truthy(w:max():item() > (1 << 39), "wide range is used")
  end)

  test("dtype and shape options", function()
    sg.manual_seed(17)
    check.eq(sg.rand{2, 3}.dtype, "f32")
    check.eq(sg.rand(2, 3).shape, {2, 3})
    check.eq(sg.rand({2}, "f64").dtype, "f64")
    check.eq(sg.randn({2}, {dtype = "bf16"}).dtype, "bf16")
    check.eq(sg.randint(0, 5, {3}, "i32").dtype, "i32")
    check.eq(sg.randint(0, 5, {3}, {dtype = "u8"}).dtype, "u8")
    local f = sg.randint(0, 5, {100}, "f32")
    check.eq(f.dtype, "f32")
    check.near(f, f:to("i64"), 0, 0, "integral values")
    local g = sg.randn({3}, {requires_grad = true})
    check.truthy(g:needs_grad(), "requires_grad option")
    check.eq(sg.rand{0}.shape, {0})
    check.eq(sg.randn{}.shape, {}, "0-dim draw")
    check.errors(function() return sg.rand({3}, "i64") end, "rand: dtype must be floating point")
    check.errors(function() return sg.randn({3}, "bool") end, "randn: dtype must be floating point")
    check.errors(function() return sg.rand({3}, "f17") end, "unknown dtype")
    check.errors(function() return sg.randint(5, 5, {3}) end, "randint: empty range")
    check.errors(function() return sg.randint(5, 2, {3}) end, "randint: empty range")
  end)
end
