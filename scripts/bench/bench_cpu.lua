-- The semseg side of the CPU benchmark against PyTorch (scripts/bench/bench_cpu_torch.py is the twin;
-- scripts/bench/bench_cpu.sh runs both, alternating, one fresh process per row, and prints the table).
--
--   build/semseg run scripts/bench/bench_cpu.lua --model unet --base 32 --size 256 --batch 4 [options]
--   build/semseg run scripts/bench/bench_cpu.lua --tiled 1024 --base 32 [--tile 256 --overlap 0.25 --batch 4]
--   build/semseg run scripts/bench/bench_cpu.lua --gemm 2048
-- options: --threads 2 (OpenMP threads for oneDNN and the elementwise kernels; OpenBLAS follows
--          OPENBLAS_NUM_THREADS, which bench_cpu.sh sets to the same number), --warmup 2, --steps 5,
--          --mode both | train | infer, --depth 4
--
-- A training step is zero_grad, forward, loss = BCE with logits against a fixed random 0/1 mask,
-- backward, Adam step (lr 1e-3), as sg.train.fit does it; an inference step is a forward pass in eval
-- mode under sg.no_grad. Inference is timed first, then training; the peak resident memory (VmHWM)
-- is read after each, so "infer" is the inference peak and "train" the peak of the whole run.
-- Conv FLOPs are counted from one forward pass (2 * MACs of every Conv2d / ConvTranspose2d); a
-- training step counts 3x the forward conv FLOPs (forward, grad of data, grad of weights).
-- The last line is "RESULT key=value ..." for bench_cpu.sh.
local sg = require "semseg"
local F = sg.F
local nn = sg.nn

local o = {model = "unet", base = 32, size = 256, batch = 4, threads = 2, warmup = 2, steps = 5, mode = "both",
           depth = 4, tile = 256, overlap = 0.25}
local i = 1
while arg and i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or arg[i + 1] == nil then error("bench_cpu.lua: bad argument '" .. tostring(arg[i]) .. "'") end
  local v = arg[i + 1]
  o[k] = tonumber(v) or v
  i = i + 2
end
for _, k in ipairs{"base", "size", "batch", "threads", "warmup", "steps", "depth", "tile"} do
  o[k] = math.tointeger(o[k]) or error("bench_cpu.lua: --" .. k .. " must be an integer")
end
F._threads(o.threads)
local now = sg.clock

local function vmhwm_mb()
  local f = io.open("/proc/self/status", "r")
  if not f then return -1 end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)%s*kB")
  return kb and tonumber(kb) / 1024 or -1
end

local fields = {}
local function put(k, v)
  if math.type(v) == "float" then v = string.format("%.6g", v) end
  fields[#fields + 1] = k .. "=" .. tostring(v)
end
local function finish()
  put("threads", F._threads())
  print("RESULT framework=semseg " .. table.concat(fields, " "))
end

-- ------------------------------------------------------------------ GEMM reference rate
if o.gemm then
  local n = math.tointeger(o.gemm)
  sg.manual_seed(1)
  local a, b = sg.randn({n, n}, "f32"), sg.randn({n, n}, "f32")
  local _ = sg.matmul(a, b)
  local best = math.huge
  for _ = 1, math.max(3, o.steps) do
    local t0 = now()
    local c = sg.matmul(a, b)
    local dt = now() - t0
    c = nil
    if dt < best then best = dt end
  end
  local gf = 2 * n * n * n / best / 1e9
  print(string.format("semseg sg.matmul (OpenBLAS sgemm) %dx%d f32: %.1f ms, %.1f GFLOP/s (best of %d)", n, n,
    best * 1e3, gf, math.max(3, o.steps)))
  put("row", "gemm" .. n); put("gemm_gflops", gf)
  finish()
  return
end

-- ------------------------------------------------------------------ the model
local build = sg.models[o.model] or error("bench_cpu.lua: unknown model " .. tostring(o.model))
sg.manual_seed(1)
local base_mb = vmhwm_mb()
local model = build{in_channels = 1, classes = 1, base = o.base, depth = o.depth}

-- conv FLOPs of one forward pass for a given input shape, counted by wrapping the conv modules
local function conv_flops(shape)
  local total = 0
  local c2, ct = nn.Conv2d.forward, nn.ConvTranspose2d.forward
  nn.Conv2d.forward = function(self, x)
    local y = c2(self, x)
    local w = self.weight.shape -- [cout, cin/groups, kh, kw]
    total = total + 2 * y.shape[1] * y.shape[2] * y.shape[3] * y.shape[4] * w[2] * w[3] * w[4]
    return y
  end
  nn.ConvTranspose2d.forward = function(self, x, size)
    local y = ct(self, x, size)
    local w = self.weight.shape -- [cin, cout/groups, kh, kw]: every input pixel scatters cout*kh*kw
    total = total + 2 * x.shape[1] * x.shape[2] * x.shape[3] * x.shape[4] * w[2] * w[3] * w[4]
    return y
  end
  local ok, err = pcall(sg.no_grad, function() model:eval(); model(sg.zeros(shape, "f32")) end)
  nn.Conv2d.forward, nn.ConvTranspose2d.forward = c2, ct
  model:train()
  if not ok then error(err, 0) end
  return total
end

local function timed(n, fn)
  local ts = {}
  for k = 1, n do
    local t0 = now()
    fn()
    ts[k] = now() - t0
  end
  table.sort(ts)
  local sum = 0
  for _, t in ipairs(ts) do sum = sum + t end
  return sum / #ts, ts[(#ts + 1) // 2], ts[1]
end

-- ------------------------------------------------------------------ tiled prediction
if o.tiled then
  local S = math.tointeger(o.tiled)
  sg.manual_seed(2)
  local image = sg.rand({1, S, S}, "f32")
  local gflop_tile = conv_flops{1, 1, o.tile, o.tile}
  local tiles
  local function run()
    local n = 0
    local p = sg.predict.tiled(model, image, {tile = o.tile, overlap = o.overlap, batch = o.batch,
      progress = function(_, total) n = total end})
    tiles = n
    assert(p.shape[2] == S and p.shape[3] == S)
  end
  for _ = 1, o.warmup do run() end
  local mean, med, best = timed(o.steps, run)
  local mpx = S * S / 1e6
  print(string.format("semseg tiled %s base %d: %dx%d image, tile %d, overlap %.2f, batch %d: %d tiles, %.3f s "
    .. "(median %.3f), %.3f MPx/s, peak RSS %.0f MB", o.model, o.base, S, S, o.tile, o.overlap, o.batch, tiles, mean,
    med, mpx / mean, vmhwm_mb()))
  put("row", string.format("tiled_%s%d_%d", o.model, o.base, S)); put("tiles", tiles)
  put("tiled_s", mean); put("tiled_mpxs", mpx / mean); put("tiled_min_s", best)
  put("tiled_gflops", tiles * gflop_tile / 1e9 / mean)
  put("peak_infer_mb", vmhwm_mb()); put("base_mb", base_mb)
  finish()
  return
end

-- ------------------------------------------------------------------ training and inference steps
local B, S = o.batch, o.size
sg.manual_seed(3)
local x = sg.randn({B, 1, S, S}, "f32")
local target = sg.rand({B, 1, S, S}, "f32"):gt(0.5):float()
local fwd_flops = conv_flops{B, 1, S, S}
put("row", string.format("%s%d_%d_b%d", o.model, o.base, S, B))
put("params", model:num_parameters())
put("fwd_gflop", fwd_flops / 1e9)

if o.mode == "both" or o.mode == "infer" then
  model:eval()
  local function step()
    sg.no_grad(function()
      local y = model(x)
      assert(y.shape[1] == B)
    end)
  end
  for _ = 1, o.warmup do step() end
  local mean, med, best = timed(o.steps, step)
  model:train()
  local peak = vmhwm_mb()
  print(string.format("semseg %s base %d %dx%d batch %d  inference: %.1f ms/step (median %.1f), %.2f img/s, "
    .. "%.1f conv GFLOP/s, peak RSS %.0f MB", o.model, o.base, S, S, B, mean * 1e3, med * 1e3, B / mean,
    fwd_flops / mean / 1e9, peak))
  put("infer_s", mean); put("infer_min_s", best); put("infer_ips", B / mean); put("infer_gflops", fwd_flops / mean / 1e9)
  put("peak_infer_mb", peak)
end

if o.mode == "both" or o.mode == "train" then
  model:train()
  local opt = sg.optim.adam(model:parameters(), {lr = 1e-3})
  local last
  local function step()
    opt:zero_grad()
    local y = model(x)
    local loss = sg.loss.bce_with_logits(y, target)
    loss:backward()
    opt:step()
    last = loss:item()
  end
  for _ = 1, o.warmup do step() end
  local mean, med, best = timed(o.steps, step)
  local peak = vmhwm_mb()
  print(string.format("semseg %s base %d %dx%d batch %d  training:  %.1f ms/step (median %.1f), %.2f img/s, "
    .. "%.1f conv GFLOP/s, peak RSS %.0f MB (loss %.4f)", o.model, o.base, S, S, B, mean * 1e3, med * 1e3, B / mean,
    3 * fwd_flops / mean / 1e9, peak, last))
  put("train_s", mean); put("train_min_s", best); put("train_ips", B / mean); put("train_gflops", 3 * fwd_flops / mean / 1e9)
  put("peak_train_mb", peak)
end
put("base_mb", base_mb)
finish()
