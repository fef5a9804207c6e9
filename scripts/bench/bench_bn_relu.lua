-- Forward + backward time of batch norm (training) followed by ReLU: the fused
-- op (F.batch_norm{relu = true}, backend_cpu/norm.c) against the two
-- ops, f32, at the activation shapes of a U-Net level.
--   build/semseg run scripts/bench/bench_bn_relu.lua [N C H W [iters [threads]]]
-- defaults: x [4,16,128,128], 20 timed iterations after two warm-ups, 2 threads; the fastest
-- iteration is reported as well as the mean (shared machines are noisy); on one thread the times
-- are process CPU time.
local sg = require "semseg"
local F = sg.F

local a = {}
for k = 1, 6 do a[k] = arg and tonumber(arg[k]) end
local N, C, H, W = a[1] or 4, a[2] or 16, a[3] or 128, a[4] or 128
local iters = math.tointeger(a[5] or 20)
F._threads(math.tointeger(a[6] or 2))
-- one thread: process CPU time (steadier than wall time when the machine is shared)
local now = F._threads() == 1 and os.clock or sg.clock

sg.manual_seed(1)
local x = sg.randn({N, C, H, W}, "f32"):requires_grad()
local wt, bs = sg.randn({C}, "f32"):requires_grad(), sg.randn({C}, "f32"):requires_grad()
local rm, rv = sg.zeros({C}, "f32"), sg.ones({C}, "f32")
local gy = sg.randn({N, C, H, W}, "f32")

local cases = {
  {"(warm-up) fused", function() return F.batch_norm(x, rm, rv, wt, bs, {training = true, relu = true}) end},
  {"fused batch_norm_relu", function() return F.batch_norm(x, rm, rv, wt, bs, {training = true, relu = true}) end},
  {"batch_norm, relu", function() return F.batch_norm(x, rm, rv, wt, bs, {training = true}):relu() end},
}
print(string.format("x [%d,%d,%d,%d] f32, %d threads, %d iterations: mean (fastest) ms", N, C, H, W, F._threads(),
  iters))
for _, c in ipairs(cases) do
  local tf, tb = {}, {}
  for it = 1, iters + 2 do
    x.grad, wt.grad, bs.grad = nil, nil, nil
    local t0 = now()
    local y = c[2]()
    local t1 = now()
    y:backward(gy)
    local t2 = now()
    if it > 2 then tf[#tf + 1], tb[#tb + 1] = t1 - t0, t2 - t1 end
    y = nil
    collectgarbage()
  end
  local function stat(t)
    local s, m = 0, math.huge
    for _, v in ipairs(t) do s, m = s + v, math.min(m, v) end
    return string.format("%7.2f (%6.2f)", s / #t * 1e3, m * 1e3)
  end
  print(string.format("%-24s forward %s  backward %s", c[1], stat(tf), stat(tb)))
end
