-- Attention U-Net (Oktay et al. 2018) and its residual variant, as the published
-- Keras models (attention_block / gating_signal / res_conv_block): every skip goes
-- through an additive attention gate driven by the deeper decoder feature (see
-- common.AttentionGate); the decoder concatenates the up-sampled deeper feature with
-- the gated skip. attention_residual_unet replaces each double-conv block by a
-- residual block (conv3x3-BN-ReLU-conv3x3-BN + 1x1 conv-BN shortcut, added, ReLU).
-- Counts (3 -> 1, base 64, nearest, head BN, Keras way): 37,334,665 and 39,090,377.
local common = require "semseg.models.common"

local M = {}
M.AttentionUNet = common.define("AttentionUNet", "attention_unet", {block = common.DoubleConv, attention = true})
M.AttentionResidualUNet = common.define("AttentionResidualUNet", "attention_residual_unet",
  {block = common.ResBlock, attention = true})

function M.attention_unet(cfg) return M.AttentionUNet(cfg) end
function M.attention_residual_unet(cfg) return M.AttentionResidualUNet(cfg) end

return M
