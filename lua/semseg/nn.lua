-- Modules: composable layers with named parameters, buffers and children,
-- in the spirit of torch.nn.Module. Names follow PyTorch ("enc1.conv.weight")
-- so state dicts map one to one.
local core = require "semseg.core"
local nn = {}

local Module = {}
Module.__index = Module
nn.Module = Module

local is_tensor = require("semseg.util").is_tensor
local function is_module(v) return type(v) == "table" and v._is_module end

-- Instances keep children/parameters/buffers in insertion order; plain fields
-- go to the instance itself.
local function instance_newindex(self, k, v)
  local reg = rawget(self, "_reg")
  if is_module(v) then
    if reg.kind[k] == nil then reg.order[#reg.order + 1] = k end
    reg.kind[k] = "child"; reg.value[k] = v
  elseif is_tensor(v) and v:needs_grad() and v.is_leaf then
    if reg.kind[k] == nil then reg.order[#reg.order + 1] = k end
    reg.kind[k] = "param"; reg.value[k] = v
  elseif reg.kind[k] ~= nil and (v == nil or is_tensor(v)) then
    reg.value[k] = v -- re-assigning a registered slot (e.g. a buffer updated out of place)
  else
    rawset(self, k, v)
  end
end

-- nn.class(name [, parent]) -> a class; calling it builds an instance and runs :init(...)
function nn.class(name, parent)
  parent = parent or Module
  local cls = setmetatable({}, {__index = parent, __call = function(c, ...)
    local obj = {_reg = {order = {}, kind = {}, value = {}}, _is_module = true, _class = c, training = true}
    setmetatable(obj, c._mt)
    obj:init(...)
    return obj
  end})
  cls.__name = name
  cls._mt = {
    __index = function(self, k)
      local reg = rawget(self, "_reg")
      local v = reg.value[k]
      if v ~= nil then return v end
      return cls[k]
    end,
    __newindex = instance_newindex,
    __call = function(self, ...) return self:forward(...) end,
    __tostring = function(self) return self:repr() end,
    __name = name,
  }
  return cls
end

function Module:init() end
function Module:forward() error(self.__name .. ": forward is not defined", 2) end

function Module:register_buffer(name, t)
  local reg = self._reg
  if reg.kind[name] == nil then reg.order[#reg.order + 1] = name end
  reg.kind[name] = "buffer"; reg.value[name] = t
end

function Module:children()
  local out, reg = {}, self._reg
  for _, k in ipairs(reg.order) do
    if reg.kind[k] == "child" then out[#out + 1] = {k, reg.value[k]} end
  end
  return out
end

local function walk(m, prefix, kind, out, seen)
  local reg = m._reg
  for _, k in ipairs(reg.order) do
    local v, kk = reg.value[k], reg.kind[k]
    if kk == kind and v ~= nil and not seen[v] then
      seen[v] = true
      out[#out + 1] = {prefix .. k, v}
    elseif kk == "child" then
      walk(v, prefix .. k .. ".", kind, out, seen)
    end
  end
  return out
end

function Module:named_parameters() return walk(self, "", "param", {}, {}) end
function Module:named_buffers() return walk(self, "", "buffer", {}, {}) end
function Module:parameters()
  local out = {}
  for i, p in ipairs(self:named_parameters()) do out[i] = p[2] end
  return out
end
function Module:buffers()
  local out = {}
  for i, p in ipairs(self:named_buffers()) do out[i] = p[2] end
  return out
end

function Module:modules(prefix, out)
  out, prefix = out or {}, prefix or ""
  out[#out + 1] = {prefix, self}
  for _, c in ipairs(self:children()) do c[2]:modules(prefix == "" and c[1] or prefix .. "." .. c[1], out) end
  return out
end

function Module:apply(fn)
  for _, c in ipairs(self:children()) do c[2]:apply(fn) end
  fn(self)
  return self
end

function Module:train(on)
  on = on == nil and true or on
  return self:apply(function(m) rawset(m, "training", on) end)
end
function Module:eval() return self:train(false) end

-- to("cpu" | "cuda" | "auto" | dtype): moves (or casts) parameters and buffers (all buffers move; only
-- floating ones are cast). Parameters keep their identity, as with PyTorch's in-place move: an optimizer
-- built before still updates them (its state follows on its next step), and a gradient moves with its
-- parameter. "auto" is "cuda" when a GPU is usable, else "cpu". An unavailable device is an error before
-- anything moves.
function Module:to(where)
  if where == "auto" then where = require("semseg.device").resolve("auto", "to") end
  if type(where) ~= "string" then error("to: expected a device (\"cpu\", \"cuda\", \"auto\") or a dtype name, got " .. type(where), 2) end
  local is_device = where == "cpu" or where:sub(1, 4) == "cuda"
  if is_device and where ~= "cpu" and not core.cuda.is_available() then
    error("to: device 'cuda' is not available: " .. tostring(core.cuda.why_unavailable()), 2)
  end
  core.no_grad(function()
    self:apply(function(m)
      local reg = m._reg
      for _, k in ipairs(reg.order) do
        local kind, v = reg.kind[k], reg.value[k]
        if (kind == "param" or kind == "buffer") and v then
          local float = v.dtype == "f32" or v.dtype == "f64" or v.dtype == "f16" or v.dtype == "bf16"
          if is_device or float then
            local moved = v:detach():to(where)
            if kind == "param" then
              if not moved:is_view_of(v) then
                local g = v.grad
                v:set_data_(moved)
                if g then v.grad = g:to(where) end
              end
            else
              reg.value[k] = moved
            end
          end
        end
      end
    end)
  end)
  return self
end

-- device() -> the device of the first parameter (else buffer): "cpu" or "cuda"
function Module:device() return require("semseg.device").of(self) end
function Module:cuda() return self:to("cuda") end
function Module:cpu() return self:to("cpu") end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

-- state_dict(): name -> tensor (parameters and buffers, detached, sharing storage, on the model's device;
-- sg.safetensors.save and sg.checkpoint.save copy GPU tensors to the host as they write)
function Module:state_dict()
  local sd, order = {}, {}
  for _, kind in ipairs{"param", "buffer"} do
    for _, p in ipairs(walk(self, "", kind, {}, {})) do
      sd[p[1]] = p[2]:detach(); order[#order + 1] = p[1]
    end
  end
  table.sort(order)
  return sd, order
end

-- load_state_dict(sd [, strict = true]): copies values in (from any device: each lands on the device and in
-- the dtype of the model's own tensor); reports every mismatch by name
function Module:load_state_dict(sd, strict)
  strict = strict == nil and true or strict
  local problems, seen = {}, {}
  local own = {}
  for _, kind in ipairs{"param", "buffer"} do
    for _, p in ipairs(walk(self, "", kind, {}, {})) do own[p[1]] = p[2] end
  end
  for name, t in pairs(own) do
    local src = sd[name]
    seen[name] = true
    if src == nil then
      if strict then problems[#problems + 1] = "missing key '" .. name .. "'" end
    elseif table.concat(src.shape, ",") ~= table.concat(t.shape, ",") then
      problems[#problems + 1] = string.format("'%s': shape [%s] in the state dict, [%s] in the model", name,
        table.concat(src.shape, ","), table.concat(t.shape, ","))
    end
  end
  if strict then
    for name in pairs(sd) do
      if not seen[name] then problems[#problems + 1] = "unexpected key '" .. name .. "'" end
    end
  end
  if #problems > 0 then
    table.sort(problems)
    error("load_state_dict: " .. table.concat(problems, "; "), 2)
  end
  core.no_grad(function()
    for name, t in pairs(own) do
      if sd[name] ~= nil then t:copy_(sd[name]) end
    end
  end)
  return self
end

function Module:repr(indent)
  indent = indent or ""
  local kids = self:children()
  local head = self.__name .. (self.extra_repr and ("(" .. self:extra_repr() .. ")") or "")
  if #kids == 0 then return head end
  local lines = {head .. " {"}
  for _, c in ipairs(kids) do
    lines[#lines + 1] = indent .. "  (" .. c[1] .. "): " .. c[2]:repr(indent .. "  ")
  end
  lines[#lines + 1] = indent .. "}"
  return table.concat(lines, "\n")
end

-- Counts like Keras: trainable parameters, and non-trainable floating-point
-- buffers (BatchNorm's running mean and variance; not its batch counter).
function Module:parameter_counts()
  local trainable, buffers = 0, 0
  for _, p in ipairs(self:parameters()) do trainable = trainable + p:numel() end
  for _, b in ipairs(self:buffers()) do
    if b.dtype == "f32" or b.dtype == "f64" or b.dtype == "f16" or b.dtype == "bf16" then buffers = buffers + b:numel() end
  end
  return trainable, buffers
end

local function group_digits(n)
  local s = tostring(n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

-- summary(input_shape [, {print = false}]): runs one forward pass on zeros and
-- returns (and prints) a Keras-style table: layer, output shape, parameters.
function Module:summary(input_shape, opts)
  opts = opts or {}
  local rows, originals = {}, {}
  for _, entry in ipairs(self:modules()) do
    local name, m = entry[1], entry[2]
    local own = 0
    for _, k in ipairs(m._reg.order) do
      if m._reg.kind[k] == "param" then own = own + m._reg.value[k]:numel() end
    end
    if #m:children() == 0 or own > 0 then
      local fwd = m.forward
      originals[#originals + 1] = m
      rawset(m, "forward", function(self_, ...)
        local out = fwd(self_, ...)
        local shape = type(out) == "userdata" and ("[" .. table.concat(out.shape, ",") .. "]") or type(out)
        local _, buf = self_:parameter_counts() -- Keras counts a layer's moving statistics in its row
        rows[#rows + 1] = {name ~= "" and name or self_.__name, self_.__name, shape, own + buf}
        return out
      end)
    end
  end
  local was_training = self.training
  self:eval()
  local ok, err = pcall(function()
    core.no_grad(function() self:forward(core.zeros(input_shape, {device = self:device()})) end)
  end)
  for _, m in ipairs(originals) do rawset(m, "forward", nil) end
  self:train(was_training)
  if not ok then error("summary: forward on input " .. "[" .. table.concat(input_shape, ",") .. "] failed: " .. tostring(err), 2) end
  local trainable, buffers = self:parameter_counts()
  local lines = {string.format("%-40s %-22s %14s", "Layer (type)", "Output shape", "Param #"), string.rep("=", 78)}
  for _, r in ipairs(rows) do
    lines[#lines + 1] = string.format("%-40s %-22s %14s", r[1] .. " (" .. r[2] .. ")", r[3], group_digits(r[4]))
  end
  lines[#lines + 1] = string.rep("=", 78)
  lines[#lines + 1] = "Total params: " .. group_digits(trainable + buffers)
  lines[#lines + 1] = "Trainable params: " .. group_digits(trainable)
  lines[#lines + 1] = "Non-trainable params: " .. group_digits(buffers)
  local text = table.concat(lines, "\n")
  if opts.print ~= false then print(text) end
  return {rows = rows, total = trainable + buffers, trainable = trainable, non_trainable = buffers, text = text}
end

-- ---------------------------------------------------------------- containers
nn.Sequential = nn.class("Sequential")
function nn.Sequential:init(...)
  local mods = select("#", ...) == 1 and not is_module((...)) and (...) or {...}
  -- children are named "0", "1", ... as in PyTorch, so state dicts line up
  for i, m in ipairs(mods) do self[tostring(i - 1)] = m end
  rawset(self, "n", #mods)
end
function nn.Sequential:add(m)
  self[tostring(self.n)] = m
  rawset(self, "n", self.n + 1)
  return self
end
function nn.Sequential:forward(x)
  for i = 0, self.n - 1 do x = self[tostring(i)](x) end
  return x
end
function nn.Sequential:get(i) return self[tostring(i - 1)] end

nn.ModuleList = nn.class("ModuleList")
function nn.ModuleList:init(mods)
  rawset(self, "n", 0)
  for _, m in ipairs(mods or {}) do self:append(m) end
end
function nn.ModuleList:append(m)
  rawset(self, "n", self.n + 1)
  self[tostring(self.n - 1)] = m -- PyTorch names list entries from 0
  return self
end
function nn.ModuleList:get(i) return self[tostring(i - 1)] end
function nn.ModuleList:__len() return self.n end
function nn.ModuleList:iter()
  local i = 0
  return function()
    i = i + 1
    if i <= self.n then return i, self:get(i) end
  end
end

-- ---------------------------------------------------------------- init
nn.init = {}
local function fans(t)
  local s = t.shape
  local recept = 1
  for d = 3, #s do recept = recept * s[d] end
  local fan_in = (s[2] or 1) * recept
  local fan_out = s[1] * recept
  return fan_in, fan_out
end
local function fill_uniform(t, bound)
  core.no_grad(function() t:copy_(core.rand(t.shape, t.dtype) * (2 * bound) - bound) end)
  return t
end
local function fill_normal(t, std)
  core.no_grad(function() t:copy_(core.randn(t.shape, t.dtype) * std) end)
  return t
end
nn.init.fans = fans
function nn.init.uniform(t, a, b) a, b = a or 0, b or 1
  core.no_grad(function() t:copy_(core.rand(t.shape, t.dtype) * (b - a) + a) end); return t end
function nn.init.normal(t, mean, std)
  core.no_grad(function() t:copy_(core.randn(t.shape, t.dtype) * (std or 1) + (mean or 0)) end); return t end
function nn.init.constant(t, v) core.no_grad(function() t:fill_(v) end); return t end
function nn.init.zeros(t) return nn.init.constant(t, 0) end
function nn.init.ones(t) return nn.init.constant(t, 1) end
local function gain(nonlinearity, a)
  if nonlinearity == "relu" then return math.sqrt(2) end
  if nonlinearity == "leaky_relu" then return math.sqrt(2 / (1 + (a or 0.01) ^ 2)) end
  if nonlinearity == "tanh" then return 5 / 3 end
  return 1
end
nn.init.gain = gain
function nn.init.xavier_uniform(t, g)
  local fi, fo = fans(t); return fill_uniform(t, (g or 1) * math.sqrt(6 / (fi + fo))) end
function nn.init.xavier_normal(t, g)
  local fi, fo = fans(t); return fill_normal(t, (g or 1) * math.sqrt(2 / (fi + fo))) end
-- kaiming_uniform(t, {a=, mode="fan_in"|"fan_out", nonlinearity="leaky_relu"}) as PyTorch
function nn.init.kaiming_uniform(t, o)
  o = o or {}
  local fi, fo = fans(t)
  local fan = o.mode == "fan_out" and fo or fi
  local std = gain(o.nonlinearity or "leaky_relu", o.a or 0) / math.sqrt(fan)
  return fill_uniform(t, math.sqrt(3) * std)
end
function nn.init.kaiming_normal(t, o)
  o = o or {}
  local fi, fo = fans(t)
  local fan = o.mode == "fan_out" and fo or fi
  return fill_normal(t, gain(o.nonlinearity or "leaky_relu", o.a or 0) / math.sqrt(fan))
end

-- ---------------------------------------------------------------- Linear
nn.Linear = nn.class("Linear")
function nn.Linear:init(in_features, out_features, opts)
  opts = opts or {}
  rawset(self, "in_features", in_features)
  rawset(self, "out_features", out_features)
  -- PyTorch's default: kaiming_uniform(a = sqrt(5)) for the weight, U(-1/sqrt(fan_in), ..) for the bias
  self.weight = nn.init.kaiming_uniform(core.empty({out_features, in_features}, opts.dtype or "f32"),
                                        {a = math.sqrt(5)}):requires_grad()
  if opts.bias ~= false then
    self.bias = fill_uniform(core.empty({out_features}, opts.dtype or "f32"), 1 / math.sqrt(in_features))
      :requires_grad()
  end
end
function nn.Linear:forward(x)
  local y = x:matmul(self.weight:transpose(1, 2))
  if self.bias then y = y + self.bias end
  return y
end
function nn.Linear:extra_repr()
  return string.format("%d -> %d%s", self.in_features, self.out_features, self.bias and "" or ", no bias")
end

-- ---------------------------------------------------------------- activations as modules
for name, class_name in pairs{relu = "ReLU", sigmoid = "Sigmoid", tanh = "Tanh"} do
  local cls = nn.class(class_name)
  cls.forward = function(_, x) return x[name](x) end
  nn[class_name] = cls
end

return nn
