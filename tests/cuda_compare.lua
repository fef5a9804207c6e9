-- Shared by the GPU sections of tests/ops (elementwise, reduce, index, matmul, optim, random):
-- comparing a GPU result, and its gradients, with the CPU reference.
--   local C = require("tests.cuda_compare")(check, skip)
-- gives need_cuda, host, dev, same_bits, is_float, TOL, close, compare, randn and positive.
return function(check, skip)
local function need_cuda()
  if not sg.cuda.is_available() then skip("no CUDA device: " .. tostring(sg.cuda.why_unavailable())) end
end

local function is_float(dt) return dt == "f16" or dt == "bf16" or dt == "f32" or dt == "f64" end
local TOL = {f64 = 1e-12, f32 = 1e-5, f16 = 2e-3, bf16 = 1e-2}

-- got (on the GPU) against want (CPU): device, dtype, shape, NaN positions,
-- infinities, values within rtol * |want| + atol (atol defaults to rtol times
-- the largest finite |want|, plus rtol)
local function close(got, want, what, rtol, atol)
  check.eq(got.device, "cuda", what .. ": device")
  check.eq(got.dtype, want.dtype, what .. ": dtype")
  check.eq(got.shape, want.shape, what .. ": shape")
  local g = got:cpu()
  if want:numel() == 0 then return end
  if not is_float(want.dtype) then
    check.eq(g:totable(), want:totable(), what)
    return
  end
  rtol = rtol or TOL[want.dtype]
  local g64, w64 = g:to("f64"), want:to("f64")
  local gn, wn = g64:ne(g64), w64:ne(w64)
  check.truthy(gn:eq(wn):all():item(), what .. ": NaN in other places")
  local same = g64:eq(w64):logical_or(gn) -- equal (infinities included) or both NaN
  local fin = w64:abs():lt(math.huge)
  local scale = sg.where(fin, w64:abs(), 0):amax():item()
  atol = atol or rtol * (1 + scale)
  local excess = sg.where(same, -1, (g64 - w64):abs() - (w64:abs() * rtol + atol)):amax():item()
  if not (excess <= 0) then
    error(string.format("%s: differs by %.3g beyond tolerance (rtol %g, atol %g)\n got  %s\n want %s", what, excess,
      rtol, atol, tostring(g), tostring(want)), 2)
  end
end

-- fn on fresh copies of the CPU inputs on each device; float inputs require
-- grad unless opts.grad == false, and (out * w):sum() is back-propagated for
-- a random w: outputs and every input's gradient must agree.
local function compare(what, fn, inputs, opts)
  opts = opts or {}
  local grad = opts.grad ~= false
  local function fwd(dev)
    local xs, tracked = {}, {}
    for i = 1, #inputs do
      local x = inputs[i]
      if type(x) == "userdata" then
        x = x:clone():to(dev):detach()
        if grad and is_float(x.dtype) then x:requires_grad(); tracked[i] = true end
      end
      xs[i] = x
    end
    return fn(table.unpack(xs, 1, #inputs)), xs, tracked
  end
  local want, xc, tracked = fwd("cpu")
  local got, xg = fwd("cuda")
  close(got, want, what, opts.rtol, opts.atol)
  if grad and want:needs_grad() then
    check.truthy(got:needs_grad(), what .. ": the GPU result records autograd")
    local w = sg.rand(want.shape, "f64") + 0.5
    ;(want * w:to(want.dtype)):sum():backward()
    ;(got * w:to(got.dtype):cuda()):sum():backward()
    for i in pairs(tracked) do
      local a, b = xc[i].grad, xg[i].grad
      check.eq(b ~= nil, a ~= nil, what .. ": input " .. i .. " has a gradient on both devices")
      if a then close(b, a, what .. ": gradient of input " .. i, opts.grtol or opts.rtol, opts.gatol) end
    end
  end
  return got, want
end

local function host(t) return t:detach():cpu() end
local function dev(t) return t:detach():cuda() end
-- same shape, dtype and bytes; else an error naming the first element that differs and the largest difference
local function same_bits(got, want, msg)
  got, want = host(got), host(want)
  check.eq(got.shape, want.shape, (msg or "") .. " shape")
  check.eq(got.dtype, want.dtype, (msg or "") .. " dtype")
  if got:to_bytes() ~= want:to_bytes() then
    local g, w = got:to("f64"):reshape(-1), want:to("f64"):reshape(-1)
    local bad = g:ne(w):to("i64"):argmax():item() + 1
    error(string.format("%s: the bits differ, first at element %d: %.17g vs %.17g (largest difference %.3g)",
      msg or "same_bits", bad, g[bad]:item(), w[bad]:item(), (g - w):abs():amax():item()), 2)
  end
end

local function randn(shape, dt) return sg.randn(shape):to(dt or "f32") end
-- values away from 0 (for div, log, pow bases, sqrt)
local function positive(shape, dt) return (sg.rand(shape) * 2 + 0.25):to(dt or "f32") end
return {need_cuda = need_cuda, host = host, dev = dev, same_bits = same_bits, is_float = is_float, TOL = TOL, close = close, compare = compare, randn = randn,
        positive = positive}
end
