-- What the cpu fast-kernel sections of tests/ops/test_{upsample,optim,norm,loss,reduce}.lua share: the hand-written
-- f32 kernels (engine/backend_cpu) against the generic loops, run in f64 on the same values and rounded to f32,
-- on several thread counts.
local check = require("tests.harness").check
local F = sg.F

-- bitwise equality of two f32 tensors (NaN == NaN)
local function same(got, want, what)
  check.eq(got.dtype, want.dtype, what .. " dtype")
  check.eq(got.shape, want.shape, what .. " shape")
  local differ = got:ne(want):logical_and(got:eq(got):logical_or(want:eq(want))):sum():item()
  check.eq(differ, 0, what .. ": elements that differ")
end

-- runs fn on f32 leaves and on f64 copies with the same output gradient;
-- returns the f32 results and gradients and the f64 ones rounded to f32
local function both(inputs, fn)
  local function run(dt)
    local leaves = {}
    for k, t in ipairs(inputs) do leaves[k] = t:detach():to(dt):clone():requires_grad() end
    local y = fn(table.unpack(leaves))
    return leaves, y
  end
  local l32, y32 = run("f32")
  local l64, y64 = run("f64")
  local gy = sg.randn(y32.shape)
  y32:backward(gy)
  y64:backward(gy:to("f64"))
  local g32, g64 = {}, {}
  for k = 1, #inputs do g32[k], g64[k] = l32[k].grad, l64[k].grad:to("f32") end
  return y32, y64:to("f32"), g32, g64
end

local function on_threads(fn)
  local t0 = F._threads()
  for _, t in ipairs{1, 2, 3} do
    F._threads(t)
    fn(t)
  end
  F._threads(t0)
end

-- |got - want| <= tol * (1 + max |want|)
local function close(got, want, tol, what)
  check.eq(got.dtype, want.dtype, what .. " dtype")
  local scale = want:numel() > 0 and want:abs():amax():item() or 0
  check.near(got, want, tol * (1 + scale), 0, what)
end

return {F = F, same = same, both = both, on_threads = on_threads, close = close}
