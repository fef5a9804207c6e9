-- Optimizers: parameter groups and state in Lua, the update itself in one
-- fused C kernel per parameter (sg.optim_core). Semantics follow PyTorch.
local core = require "semseg.core"
local util = require "semseg.util"
local K = core.optim_core
local optim = {}

local Optimizer = {}
Optimizer.__index = Optimizer

-- params: a list of tensors, or a list of groups {params = {...}, lr = ..., ...}
local function make(kind, defaults, params, opts)
  opts = util.check_options(opts or {}, defaults, kind)
  for k, v in pairs(opts) do defaults[k] = v end
  if type(params) ~= "table" or #params == 0 then
    error(kind .. ": params must be a non-empty list of tensors or of parameter groups", 3)
  end
  local groups = {}
  if type(params[1]) == "table" and params[1].params then
    for _, g in ipairs(params) do groups[#groups + 1] = g end
  else
    groups[1] = {params = params}
  end
  for gi, g in ipairs(groups) do
    for k, v in pairs(defaults) do if g[k] == nil then g[k] = v end end
    for pi, p in ipairs(g.params) do
      if type(p) ~= "userdata" or not p:needs_grad() then
        error(string.format("%s: group %d, parameter %d is not a tensor that requires grad", kind, gi, pi), 3)
      end
    end
    g.initial_lr = g.initial_lr or g.lr
  end
  return setmetatable({kind = kind, param_groups = groups, state = {}, defaults = defaults}, Optimizer)
end

function Optimizer:zero_grad()
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do p.grad = nil end
  end
end

-- state is keyed by position (group, index) so it can be saved and restored
local function key(gi, pi) return gi .. ":" .. pi end

-- state tensors follow their parameter: after model:to("cuda") (or a dtype change) with state already
-- built, or state loaded from a checkpoint read on the cpu
local function follow(st, p)
  for name, v in pairs(st) do
    if type(v) == "userdata" and (v.device ~= p.device or v.dtype ~= p.dtype) then
      st[name] = v:to{dtype = p.dtype, device = p.device}
    end
  end
end

function Optimizer:step(closure)
  local loss = closure and closure() or nil
  core.no_grad(function()
    for gi, g in ipairs(self.param_groups) do
      for pi, p in ipairs(g.params) do
        local grad = p.grad
        if grad then
          if not grad:is_contiguous() then grad = grad:contiguous() end
          local k = key(gi, pi)
          local st = self.state[k]
          if not st then st = {step = 0}; self.state[k] = st end
          follow(st, p)
          st.step = st.step + 1
          self:update(p, grad, st, g)
        end
      end
    end
  end)
  return loss
end

function Optimizer:state_dict()
  local groups = {}
  for i, g in ipairs(self.param_groups) do
    local h = {}
    for k, v in pairs(g) do if k ~= "params" then h[k] = v end end
    h.n_params = #g.params
    groups[i] = h
  end
  local state = {}
  for k, st in pairs(self.state) do
    local s = {}
    for name, v in pairs(st) do s[name] = type(v) == "userdata" and v:clone() or v end
    state[k] = s
  end
  return {kind = self.kind, groups = groups, state = state}
end

function Optimizer:load_state_dict(sd)
  if sd.kind ~= self.kind then
    error(string.format("load_state_dict: state of a %s optimizer given to %s", tostring(sd.kind), self.kind), 2)
  end
  if #sd.groups ~= #self.param_groups then
    error(string.format("load_state_dict: %d parameter groups saved, %d here", #sd.groups, #self.param_groups), 2)
  end
  for i, h in ipairs(sd.groups) do
    local g = self.param_groups[i]
    if h.n_params ~= #g.params then
      error(string.format("load_state_dict: group %d has %d parameters saved, %d here", i, h.n_params, #g.params), 2)
    end
    for k, v in pairs(h) do if k ~= "n_params" then g[k] = v end end
  end
  self.state = {}
  for k, st in pairs(sd.state) do
    local gi, pi = k:match("^(%d+):(%d+)$")
    local p = self.param_groups[tonumber(gi)].params[tonumber(pi)]
    local s = {}
    for name, v in pairs(st) do
      if type(v) == "userdata" and table.concat(v.shape, ",") ~= table.concat(p.shape, ",") then
        error(string.format("load_state_dict: state '%s' of parameter %s has shape [%s], the parameter [%s]",
          name, k, table.concat(v.shape, ","), table.concat(p.shape, ",")), 2)
      end
      if type(v) == "userdata" then -- a copy on the parameter's device (the file was read on the cpu)
        v = (v.device ~= p.device) and v:to(p.device) or v:clone()
      end
      s[name] = v
    end
    self.state[k] = s
  end
end

-- ---------------------------------------------------------------- SGD
local SGD = setmetatable({}, {__index = Optimizer})
SGD.__index = SGD
function optim.sgd(params, opts)
  local o = setmetatable(make("sgd", {lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false},
    params, opts), SGD)
  for _, g in ipairs(o.param_groups) do
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      error("sgd: nesterov needs momentum > 0 and dampening 0", 2)
    end
  end
  return o
end
function SGD:update(p, grad, st, g)
  local first = false
  if g.momentum ~= 0 and not st.momentum_buffer then
    st.momentum_buffer = core.zeros_like(p); first = true
  end
  K.sgd_step(p, grad, g.momentum ~= 0 and st.momentum_buffer or nil, g, first)
end

-- ---------------------------------------------------------------- Adam / AdamW
local Adam = setmetatable({}, {__index = Optimizer})
Adam.__index = Adam
local function adam_like(kind, decoupled, wd)
  return function(params, opts)
    opts = opts or {}
    local o = setmetatable(make(kind, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = wd,
      amsgrad = false}, params, opts), Adam)
    o.decoupled = decoupled
    return o
  end
end
optim.adam = adam_like("adam", false, 0)
optim.adamw = adam_like("adamw", true, 1e-2)
function Adam:update(p, grad, st, g)
  if not st.exp_avg then
    st.exp_avg, st.exp_avg_sq = core.zeros_like(p), core.zeros_like(p)
    if g.amsgrad then st.max_exp_avg_sq = core.zeros_like(p) end
  end
  K.adam_step(p, grad, st.exp_avg, st.exp_avg_sq, st.max_exp_avg_sq,
    {lr = g.lr, beta1 = g.betas[1], beta2 = g.betas[2], eps = g.eps, weight_decay = g.weight_decay,
     decoupled = self.decoupled}, st.step)
end

-- ---------------------------------------------------------------- RMSprop
local RMSprop = setmetatable({}, {__index = Optimizer})
RMSprop.__index = RMSprop
function optim.rmsprop(params, opts)
  return setmetatable(make("rmsprop", {lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
    centered = false}, params, opts), RMSprop)
end
function RMSprop:update(p, grad, st, g)
  if not st.square_avg then
    st.square_avg = core.zeros_like(p)
    if g.momentum > 0 then st.momentum_buffer = core.zeros_like(p) end
    if g.centered then st.grad_avg = core.zeros_like(p) end
  end
  K.rmsprop_step(p, grad, st.square_avg, st.momentum_buffer, st.grad_avg, g)
end

-- ---------------------------------------------------------------- gradient clipping
local function param_list(params)
  if type(params) == "userdata" then return {params} end
  return params
end

-- clip_grad_norm(params, max_norm, norm_type = 2) -> total norm before clipping
function optim.clip_grad_norm(params, max_norm, norm_type)
  norm_type = norm_type or 2
  local grads = {}
  for _, p in ipairs(param_list(params)) do if p.grad then grads[#grads + 1] = p.grad end end
  if #grads == 0 then return 0 end
  -- one fused pass per gradient on its device (CPU or GPU) and a single read of the total
  local total = K.grad_norm(grads, norm_type)
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    core.no_grad(function()
      for _, p in ipairs(param_list(params)) do if p.grad then p.grad = p.grad * coef end end
    end)
  end
  return total
end

function optim.clip_grad_value(params, clip)
  core.no_grad(function()
    for _, p in ipairs(param_list(params)) do if p.grad then p.grad = p.grad:clamp(-clip, clip) end end
  end)
end

optim.Optimizer = Optimizer
return optim
