-- U-Net (Ronneberger et al. 2015) as the published Keras model: per level two
-- [3x3 conv (same padding, bias) -> BN -> ReLU], 2x2 max-pool, filters base*2^level;
-- decoder: nearest x2 up-sampling (or a 2x2 stride-2 transposed conv, optionally
-- followed by BN), concatenation with the skip, two conv-BN-ReLU; 1x1 head.
-- Counts: 3 -> 1, base 64, nearest, head BN: 31,402,501 (Keras, trainable 31,390,723);
-- 1 -> 1, transposed conv + BN, no head BN: 31,044,289 trainable (PyTorch).
local common = require "semseg.models.common"

local M = {}
M.UNet = common.define("UNet", "unet", {block = common.DoubleConv})

-- unet{in_channels =, classes =, base = 64, depth = 4, batch_norm = true, dropout = 0,
--      up = "upsample" | "transpose", up_bn = false, head_bn = false, activation = "sigmoid" | "softmax" | "none"}
function M.unet(cfg) return M.UNet(cfg) end

return M
