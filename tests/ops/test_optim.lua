-- optim: the fused update steps (sgd with momentum/nesterov/dampening/weight decay, adam and adamw with
-- amsgrad, rmsprop centered and with momentum) and the gradient norm, on every backend against the
-- reference: the same parameters after several steps from the same gradients, f32 and f64, and a
-- gradient in another float type (mixed precision).
local B = require "tests.ops.backends"

local function steps(backend, make, dtype, gdtype, nsteps)
  return B.on(backend, function(dev)
    sg.manual_seed(31)
    local p = sg.randn({3, 17}, dtype):to(dev):requires_grad()
    local q = sg.randn({5}, dtype):to(dev):requires_grad()
    local opt = make({p, q})
    for s = 1, nsteps do
      sg.manual_seed(100 + s)
      p.grad = sg.randn({3, 17}, gdtype):to(dev)
      q.grad = sg.randn({5}, gdtype):to(dev)
      opt:step()
    end
    return p:detach():cpu(), q:detach():cpu()
  end)
end

local optimizers = {
  {"sgd", function(ps) return sg.optim.sgd(ps, {lr = 0.1}) end},
  {"sgd momentum nesterov wd", function(ps)
    return sg.optim.sgd(ps, {lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 1e-2}) end},
  {"sgd dampening", function(ps) return sg.optim.sgd(ps, {lr = 0.05, momentum = 0.8, dampening = 0.3}) end},
  {"adam", function(ps) return sg.optim.adam(ps, {lr = 1e-2}) end},
  {"adam amsgrad wd", function(ps) return sg.optim.adam(ps, {lr = 1e-2, amsgrad = true, weight_decay = 0.1}) end},
  {"adamw", function(ps) return sg.optim.adamw(ps, {lr = 1e-2, weight_decay = 0.05}) end},
  {"rmsprop", function(ps) return sg.optim.rmsprop(ps, {lr = 1e-2}) end},
  {"rmsprop centered momentum", function(ps)
    return sg.optim.rmsprop(ps, {lr = 1e-2, centered = true, momentum = 0.9, weight_decay = 1e-3}) end},
}

test("optim: every backend's steps match the reference's (f32, f64, bf16 gradients)", function()
  for _, o in ipairs(optimizers) do
    for _, c in ipairs{{"f32", "f32"}, {"f64", "f64"}, {"f32", "bf16"}} do
      local wp, wq = steps("reference", o[2], c[1], c[2], 4)
      for _, backend in ipairs(B.list()) do
        local gp, gq = steps(backend, o[2], c[1], c[2], 4)
        local tol = c[1] == "f64" and 1e-12 or 2e-6
        local what = string.format("%s %s (grad %s) on %s", o[1], c[1], c[2], backend)
        check.near(gp, wp, tol, tol, what .. ": first parameter")
        check.near(gq, wq, tol, tol, what .. ": second parameter")
      end
    end
  end
end)

test("optim: the reference step is the textbook rule (one adam step by hand)", function()
  local p, q = steps("reference", function(ps) return sg.optim.adam(ps, {lr = 0.1}) end, "f64", "f64", 1)
  sg.manual_seed(31)
  local p0 = sg.randn({3, 17}, "f64")
  sg.manual_seed(101)
  local g = sg.randn({3, 17}, "f64")
  -- first step: m = 0.1 g, v = 0.001 g^2, corrected m/(sqrt(v)+eps) = g / (|g| + eps)
  local want = p0 - 0.1 * g / (g:abs() + 1e-8)
  check.near(p, want, 1e-12, 1e-12, "adam step 1")
  check.eq(q.shape, {5})
end)

test("optim: the gradient norm on every backend matches the reference (p = 1, 2, 3, inf)", function()
  for _, np in ipairs{1, 2, 3, math.huge} do
    local function norm(backend)
      return B.on(backend, function(dev)
        sg.manual_seed(41)
        local a = sg.randn({7, 9}):to(dev):requires_grad()
        local b = sg.randn({4}, "f64"):to(dev):requires_grad()
        a.grad, b.grad = sg.randn({7, 9}):to(dev), sg.randn({4}, "f64"):to(dev)
        return sg.optim.clip_grad_norm({a, b}, 1e9, np)
      end)
    end
    local want = norm("reference")
    for _, backend in ipairs(B.list()) do check.near(norm(backend), want, 1e-5, 1e-5, "norm " .. np .. " on " .. backend) end
  end
end)
