-- Elementwise timings on [8, 64, 128, 128] f32 (8.4M elements): relu and
-- sigmoid forward + backward through oneDNN and through the engine's own
-- kernels, and add / mul (own kernels only), each on one thread and on all
-- threads. Prints milliseconds (median of the repeats) and ratios.
--   semseg run scripts/bench/bench_eltwise.lua [repeats]
local sg = require "semseg"
local F = sg.F
local reps = tonumber(arg and arg[1]) or 15
local shape = {8, 64, 128, 128}
local compiled = F._dnnl()
local all = F._threads()

local now = sg.clock -- monotonic wall-clock seconds

local function median_ms(fn)
  fn() -- warm up (primitive creation, page faults)
  local t = {}
  for k = 1, reps do
    local s = now()
    fn()
    t[k] = (now() - s) * 1e3
  end
  table.sort(t)
  return t[(#t + 1) // 2]
end

sg.manual_seed(1)
local x, b, gy = sg.randn(shape), sg.randn(shape), sg.randn(shape)
local xl = x:clone():requires_grad()
local function fwd_bwd(op)
  return function()
    xl.grad = nil
    xl[op](xl):backward(gy)
  end
end
local cases = {
  {"relu fwd", true, function() return x:relu() end},
  {"relu fwd+bwd", true, fwd_bwd("relu")},
  {"sigmoid fwd", true, function() return x:sigmoid() end},
  {"sigmoid fwd+bwd", true, fwd_bwd("sigmoid")},
  {"add", false, function() return x + b end},
  {"mul", false, function() return x * b end},
}

print(string.format("shape {%s}, %d repeats, %d threads available, oneDNN %s", table.concat(shape, ","), reps, all,
  compiled and "compiled" or "absent"))
print(string.format("%-16s %11s %11s %11s %11s %9s %9s %9s", "op", "own 1t", "own all", "dnnl 1t", "dnnl all",
  "own 1/all", "dnnl 1/all", "own/dnnl"))
for _, c in ipairs(cases) do
  local r = {}
  for _, cfg in ipairs{{"own", 1}, {"own", all}, {"dnnl", 1}, {"dnnl", all}} do
    local key = cfg[1] .. cfg[2]
    if cfg[1] == "dnnl" and not (compiled and c[2]) then
      r[key] = nil
    else
      F._dnnl(cfg[1] == "dnnl")
      F._threads(cfg[2])
      r[key] = median_ms(c[3])
    end
  end
  local function f(v) return v and string.format("%9.2fms", v) or string.format("%11s", "-") end
  local function q(a, d) return a and d and string.format("%9.2f", a / d) or string.format("%9s", "-") end
  print(string.format("%-16s %s %s %s %s %s %s %s", c[1], f(r["own1"]), f(r["own" .. all]), f(r.dnnl1),
    f(r["dnnl" .. all]), q(r["own1"], r["own" .. all]), q(r.dnnl1, r["dnnl" .. all]),
    q(r["own" .. all], r["dnnl" .. all])))
end
F._threads(all)
F._dnnl("env")
