-- What the GPU sections of tests/ops/test_{conv,pool,norm,upsample}.lua share: the device under test
-- (SG_TEST_NN_DEVICE=cpu runs them with the "device" side on the CPU), f64 references, tolerances.
local H = require "tests.harness"
local check, skip = H.check, H.skip

local F = sg.F
local DEV = os.getenv("SG_TEST_NN_DEVICE") or "cuda"

local function need_dev()
  if DEV == "cuda" and not sg.cuda.is_available() then
    skip("no CUDA device: " .. tostring(sg.cuda.why_unavailable()))
  end
end
local function need_cuda()
  need_dev()
  if DEV ~= "cuda" then skip("cuda-only behaviour (SG_TEST_NN_DEVICE=" .. DEV .. ")") end
end

local function copy(t) local r = {} for k, v in pairs(t) do r[k] = v end return r end
local function f64(t) return t:detach():cpu():to("f64") end

-- the values of t64 (cpu f64) as a leaf on the device under test (dtype dt) and as a cpu f64 leaf
local function leaf_pair(t64, dt)
  if not t64 then return nil, nil end
  return t64:clone():to(dt):to(DEV):requires_grad(), t64:clone():requires_grad()
end
-- t64 rounded to dt and back (what the device side sees)
local function rounded(t64, dt) return t64:to(dt):to("f64") end

-- |got - want| <= tol * (1 + max|want|) + tol * |want|
local function close(got, want, tol, what)
  local w = f64(want)
  local scale = w:abs():amax():item()
  check.near(f64(got), w, tol * (1 + scale), tol, what)
end
local function same_bits(a, b, what)
  local d = (f64(a) - f64(b)):abs():amax():item()
  check.eq(d, 0, what .. ": repeated runs differ by " .. tostring(d))
end

local function on_dev(t, what)
  check.eq(t.device, DEV, what .. ": device")
end

-- sg.randn of a shape, rounded to dt when given
local function randn(shape, dt)
  local t = sg.randn(shape, "f64")
  return dt and rounded(t, dt) or t
end


local function with_autocast(dt, fn) sg.amp.autocast({dtype = dt, device = "cuda"}, fn) end

-- fn on the device under test and on the cpu f64 leaf: outputs (indices too), then the input gradients
local function pool_case(label, x64, fn, dt, tol)
  dt, tol = dt or "f32", tol or 1e-5
  local xd, xc = leaf_pair(x64, dt)
  local yd, id = fn(xd)
  local yc, ic = fn(xc)
  on_dev(yd, label)
  check.eq(yd.dtype, dt, label .. ": dtype")
  close(yd, yc, tol, label .. ": output")
  if ic then
    check.eq(id.dtype, "i64", label .. ": index dtype")
    on_dev(id, label .. " indices")
    check.eq((id:cpu() - ic):abs():amax():item(), 0, label .. ": indices")
  end
  local gy = randn(yc.shape, dt)
  yd:backward(gy:to(dt):to(DEV))
  yc:backward(gy)
  close(xd.grad, xc.grad, tol, label .. ": input gradient")
end

return {pool_case = pool_case, with_autocast = with_autocast, F = F, DEV = DEV, need_dev = need_dev, need_cuda = need_cuda, copy = copy, f64 = f64, leaf_pair = leaf_pair, rounded = rounded, close = close, same_bits = same_bits, on_dev = on_dev, randn = randn}
