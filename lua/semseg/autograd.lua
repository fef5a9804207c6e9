-- Gradient checking by central finite differences in f64.
local core = require "semseg.core"
local M = {}

-- gradcheck(fn, inputs, {eps=1e-6, atol=1e-5, rtol=1e-3})
-- fn takes the input tensors and returns a tensor; inputs that require grad
-- are perturbed one element at a time and compared with autograd's gradient
-- of sum(fn(...) * w) for a fixed random weighting w.
-- Returns true, or false plus a message naming the input and element.
function M.gradcheck(fn, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
  local xs = {}
  for i, x in ipairs(inputs) do
    if type(x) == "userdata" then
      local needs = x:needs_grad()
      local fl = x.dtype == "f16" or x.dtype == "bf16" or x.dtype == "f32" or x.dtype == "f64"
      xs[i] = fl and x:detach():to("f64"):clone() or x:detach():clone() -- index tensors keep their dtype
      if needs then xs[i]:requires_grad() end
    else
      xs[i] = x
    end
  end
  local out = fn(table.unpack(xs, 1, #inputs))
  assert(type(out) == "userdata", "gradcheck: fn must return a tensor")
  local w = core.rand(out.shape, "f64") + 0.5
  if out.device ~= "cpu" then w = w:to(out.device) end -- the same weights on any device
  local function objective()
    return core.no_grad(function() return (fn(table.unpack(xs, 1, #inputs)) * w):sum():item() end)
  end
  ;(out * w):sum():backward()
  for i, x in ipairs(xs) do
    if type(x) == "userdata" and x:needs_grad() then
      local analytic = x.grad and x.grad:contiguous() or core.zeros(x.shape, {dtype = "f64", device = x.device})
      local flat = x:view(-1)
      local ga = analytic:view(-1)
      for k = 1, x:numel() do
        local orig = core.no_grad(function() return flat[k]:item() end)
        core.no_grad(function() flat[k] = orig + eps end)
        local fp = objective()
        core.no_grad(function() flat[k] = orig - eps end)
        local fm = objective()
        core.no_grad(function() flat[k] = orig end)
        local numeric = (fp - fm) / (2 * eps)
        local a = ga[k]:item()
        if math.abs(a - numeric) > atol + rtol * math.abs(numeric) then
          return false, string.format("gradcheck: input %d, element %d: autograd %.8g, finite difference %.8g",
                                      i, k, a, numeric)
        end
      end
    end
  end
  return true
end

return M
