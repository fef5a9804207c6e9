-- Learning-rate schedules. Each scheduler sets lr on every parameter group of
-- its optimizer; call :step() once per epoch (ReduceLROnPlateau: :step(metric)).
local sched = {}

local Base = {}
Base.__index = Base

local function new(cls, opt, fields)
  local s = setmetatable(fields, cls)
  s.optimizer, s.last_epoch = opt, 0
  s.base_lrs = {}
  for i, g in ipairs(opt.param_groups) do s.base_lrs[i] = g.initial_lr or g.lr end
  return s
end

function Base:step()
  self.last_epoch = self.last_epoch + 1
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = self:lr_at(self.last_epoch, self.base_lrs[i]) end
end
function Base:get_lr()
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr end
  return out
end
function Base:state_dict()
  local sd = {}
  for k, v in pairs(self) do if k ~= "optimizer" then sd[k] = v end end
  return sd
end
function Base:load_state_dict(sd)
  for k, v in pairs(sd) do self[k] = v end
end

local function class()
  local c = setmetatable({}, {__index = Base})
  c.__index = c
  return c
end

local Step = class()
function sched.step(opt, o) return new(Step, opt, {step_size = assert(o.step_size, "step: step_size is required"), gamma = o.gamma or 0.1}) end
function Step:lr_at(e, base) return base * self.gamma ^ (e // self.step_size) end

local MultiStep = class()
function sched.multistep(opt, o)
  local m = {}
  for _, v in ipairs(assert(o.milestones, "multistep: milestones are required")) do m[#m + 1] = v end
  table.sort(m)
  return new(MultiStep, opt, {milestones = m, gamma = o.gamma or 0.1})
end
function MultiStep:lr_at(e, base)
  local k = 0
  for _, m in ipairs(self.milestones) do if e >= m then k = k + 1 end end
  return base * self.gamma ^ k
end

local Exp = class()
function sched.exponential(opt, o) return new(Exp, opt, {gamma = assert(o.gamma, "exponential: gamma is required")}) end
function Exp:lr_at(e, base) return base * self.gamma ^ e end

-- cosine annealing from base to eta_min over t_max epochs, after `warmup` linear epochs
local Cos = class()
function sched.cosine(opt, o)
  return new(Cos, opt, {t_max = assert(o.t_max, "cosine: t_max is required"), eta_min = o.eta_min or 0,
                        warmup = o.warmup or 0, warmup_start = o.warmup_start or 0})
end
function Cos:lr_at(e, base)
  if e < self.warmup then
    return self.warmup_start * base + (base - self.warmup_start * base) * e / self.warmup
  end
  local t = math.min(e - self.warmup, self.t_max)
  return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.t_max)) / 2
end

-- nnU-Net's poly schedule: base * (1 - e / max_epochs) ^ exponent
local Poly = class()
function sched.poly(opt, o)
  return new(Poly, opt, {max_epochs = assert(o.max_epochs, "poly: max_epochs is required"), exponent = o.exponent or 0.9})
end
function Poly:lr_at(e, base) return base * math.max(0, 1 - e / self.max_epochs) ^ self.exponent end

-- ReduceLROnPlateau(mode "min"|"max", factor, patience, threshold, threshold_mode "rel"|"abs", cooldown, min_lr)
local Plateau = class()
function sched.reduce_on_plateau(opt, o)
  o = o or {}
  local s = new(Plateau, opt, {mode = o.mode or "min", factor = o.factor or 0.1, patience = o.patience or 10,
    threshold = o.threshold or 1e-4, threshold_mode = o.threshold_mode or "rel", cooldown = o.cooldown or 0,
    min_lr = o.min_lr or 0, num_bad = 0, cooldown_counter = 0})
  if s.factor >= 1 then error("reduce_on_plateau: factor must be < 1", 2) end
  if s.mode ~= "min" and s.mode ~= "max" then error("reduce_on_plateau: mode must be 'min' or 'max'", 2) end
  return s
end
function Plateau:better(a, best)
  if best == nil then return true end
  local rel = self.threshold_mode == "rel"
  if self.mode == "min" then return a < (rel and best * (1 - self.threshold) or best - self.threshold) end
  return a > (rel and best * (1 + self.threshold) or best + self.threshold)
end
function Plateau:step(metric)
  assert(type(metric) == "number", "reduce_on_plateau: step(metric) needs the monitored number")
  self.last_epoch = self.last_epoch + 1
  if self:better(metric, self.best) then self.best, self.num_bad = metric, 0 else self.num_bad = self.num_bad + 1 end
  if self.cooldown_counter > 0 then self.cooldown_counter = self.cooldown_counter - 1; self.num_bad = 0 end
  if self.num_bad > self.patience then
    for _, g in ipairs(self.optimizer.param_groups) do
      local new_lr = math.max(g.lr * self.factor, self.min_lr)
      if g.lr - new_lr > 1e-12 then g.lr = new_lr end
    end
    self.cooldown_counter, self.num_bad = self.cooldown, 0
  end
end

return sched
