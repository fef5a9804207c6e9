-- Losses for segmentation, written from tensor ops (autograd differentiates
-- them). Logits are N×C×H×W (or N×C); class targets are i64 N×H×W (or N)
-- holding class ids from 0; binary targets are float tensors shaped like the
-- logits. Every loss takes {reduction = "mean"|"sum"|"none"}.
local core = require "semseg.core"
local F = require "semseg.functional"
local L = {}

local function reduce(loss, reduction, what)
  reduction = reduction or "mean"
  if reduction == "mean" then return loss:mean() end
  if reduction == "sum" then return loss:sum() end
  if reduction == "none" then return loss end
  error(what .. ": reduction must be 'mean', 'sum' or 'none', got '" .. tostring(reduction) .. "'", 3)
end

-- reduce a per-pixel loss over the pixels whose target is not ignored
local function reduce_valid(loss, valid, reduction, what)
  if not valid then return reduce(loss, reduction, what) end
  local m = valid:to(loss.dtype)
  loss = loss * m
  if (reduction or "mean") == "mean" then return loss:sum() / m:sum() end
  return reduce(loss, reduction, what)
end

local function shape_str(t) return "[" .. table.concat(t.shape, ",") .. "]" end
local function same_device(a, b, what)
  if a.device ~= b.device then
    error(string.format("%s: the logits are on %s but the target on %s (move the target with target:to(\"%s\"))",
      what, a.device, b.device, a.device), 4)
  end
end
local function same_shape(a, b, what)
  same_device(a, b, what)
  if shape_str(a) ~= shape_str(b) then
    error(string.format("%s: logits of shape %s and target of shape %s differ", what, shape_str(a), shape_str(b)), 3)
  end
end
local function float_target(t, what)
  if t.dtype ~= "f32" and t.dtype ~= "f64" then
    error(what .. ": target must be a float tensor (0/1 values), got " .. t.dtype, 3)
  end
end

-- Checks class targets against C classes and returns (safe ids, valid mask or nil).
local function class_targets(logits, target, ignore_index, what)
  if target.dtype ~= "i64" and target.dtype ~= "i32" and target.dtype ~= "u8" then
    error(what .. ": target must hold class ids (i64), got " .. target.dtype, 3)
  end
  same_device(logits, target, what)
  local C = logits.shape[2]
  local want = {logits.shape[1]}
  for d = 3, #logits.shape do want[#want + 1] = logits.shape[d] end
  if "[" .. table.concat(want, ",") .. "]" ~= shape_str(target) then
    error(string.format("%s: logits %s need a target of shape [%s], got %s", what, shape_str(logits),
      table.concat(want, ","), shape_str(target)), 3)
  end
  local valid = ignore_index and target:ne(ignore_index) or nil
  local ids = valid and core.where(valid, target, 0) or target
  if ids:numel() > 0 then
    local lo, hi = ids:min():item(), ids:max():item()
    if lo < 0 or hi >= C then
      error(string.format("%s: target contains class %d but the logits have %d classes (0..%d)", what,
        (lo < 0) and lo or hi, C, C - 1), 3)
    end
  end
  return ids:long(), valid
end

-- one-hot of class ids as float N×C×... (the layout of the logits)
local function one_hot_like(ids, logits)
  local oh = core.one_hot(ids, logits.shape[2]):to(logits.dtype)
  local perm = {1, oh:dim()}
  for d = 2, oh:dim() - 1 do perm[#perm + 1] = d end
  return oh:permute(perm)
end
L.one_hot_like = one_hot_like

-- a tensor (or a number) next to x: on x's device, so that weights given as CPU tensors or Lua tables
-- work with logits on the GPU
local function beside(w, x)
  if type(w) == "userdata" and w.device ~= x.device then return w:to(x.device) end
  return w
end
L.beside = beside

local function class_view(w, logits)
  local shape = {1, logits.shape[2]}
  for _ = 3, #logits.shape do shape[#shape + 1] = 1 end
  return beside(w, logits):to(logits.dtype):view(shape)
end

-- binary_cross_entropy_with_logits(x, t, {pos_weight=, weight=, reduction=})
function L.bce_with_logits(x, t, o)
  o = o or {}
  same_shape(x, t, "bce_with_logits"); float_target(t, "bce_with_logits")
  -- the common case (no weights, a mean or a sum, a constant target on the cpu) as one fused op
  local red = o.reduction or "mean"
  if not o.pos_weight and not o.weight and (red == "mean" or red == "sum") and x.device == "cpu"
      and t.device == "cpu" and not (t:needs_grad() and core.is_grad_enabled()) then
    return F.bce_with_logits(x, t, red)
  end
  return L.bce_with_logits_reference(x, t, o)
end

-- bce_with_logits composed of elementwise ops (any options; differentiates the target too)
function L.bce_with_logits_reference(x, t, o)
  o = o or {}
  same_shape(x, t, "bce_with_logits"); float_target(t, "bce_with_logits")
  -- log(1 + exp(-|x|)) + max(-x, 0) is log(1 + exp(-x)) without overflow
  local softplus_neg = (-x:abs()):exp():log1p() + (-x):relu()
  local loss
  if o.pos_weight then
    local pw = beside(o.pos_weight, x)
    loss = (1 - t) * x + (t * (pw - 1) + 1) * softplus_neg
  else
    loss = (1 - t) * x + softplus_neg
  end
  if o.weight then loss = loss * beside(o.weight, x) end
  return reduce(loss, o.reduction, "bce_with_logits")
end

-- cross_entropy(logits, target, {weight=, ignore_index=, label_smoothing=, reduction=})
function L.cross_entropy(logits, target, o)
  o = o or {}
  local ids, valid = class_targets(logits, target, o.ignore_index, "cross_entropy")
  local logp = F.log_softmax(logits, 2)
  local oh = one_hot_like(ids, logits)
  local wpix = o.weight and (oh * class_view(o.weight, logits)):sum(2) or nil
  local nll = -(logp * oh):sum(2)
  local eps = o.label_smoothing or 0
  local smooth = nil
  if eps > 0 then
    smooth = o.weight and -(logp * class_view(o.weight, logits)):sum(2) or -logp:sum(2)
  end
  local mask = valid and valid:to(logits.dtype) or nil
  if wpix then nll = nll * wpix end
  if mask then
    nll = nll * mask
    if smooth then smooth = smooth * mask end
  end
  local reduction = o.reduction or "mean"
  local C = logits.shape[2]
  if reduction == "mean" then
    local denom
    if wpix then denom = mask and (wpix * mask):sum() or wpix:sum()
    else denom = mask and mask:sum() or nll:numel() end
    local loss = nll:sum() / denom
    if smooth then loss = loss * (1 - eps) + smooth:sum() / denom * (eps / C) end
    return loss
  end
  local loss = smooth and (nll * (1 - eps) + smooth * (eps / C)) or nll
  return reduce(loss, reduction, "cross_entropy")
end

-- nll_loss on log-probabilities (for custom heads)
function L.nll(logp, target, o)
  o = o or {}
  local ids, valid = class_targets(logp, target, o.ignore_index, "nll")
  local loss = -(logp * one_hot_like(ids, logp)):sum(2)
  return reduce_valid(loss, valid, o.reduction, "nll")
end

-- binary focal loss (torchvision's sigmoid_focal_loss): alpha 0.25, gamma 2 by default
function L.binary_focal(x, t, o)
  o = o or {}
  same_shape(x, t, "binary_focal"); float_target(t, "binary_focal")
  local gamma, alpha = o.gamma or 2, o.alpha == nil and 0.25 or o.alpha
  local p = x:sigmoid()
  local ce = L.bce_with_logits(x, t, {reduction = "none"})
  local p_t = p * t + (1 - p) * (1 - t)
  local loss = ce * (1 - p_t):pow(gamma)
  if alpha and alpha >= 0 then loss = loss * (t * alpha + (1 - t) * (1 - alpha)) end
  return reduce(loss, o.reduction, "binary_focal")
end

-- categorical focal: -alpha_c (1 - p_c)^gamma log p_c at the target class;
-- alpha a number (all classes) or a table/tensor per class
function L.focal(logits, target, o)
  o = o or {}
  local ids, valid = class_targets(logits, target, o.ignore_index, "focal")
  local logp = F.log_softmax(logits, 2)
  local oh = one_hot_like(ids, logits)
  local logp_t = (logp * oh):sum(2)
  local loss = -(1 - logp_t:exp()):pow(o.gamma or 2) * logp_t
  if type(o.alpha) == "number" then
    loss = loss * o.alpha
  elseif o.alpha then -- one weight per class, a table or a tensor
    local a = type(o.alpha) == "table" and core.tensor(o.alpha) or o.alpha
    loss = loss * (oh * class_view(a, logits)):sum(2)
  end
  return reduce_valid(loss, valid, o.reduction, "focal")
end

-- Soft overlap losses share one core: per-class tp, fp, fn over the chosen axes.
-- probs and onehot are N×C×...; batch = true sums over the batch too (batch dice).
local function overlap_terms(probs, onehot, batch)
  local dims = batch and {1} or {}
  for d = 3, probs:dim() do dims[#dims + 1] = d end
  local tp = (probs * onehot):sum(dims)
  local fp = (probs * (1 - onehot)):sum(dims)
  local fn = ((1 - probs) * onehot):sum(dims)
  return tp, fp, fn -- shape [C] (batch) or [N, C]
end

local function probs_and_targets(logits, target, o, what)
  if logits.shape[2] == 1 or o.binary then
    -- binary: sigmoid probabilities, float target shaped like logits
    same_shape(logits, target, what); float_target(target, what)
    return logits:sigmoid(), target, nil
  end
  local ids, valid = class_targets(logits, target, o.ignore_index, what)
  local probs = F.softmax(logits, 2)
  local oh = one_hot_like(ids, logits)
  if valid then
    local m = valid:to(logits.dtype):unsqueeze(2)
    probs, oh = probs * m, oh * m
  end
  return probs, oh, true
end

-- score -> loss, averaged over classes (optionally weighted, background dropped)
local function class_mean(score, o, multiclass)
  local loss = 1 - score
  if multiclass and o.include_background == false then loss = loss:narrow(-1, 2, loss:size(-1) - 1) end
  if o.class_weights then
    local w = type(o.class_weights) == "table" and core.tensor(o.class_weights) or o.class_weights
    w = beside(w, loss):to(loss.dtype)
    if multiclass and o.include_background == false then w = w:narrow(1, 2, w:size(1) - 1) end
    return reduce((loss * w):sum(-1) / w:sum(), o.reduction, "overlap loss")
  end
  return reduce(loss:mean(-1), o.reduction, "overlap loss")
end

-- tversky(logits, target, {alpha=0.5, beta=0.5, smooth=1, batch=false, include_background=true,
-- class_weights=, reduction=}); alpha weighs false positives, beta false negatives
function L.tversky(logits, target, o)
  o = o or {}
  local probs, oh, multi = probs_and_targets(logits, target, o, "tversky")
  local tp, fp, fn = overlap_terms(probs, oh, o.batch)
  local a, b, s = o.alpha or 0.5, o.beta or 0.5, o.smooth == nil and 1 or o.smooth
  return class_mean((tp + s) / (tp + fp * a + fn * b + s), o, multi)
end

function L.dice(logits, target, o)
  o = o or {}
  local probs, oh, multi = probs_and_targets(logits, target, o, "dice")
  local tp, fp, fn = overlap_terms(probs, oh, o.batch)
  local s = o.smooth == nil and 1 or o.smooth
  return class_mean((tp * 2 + s) / (tp * 2 + fp + fn + s), o, multi)
end

function L.jaccard(logits, target, o)
  o = o or {}
  local probs, oh, multi = probs_and_targets(logits, target, o, "jaccard")
  local tp, fp, fn = overlap_terms(probs, oh, o.batch)
  local s = o.smooth == nil and 1 or o.smooth
  return class_mean((tp + s) / (tp + fp + fn + s), o, multi)
end

-- dice + cross-entropy (nnU-Net's default), each weighted
function L.dice_ce(logits, target, o)
  o = o or {}
  local dw, cw = o.dice_weight or 1, o.ce_weight or 1
  local ce
  if logits.shape[2] == 1 then ce = L.bce_with_logits(logits, target)
  else ce = L.cross_entropy(logits, target, {weight = o.weight, ignore_index = o.ignore_index}) end
  return L.dice(logits, target, o) * dw + ce * cw
end

function L.mse(x, t, o)
  o = o or {}
  same_shape(x, t, "mse")
  return reduce((x - t):square(), o.reduction, "mse")
end

function L.l1(x, t, o)
  o = o or {}
  same_shape(x, t, "l1")
  return reduce((x - t):abs(), o.reduction, "l1")
end

-- smooth_l1 (Huber with beta): 0.5 d^2 / beta where |d| < beta, |d| - beta/2 elsewhere
function L.smooth_l1(x, t, o)
  o = o or {}
  same_shape(x, t, "smooth_l1")
  local beta = o.beta or 1
  local d = (x - t):abs()
  if beta == 0 then return reduce(d, o.reduction, "smooth_l1") end
  local loss = core.where(d:lt(beta), d:square() * (0.5 / beta), d - 0.5 * beta)
  return reduce(loss, o.reduction, "smooth_l1")
end

return L
