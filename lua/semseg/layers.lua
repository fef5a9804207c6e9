-- Layer modules over the functional ops, with PyTorch's default
-- initialisation and parameter names (weight, bias, running_mean ...).
local core = require "semseg.core"
local nn = require "semseg.nn"
local F = require "semseg.functional"
local util = require "semseg.util"

local function pair(v) if type(v) == "table" then return v end return {v, v} end

-- The layers that call an op with options parse them once, here: configure(self, values, build) keeps
-- `values` as self.cfg and build(values), the op's prepared options (sg.F.<op>_options), as self._opts,
-- which forward passes as they are (rawset: the module system keeps no userdata as a parameter or child).
-- cfg is a view of `values`: assigning a field (m.cfg.stride = 2) validates the change and rebuilds _opts
-- (an invalid value is an error and changes nothing); a change inside a nested table (cfg.kernel[1] = 3)
-- is not seen: assign the whole field.
local function configure(self, values, build)
  rawset(self, "_opts", build(values))
  rawset(self, "cfg", setmetatable({}, {
    __index = values,
    __newindex = function(_, k, v)
      local old = values[k]
      values[k] = v
      local ok, opts = pcall(build, values)
      if not ok then values[k] = old; error(opts, 0) end
      rawset(self, "_opts", opts)
    end,
    __pairs = function() return next, values, nil end,
  }))
end
local function fill_uniform(t, bound)
  core.no_grad(function() t:copy_(core.rand(t.shape, t.dtype) * (2 * bound) - bound) end)
  return t
end

-- Conv2d(in, out, kernel, {stride=1, padding=0 | "same", dilation=1, groups=1, bias=true, dtype="f32"})
nn.Conv2d = nn.class("Conv2d")
local CONV_KEYS = {"stride", "padding", "dilation", "groups", "bias", "dtype"}
local function conv_options(c)
  return F.conv2d_options({stride = c.stride, padding = c.padding, dilation = c.dilation, groups = c.groups}, "nn.Conv2d")
end
function nn.Conv2d:init(cin, cout, kernel, o)
  o = util.check_options(o or {}, CONV_KEYS, "nn.Conv2d")
  local groups = o.groups or 1
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("Conv2d: in_channels %d and out_channels %d must be divisible by groups %d", cin, cout, groups), 3)
  end
  local k = pair(kernel)
  configure(self, {in_channels = cin, out_channels = cout, kernel = k, stride = o.stride or 1,
    padding = o.padding or 0, dilation = o.dilation or 1, groups = groups}, conv_options)
  local w = core.empty({cout, cin // groups, k[1], k[2]}, o.dtype or "f32")
  self.weight = nn.init.kaiming_uniform(w, {a = math.sqrt(5)}):requires_grad()
  if o.bias ~= false then
    self.bias = fill_uniform(core.empty({cout}, o.dtype or "f32"), 1 / math.sqrt(cin // groups * k[1] * k[2])):requires_grad()
  end
end
function nn.Conv2d:forward(x) return F.conv2d(x, self.weight, self.bias, self._opts) end
function nn.Conv2d:extra_repr()
  local c = self.cfg
  return string.format("%d -> %d, %dx%d, stride %s, padding %s", c.in_channels, c.out_channels, c.kernel[1],
    c.kernel[2], table.concat(pair(c.stride), "x"), type(c.padding) == "string" and c.padding or table.concat(pair(c.padding), "x"))
end

-- ConvTranspose2d(in, out, kernel, {stride=1, padding=0, output_padding=0, dilation=1, groups=1, bias=true})
nn.ConvTranspose2d = nn.class("ConvTranspose2d")
local CONV_T_KEYS = {"stride", "padding", "output_padding", "dilation", "groups", "bias", "dtype"}
local function conv_transpose_options(c)
  return F.conv_transpose2d_options({stride = c.stride, padding = c.padding, output_padding = c.output_padding,
    dilation = c.dilation, groups = c.groups}, "nn.ConvTranspose2d")
end
function nn.ConvTranspose2d:init(cin, cout, kernel, o)
  o = util.check_options(o or {}, CONV_T_KEYS, "nn.ConvTranspose2d")
  local groups = o.groups or 1
  local k = pair(kernel)
  configure(self, {in_channels = cin, out_channels = cout, kernel = k, stride = o.stride or 1, padding = o.padding or 0,
    output_padding = o.output_padding or 0, dilation = o.dilation or 1, groups = groups}, conv_transpose_options)
  -- PyTorch computes fan_in from weight dim 1 (out/groups) for transposed convs
  local w = core.empty({cin, cout // groups, k[1], k[2]}, o.dtype or "f32")
  self.weight = nn.init.kaiming_uniform(w, {a = math.sqrt(5)}):requires_grad()
  if o.bias ~= false then
    self.bias = fill_uniform(core.empty({cout}, o.dtype or "f32"), 1 / math.sqrt(cout // groups * k[1] * k[2])):requires_grad()
  end
end
-- forward(x [, size = {h, w}]): an explicit output size picks the output padding (as PyTorch's output_size);
-- a size varies per call, so that form passes a table, parsed each time
function nn.ConvTranspose2d:forward(x, size)
  if not size then return F.conv_transpose2d(x, self.weight, self.bias, self._opts) end
  local c = self.cfg
  return F.conv_transpose2d(x, self.weight, self.bias, {stride = c.stride, padding = c.padding, size = size,
    dilation = c.dilation, groups = c.groups})
end
function nn.ConvTranspose2d:extra_repr()
  local c = self.cfg
  return string.format("%d -> %d, %dx%d, stride %s", c.in_channels, c.out_channels, c.kernel[1], c.kernel[2],
    table.concat(pair(c.stride), "x"))
end

-- BatchNorm2d(C, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true})
nn.BatchNorm2d = nn.class("BatchNorm2d")
local BN_KEYS = {"eps", "momentum", "affine", "track_running_stats", "dtype"}
-- training and relu change from call to call: one prepared object each, _opts[training][relu]
local function bn_options(c)
  local t = {}
  for _, training in ipairs{false, true} do
    t[training] = {}
    for _, relu in ipairs{false, true} do
      t[training][relu] = F.batch_norm_options({training = training, relu = relu, momentum = c.momentum, eps = c.eps},
        "nn.BatchNorm2d")
    end
  end
  return t
end
function nn.BatchNorm2d:init(c, o)
  o = util.check_options(o or {}, BN_KEYS, "nn.BatchNorm2d")
  configure(self, {num_features = c, eps = o.eps or 1e-5, momentum = o.momentum or 0.1}, bn_options)
  if o.affine ~= false then
    self.weight = core.ones({c}, o.dtype or "f32"):requires_grad()
    self.bias = core.zeros({c}, o.dtype or "f32"):requires_grad()
  end
  if o.track_running_stats ~= false then
    self:register_buffer("running_mean", core.zeros({c}, o.dtype or "f32"))
    self:register_buffer("running_var", core.ones({c}, o.dtype or "f32"))
    self:register_buffer("num_batches_tracked", core.zeros({}, "i64"))
  end
end
-- forward(x [, {relu = true}]): relu = true returns relu(bn(x)) computed as one op
function nn.BatchNorm2d:forward(x, o)
  local training = (self.training or not self.running_mean) and true or false
  if self.training and self.num_batches_tracked then
    core.no_grad(function() self.num_batches_tracked:add_(1) end)
  end
  local relu = (o ~= nil and o.relu) and true or false
  return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self._opts[training][relu])
end
function nn.BatchNorm2d:extra_repr() return tostring(self.cfg.num_features) end
nn.BatchNorm1d = nn.BatchNorm2d

-- GroupNorm(groups, C, {eps=1e-5, affine=true}): statistics per sample and group
nn.GroupNorm = nn.class("GroupNorm")
function nn.GroupNorm:init(groups, c, o)
  o = util.check_options(o or {}, {"eps", "affine", "dtype"}, "nn.GroupNorm")
  if c % groups ~= 0 then error(string.format("GroupNorm: %d channels do not split into %d groups", c, groups), 3) end
  rawset(self, "cfg", {groups = groups, channels = c, eps = o.eps or 1e-5})
  if o.affine ~= false then
    self.weight = core.ones({c}, o.dtype or "f32"):requires_grad()
    self.bias = core.zeros({c}, o.dtype or "f32"):requires_grad()
  end
end
function nn.GroupNorm:forward(x)
  return F.group_norm(x, self.cfg.groups, self.weight, self.bias, self.cfg.eps)
end
function nn.GroupNorm:extra_repr() return string.format("%d groups, %d channels", self.cfg.groups, self.cfg.channels) end

-- InstanceNorm2d(C, {eps=1e-5, affine=false}): GroupNorm with one channel per group
nn.InstanceNorm2d = nn.class("InstanceNorm2d")
function nn.InstanceNorm2d:init(c, o)
  o = util.check_options(o or {}, {"eps", "affine", "dtype"}, "nn.InstanceNorm2d")
  rawset(self, "cfg", {channels = c, eps = o.eps or 1e-5})
  if o.affine then
    self.weight = core.ones({c}, o.dtype or "f32"):requires_grad()
    self.bias = core.zeros({c}, o.dtype or "f32"):requires_grad()
  end
end
function nn.InstanceNorm2d:forward(x)
  return F.group_norm(x, self.cfg.channels, self.weight, self.bias, self.cfg.eps)
end

-- LayerNorm(shape, {eps=1e-5, elementwise_affine=true}) over the last #shape dims
nn.LayerNorm = nn.class("LayerNorm")
function nn.LayerNorm:init(shape, o)
  o = util.check_options(o or {}, {"eps", "elementwise_affine", "dtype"}, "nn.LayerNorm")
  shape = type(shape) == "table" and shape or {shape}
  rawset(self, "cfg", {shape = shape, eps = o.eps or 1e-5})
  if o.elementwise_affine ~= false then
    self.weight = core.ones(shape, o.dtype or "f32"):requires_grad()
    self.bias = core.zeros(shape, o.dtype or "f32"):requires_grad()
  end
end
function nn.LayerNorm:forward(x) return F.layer_norm(x, self.cfg.shape, self.weight, self.bias, self.cfg.eps) end

-- Dropout(p) and Dropout2d(p): the engine's RNG, identity in eval mode
nn.Dropout = nn.class("Dropout")
function nn.Dropout:init(p) rawset(self, "p", p or 0.5) end
function nn.Dropout:forward(x) return F.dropout(x, self.p, self.training) end
nn.Dropout2d = nn.class("Dropout2d")
function nn.Dropout2d:init(p) rawset(self, "p", p or 0.5) end
function nn.Dropout2d:forward(x) return F.dropout2d(x, self.p, self.training) end

nn.MaxPool2d = nn.class("MaxPool2d")
local function max_pool_options(c)
  return F.max_pool2d_options({kernel = c.kernel, stride = c.stride, padding = c.padding, indices = c.indices},
    "nn.MaxPool2d")
end
function nn.MaxPool2d:init(kernel, o)
  o = util.check_options(o or {}, {"stride", "padding", "return_indices"}, "nn.MaxPool2d")
  -- indices = false: the C op skips the positions unless autograd needs them
  configure(self, {kernel = kernel, stride = o.stride or kernel, padding = o.padding or 0,
                   indices = o.return_indices and true or false}, max_pool_options)
  rawset(self, "return_indices", o.return_indices)
end
function nn.MaxPool2d:forward(x) return F.max_pool2d(x, self._opts) end
function nn.MaxPool2d:extra_repr() return "kernel " .. table.concat(pair(self.cfg.kernel), "x") end

nn.MaxUnpool2d = nn.class("MaxUnpool2d")
local function max_unpool_options(c)
  return F.max_unpool2d_options({kernel = c.kernel, stride = c.stride, padding = c.padding}, "nn.MaxUnpool2d")
end
function nn.MaxUnpool2d:init(kernel, o)
  o = util.check_options(o or {}, {"stride", "padding"}, "nn.MaxUnpool2d")
  configure(self, {kernel = kernel, stride = o.stride or kernel, padding = o.padding or 0}, max_unpool_options)
end
-- forward(x, indices [, size]): a size given here varies per call, so it goes as a table, parsed each time
function nn.MaxUnpool2d:forward(x, indices, size)
  if size then return F.max_unpool2d(x, indices, {size = size}) end
  return F.max_unpool2d(x, indices, self._opts)
end

nn.AvgPool2d = nn.class("AvgPool2d")
local function avg_pool_options(c)
  return F.avg_pool2d_options({kernel = c.kernel, stride = c.stride, padding = c.padding,
    count_include_pad = c.count_include_pad}, "nn.AvgPool2d")
end
function nn.AvgPool2d:init(kernel, o)
  o = util.check_options(o or {}, {"stride", "padding", "count_include_pad"}, "nn.AvgPool2d")
  configure(self, {kernel = kernel, stride = o.stride or kernel, padding = o.padding or 0,
    count_include_pad = o.count_include_pad ~= false}, avg_pool_options)
end
function nn.AvgPool2d:forward(x) return F.avg_pool2d(x, self._opts) end

nn.AdaptiveAvgPool2d = nn.class("AdaptiveAvgPool2d")
function nn.AdaptiveAvgPool2d:init(size) rawset(self, "size", pair(size)) end
function nn.AdaptiveAvgPool2d:forward(x) return F.adaptive_avg_pool2d(x, self.size) end

-- Upsample({scale=2 | size={h,w}, mode="nearest"|"bilinear", align_corners=false})
nn.Upsample = nn.class("Upsample")
local function upsample_options(c) return F.upsample_options(c, "nn.Upsample") end
function nn.Upsample:init(o)
  local values = {}
  for k, v in pairs(o or {scale = 2}) do values[k] = v end -- a copy: the caller's table stays theirs
  configure(self, values, upsample_options)
end
function nn.Upsample:forward(x) return F.upsample(x, self._opts) end
function nn.Upsample:extra_repr() return (self.cfg.mode or "nearest") .. (self.cfg.scale and (", x" .. tostring(self.cfg.scale)) or "") end

nn.Identity = nn.class("Identity")
function nn.Identity:forward(x) return x end

-- activations with parameters
nn.LeakyReLU = nn.class("LeakyReLU")
function nn.LeakyReLU:init(slope) rawset(self, "slope", slope or 0.01) end
function nn.LeakyReLU:forward(x) return F.leaky_relu(x, self.slope) end
nn.ELU = nn.class("ELU")
function nn.ELU:init(alpha) rawset(self, "alpha", alpha or 1) end
function nn.ELU:forward(x) return F.elu(x, self.alpha) end
nn.CELU = nn.class("CELU")
function nn.CELU:init(alpha) rawset(self, "alpha", alpha or 1) end
function nn.CELU:forward(x) return F.celu(x, self.alpha) end
nn.GELU = nn.class("GELU")
-- nn.GELU({approximate = "tanh"}) as PyTorch's nn.GELU(approximate='tanh'); checked here, not at the first call
function nn.GELU:init(opts)
  if opts ~= nil then F.gelu(core.zeros{1}, opts) end
  rawset(self, "opts", opts)
end
function nn.GELU:forward(x) return F.gelu(x, self.opts) end
nn.SiLU = nn.class("SiLU")
function nn.SiLU:forward(x) return F.silu(x) end
nn.Softmax = nn.class("Softmax")
function nn.Softmax:init(dim) rawset(self, "dim", dim or 2) end
function nn.Softmax:forward(x) return F.softmax(x, self.dim) end
nn.LogSoftmax = nn.class("LogSoftmax")
function nn.LogSoftmax:init(dim) rawset(self, "dim", dim or 2) end
function nn.LogSoftmax:forward(x) return F.log_softmax(x, self.dim) end

return nn
