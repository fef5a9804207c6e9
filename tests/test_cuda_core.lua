-- The CUDA backend's foundation: device transfers, copies between layouts and
-- dtypes, fills, element access, printing, the caching allocator, pinned host
-- memory and clean errors. The GPU tests skip (with the reason) when no device
-- is usable; the last tests check what a machine without one must answer.

local function need_gpu()
  if not sg.cuda.is_available() then skip("no CUDA device: " .. tostring(sg.cuda.why_unavailable())) end
end

local DTYPES = {"f32", "f64", "f16", "bf16", "i64", "i32", "u8", "bool"}

-- the elements of a nested table in order; NaN as the string "nan" (json cannot hold inf or NaN)
local function flat(t, out)
  out = out or {}
  if type(t) ~= "table" then
    out[#out + 1] = t ~= t and "nan" or t
    return out
  end
  for _, v in ipairs(t) do flat(v, out) end
  return out
end

local function same(a, b, what)
  check.eq(a.dtype, b.dtype, what .. " dtype")
  check.eq(table.concat(a:size(), ","), table.concat(b:size(), ","), what .. " shape")
  local ta, tb = flat(a:cpu():totable()), flat(b:cpu():totable())
  check.eq(#ta, #tb, what .. " element count")
  for i = 1, #ta do
    if ta[i] ~= tb[i] or math.type(ta[i]) ~= math.type(tb[i]) then
      error(string.format("%s values: element %d is %s, want %s", what, i, tostring(ta[i]), tostring(tb[i])), 0)
    end
  end
end

test("every dtype goes to the GPU and back unchanged", function()
  need_gpu()
  for _, dt in ipairs(DTYPES) do
    local x = (sg.randn{3, 5, 7} * 50):to(dt)
    local g = x:cuda()
    check.eq(g.device, "cuda", dt)
    check.truthy(g.is_cuda, dt .. " is_cuda")
    same(g:cpu(), x, dt)
    same(x:to("cuda"):to("cpu"), x, dt .. " via to")
    same(x:to{device = "cuda"}:to{device = "cpu"}, x, dt .. " via to{}")
  end
end)

test("non-contiguous views and broadcasts copy correctly in every direction", function()
  need_gpu()
  local x = sg.randn{4, 6, 8}
  local views = {
    x:transpose(1, 3), x:slice(2, 2, 6, 2), x:select(3, 4), x:narrow(1, 2, 2):permute{3, 1, 2},
    sg.randn{1, 6, 1}:expand{4, 6, 8},
  }
  for i, v in ipairs(views) do
    same(v:cuda(), v:contiguous(), "view " .. i .. " host->device")
    local gv = v:contiguous():cuda()
    same(gv:cpu(), v:contiguous(), "view " .. i .. " device->host")
  end
  -- device-side strided copies
  local g = x:cuda()
  same(g:transpose(1, 3):contiguous(), x:transpose(1, 3):contiguous(), "device transpose")
  same(g:slice(3, 1, 8, 3):clone(), x:slice(3, 1, 8, 3):clone(), "device slice clone")
  -- copy_ into a strided device destination, from the host, with broadcast and cast
  local dst = sg.zeros({8, 6}, {device = "cuda"})
  dst:transpose(1, 2):copy_(sg.tensor{{1}, {2}, {3}, {4}, {5}, {6}}:to("f64"))
  local want = sg.zeros{8, 6}
  want:transpose(1, 2):copy_(sg.tensor{{1}, {2}, {3}, {4}, {5}, {6}}:to("f64"))
  same(dst, want, "copy_ host->strided device with broadcast+cast")
  -- device -> strided host destination
  local hdst = sg.zeros{6, 8}
  hdst:transpose(1, 2):copy_(g:select(1, 2):transpose(1, 2))
  local hwant = x:select(1, 2):contiguous()
  same(hdst, hwant, "copy_ device->strided host")
end)

test("casts on the device round like the CPU", function()
  need_gpu()
  local x = sg.tensor{-1e6, -300.7, -2.5, -1.5, -0.5, 0, 0.5, 1.5, 2.5, 255.9, 300, 65519, 65521, 1e-8, 1 / 0, -1 / 0}
  for _, src in ipairs{"f32", "f64"} do
    for _, dt in ipairs(DTYPES) do
      local xs = x:to(src)
      same(xs:cuda():to(dt), xs:to(dt), src .. "->" .. dt)
    end
  end
  for _, src in ipairs{"i64", "i32", "u8", "bool", "f16", "bf16"} do
    local xs = sg.tensor{-3, 0, 1, 7, 200, 1000}:to(src)
    for _, dt in ipairs(DTYPES) do same(xs:cuda():to(dt), xs:to(dt), src .. "->" .. dt) end
  end
end)

test("creation, fill, element access and printing on the device", function()
  need_gpu()
  local z = sg.zeros({3, 4}, {device = "cuda"})
  check.eq(z:sum():item(), 0)
  local o = sg.ones({2, 3}, {device = "cuda", dtype = "bf16"})
  check.eq(o.device, "cuda")
  same(o, sg.ones({2, 3}, "bf16"), "ones bf16")
  local f = sg.full(2.5, {5}, {device = "cuda"})
  check.eq(f:totable()[5], 2.5)
  z:fill_(7)
  check.eq(z:cpu():totable()[3][4], 7)
  z:slice(2, 1, 4, 2):fill_(-1) -- a strided fill
  check.eq(sg.json.encode(z:cpu():totable()[1]), "[-1,7,-1,7]")
  check.eq(z[2][3]:item(), -1)
  z[1][2] = 42
  check.eq(z:cpu():totable()[1][2], 42)
  check.eq(sg.tensor({9}, "i64"):cuda():item(), 9)
  local s = tostring(sg.tensor{1.5, 2}:cuda())
  check.truthy(s:find("device=cuda", 1, true), s)
  check.truthy(s:find("1.5", 1, true), s)
end)

test("gradients flow back across devices", function()
  need_gpu()
  local x = sg.randn{3, 4}:requires_grad()
  local y = x:cuda()
  check.truthy(y.requires_grad)
  local back = y:cpu()
  back:backward(sg.ones{3, 4} * 3)
  check.eq(x.grad.device, "cpu")
  check.near(x.grad, sg.full(3, {3, 4}), 0)
end)

test("the caching allocator reuses blocks, counts bytes and empties its cache", function()
  need_gpu()
  collectgarbage(); collectgarbage()
  sg.cuda.empty_cache()
  local s0 = sg.cuda.memory_stats()
  for _, k in ipairs{"allocated", "peak_allocated", "reserved", "peak_reserved", "allocations", "cache_hits",
                     "segments", "driver_allocs", "ooms", "pinned_bytes", "tensors"} do
    check.eq(math.type(s0[k]), "integer", k)
  end
  local a = sg.empty({1000}, {device = "cuda"}) -- 4000 bytes -> one 512-byte-rounded block
  local s1 = sg.cuda.memory_stats()
  check.eq(s1.allocated - s0.allocated, 4096, "rounded to 512 bytes")
  check.truthy(s1.reserved >= s1.allocated)
  a = nil
  collectgarbage(); collectgarbage()
  check.eq(sg.cuda.memory_stats().allocated, s0.allocated, "freed")
  -- the same sizes again come from the cache, not the driver
  local drv = sg.cuda.memory_stats().driver_allocs
  for _ = 1, 20 do
    local t = sg.empty({64, 1024, 1024}, {device = "cuda"}) -- 256 MiB
    t = nil
    collectgarbage()
  end
  check.truthy(sg.cuda.memory_stats().driver_allocs - drv <= 1, "large blocks are reused")
  -- many small blocks share segments and merge back
  local keep = {}
  for i = 1, 200 do keep[i] = sg.empty({i * 37}, {device = "cuda"}) end
  keep = nil
  collectgarbage(); collectgarbage()
  check.eq(sg.cuda.memory_stats().allocated, s0.allocated, "all small blocks returned")
  local before = sg.cuda.memory_stats().reserved
  sg.cuda.empty_cache()
  local after = sg.cuda.memory_stats().reserved
  check.truthy(after < before, "empty_cache gave segments back: " .. before .. " -> " .. after)
  sg.cuda.reset_peak_memory_stats()
  check.eq(sg.cuda.memory_stats().peak_allocated, sg.cuda.memory_stats().allocated)
end)

test("moving a module's tensors (set_data_) moves their live-tensor count to the new device", function()
  need_gpu()
  collectgarbage(); collectgarbage()
  local c0, h0 = sg.memory_stats("cuda"), sg.memory_stats("cpu")
  local m = sg.nn.Conv2d(2, 3, 3) -- weight and bias
  m:to("cuda")
  collectgarbage(); collectgarbage()
  local c1, h1 = sg.memory_stats("cuda"), sg.memory_stats("cpu")
  check.eq(c1.tensors - c0.tensors, 2, "the two parameters count on cuda")
  check.eq(h1.tensors - h0.tensors, 0, "and no longer on the cpu")
  m = nil
  collectgarbage(); collectgarbage()
  local c2, h2 = sg.memory_stats("cuda"), sg.memory_stats("cpu")
  check.eq(c2.tensors, c0.tensors, "cuda count back after freeing")
  check.eq(h2.tensors, h0.tensors, "cpu count back after freeing")
  check.truthy(c2.tensors >= 0, "never negative")
end)

test("an impossible allocation is a clean error and the device still works", function()
  need_gpu()
  local ok, err = pcall(sg.empty, {1 << 40}, {device = "cuda", dtype = "u8"}) -- 1 TiB
  check.truthy(not (ok))
  check.truthy(tostring(err):find("out of memory", 1, true), err)
  check.truthy(tostring(err):find("1099511627776", 1, true), "names the bytes asked: " .. err)
  check.truthy(tostring(err):find("in use", 1, true), "says what is in use: " .. err)
  check.truthy(sg.cuda.memory_stats().ooms >= 1)
  local t = sg.ones({10}, {device = "cuda"})
  check.eq(t:sum():item(), 10)
end)

test("pinned host memory: pin_memory, asynchronous upload, same values", function()
  need_gpu()
  local x = sg.randn{16, 16}
  local p = x:pin_memory()
  check.truthy(p.is_pinned, "pinned")
  check.eq(p.device, "cpu")
  same(p, x, "pinned copy")
  check.truthy(sg.cuda.memory_stats().pinned_bytes >= 1024)
  local g = p:cuda()
  sg.cuda.synchronize()
  same(g, x, "upload from pinned memory")
  check.truthy(p:pin_memory() == p, "pinning a pinned tensor returns it")
end)

test("device queries and the cuDNN policy switches", function()
  need_gpu()
  check.truthy(sg.cuda.device_count() >= 1)
  check.truthy(#sg.cuda.device_name() > 0)
  check.eq(sg.cuda.why_unavailable(), nil)
  sg.cuda.synchronize()
  local b, d = sg.cuda.benchmark(), sg.cuda.deterministic()
  check.eq(sg.cuda.benchmark(true), true)
  check.eq(sg.cuda.deterministic(true), true)
  sg.cuda.benchmark(b); sg.cuda.deterministic(d)
  check.truthy(sg.backends():find("cuda (", 1, true), sg.backends())
end)

test("ops refuse tensors on different devices with a clear error", function()
  need_gpu()
  check.errors(function() return sg.ones{2} + sg.ones{2}:cuda() end, "device")
end)

-- without a device (every CPU machine, CI)
test("without a device: sg.cuda answers and cuda tensors are a clear error", function()
  if sg.cuda.is_available() then skip("a CUDA device is present") end
  check.eq(sg.cuda.device_count(), 0)
  check.eq(type(sg.cuda.why_unavailable()), "string")
  check.eq(type(sg.cuda.is_built()), "boolean")
  check.errors(function() return sg.zeros(2):cuda() end, "device 'cuda' is not available")
  check.errors(function() return sg.zeros(2, {device = "cuda"}) end, "device 'cuda' is not available")
  check.errors(function() sg.cuda.synchronize() end, "sg.cuda.synchronize")
  check.errors(function() return sg.cuda.memory_stats() end, "sg.cuda.memory_stats")
  sg.cuda.empty_cache() -- harmless
  local x = sg.randn{4, 4}
  local p = x:pin_memory() -- falls back to plain memory
  check.eq(p.device, "cpu")
  check.truthy(not (p.is_pinned))
  check.near(p, x, 0)
  check.truthy(sg.backends():find("^cpu"), sg.backends())
end)
