-- Functional ops composed in Lua from the C primitives (autograd included).
-- The C fast paths of layers (conv, pooling, normalisation) join this table
-- as they land.
local core = require "semseg.core"
local F = {}

-- softmax / log_softmax along dim, shifted by the (detached) max for stability:
-- the shift does not change the value, so its gradient is zero and may be cut
function F.log_softmax(x, dim)
  dim = dim or -1
  local m = x:amax(dim, true):detach()
  local shifted = x - m
  return shifted - shifted:exp():sum(dim, true):log()
end

function F.softmax(x, dim)
  dim = dim or -1
  local e = (x - x:amax(dim, true):detach()):exp()
  return e / e:sum(dim, true)
end

function F.logsumexp(x, dim, keepdim)
  local m = x:amax(dim, true):detach()
  local r = (x - m):exp():sum(dim, true):log() + m
  if not keepdim then r = r:squeeze(dim) end
  return r
end

function F.leaky_relu(x, slope)
  slope = slope or 0.01
  return core.where(x:gt(0), x, x * slope)
end

function F.elu(x, alpha)
  alpha = alpha or 1
  return core.where(x:gt(0), x, (x:clamp(nil, 0):exp() - 1) * alpha)
end

function F.celu(x, alpha)
  alpha = alpha or 1
  return core.where(x:gt(0), x, ((x / alpha):clamp(nil, 0):exp() - 1) * alpha)
end

function F.silu(x) return x * x:sigmoid() end

-- gelu, exact (erf) form: 0.5 x (1 + erf(x / sqrt 2)); erf through tanh is the
-- "tanh" approximation, given with approximate = "tanh"
function F.gelu(x, approximate)
  if approximate == "tanh" then
    local k = math.sqrt(2 / math.pi)
    return x * 0.5 * ((x + x:pow(3) * 0.044715) * k):tanh() + x * 0.5
  end
  return x * 0.5 * (1 + F.erf(x / math.sqrt(2)))
end

-- erf through the Chebyshev fit of erfc (fractional error below 1.2e-7):
-- erfc(|x|) = t exp(-x^2 + P(t)), t = 1 / (1 + |x|/2)
function F.erf(x)
  local z = x:abs()
  local t = 1 / (z * 0.5 + 1)
  local c = {-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
             0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277}
  local poly = t * c[10]
  for i = 9, 2, -1 do poly = (poly + c[i]) * t end
  poly = poly + c[1]
  local erfc = t * (poly - z:square()):exp()
  return x:sign() * (1 - erfc)
end

return F
