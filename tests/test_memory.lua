-- Memory accounting: live tensors/bytes, freeing by GC, <close>, autograd's
-- saved tensors, GC pressure from large allocations, failed allocations.

local function settle()
  collectgarbage(); collectgarbage()
  return sg.memory_stats()
end

test("memory_stats fields", function()
  local s = settle()
  for _, k in ipairs{"tensors", "storages", "bytes", "peak_bytes"} do
    check.eq(math.type(s[k]), "integer", k)
    check.truthy(s[k] >= 0, k .. " >= 0")
  end
  check.truthy(s.peak_bytes >= s.bytes, "peak >= bytes")
  local t = sg.zeros{1000}
  local s2 = sg.memory_stats()
  check.eq(s2.tensors, s.tensors + 1)
  check.eq(s2.storages, s.storages + 1)
  check.eq(s2.bytes, s.bytes + 4000)
  check.truthy(s2.peak_bytes >= s2.bytes)
  local c = sg.memory_stats("cuda")
  check.eq(math.type(c.bytes), "integer", "cuda bytes")
  -- with a device, tests that ran before may have left cached GPU tensors (predict's Gaussian maps)
  if not sg.cuda.is_available() then check.eq(c.bytes, 0, "no cuda memory without a device") end
  t = nil
end)

test("bytes follow the dtype", function()
  local s = settle()
  local ts = {}
  local sizes = {f32 = 4, f64 = 8, f16 = 2, bf16 = 2, i64 = 8, i32 = 4, u8 = 1, bool = 1}
  local want = 0
  for dt, es in pairs(sizes) do
    ts[#ts + 1] = sg.empty({10, 10}, dt)
    want = want + 100 * es
  end
  check.eq(sg.memory_stats().bytes - s.bytes, want)
  ts = nil
  check.eq(settle().bytes, s.bytes)
end)

test("views add tensors but no storage", function()
  local s = settle()
  local t = sg.zeros{4, 6}
  local v1, v2, v3 = t:view(6, 4), t:transpose(), t:slice(2, 1, 3)
  local s2 = sg.memory_stats()
  check.eq(s2.tensors, s.tensors + 4)
  check.eq(s2.storages, s.storages + 1)
  check.eq(s2.bytes, s.bytes + 96)
  -- the storage lives while any view does
  t, v1, v2 = nil, nil, nil
  local s3 = settle()
  check.eq(s3.tensors, s.tensors + 1)
  check.eq(s3.bytes, s.bytes + 96)
  check.eq(v3.shape, {4, 3})
  v3 = nil
  local s4 = settle()
  check.eq(s4.tensors, s.tensors)
  check.eq(s4.bytes, s.bytes)
end)

test("dropped tensors return to the baseline after collectgarbage", function()
  local s = settle()
  do
    local keep = {}
    for i = 1, 50 do keep[i] = sg.randn{32, 32} * i + 1 end
    local acc = sg.zeros{32, 32}
    for i = 1, 50 do acc = acc + keep[i]:exp():sum(1, true) end
    check.truthy(sg.memory_stats().bytes > s.bytes + 50 * 4096, "they were allocated")
  end
  local s2 = settle()
  check.eq(s2.tensors, s.tensors, "tensors")
  check.eq(s2.storages, s.storages, "storages")
  check.eq(s2.bytes, s.bytes, "bytes")
end)

test("<close> frees at scope exit without collectgarbage", function()
  local s = settle()
  collectgarbage("stop") -- nothing else may free memory behind the test's back
  local ok, err = pcall(function()
    do
      local t <close> = sg.zeros{1000}
      check.eq(sg.memory_stats().bytes, s.bytes + 4000)
      local total <close> = t:sum() -- temporaries can be closed too
      check.eq(total:item(), 0)
    end
    check.eq(sg.memory_stats().bytes, s.bytes, "bytes back at scope exit")
    -- an error leaving the scope closes it too
    pcall(function()
      local u <close> = sg.ones{2000}
      error("boom")
    end)
    check.eq(sg.memory_stats().bytes, s.bytes, "closed by the error unwinding")
    -- a closed tensor says so instead of crashing
    local keep
    do
      local t <close> = sg.ones{10}
      keep = t
    end
    check.eq(tostring(keep), "tensor(<closed>)")
    check.errors(function() return keep + 1 end, "closed")
    check.errors(function() return keep:sum() end, "closed")
    check.errors(function() return keep.shape end, "closed")
  end)
  collectgarbage("restart")
  if not ok then error(err, 0) end
end)

test("a finished backward pass frees the saved tensors", function()
  local s = settle()
  local N = 256 * 256 * 4
  do
    local x = sg.randn{256, 256}
    local p = sg.tensor({1.5}):requires_grad()
    local loss
    do
      local z = x * p      -- [256,256], kept alive only by the graph once dropped
      loss = (z * z):sum() -- mul saves z
    end
    local before = settle().bytes
    check.truthy(before >= s.bytes + 2 * N, "x and the saved z are alive")
    loss:backward()
    check.near(p.grad:item(), 2 * 1.5 * (x * x):sum():item(), 1e-2, 1e-4)
    local after = settle().bytes
    check.truthy(after <= before - N + 64, string.format("saved z freed by backward (%d -> %d)", before, after))
    check.errors(function() loss:backward() end, "already used by a backward pass")
  end
  local s2 = settle()
  check.eq(s2.tensors, s.tensors, "tensors back to baseline")
  check.eq(s2.bytes, s.bytes, "bytes back to baseline")
end)

test("closed intermediates are freed by the backward pass itself, no collection needed", function()
  local s = settle()
  collectgarbage("stop")
  local ok, err = pcall(function()
    local x = sg.randn{128, 128}
    local p = sg.tensor({0.5}):requires_grad()
    local loss
    do
      local a <close> = x * p     -- saved by the next mul; this handle is closed at once
      local b <close> = a * a
      local c <close> = b:tanh()  -- tanh saves its output
      loss = c:sum()
    end
    local before = sg.memory_stats().bytes
    loss:backward()
    local after = sg.memory_stats().bytes
    check.truthy(after <= before - 2 * 128 * 128 * 4 + 64,
      string.format("a and c freed during backward without the collector (%d -> %d)", before, after))
  end)
  collectgarbage("restart")
  if not ok then error(err, 0) end
end)

-- resident memory of this process in MB (Linux)
local function rss_mb()
  local g = io.open("/proc/self/status", "r")
  local txt = g:read("a")
  g:close()
  return tonumber(txt:match("VmRSS:%s*(%d+)")) / 1024
end

test("large blocks of many sizes do not pile up in the allocator (resident memory stays bounded)", function()
  local f = io.open("/proc/self/status", "r")
  if not f then skip("no /proc/self/status") end
  f:close()
  settle()
  local r0 = rss_mb()
  for i = 1, 80 do -- 80 sizes from 2 to 60 MB, each written (resident) and closed at once: 2.5 GB in all
    local t <close> = sg.ones{(2 + (i * 37) % 59) * 262144 + i}
  end
  local grew = rss_mb() - r0
  check.truthy(grew < 256 + 64, string.format("resident memory grew by %.0f MB", grew))
end)

test("empty_cache gives cached blocks back to the kernel; live tensors keep their values", function()
  if not io.open("/proc/self/status", "r") then skip("no /proc/self/status") end
  if os.getenv("ASAN_OPTIONS") then skip("AddressSanitizer build: plain malloc and a quarantine, no block cache") end
  local keep = sg.full(2, {300000}) -- a large block that must survive
  sg.empty_cache()
  local r0 = rss_mb()
  do -- 4 x 32 MB alive together, written, then closed: cached
    local a <close> = sg.ones{8 << 20}
    local b <close> = sg.ones{8 << 20}
    local c <close> = sg.ones{8 << 20}
    local d <close> = sg.ones{8 << 20}
  end
  local r1 = rss_mb()
  local before = sg.memory_stats()
  sg.empty_cache()
  local r2 = rss_mb()
  check.truthy(r1 - r0 > 60, string.format("the closed blocks stay cached (resident grew by %.0f MB)", r1 - r0))
  check.truthy(r2 - r0 < 16, string.format("empty_cache left %.0f MB resident of the closed blocks", r2 - r0))
  check.eq(sg.memory_stats().bytes, before.bytes, "live bytes unchanged")
  check.eq(keep:sum():item(), 600000, "a live tensor keeps its values")
  local again = sg.ones{8 * 1024 * 1024}
  check.eq(again:sum():item(), 8 * 1024 * 1024, "allocation after empty_cache")
end)

test("a graph dropped without backward is freed too", function()
  local s = settle()
  do
    local w = sg.randn{64, 64}:requires_grad()
    local h = sg.randn{8, 64}
    for _ = 1, 5 do h = sg.matmul(h, w):tanh() end
    local loss = h:sum()
    check.eq(loss.grad_fn, "sum")
  end
  local s2 = settle()
  check.eq(s2.tensors, s.tensors)
  check.eq(s2.bytes, s.bytes)
end)

test("many large temporaries stay bounded (GC pressure hook)", function()
  local s = settle()
  local MB = 1024 * 1024
  local peak = s.bytes
  for _ = 1, 200 do
    local t = sg.empty{2 * MB} -- 8 MB, dropped at once; Lua only sees a small userdata
    local b = sg.memory_stats().bytes
    if b > peak then peak = b end
  end
  local grew = peak - s.bytes
  check.truthy(grew >= 8 * MB, "the loop allocated")
  check.truthy(grew < 400 * MB, string.format("live bytes peaked at %.0f MB (200 x 8 MB allocated)", grew / MB))
  check.eq(settle().bytes, s.bytes)
end)

test("impossible allocations fail cleanly", function()
  local s = settle()
  -- beyond the engine's element limit: rejected before malloc, naming the shape
  check.errors(function() return sg.empty{1 << 30, 1 << 30} end, "[1073741824,1073741824]")
  check.errors(function() return sg.zeros{1 << 40, 1 << 40} end, "too large")
  check.errors(function() return sg.zeros{4, -1} end, "zeros: negative size -1 in dim 2")
  -- within the limit but far beyond any machine: malloc fails
  local ok, err = pcall(sg.empty, {1 << 20, 1 << 20})
  if ok then
    err = nil
    collectgarbage()
    skip("this machine's allocator overcommits 4 TiB")
  end
  err = tostring(err)
  check.truthy(err:find("out of memory", 1, true) or err:find("[1048576,1048576]", 1, true),
               "message mentions out of memory or the shape: " .. err)
  check.errors(function() return sg.zeros({1 << 20, 1 << 20}, "f64") end, "out of memory")
  check.errors(function() return sg.randn{1 << 20, 1 << 20} end, "out of memory")
  local s2 = settle()
  check.eq(s2.bytes, s.bytes, "a failed allocation leaves no bytes behind")
  check.eq(s2.tensors, s.tensors)
  -- the engine keeps working afterwards
  check.eq(sg.ones{3}:sum():item(), 3)
end)

test("in-place ops from Lua do not leak their tensor", function()
  local s = settle()
  do
    local t = sg.zeros{1000}
    t:add_(1)
    t:mul_(2)
    t:exp_()
    t:clamp_(0, 10)
    check.near(t:amax():item(), math.exp(2), 1e-5, 1e-5)
  end
  local s2 = settle()
  check.eq(s2.tensors, s.tensors, "tensors")
  check.eq(s2.bytes, s.bytes, "bytes")
end)

test("gradient accumulation into a leaf does not leak", function()
  local s = settle()
  do
    local w = sg.zeros{1000}:requires_grad()
    for _ = 1, 3 do (w * 2):sum():backward() end -- first pass creates w.grad, the others add into it
    check.near(w.grad:sum():item(), 6000, 0, 0)
  end
  local s2 = settle()
  check.eq(s2.tensors, s.tensors, "tensors")
  check.eq(s2.bytes, s.bytes, "bytes")
end)
