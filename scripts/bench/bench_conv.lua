-- Forward + backward time of a 3x3 convolution, oneDNN path against the
-- im2col + OpenBLAS path (f32).
--   build/semseg run scripts/bench/bench_conv.lua [N C H W O [iters]]
-- defaults: x [8,64,128,128] -> 64 channels, 5 timed iterations after one
-- warm-up. SEMSEG_DNNL=0 in the environment runs the BLAS path only.
local sg = require "semseg"
local F = sg.F

local a = {}
for k = 1, 6 do a[k] = arg and tonumber(arg[k]) end
local N, C, H, W, O = a[1] or 8, a[2] or 64, a[3] or 128, a[4] or 128, a[5] or 64
local iters = a[6] or 5

local now = sg.clock -- monotonic wall-clock seconds

local compiled, enabled = F._dnnl()
local paths = {}
if compiled and enabled then paths[#paths + 1] = "dnnl" end
paths[#paths + 1] = "blas"

sg.manual_seed(1)
local x = sg.randn({N, C, H, W}, "f32"):requires_grad()
local w = (sg.randn({O, C, 3, 3}, "f32") * (1 / math.sqrt(9 * C))):requires_grad()
local b = sg.randn({O}, "f32"):requires_grad()
local gy = sg.randn({N, O, H, W}, "f32")
local flop = 2 * N * O * H * W * C * 9 -- one pass; backward is two (data and weights)

print(string.format("conv2d 3x3 pad 1: x [%d,%d,%d,%d] -> %d channels, f32, %d iterations, %.2f GFLOP forward",
  N, C, H, W, O, iters, flop / 1e9))
local res = {}
for _, path in ipairs(paths) do
  F._dnnl(path == "dnnl")
  local tf, tb = 0, 0
  for it = 0, iters do
    x.grad, w.grad, b.grad = nil, nil, nil
    local t0 = now()
    local y = F.conv2d(x, w, b, {padding=1})
    local t1 = now()
    y:backward(gy)
    local t2 = now()
    assert(F._conv_path() == path, "ran " .. F._conv_path() .. ", wanted " .. path)
    if it > 0 then tf, tb = tf + (t1 - t0), tb + (t2 - t1) end
    y = nil
    collectgarbage()
  end
  tf, tb = tf / iters, tb / iters
  res[path] = tf + tb
  print(string.format("%-5s forward %8.1f ms (%6.1f GFLOP/s)  backward %8.1f ms (%6.1f GFLOP/s)  total %8.1f ms (%6.1f GFLOP/s)",
    path, tf * 1e3, flop / tf / 1e9, tb * 1e3, 2 * flop / tb / 1e9, (tf + tb) * 1e3, 3 * flop / (tf + tb) / 1e9))
end
F._dnnl("env")
if res.dnnl then print(string.format("speedup (forward + backward): %.2fx", res.blas / res.dnnl)) end
