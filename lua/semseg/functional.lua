-- sg.F, the one functional namespace: the C ops of semseg.core (conv2d, conv_transpose2d,
-- max_pool2d, max_unpool2d, avg_pool2d, adaptive_avg_pool2d, batch_norm, group_norm, layer_norm,
-- bce_with_logits, upsample, and the _-prefixed fast-path queries) plus the ops below, composed
-- in Lua from the C primitives (autograd included) or thin wrappers of fused C ops (group_norm,
-- layer_norm) whose composed versions stay here as *_reference.
local core = require "semseg.core"
local C = core.nn_functional
local F = {}
for k, v in pairs(C) do F[k] = v end

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

-- gelu(x, {approximate = "none" | "tanh"}): x * Phi(x), or PyTorch's tanh approximation; the C op
-- (elementwise, every backend)
function F.gelu(x, opts) return core.gelu(x, opts) end

-- group_norm(x [N,C,...], groups, weight [C], bias [C], eps=1e-5): statistics per
-- sample and group of C/groups channels (groups == C: instance norm); fused C op
function F.group_norm(x, groups, weight, bias, eps)
  return C.group_norm(x, groups, weight, bias, eps or 1e-5)
end

-- layer_norm(x, normalized_shape, weight, bias, eps=1e-5) over the last
-- #normalized_shape dims (a number n means {n}); fused C op
function F.layer_norm(x, nshape, weight, bias, eps)
  if type(nshape) == "number" then nshape = {nshape} end
  return C.layer_norm(x, nshape, weight, bias, eps or 1e-5)
end

-- The composed versions of group_norm and layer_norm (tensor ops, autograd
-- through them): the reference the fused C ops are tested against.
function F.group_norm_reference(x, groups, weight, bias, eps)
  local shape = x.shape
  local n, c = shape[1], shape[2]
  if c % groups ~= 0 then
    error(string.format("group_norm: %d channels do not split into %d groups", c, groups), 2)
  end
  local g = x:reshape(n, groups, -1)
  local mean = g:mean(3, true)
  local var = g:var(3, true, 0)
  local y = ((g - mean) / (var + (eps or 1e-5)):sqrt()):reshape(shape)
  local cshape = {1, c}
  for _ = 3, #shape do cshape[#cshape + 1] = 1 end
  if weight then y = y * weight:view(cshape) end
  if bias then y = y + bias:view(cshape) end
  return y
end

function F.layer_norm_reference(x, nshape, weight, bias, eps)
  if type(nshape) == "number" then nshape = {nshape} end
  local dims = {}
  for k = 1, #nshape do dims[k] = x:dim() - #nshape + k end
  local mean = x:mean(dims, true)
  local var = x:var(dims, true, 0)
  local y = (x - mean) / (var + (eps or 1e-5)):sqrt()
  if weight then y = y * weight end
  if bias then y = y + bias end
  return y
end

-- uniform [0, 1) draws of x's dtype on x's device (drawn there when the engine can, else copied over)
local function rand_like_device(shape, x)
  local r = core.rand(shape, {dtype = x.dtype, device = x.device})
  if r.device ~= x.device then r = r:to(x.device) end
  return r
end

-- dropout: zero each element with probability p, scale the rest by 1/(1-p)
function F.dropout(x, p, training)
  if not training or p == 0 then return x end
  if p < 0 or p > 1 then error("dropout: p must be in [0, 1], got " .. tostring(p), 2) end
  if p == 1 then return x * 0 end
  local keep = rand_like_device(x.shape, x):ge(p):to(x.dtype)
  return x * keep * (1 / (1 - p))
end

-- dropout2d: zero whole channels of N×C×H×W
function F.dropout2d(x, p, training)
  if not training or p == 0 then return x end
  if p < 0 or p > 1 then error("dropout2d: p must be in [0, 1], got " .. tostring(p), 2) end
  local s = x.shape
  local mshape = {s[1], s[2]}
  for _ = 3, #s do mshape[#mshape + 1] = 1 end
  if p == 1 then return x * 0 end
  local keep = rand_like_device(mshape, x):ge(p):to(x.dtype)
  return x * keep * (1 / (1 - p))
end

function F.linear(x, w, b)
  local y = x:matmul(w:transpose(1, 2))
  if b then y = y + b end
  return y
end

return F
