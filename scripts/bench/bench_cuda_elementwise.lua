-- GPU elementwise and reduction timings on [8, 64, 128, 128] (8.4M elements):
-- milliseconds per call (median, the stream synchronised around each call)
-- and the effective memory bandwidth (bytes read + written / time), for the
-- flat, broadcast, strided and generic elementwise paths and the reduction
-- plans (one long row, per-channel sums, rows over the last dim, columns).
--   semseg run scripts/bench/bench_cuda_elementwise.lua [repeats]
local sg = require "semseg"
if not sg.cuda.is_available() then
  print("no CUDA device: " .. tostring(sg.cuda.why_unavailable()))
  return
end
local reps = tonumber(arg and arg[1]) or 20
local shape = {8, 64, 128, 128}
local now = sg.clock

local function median_ms(fn)
  fn()
  sg.cuda.synchronize()
  local t = {}
  for k = 1, reps do
    local s = now()
    fn()
    sg.cuda.synchronize()
    t[k] = (now() - s) * 1e3
  end
  table.sort(t)
  return t[(#t + 1) // 2]
end

sg.manual_seed(1)
local x, y = sg.randn(shape):cuda(), sg.randn(shape):cuda()
local xb, yb = x:to("bf16"), y:to("bf16")
local bias = sg.randn({1, 64, 1, 1}):cuda()
local xt = x:transpose(3, 4)
local xi = sg.randint(-100, 100, shape):cuda()
local gy = sg.randn(shape):cuda()
local n = x:numel()
local f32, bf16, i64 = 4 * n, 2 * n, 8 * n

local cases = {
  {"add f32 (flat)", 3 * f32, function() return x + y end},
  {"mul f32 by a number", 2 * f32, function() return x * 0.5 end},
  {"add bf16 (flat)", 3 * bf16, function() return xb + yb end},
  {"add f32 + bias [1,C,1,1] (strided)", 2 * f32, function() return x + bias end},
  {"add f32 transposed (strided)", 3 * f32, function() return xt + y end},
  {"add f32 + bf16 (generic)", 2 * f32 + bf16 + f32, function() return x + yb end},
  {"gt f32 -> bool (generic)", 2 * f32 + n, function() return x:gt(y) end},
  {"add i64 (generic)", 3 * i64, function() return xi + xi end},
  {"relu f32", 2 * f32, function() return x:relu() end},
  {"sigmoid f32", 2 * f32, function() return x:sigmoid() end},
  {"sigmoid bf16", 2 * bf16, function() return xb:sigmoid() end},
  {"exp f32 transposed", 2 * f32, function() return xt:exp() end},
  {"where f32", 3 * f32 + n, function() return sg.where(x:gt(0), x, y) end},
  {"sum f32 all (one long row)", f32, function() return x:sum() end},
  {"sum f32 over {1,3,4} (per channel)", f32, function() return x:sum({1, 3, 4}) end},
  {"sum f32 over dim 4 (rows of 128)", f32, function() return x:sum(4) end},
  {"sum f32 over dim 1 (columns)", f32, function() return x:sum(1) end},
  {"amax f32 over dim 2 (softmax axis)", f32, function() return x:amax(2, true) end},
  {"argmax f32 over dim 2", f32, function() return x:argmax(2) end},
  {"sum bf16 all", bf16, function() return xb:sum() end},
  {"mean+var f32 over {1,3,4}", 3 * f32, function() return x:var({1, 3, 4}) end},
}

print(string.format("%s, %d repeats, shape [8,64,128,128]", sg.cuda.device_name(), reps))
print(string.format("%-40s %10s %10s", "case", "ms", "GB/s"))
for _, c in ipairs(cases) do
  local ms = median_ms(c[3])
  print(string.format("%-40s %10.3f %10.1f", c[1], ms, c[2] / (ms * 1e-3) / 1e9))
end

local xl = x:clone():requires_grad()
local ms = median_ms(function()
  xl.grad = nil
  xl:sigmoid():backward(gy)
end)
print(string.format("%-40s %10.3f", "sigmoid f32 forward+backward", ms))
