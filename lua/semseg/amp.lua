-- Mixed precision (sg.amp): autocast regions and dynamic loss scaling, as torch.autocast and
-- torch.cuda.amp.GradScaler.
--
--   sg.amp.autocast(dtype, fn, ...) -> fn(...)'s results, fn run with autocast on
--   sg.amp.autocast({dtype = "bf16", device = "cuda", enabled = true}, fn, ...) -> the same, with options
--   local ac <close> = sg.amp.autocast{dtype = "bf16", device = "cuda"}   -- on until the scope ends
--   sg.amp.autocast_dtype(device) -> "bf16" | "f16" | nil (off);  sg.amp.is_autocast_enabled(device)
--
-- dtype: "bf16" (also "bfloat16") or "fp16" (also "f16", "float16", "half"). device: "cuda" or "cpu"; the
-- default is "cuda" when a GPU is usable, else "cpu". enabled = false turns autocast off inside the region
-- (for a part that must run in f32). While autocast is on for a device, convolutions and matrix products
-- there cast their f32 inputs to the 16-bit type and run in it (accumulating in f32); every other op runs in
-- its inputs' type and parameters stay f32, so their gradients are f32. Cast a 16-bit output to f32 before
-- the loss (sg.train.fit does). The previous state comes back when fn returns or raises, or when the guard
-- is closed: a <close> variable closes on error too (guard:close() closes by hand; closing twice is fine).
--
--   local scaler = sg.amp.GradScaler{init_scale = 65536, growth_factor = 2, backoff_factor = 0.5,
--                                    growth_interval = 2000, enabled = true}
--   scaler:scale(loss):backward()   -- the loss times the current scale: fp16 gradients do not underflow
--   scaler:unscale_(opt)            -- optional, e.g. before clip_grad_norm: gradients back to true size
--   scaler:step(opt)                -- unscales if not done yet; skips opt:step() when any gradient holds
--                                   -- inf or NaN (checked on the gradients' device: one host read per step)
--   scaler:update()                 -- after a skipped step the scale times backoff_factor; after
--                                   -- growth_interval clean steps in a row, times growth_factor
--   scaler:get_scale(), scaler:is_enabled(), scaler.last_skipped, scaler.skipped (count)
--   scaler:state_dict() / scaler:load_state_dict(s)   -- plain numbers, for checkpoints
-- With enabled = false every method passes through (scale returns the loss, step calls opt:step()).
-- bf16 has f32's exponent range and needs no scaler; fp16 does.
local core = require "semseg.core"
local util = require "semseg.util"
local M = {}

local AC = core.amp_core -- the C half: engine/lua/lua_amp.c
local is_tensor = util.is_tensor

local DTYPES = {bf16 = "bf16", bfloat16 = "bf16", fp16 = "f16", f16 = "f16", float16 = "f16", half = "f16"}

-- "bf16" | "f16" for a dtype name; nil for nil/false/"f32"/"none"; an error naming op otherwise
function M.normalize_dtype(dt, op)
  if dt == nil or dt == false or dt == "f32" or dt == "none" or dt == "float32" then return nil end
  local d = type(dt) == "string" and DTYPES[dt:lower()] or nil
  if not d then
    error(string.format("%s: dtype must be \"bf16\" or \"fp16\" (got %s)", op or "sg.amp", tostring(dt)), 0)
  end
  return d
end

local function default_device() return core.cuda.is_available() and "cuda" or "cpu" end

local function check_device(dev, op)
  if dev == nil then return default_device() end
  if dev == "cpu" then return "cpu" end
  if type(dev) == "string" and dev:sub(1, 4) == "cuda" then return "cuda" end
  error(string.format("%s: device must be \"cuda\" or \"cpu\" (got %s)", op, tostring(dev)), 0)
end

function M.autocast_dtype(device)
  local d = AC.get_autocast(check_device(device, "sg.amp.autocast_dtype"))
  if d == "f32" then return nil end
  return d
end
function M.is_autocast_enabled(device) return M.autocast_dtype(device) ~= nil end

local Guard = {}
Guard.__index = Guard
Guard.__close = function(g) g:close() end
Guard.__name = "sg.amp.autocast"
function Guard:close()
  if not self.closed then
    self.closed = true
    AC.set_autocast(self.device, self.previous)
  end
end
M.Guard = Guard

local AUTOCAST_KEYS = {dtype = true, device = true, enabled = true}

-- (dtype or options) -> device, the type to set ("bf16" | "f16" | "f32" for off)
local function autocast_args(a)
  local op = "sg.amp.autocast"
  local o
  if type(a) == "string" then o = {dtype = a}
  elseif type(a) == "table" and getmetatable(a) == nil then o = a
  else error(op .. ": expected a dtype (\"bf16\", \"fp16\") or an options table {dtype =, device =, enabled =} (got "
    .. type(a) .. ")", 0) end
  util.check_options(o, AUTOCAST_KEYS, op)
  local device = check_device(o.device, op)
  if o.enabled ~= nil and type(o.enabled) ~= "boolean" then error(op .. ": enabled must be true or false", 0) end
  if o.enabled == false then return device, "f32" end
  local dt = M.normalize_dtype(o.dtype or "bf16", op)
  return device, dt
end

function M.autocast(a, fn, ...)
  local device, dt = autocast_args(a)
  if fn == nil then -- a guard for a <close> variable
    local prev = AC.set_autocast(device, dt)
    return setmetatable({device = device, dtype = dt, previous = prev, closed = false}, Guard)
  end
  if type(fn) ~= "function" then error("sg.amp.autocast: argument #2 must be a function (got " .. type(fn) .. ")", 0) end
  local prev = AC.set_autocast(device, dt)
  local res = table.pack(pcall(fn, ...))
  AC.set_autocast(device, prev)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

---------------------------------------------------------------- GradScaler
local GradScaler = {}
GradScaler.__index = GradScaler
GradScaler.__name = "sg.amp.GradScaler"
M.GradScaler_class = GradScaler

local SCALER_KEYS = {init_scale = true, growth_factor = true, backoff_factor = true, growth_interval = true,
  enabled = true}

local function sfail(method, fmt, ...)
  error("sg.amp.GradScaler" .. method .. ": " .. string.format(fmt, ...), 0)
end

local function positive(v) return type(v) == "number" and v > 0 and v < math.huge end

function M.GradScaler(o)
  o = util.check_options(o or {}, SCALER_KEYS, "sg.amp.GradScaler")
  local self = setmetatable({_scale = o.init_scale or 65536.0, growth_factor = o.growth_factor or 2.0,
    backoff_factor = o.backoff_factor or 0.5, growth_interval = o.growth_interval or 2000, _tracker = 0,
    enabled = o.enabled ~= false, skipped = 0, last_skipped = false, _per_opt = setmetatable({}, {__mode = "k"})},
    GradScaler)
  if not positive(self._scale) then sfail("", "init_scale must be a positive number (got %s)", tostring(self._scale)) end
  if not (type(self.growth_factor) == "number" and self.growth_factor > 1 and self.growth_factor < math.huge) then
    sfail("", "growth_factor must be a number > 1 (got %s)", tostring(self.growth_factor))
  end
  if not (type(self.backoff_factor) == "number" and self.backoff_factor > 0 and self.backoff_factor < 1) then
    sfail("", "backoff_factor must be a number in (0, 1) (got %s)", tostring(self.backoff_factor))
  end
  if math.type(self.growth_interval) ~= "integer" or self.growth_interval < 1 then
    sfail("", "growth_interval must be a positive integer (got %s)", tostring(self.growth_interval))
  end
  if o.enabled ~= nil and type(o.enabled) ~= "boolean" then sfail("", "enabled must be true or false") end
  return self
end

function GradScaler:is_enabled() return self.enabled end
function GradScaler:get_scale() return self.enabled and self._scale or 1.0 end

-- scale(loss) -> loss * scale (a tensor, or a table of tensors); the loss itself when disabled
function GradScaler:scale(x)
  if not self.enabled then return x end
  if is_tensor(x) then return x * self._scale end
  if type(x) == "table" then
    local out = {}
    for k, v in pairs(x) do
      if not is_tensor(v) then sfail(":scale", "entry %s is not a tensor", tostring(k)) end
      out[k] = v * self._scale
    end
    return out
  end
  sfail(":scale", "expected a loss tensor (got %s)", type(x))
end

local function check_optimizer(opt, method)
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" or type(opt.step) ~= "function" then
    sfail(method, "argument #1 must be an optimizer (sg.optim.*)")
  end
end

local function opt_state(self, opt)
  local st = self._per_opt[opt]
  if not st then st = {stage = "ready"}; self._per_opt[opt] = st end
  return st
end

-- the optimizer's gradients by device (each made contiguous in place when it was not)
local function grads_by_device(opt)
  local by, order = {}, {}
  for _, g in ipairs(opt.param_groups) do
    for _, p in ipairs(g.params) do
      local gr = p.grad
      if gr then
        if not gr:is_contiguous() then gr = gr:contiguous(); p.grad = gr end
        local d = gr.device
        if not by[d] then by[d] = {}; order[#order + 1] = d end
        by[d][#by[d] + 1] = gr
      end
    end
  end
  return by, order
end

-- unscale_(opt): divides opt's gradients by the scale in place and notes (on the device) whether any is inf/NaN
function GradScaler:unscale_(opt)
  if not self.enabled then return end
  check_optimizer(opt, ":unscale_")
  local st = opt_state(self, opt)
  if st.stage == "unscaled" then sfail(":unscale_", "already called on this optimizer since the last update()") end
  if st.stage == "stepped" then sfail(":unscale_", "step() was already called on this optimizer; call update() first") end
  local inv = 1 / self._scale
  if not (inv < math.huge) then
    sfail(":unscale_", "the loss scale underflowed to %g: the gradients have been inf/NaN at every step", self._scale)
  end
  local by, order = grads_by_device(opt)
  st.found = {}
  core.no_grad(function()
    for _, d in ipairs(order) do
      local flag = core.zeros({1}, {dtype = "f32", device = d})
      AC.unscale(by[d], inv, flag)
      st.found[#st.found + 1] = flag
    end
  end)
  st.stage = "unscaled"
end

-- whether the unscaled gradients held inf/NaN: one read per device, the step's only synchronisation
local function read_found(st)
  if st.found_inf == nil then
    local inf = false
    for _, f in ipairs(st.found or {}) do
      if f:item() ~= 0 then inf = true end
    end
    st.found_inf = inf
  end
  return st.found_inf
end

-- step(opt, ...) -> opt:step(...)'s result, or nil when the step was skipped
function GradScaler:step(opt, ...)
  if not self.enabled then return opt:step(...) end
  check_optimizer(opt, ":step")
  local st = opt_state(self, opt)
  if st.stage == "stepped" then sfail(":step", "already called on this optimizer since the last update()") end
  if st.stage ~= "unscaled" then self:unscale_(opt) end
  local inf = read_found(st)
  st.stage = "stepped"
  self.last_skipped = inf
  if inf then
    self.skipped = self.skipped + 1
    return nil
  end
  return opt:step(...)
end

-- update([new_scale]): the next scale from this step's inf/NaN checks (or new_scale when given)
function GradScaler:update(new_scale)
  if not self.enabled then return end
  if new_scale ~= nil then
    if not positive(new_scale) then sfail(":update", "new_scale must be a positive number (got %s)", tostring(new_scale)) end
    self._scale = new_scale
  else
    local any, inf = false, false
    for _, st in pairs(self._per_opt) do
      if st.stage ~= "ready" then
        any = true
        if read_found(st) then inf = true end
      end
    end
    if not any then sfail(":update", "no step() or unscale_() since the last update(): nothing to update from") end
    if inf then
      self._scale = self._scale * self.backoff_factor
      self._tracker = 0
    else
      self._tracker = self._tracker + 1
      if self._tracker >= self.growth_interval then
        self._scale = self._scale * self.growth_factor
        self._tracker = 0
      end
    end
  end
  self._per_opt = setmetatable({}, {__mode = "k"})
end

function GradScaler:state_dict()
  return {scale = self._scale, growth_factor = self.growth_factor, backoff_factor = self.backoff_factor,
          growth_interval = self.growth_interval, growth_tracker = self._tracker, enabled = self.enabled,
          skipped = self.skipped}
end

function GradScaler:load_state_dict(s)
  if type(s) ~= "table" or not positive(s.scale) then sfail(":load_state_dict", "expected a GradScaler state (scale, ...)") end
  self._scale = s.scale
  self.growth_factor = s.growth_factor or self.growth_factor
  self.backoff_factor = s.backoff_factor or self.backoff_factor
  self.growth_interval = math.tointeger(s.growth_interval) or self.growth_interval
  self._tracker = math.tointeger(s.growth_tracker) or 0
  if s.enabled ~= nil then self.enabled = s.enabled end
  self.skipped = math.tointeger(s.skipped) or self.skipped
  self._per_opt = setmetatable({}, {__mode = "k"})
end

return M
