-- The U-Net family builders (sg.models): exact published parameter counts,
-- shapes, gradients, names, configs and errors. Full-size models are only
-- built and counted; forward/backward runs at base 4 on 32x32 inputs.
local models = require "semseg.models"

local function counts(name, cfg)
  local m = models.build(name, cfg)
  local trainable, non_trainable = m:parameter_counts()
  m = nil
  collectgarbage()
  return trainable, non_trainable
end

test("parameter counts equal the published Keras and PyTorch models", function()
  -- Keras way: 3 input channels, 1 class, base 64, nearest up-sampling, BN after the 1x1 head;
  -- trainable + BN moving statistics
  local keras = {in_channels = 3, classes = 1, base = 64, up = "upsample", head_bn = true}
  local t, n = counts("unet", keras)
  check.eq(t, 31390723, "unet trainable")
  check.eq(t + n, 31402501, "unet total")
  t, n = counts("attention_unet", keras)
  check.eq(t + n, 37334665, "attention_unet total")
  t, n = counts("attention_residual_unet", keras)
  check.eq(t + n, 39090377, "attention_residual_unet total")
  -- PyTorch way: 1 input channel, transposed conv + BN, no head BN; trainable only
  t = counts("unet", {in_channels = 1, classes = 1, up = "transpose", up_bn = true})
  check.eq(t, 31044289, "unet (PyTorch) trainable")
end)

test("r2unet parameter count (regression)", function()
  -- 1x1 conv + two recurrent units (one conv3x3-BN each) per block, nearest up-sampling
  -- (base 64: 33,169,795 trainable; counted here at base 16 to keep the suite fast)
  local t, n = counts("r2unet", {in_channels = 3, classes = 1, base = 16, head_bn = true})
  check.eq(t, 2077027, "r2unet trainable")
  check.eq(n, 2946, "r2unet BN statistics")
end)

test("names and build", function()
  check.eq(models.names(), {"attention_residual_unet", "attention_unet", "r2unet", "unet"})
  check.truthy(sg.models == nil or sg.models.build == models.build, "sg.models is semseg.models")
  local m = models.build("unet", {in_channels = 2, classes = 3, base = 4, depth = 2})
  check.eq(m.arch, "unet")
  check.eq(m.config.base, 4); check.eq(m.config.depth, 2); check.eq(m.config.activation, "none") -- logits by default
  check.eq(m.config.up, "upsample"); check.eq(m.config.batch_norm, true); check.eq(m.config.dropout, 0)
  for _, f in ipairs(m.filters) do check.eq(math.type(f), "integer") end
  check.truthy(not tostring(m):find("%d%.0"), "channel counts print as integers")
  -- the recorded config rebuilds the same architecture
  local again = models.build(m.arch, m.config)
  check.eq(again:num_parameters(), m:num_parameters())
  local sd = m:state_dict()
  again:load_state_dict(sd)
  check.eq(models.build("r2unet", {in_channels = 1, classes = 1, base = 4, depth = 1}).config.t, 2)
end)

test("output shapes for every model and both up-sampling modes", function()
  sg.manual_seed(1)
  local x = sg.randn{2, 3, 32, 32}
  for _, name in ipairs(models.names()) do
    for _, up in ipairs{"upsample", "transpose"} do
      local m = models.build(name, {in_channels = 3, classes = 2, base = 4, up = up, up_bn = up == "transpose",
                                    activation = "none"})
      local y = m(x)
      check.eq(y.shape, {2, 2, 32, 32}, name .. " " .. up)
      -- depth 3, one class, head BN, sigmoid, 16x48 (divisible by 8)
      local m3 = models.build(name, {in_channels = 3, classes = 1, base = 4, depth = 3, up = up, head_bn = true,
                                     activation = "sigmoid"})
      local y3 = m3(sg.randn{1, 3, 16, 48})
      check.eq(y3.shape, {1, 1, 16, 48}, name .. " " .. up .. " depth 3")
      check.truthy(y3:min():item() >= 0 and y3:max():item() <= 1, "sigmoid output in [0, 1]")
    end
  end
end)

test("softmax output sums to one over the classes; eval mode is deterministic", function()
  sg.manual_seed(2)
  local m = models.attention_residual_unet{in_channels = 1, classes = 3, base = 4, depth = 2, activation = "softmax",
                                           dropout = 0.2}
  m:eval()
  local x = sg.randn{2, 1, 32, 32}
  local y = m(x)
  check.near(y:sum(2), sg.ones{2, 32, 32}, 1e-5)
  check.near(m(x), y, 0, 0)
end)

test("gradients reach every parameter", function()
  sg.manual_seed(3)
  local x = sg.randn{2, 2, 16, 16}
  for _, name in ipairs(models.names()) do
    for _, up in ipairs{"upsample", "transpose"} do
      local m = models.build(name, {in_channels = 2, classes = 2, base = 4, up = up, up_bn = up == "transpose",
                                    head_bn = up == "upsample", activation = "softmax", dropout = 0.1})
      local y = m(x)
      -- a random weighting: a plain sum would have zero gradient through BN
      local loss = (y * sg.randn(y.shape)):sum()
      loss:backward()
      local n, names = 0, {}
      for _, p in ipairs(m:named_parameters()) do names[p[1]] = true end
      -- the bias of a conv feeding a training-mode BN has a true gradient of 0 (BN removes the mean):
      -- depending on the conv path it comes out as exactly 0 or as rounding noise, so it is not checked
      local function bias_before_bn(pname)
        local pre, k = pname:match("^(.*)conv(%d*)%.bias$")
        if pre then return names[pre .. "bn" .. k .. ".weight"] end
        local sc = pname:match("^(.*)shortcut%.bias$")
        return sc and names[sc .. "shortcut_bn.weight"]
      end
      for _, p in ipairs(m:named_parameters()) do
        local g = p[2].grad
        check.truthy(g ~= nil, name .. " " .. up .. ": no gradient for " .. p[1])
        check.eq(g.shape, p[2].shape, p[1])
        if not bias_before_bn(p[1]) then
          check.truthy(g:abs():sum():item() > 0, name .. " " .. up .. ": zero gradient for " .. p[1])
        end
        n = n + 1
      end
      check.truthy(n > 0)
    end
  end
end)

test("state_dict names are PyTorch-like", function()
  local function keys(name, cfg)
    local sd = models.build(name, cfg):state_dict()
    for k in pairs(sd) do
      check.truthy(k:match("^[%a_]") and not k:find("..", 1, true) and k:match("^[%w_.]+[%w_]$"), "bad name " .. k)
    end
    return sd
  end
  local small = {in_channels = 1, classes = 1, base = 4, depth = 2}
  local sd = keys("unet", small)
  for _, k in ipairs{"enc1.conv1.weight", "enc1.conv1.bias", "enc1.bn1.weight", "enc1.bn1.running_mean",
                     "enc1.bn2.num_batches_tracked", "enc2.conv2.weight", "bottleneck.conv1.weight",
                     "dec2.conv1.weight", "dec1.bn2.running_var", "head.weight", "head.bias"} do
    check.truthy(sd[k] ~= nil, "unet: missing " .. k)
  end
  check.eq(sd["enc1.conv1.weight"].shape, {4, 1, 3, 3})
  check.eq(sd["bottleneck.conv1.weight"].shape, {16, 8, 3, 3})
  check.eq(sd["dec2.conv1.weight"].shape, {8, 24, 3, 3}) -- up-sampled 16 + skip 8
  check.eq(sd["head.weight"].shape, {1, 4, 1, 1})
  check.truthy(sd["head_bn.weight"] == nil)
  sd = keys("unet", {in_channels = 1, classes = 1, base = 4, depth = 2, up = "transpose", up_bn = true, head_bn = true})
  check.eq(sd["up2.conv.weight"].shape, {16, 8, 2, 2})
  check.eq(sd["dec2.conv1.weight"].shape, {8, 16, 3, 3})
  check.truthy(sd["up1.bn.running_mean"] ~= nil and sd["head_bn.weight"] ~= nil)
  sd = keys("attention_unet", small)
  for _, k in ipairs{"att1.gate_conv.weight", "att1.gate_bn.weight", "att1.theta.weight", "att1.theta.bias",
                     "att1.phi.weight", "att1.phi_up.weight", "att1.psi.weight", "att1.proj.weight",
                     "att2.proj_bn.running_var"} do
    check.truthy(sd[k] ~= nil, "attention_unet: missing " .. k)
  end
  check.eq(sd["att2.gate_conv.weight"].shape, {8, 16, 1, 1})
  check.eq(sd["att2.theta.weight"].shape, {8, 8, 2, 2})
  check.eq(sd["att2.psi.weight"].shape, {1, 8, 1, 1})
  sd = keys("attention_residual_unet", small)
  check.eq(sd["enc1.shortcut.weight"].shape, {4, 1, 1, 1})
  check.truthy(sd["dec1.shortcut_bn.running_mean"] ~= nil)
  sd = keys("r2unet", small)
  check.eq(sd["enc1.proj.weight"].shape, {4, 1, 1, 1})
  check.eq(sd["enc1.rec2.conv.weight"].shape, {4, 4, 3, 3})
  check.truthy(sd["bottleneck.rec1.bn.running_var"] ~= nil)
end)

test("batch_norm = false builds no BatchNorm", function()
  for _, name in ipairs(models.names()) do
    local m = models.build(name, {in_channels = 1, classes = 1, base = 4, depth = 2, batch_norm = false})
    local _, buffers = m:parameter_counts()
    check.eq(buffers, 0, name)
    check.eq(m(sg.randn{1, 1, 8, 8}).shape, {1, 1, 8, 8})
  end
end)

test("recurrent unit computes f(x + f(x + f(x))) for t = 2", function()
  sg.manual_seed(4)
  local m = models.r2unet{in_channels = 1, classes = 1, base = 2, depth = 1, batch_norm = false}
  local unit = m.enc1.rec1
  local x = sg.randn{1, 2, 6, 6}
  local function f(v) return unit.conv(v):relu() end
  check.near(unit(x), f(x + f(x + f(x))), 1e-6, 1e-6)
  local block = m.enc1
  local inp = sg.randn{1, 1, 6, 6}
  local p = block.proj(inp)
  check.near(block(inp), p + block.rec2(block.rec1(p)), 1e-6, 1e-6)
end)

test("attention gate: coefficients in (0, 1) scale the skip", function()
  sg.manual_seed(5)
  local m = models.attention_unet{in_channels = 1, classes = 1, base = 2, depth = 1, batch_norm = false}
  local gate = m.att1
  local skip, d = sg.randn{1, 2, 8, 8}, sg.randn{1, 4, 4, 4}
  local g = gate.gate_conv(d):relu()
  local th = gate.theta(skip)
  check.eq(th.shape, {1, 2, 4, 4})
  local a = gate.psi((th + gate.phi_up(gate.phi(g))):relu()):sigmoid()
  check.eq(a.shape, {1, 1, 4, 4})
  local want = gate.proj(skip * sg.F.upsample(a, {scale = 2}))
  check.near(gate(skip, d), want, 1e-6, 1e-6)
end)

test("summary works on a small model", function()
  local m = models.attention_residual_unet{in_channels = 1, classes = 1, base = 4, depth = 2, head_bn = true}
  local s = m:summary({1, 1, 32, 32}, {print = false})
  local t, n = m:parameter_counts()
  check.eq(s.total, t + n)
  check.truthy(s.text:find("att1.theta", 1, true) ~= nil)
end)

test("bad configs and inputs give clear errors", function()
  local ok = {in_channels = 1, classes = 1, base = 4, depth = 2}
  local function with(over)
    local c = {}
    for k, v in pairs(ok) do c[k] = v end
    for k, v in pairs(over) do c[k] = v end
    return c
  end
  check.errors(function() models.unet(with{classes = 0}) end, "classes must be an integer >= 1")
  check.errors(function() models.unet(with{classes = 1.5}) end, "classes must be an integer >= 1")
  check.errors(function() models.unet{classes = 1} end, "in_channels is required")
  check.errors(function() models.unet(with{activation = "tanh"}) end, "unknown activation 'tanh'")
  check.errors(function() models.unet(with{activation = "softmax"}) end, "softmax needs classes >= 2")
  check.errors(function() models.unet(with{up = "bilinear"}) end, "up must be")
  check.errors(function() models.unet(with{up_bn = true}) end, "up_bn applies to up = \"transpose\" only")
  check.errors(function() models.unet(with{dropout = 1}) end, "dropout must be")
  check.errors(function() models.unet(with{batchnorm = false}) end, "unet: unknown option 'batchnorm' (did you mean 'batch_norm'?")
  check.errors(function() models.unet(with{t = 3}) end, "unknown option 't'")
  check.errors(function() models.r2unet(with{t = 0}) end, "t must be an integer >= 1")
  check.errors(function() models.unet(5) end, "expected a config table")
  check.errors(function() models.build("vnet", ok) end, "unknown model 'vnet' (known: attention_residual_unet")
  local m = models.attention_unet(ok)
  check.errors(function() m(sg.randn{1, 1, 30, 32}) end, "divisible by 2^depth = 4, got 30x32")
  check.errors(function() m(sg.randn{1, 3, 32, 32}) end, "input has 3 channels, the model expects 1")
  check.errors(function() m(sg.randn{1, 32, 32}) end, "expected input N x 1 x H x W")
end)
