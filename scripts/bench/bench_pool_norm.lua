-- Forward + backward time of average pooling, oneDNN path against the
-- engine's loops (f32). Max pooling and batch norm run the cpu kernels
-- (backend_cpu/cpu_kernels.c) whatever the switch: scripts/bench/bench_bn_relu.lua
-- times batch norm and its fused ReLU.
--   build/semseg run scripts/bench/bench_pool_norm.lua [N C H W [iters]]
-- defaults: x [8,64,128,128], 5 timed iterations after one warm-up.
-- SEMSEG_DNNL=0 in the environment runs the loops only.
local sg = require "semseg"
local F = sg.F

local a = {}
for k = 1, 5 do a[k] = arg and tonumber(arg[k]) end
local N, C, H, W = a[1] or 8, a[2] or 64, a[3] or 128, a[4] or 128
local iters = a[5] or 5
local now = sg.clock -- monotonic wall-clock seconds

local compiled, enabled = F._dnnl()
local paths = {}
if compiled and enabled then paths[#paths + 1] = "dnnl" end
paths[#paths + 1] = "loops"

sg.manual_seed(1)
local x = sg.randn({N, C, H, W}, "f32"):requires_grad()
local wt, bs = sg.randn({C}, "f32"):requires_grad(), sg.randn({C}, "f32"):requires_grad()

local cases = {
  {"avg_pool2d 2x2", F._pool_path, function() return F.avg_pool2d(x, {kernel=2}) end},
  {"avg_pool2d 3x3 s1 p1", F._pool_path, function() return F.avg_pool2d(x, {kernel=3, stride=1, padding=1}) end},
  {"adaptive_avg_pool2d 1", F._pool_path, function() return F.adaptive_avg_pool2d(x, 1) end},
}

print(string.format("x [%d,%d,%d,%d] f32, %d iterations (mean ms)", N, C, H, W, iters))
print(string.format("%-22s %-5s %9s %9s %9s", "op", "path", "forward", "backward", "total"))
local tot = {}
for _, c in ipairs(cases) do
  local name, path_fn, fn = c[1], c[2], c[3]
  local res = {}
  for _, path in ipairs(paths) do
    F._dnnl(path == "dnnl")
    local tf, tb = 0, 0
    for it = 0, iters do
      x.grad, wt.grad, bs.grad = nil, nil, nil
      local t0 = now()
      local y = fn()
      local t1 = now()
      assert(path_fn() == path, name .. ": forward ran " .. path_fn() .. ", wanted " .. path)
      local gy = sg.ones(y.shape, "f32")
      local t2 = now()
      y:backward(gy)
      local t3 = now()
      assert(path_fn() == path, name .. ": backward ran " .. path_fn() .. ", wanted " .. path)
      if it > 0 then tf, tb = tf + (t1 - t0), tb + (t3 - t2) end
      y, gy = nil, nil
      collectgarbage()
    end
    tf, tb = tf / iters, tb / iters
    res[path] = {tf, tb}
    tot[path] = (tot[path] or 0) + tf + tb
    print(string.format("%-22s %-5s %9.2f %9.2f %9.2f", name, path, tf * 1e3, tb * 1e3, (tf + tb) * 1e3))
  end
  if res.dnnl then
    local d, l = res.dnnl, res.loops
    print(string.format("%-22s ratio  %8.2fx %8.2fx %8.2fx", "", l[1] / d[1], l[2] / d[2],
      (l[1] + l[2]) / (d[1] + d[2])))
  end
end
F._dnnl("env")
if tot.dnnl then print(string.format("speedup over all ops (forward + backward): %.2fx", tot.loops / tot.dnnl)) end
