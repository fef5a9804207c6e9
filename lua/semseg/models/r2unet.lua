-- R2U-Net (Alom et al. 2018): the U-Net skeleton with recurrent residual blocks.
-- Each block: 1x1 conv (bias) to the level's filters, then two recurrent conv
-- units (f = conv3x3-BN-ReLU with shared weights; x1 = f(x), then t times
-- x1 = f(x + x1)), added to the 1x1 output as the residual. Extra option: t = 2.
-- Up-sampling, head and activation as unet (nearest x2 or transposed conv).
local common = require "semseg.models.common"

local M = {}
M.R2UNet = common.define("R2UNet", "r2unet", {block = common.RecurrentResBlock, extra = {t = 2},
  check = function(cfg)
    if math.type(cfg.t) ~= "integer" or cfg.t < 1 then error("r2unet: t must be an integer >= 1, got " .. tostring(cfg.t), 4) end
  end})

function M.r2unet(cfg) return M.R2UNet(cfg) end

return M
