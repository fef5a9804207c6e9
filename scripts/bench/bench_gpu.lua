-- The semseg side of the GPU benchmark against PyTorch (scripts/bench/bench_gpu_torch.py is the twin;
-- scripts/bench/bench_gpu.sh runs both, one fresh process per row, and prints the table).
--
--   build/semseg run scripts/bench/bench_gpu.lua --size 512 --batch 8 [--base 64 --depth 4 --warmup 5 --steps 20]
--   build/semseg run scripts/bench/bench_gpu.lua --gemm 8192 [--steps 20]
-- options: --amp bf16 | none (autocast type, default bf16), --mode both | train | infer,
--          --device cuda (cpu: a dry run of the script logic on tiny sizes, for testing without a GPU)
--
-- The network is sg.models.unet{in_channels = 1, classes = 2, base = 64, depth = 4} (nearest up-sampling,
-- batch norm, logits). A training step is zero_grad, forward under sg.amp.autocast, cross-entropy on the
-- f32 logits against fixed random class ids, backward, Adam (lr 1e-3); inference is a forward pass in eval
-- mode under sg.no_grad and autocast. Inference is timed first, then training; steps are timed together
-- between two sg.cuda.synchronize() calls (no per-step host read), after the warm-up steps. Peak memory is
-- sg.cuda.memory_stats().peak_allocated, reset before each phase. FLOPs: 2 * MACs of every convolution in
-- one forward pass (training counts 3x: forward, data gradient, weight gradient). --gemm times
-- sg.matmul of two n x n bf16 matrices. The last line is "RESULT key=value ..." for bench_gpu.sh.
local sg = require "semseg"
local nn = sg.nn

local o = {size = 512, batch = 8, base = 64, depth = 4, warmup = 5, steps = 20, mode = "both", amp = "bf16",
           device = "cuda"}
local i = 1
while arg and i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or arg[i + 1] == nil then error("bench_gpu.lua: bad argument '" .. tostring(arg[i]) .. "'") end
  local v = arg[i + 1]
  o[k] = tonumber(v) or v
  i = i + 2
end
for _, k in ipairs{"size", "batch", "base", "depth", "warmup", "steps"} do
  o[k] = math.tointeger(o[k]) or error("bench_gpu.lua: --" .. k .. " must be an integer")
end
local amp = o.amp ~= "none" and sg.amp.normalize_dtype(o.amp, "bench_gpu.lua --amp") or nil
local dev = o.device
local gpu = dev == "cuda"
local now = sg.clock

local fields = {}
local function put(k, v)
  if math.type(v) == "float" then v = string.format("%.6g", v) end
  v = tostring(v):gsub("%s+", "~") -- one token per value; bench_gpu.sh turns ~ back into spaces
  fields[#fields + 1] = k .. "=" .. v
end
local function finish()
  print("RESULT framework=semseg " .. table.concat(fields, " "))
  io.stdout:flush()
end

if gpu and not sg.cuda.is_available() then
  print("semseg: no CUDA device: " .. tostring(sg.cuda.why_unavailable()))
  put("row", o.gemm and ("gemm" .. o.gemm) or string.format("unet%d_%d_b%d", o.base, o.size, o.batch))
  put("error", "no CUDA device")
  finish()
  return
end
local function sync() if gpu then sg.cuda.synchronize() end end
local function reset_peak() if gpu then sg.cuda.reset_peak_memory_stats() end end
local function peak_bytes() return gpu and sg.cuda.memory_stats().peak_allocated or 0 end
if gpu then
  sg.cuda.benchmark(true) -- cuDNN picks the fastest algorithms once per shape, as torch.backends.cudnn.benchmark
  put("device_name", sg.cuda.device_name())
end

-- runs fn, reporting a failure as an error= field instead of a traceback (the table then says why)
local function guarded(what, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    io.stderr:write("bench_gpu.lua: ", what, " failed: ", tostring(err), "\n")
    put("error", what .. ":" .. tostring(err):match("^[^\n]*"):sub(1, 160))
    finish()
    os.exit(0)
  end
end

-- steps timed together between two synchronisations: seconds per step
local function timed(n, fn)
  sync()
  local t0 = now()
  for _ = 1, n do fn() end
  sync()
  return (now() - t0) / n
end

-- ------------------------------------------------------------------ matmul reference rate
if o.gemm then
  local n = math.tointeger(o.gemm)
  put("row", "gemm" .. n)
  guarded("gemm", function()
    sg.manual_seed(1)
    local a = sg.randn{n, n}:to{dtype = "bf16", device = dev}
    local b = sg.randn{n, n}:to{dtype = "bf16", device = dev}
    local c
    for _ = 1, 3 do c = sg.matmul(a, b) end
    assert(c.dtype == "bf16" and c.shape[1] == n)
    local reps = math.max(5, o.steps)
    local dt = timed(reps, function() c = sg.matmul(a, b) end)
    local tf = 2 * n * n * n / dt / 1e12
    print(string.format("semseg sg.matmul %dx%d bf16: %.3f ms, %.1f TFLOP/s (mean of %d)", n, n, dt * 1e3, tf, reps))
    put("gemm_tflops", tf)
  end)
  finish()
  return
end

-- ------------------------------------------------------------------ the model
local B, S = o.batch, o.size
put("row", string.format("unet%d_%d_b%d", o.base, S, B))
local model, x, target, fwd_flops
guarded("setup", function()
  sg.manual_seed(1)
  model = sg.models.unet{in_channels = 1, classes = 2, base = o.base, depth = o.depth}:to(dev)
  put("params", model:num_parameters())
  sg.manual_seed(3)
  x = sg.randn{B, 1, S, S}:to(dev)
  target = sg.randint(0, 2, {B, S, S}):to(dev)
  -- conv FLOPs of one forward pass, counted by wrapping the conv modules (also the first warm-up)
  local total = 0
  local c2, ct = nn.Conv2d.forward, nn.ConvTranspose2d.forward
  nn.Conv2d.forward = function(self, inp)
    local y = c2(self, inp)
    local w = self.weight.shape -- [cout, cin/groups, kh, kw]
    total = total + 2 * y.shape[1] * y.shape[2] * y.shape[3] * y.shape[4] * w[2] * w[3] * w[4]
    return y
  end
  nn.ConvTranspose2d.forward = function(self, inp, size)
    local y = ct(self, inp, size)
    local w = self.weight.shape -- [cin, cout/groups, kh, kw]
    total = total + 2 * inp.shape[1] * inp.shape[2] * inp.shape[3] * inp.shape[4] * w[2] * w[3] * w[4]
    return y
  end
  local ok, err = pcall(sg.no_grad, function() model:eval(); model(x) end)
  nn.Conv2d.forward, nn.ConvTranspose2d.forward = c2, ct
  model:train()
  if not ok then error(err, 0) end
  fwd_flops = total
  put("fwd_gflop", fwd_flops / 1e9)
end)

local function forward(inp)
  if amp then return sg.amp.autocast({dtype = amp, device = dev}, function() return model(inp) end) end
  return model(inp)
end

if o.mode == "both" or o.mode == "infer" then
  guarded("inference", function()
    model:eval()
    local function step()
      sg.no_grad(function()
        local y = forward(x)
        assert(y.shape[1] == B)
      end)
    end
    for _ = 1, o.warmup do step() end
    collectgarbage("collect")
    reset_peak()
    local dt = timed(o.steps, step)
    local peak = peak_bytes()
    model:train()
    print(string.format("semseg unet base %d %dx%d batch %d  inference: %.2f ms/step, %.1f img/s, %.1f TFLOP/s, "
      .. "peak %.2f GiB", o.base, S, S, B, dt * 1e3, B / dt, fwd_flops / dt / 1e12, peak / 2 ^ 30))
    put("infer_s", dt); put("infer_ips", B / dt); put("infer_tflops", fwd_flops / dt / 1e12)
    put("peak_infer_bytes", peak)
  end)
end

if o.mode == "both" or o.mode == "train" then
  guarded("training", function()
    model:train()
    local opt = sg.optim.adam(model:parameters(), {lr = 1e-3})
    local loss
    local function step()
      opt:zero_grad()
      local y = forward(x)
      if y.dtype ~= "f32" then y = y:float() end
      loss = sg.loss.cross_entropy(y, target)
      loss:backward()
      opt:step()
    end
    for _ = 1, o.warmup do step() end
    local first = loss:item()
    collectgarbage("collect")
    reset_peak()
    local dt = timed(o.steps, step)
    local peak = peak_bytes()
    local last = loss:item()
    print(string.format("semseg unet base %d %dx%d batch %d  training:  %.2f ms/step, %.1f img/s, %.1f TFLOP/s, "
      .. "peak %.2f GiB (loss %.4f -> %.4f)", o.base, S, S, B, dt * 1e3, B / dt, 3 * fwd_flops / dt / 1e12,
      peak / 2 ^ 30, first, last))
    assert(last == last, "the loss is NaN")
    put("train_s", dt); put("train_ips", B / dt); put("train_tflops", 3 * fwd_flops / dt / 1e12)
    put("peak_train_bytes", peak); put("loss", last)
  end)
end
finish()
