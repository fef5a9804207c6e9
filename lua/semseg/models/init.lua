-- sg.models: the U-Net family builders. Each takes a config table
-- {in_channels =, classes =, base = 64, depth = 4, batch_norm = true, dropout = 0,
--  up = "upsample" | "transpose", up_bn = false, head_bn = false,
--  activation = "sigmoid" | "softmax" | "none"} (r2unet also t = 2) and returns a
-- module mapping N x in_channels x H x W to N x classes x H x W (H, W divisible by
-- 2^depth). The module keeps model.arch (the builder's name) and model.config (the
-- full config, defaults filled in), so build(model.arch, model.config) rebuilds it.
local unet = require "semseg.models.unet"
local attention = require "semseg.models.attention"
local r2unet = require "semseg.models.r2unet"

local models = {
  unet = unet.unet,
  attention_unet = attention.attention_unet,
  attention_residual_unet = attention.attention_residual_unet,
  r2unet = r2unet.r2unet,
}

local registry = {}
for k, v in pairs(models) do registry[k] = v end

-- names() -> the builders' names, sorted
function models.names()
  local out = {}
  for k in pairs(registry) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- build(name, cfg) -> a model
function models.build(name, cfg)
  local fn = registry[name]
  if not fn then
    error(string.format("models.build: unknown model '%s' (known: %s)", tostring(name),
      table.concat(models.names(), ", ")), 2)
  end
  return fn(cfg)
end

return models
