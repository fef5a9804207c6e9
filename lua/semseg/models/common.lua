-- Shared pieces of the U-Net family: configuration checking, the building
-- blocks (double conv, residual, recurrent-residual, attention gate, up-sampling)
-- and one encoder-decoder skeleton that every builder specialises.
--
-- Layout (depth D): enc1..encD and bottleneck (filters base*2^(level-1)),
-- 2x2 max-pool between them; decoder levels D..1 each up-sample the deeper
-- feature (upD.., optionally gate the skip with attD..), concatenate
-- [up-sampled, skip] along channels and run decD..; head (1x1 conv),
-- optional head_bn, then the output activation. Parameter names follow
-- PyTorch ("enc1.conv1.weight", "dec1.bn2.running_mean", "head.weight").
local core = require "semseg.core"
local util = require "semseg.util"
local nn = require "semseg.nn"
require "semseg.layers"
local F = require "semseg.functional"

local M = {}

-- ------------------------------------------------------------------ config
-- activation "none": the head returns logits, which is what sg.loss and sg.predict expect (a sigmoid or
-- softmax head would be applied twice); "sigmoid"/"softmax" give probability outputs like the Keras models.
local DEFAULTS = {base = 64, depth = 4, batch_norm = true, dropout = 0, up = "upsample", up_bn = false,
                  head_bn = false, activation = "none"}
M.DEFAULTS = DEFAULTS

local function is_int(v) return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v)) end

-- check_config(arch, cfg [, extra_defaults]) -> a new table with every default filled in;
-- a missing or bad value, or a key no builder knows (a typo), is an error naming it.
function M.check_config(arch, cfg, extra)
  if type(cfg) ~= "table" then error(arch .. ": expected a config table {in_channels =, classes =, ...}", 3) end
  local out, known = {}, {in_channels = true, classes = true}
  for k, v in pairs(DEFAULTS) do out[k] = v; known[k] = true end
  for k, v in pairs(extra or {}) do out[k] = v; known[k] = true end
  util.check_options(cfg, known, arch)
  for k, v in pairs(cfg) do out[k] = v end
  local function bad(msg) error(arch .. ": " .. msg, 4) end
  local function positive_int(key)
    local v = out[key]
    if v == nil then bad(key .. " is required") end
    if not is_int(v) or v < 1 then bad(string.format("%s must be an integer >= 1, got %s", key, tostring(v))) end
    out[key] = math.tointeger(v)
  end
  positive_int("in_channels"); positive_int("classes"); positive_int("base"); positive_int("depth")
  for _, key in ipairs{"batch_norm", "up_bn", "head_bn"} do
    if type(out[key]) ~= "boolean" then bad(string.format("%s must be true or false, got %s", key, tostring(out[key]))) end
  end
  if type(out.dropout) ~= "number" or out.dropout < 0 or out.dropout >= 1 then
    bad("dropout must be a number in [0, 1), got " .. tostring(out.dropout))
  end
  if out.up ~= "upsample" and out.up ~= "transpose" then
    bad("up must be \"upsample\" or \"transpose\", got " .. tostring(out.up))
  end
  local act = out.activation
  if act ~= "sigmoid" and act ~= "softmax" and act ~= "none" then
    bad("unknown activation '" .. tostring(act) .. "' (sigmoid, softmax or none)")
  end
  if act == "softmax" and out.classes < 2 then
    bad("activation softmax needs classes >= 2 (one class: use sigmoid)")
  end
  if out.up_bn and out.up ~= "transpose" then bad("up_bn applies to up = \"transpose\" only") end
  return out
end

-- ------------------------------------------------------------------ blocks
local function conv3(cin, cout) return nn.Conv2d(cin, cout, 3, {padding = 1}) end
local function maybe_bn(self, name, c, on) if on then self[name] = nn.BatchNorm2d(c) end end
local function bn(self, name, x) local m = self[name]; if m then return m(x) end return x end
-- relu(bn(x)): one fused op when the BN is there
local function bn_relu(self, name, x) local m = self[name]; if m then return m(x, {relu = true}) end return x:relu() end
-- drop(t, keep...): closes the intermediate result t now unless it is one of `keep` (an op that passed it
-- through). Its memory then goes as soon as nothing else holds it: at once in inference, when the backward
-- pass has used it in training. Left to the garbage collector, dead activations pile up between
-- collections (the collector does not see tensor sizes) and raise the peak memory.
local function drop(t, ...)
  if t == nil then return end
  for i = 1, select("#", ...) do if rawequal(t, (select(i, ...))) then return end end
  local _ <close> = t
end
M.drop = drop

-- two [3x3 conv (bias) -> BN -> ReLU], then dropout (as the Keras conv_block)
M.DoubleConv = nn.class("DoubleConv")
function M.DoubleConv:init(cin, cout, cfg)
  self.conv1 = conv3(cin, cout); maybe_bn(self, "bn1", cout, cfg.batch_norm)
  self.conv2 = conv3(cout, cout); maybe_bn(self, "bn2", cout, cfg.batch_norm)
  if cfg.dropout > 0 then self.drop = nn.Dropout(cfg.dropout) end
end
function M.DoubleConv:forward(x)
  local c = self.conv1(x)
  local h = bn_relu(self, "bn1", c); drop(c, h)
  c = self.conv2(h); drop(h, c)
  local y = bn_relu(self, "bn2", c); drop(c, y)
  if self.drop then local d = self.drop(y); drop(y, d); y = d end
  return y
end

-- residual block: conv3x3-BN-ReLU-conv3x3-BN (dropout) + shortcut 1x1 conv-BN, added, ReLU
-- (the Keras res_conv_block: no ReLU before the addition)
M.ResBlock = nn.class("ResBlock")
function M.ResBlock:init(cin, cout, cfg)
  self.conv1 = conv3(cin, cout); maybe_bn(self, "bn1", cout, cfg.batch_norm)
  self.conv2 = conv3(cout, cout); maybe_bn(self, "bn2", cout, cfg.batch_norm)
  if cfg.dropout > 0 then self.drop = nn.Dropout(cfg.dropout) end
  self.shortcut = nn.Conv2d(cin, cout, 1); maybe_bn(self, "shortcut_bn", cout, cfg.batch_norm)
end
function M.ResBlock:forward(x)
  local c = self.conv1(x)
  local h = bn_relu(self, "bn1", c); drop(c, h)
  c = self.conv2(h); drop(h, c)
  local y = bn(self, "bn2", c); drop(c, y)
  if self.drop then local d = self.drop(y); drop(y, d); y = d end
  local sc = self.shortcut(x)
  local s = bn(self, "shortcut_bn", sc); drop(sc, s)
  local sum = y + s; drop(y); drop(s)
  local out = sum:relu(); drop(sum)
  return out
end

-- recurrent conv unit (R2U-Net): f = conv3x3-BN-ReLU with shared weights;
-- x1 = f(x), then t times x1 = f(x + x1)
M.Recurrent = nn.class("Recurrent")
function M.Recurrent:init(c, cfg)
  rawset(self, "t", cfg.t)
  self.conv = conv3(c, c); maybe_bn(self, "bn", c, cfg.batch_norm)
end
function M.Recurrent:forward(x)
  local function f(v)
    local c = self.conv(v)
    local r = bn_relu(self, "bn", c); drop(c, r)
    return r
  end
  local x1 = f(x)
  for _ = 1, self.t do
    local s = x + x1; drop(x1)
    x1 = f(s); drop(s)
  end
  return x1
end

-- recurrent residual block (RRCNN): 1x1 conv to cout, two recurrent units,
-- their output added to the 1x1 output; then dropout
M.RecurrentResBlock = nn.class("RecurrentResBlock")
function M.RecurrentResBlock:init(cin, cout, cfg)
  self.proj = nn.Conv2d(cin, cout, 1)
  self.rec1 = M.Recurrent(cout, cfg)
  self.rec2 = M.Recurrent(cout, cfg)
  if cfg.dropout > 0 then self.drop = nn.Dropout(cfg.dropout) end
end
function M.RecurrentResBlock:forward(x)
  local p = self.proj(x)
  local r1 = self.rec1(p)
  local r2 = self.rec2(r1); drop(r1, r2)
  local y = p + r2; drop(p); drop(r2)
  if self.drop then local d = self.drop(y); drop(y, d); y = d end
  return y
end

-- up-sampling by 2: nearest (no parameters, channels kept) or a 2x2 stride-2
-- transposed conv to `cout` channels, optionally followed by BN
M.Up = nn.class("Up")
function M.Up:init(cin, cout, cfg)
  rawset(self, "mode", cfg.up)
  if cfg.up == "transpose" then
    self.conv = nn.ConvTranspose2d(cin, cout, 2, {stride = 2})
    if cfg.up_bn then self.bn = nn.BatchNorm2d(cout) end
  else
    self.up = nn.Upsample{scale = 2, mode = "nearest"}
  end
end
function M.Up:forward(x)
  if self.mode ~= "transpose" then return self.up(x) end
  local c = self.conv(x)
  local y = bn(self, "bn", c); drop(c, y)
  return y
end
function M.Up.out_channels(cin, cout, cfg) return cfg.up == "transpose" and cout or cin end

-- additive attention gate (Attention U-Net, as the published Keras attention_block):
-- skip x (C channels, HxW), deeper decoder feature d (Cd channels, H/2 x W/2)
--   g     = ReLU(BN(1x1 conv_C(d)))                       gating signal
--   theta = 2x2 stride-2 conv_C(x)          (bias: Keras Conv2D default)
--   phi   = 3x3 stride-1 transposed conv_C(1x1 conv_C(g)) (padding 1 keeps H/2 x W/2, as Keras 'same')
--   a     = sigmoid(1x1 conv_1(ReLU(theta + phi)))        one coefficient per position
--   out   = BN(1x1 conv_C(up2_nearest(a) * x))            a broadcast over the channels
-- Every conv has a bias and BN sits only on the gating signal and the output:
-- with these choices the counts equal the Keras models' (37,334,665 and 39,090,377).
-- (BN on theta or phi, a bias-free theta, or a gating conv to Cd channels would each change them.)
-- batch_norm = false drops both gate BNs too (Keras keeps the output BN unconditionally):
-- the option then means "no BatchNorm anywhere" apart from up_bn / head_bn.
M.AttentionGate = nn.class("AttentionGate")
function M.AttentionGate:init(c, cd, cfg)
  self.gate_conv = nn.Conv2d(cd, c, 1); maybe_bn(self, "gate_bn", c, cfg.batch_norm)
  self.theta = nn.Conv2d(c, c, 2, {stride = 2})
  self.phi = nn.Conv2d(c, c, 1)
  self.phi_up = nn.ConvTranspose2d(c, c, 3, {stride = 1, padding = 1})
  self.psi = nn.Conv2d(c, 1, 1)
  self.up = nn.Upsample{scale = 2, mode = "nearest"}
  self.proj = nn.Conv2d(c, c, 1); maybe_bn(self, "proj_bn", c, cfg.batch_norm)
end
function M.AttentionGate:forward(x, d)
  local gc = self.gate_conv(d)
  local g = bn_relu(self, "gate_bn", gc); drop(gc, g)
  local theta = self.theta(x)
  local p = self.phi(g); drop(g, p)
  local phi = self.phi_up(p, {theta.shape[3], theta.shape[4]}); drop(p, phi)
  local s = theta + phi; drop(theta); drop(phi)
  local r = s:relu(); drop(s)
  local q = self.psi(r); drop(r, q)
  local a = q:sigmoid(); drop(q)
  local au = self.up(a); drop(a, au)
  local xa = x * au; drop(au)
  local pr = self.proj(xa); drop(xa, pr)
  local out = bn(self, "proj_bn", pr); drop(pr, out)
  return out
end

-- ------------------------------------------------------------------ the skeleton
-- M.define(class_name, arch, {block = fn(cin, cout, cfg) -> module, attention = bool,
--                             extra = {defaults of extra options}, check = fn(cfg) (errors on a bad extra option)})
-- returns a class; calling it with a config builds the network.
function M.define(class_name, arch, spec)
  local cls = nn.class(class_name)
  function cls:init(cfg)
    cfg = M.check_config(arch, cfg, spec.extra)
    if spec.check then spec.check(cfg) end
    rawset(self, "config", cfg)
    rawset(self, "arch", arch)
    local filters = {}
    for level = 1, cfg.depth + 1 do filters[level] = cfg.base << (level - 1) end
    rawset(self, "filters", filters)
    local cin = cfg.in_channels
    for level = 1, cfg.depth do
      self["enc" .. level] = spec.block(cin, filters[level], cfg)
      cin = filters[level]
    end
    self.pool = nn.MaxPool2d(2)
    self.bottleneck = spec.block(cin, filters[cfg.depth + 1], cfg)
    local cd = filters[cfg.depth + 1]
    for level = cfg.depth, 1, -1 do
      local c = filters[level]
      if spec.attention then self["att" .. level] = M.AttentionGate(c, cd, cfg) end
      self["up" .. level] = M.Up(cd, c, cfg)
      self["dec" .. level] = spec.block(M.Up.out_channels(cd, c, cfg) + c, c, cfg)
      cd = c
    end
    self.head = nn.Conv2d(filters[1], cfg.classes, 1)
    if cfg.head_bn then self.head_bn = nn.BatchNorm2d(cfg.classes) end
    -- the initialisers' temporaries are garbage now: give their memory back, so that it is not kept
    -- cached beside the activations that follow and does not add to the peak
    core.empty_cache()
  end

  function cls:forward(x)
    local cfg = self.config
    local s = x.shape
    if #s ~= 4 then
      error(string.format("%s: expected input N x %d x H x W, got [%s]", arch, cfg.in_channels, table.concat(s, ",")), 2)
    end
    if s[2] ~= cfg.in_channels then
      error(string.format("%s: input has %d channels, the model expects %d (input [%s])", arch, s[2], cfg.in_channels,
        table.concat(s, ",")), 2)
    end
    local m = 1 << cfg.depth
    if s[3] % m ~= 0 or s[4] % m ~= 0 then
      error(string.format("%s: input H and W must be divisible by 2^depth = %d, got %dx%d", arch, m, s[3], s[4]), 2)
    end
    -- every intermediate result is dropped (closed) once used; the input x is the caller's
    local drop = M.drop
    local skips, input = {}, x
    for level = 1, cfg.depth do
      local e = self["enc" .. level](x)
      if x ~= input then drop(x, e) end
      skips[level] = e
      x = self.pool(e)
    end
    local b = self.bottleneck(x); drop(x, b)
    x = b
    for level = cfg.depth, 1, -1 do
      local skip = skips[level]
      local gated = skip
      if spec.attention then gated = self["att" .. level](skip, x) end
      local u = self["up" .. level](x)
      local c = core.cat({u, gated}, 2)
      drop(u, c); drop(x, c); drop(gated, c)
      if not rawequal(gated, skip) then drop(skip, c) end
      skips[level] = nil
      x = self["dec" .. level](c); drop(c, x)
    end
    local h = self.head(x); drop(x, h)
    x = h
    if self.head_bn then h = self.head_bn(x); drop(x, h); x = h end
    if cfg.activation == "sigmoid" then
      h = x:sigmoid(); drop(x, h); x = h
    elseif cfg.activation == "softmax" then
      h = F.softmax(x, 2); drop(x, h); x = h
    end
    return x
  end

  function cls:extra_repr()
    local c = self.config
    return string.format("%d -> %d classes, base %d, depth %d, up %s, %s", c.in_channels, c.classes, c.base, c.depth,
      c.up, c.activation)
  end
  return cls
end

return M
