-- Every backend against the reference (engine/backend_ref), op by op, in the
-- spirit of ggml's test-backend-ops: an op runs on the reference loops
-- (sg.config.reference), on the cpu fast paths and on every other device that
-- is usable (cuda, or the CUDA emulation), forward and backward, and the
-- results must agree within a tolerance; gradients of the reference are
-- checked against finite differences in f64.
--
--   local B = require "tests.ops.backends"
--   B.compare("upsample bilinear", function(x) return F.upsample(x, {...}) end, {sg.randn{2, 3, 5, 7}})
--   B.gradcheck(function(x) ... end, {sg.randn({1, 2, 3, 4}, "f64")})
local B = {}
local check = require("tests.harness").check

-- the backends compared with the reference: the cpu table and each usable device
function B.list()
  local l = {"cpu"}
  if sg.cuda.is_available() then l[#l + 1] = "cuda" end
  return l
end

-- fn(inputs...) with the inputs on `backend` ("reference", "cpu" or a device); returns the outputs and the
-- gradients of sum(out * seed) for inputs that are floating, all back on the cpu
local function run(backend, fn, inputs, seeds)
  local prev = sg.config.reference
  sg.config.reference = backend == "reference"
  local dev = (backend == "reference" or backend == "cpu") and "cpu" or backend
  local ok, a, b = pcall(function()
    local xs = {}
    for i, x in ipairs(inputs) do
      local y = x:to(dev):detach()
      if x.dtype == "f32" or x.dtype == "f64" then y = y:requires_grad() end
      xs[i] = y
    end
    local out = fn(table.unpack(xs))
    local outs = type(out) == "table" and out or {out}
    local loss
    for k, o in ipairs(outs) do
      if o:needs_grad() then -- (o.requires_grad is the method, always true)
        local term = (o * seeds[k]:to(dev):to(o.dtype)):sum()
        loss = loss and loss + term or term
      end
    end
    if loss then loss:backward() end
    local res, grads = {}, {}
    for k, o in ipairs(outs) do res[k] = o:detach():cpu() end
    for i, x in ipairs(xs) do grads[i] = x.grad and x.grad:cpu() or false end
    return res, grads
  end)
  sg.config.reference = prev
  if not ok then error(a, 0) end
  return a, b
end

local function tolerance(dtype, opts)
  if dtype == "f64" then return opts.atol64 or 1e-10, opts.rtol64 or 1e-9 end
  return opts.atol or 1e-5, opts.rtol or 1e-4
end

-- The outputs and input gradients of fn on every backend of B.list() match the reference's.
-- opts: atol, rtol (f32), atol64, rtol64 (f64), backends (a list instead of B.list()), exact (bitwise).
function B.compare(name, fn, inputs, opts)
  opts = opts or {}
  local shapes = {}
  local probe = run("reference", fn, inputs, setmetatable({}, {__index = function() return sg.tensor(0) end}))
  local seeds = {}
  for k, o in ipairs(probe) do seeds[k] = sg.randn(o.shape, "f64") end
  local want, wgrad = run("reference", fn, inputs, seeds)
  for _, backend in ipairs(opts.backends or B.list()) do
    local got, ggrad = run(backend, fn, inputs, seeds)
    for k = 1, #want do
      local atol, rtol = tolerance(want[k].dtype, opts)
      check.eq(got[k].dtype, want[k].dtype, name .. ": " .. backend .. " output " .. k .. " dtype")
      if opts.exact then
        local g, w = got[k], want[k]
        local same = g:eq(w):float() + g:ne(g):float() * w:ne(w):float() -- NaN where NaN counts as equal
        check.eq(same:gt(0):all():item(), true, name .. ": " .. backend .. " output " .. k .. " (exact)")
      else
        check.near(got[k], want[k], atol, rtol, name .. ": " .. backend .. " output " .. k)
      end
    end
    for i = 1, #wgrad do
      if wgrad[i] then
        local atol, rtol = tolerance(wgrad[i].dtype, opts)
        check.truthy(ggrad[i], name .. ": " .. backend .. " gives no gradient for input " .. i)
        check.near(ggrad[i], wgrad[i], atol, rtol, name .. ": " .. backend .. " gradient of input " .. i)
      end
    end
    shapes[#shapes + 1] = backend
  end
  return shapes
end

-- The reference's gradients against central finite differences (inputs f64).
function B.gradcheck(name, fn, inputs, opts)
  local prev = sg.config.reference
  sg.config.reference = true
  local xs = {}
  for i, x in ipairs(inputs) do xs[i] = x:detach():requires_grad() end
  local ok, res, msg = pcall(sg.gradcheck, fn, xs, opts)
  sg.config.reference = prev
  if not ok then error(res, 0) end
  check.truthy(res, name .. ": gradcheck: " .. tostring(msg))
end

return B
