-- Segmentation and regression metrics (sg.metrics).
--
-- Everything goes through a confusion matrix counted in C (rows = target
-- class, columns = predicted class, i64):
--
--   sg.metrics.confusion(pred_ids, target, classes, {ignore_index =, per_image =}) -> i64 C x C (N x C x C)
--   sg.metrics.scores(cm, {include_background = true, binary = false}) -> table (see below)
--
-- The tracker accumulates over batches:
--
--   local m = sg.metrics.tracker{classes = 3, ignore_index = 255}     -- multi-class logits N x C x H x W
--   local b = sg.metrics.tracker{binary = true, threshold = 0.5}       -- one sigmoid channel N x 1 x H x W
--   m:update(logits, masks)        -- logits (or probabilities, or class ids of the target's shape)
--   local r = m:compute()          -- r.iou, r.dice, ... ; m:reset()
--
-- compute() gives
--   iou, dice, precision, recall   binary: of the foreground class 1; multi-class: the macro mean over
--                                  classes (classes present in neither prediction nor target are left out)
--   iou_micro, dice_micro, precision_micro, recall_micro   from the summed TP, FP, FN of those classes
--   iou_image, dice_image          the per-image headline score, averaged over images (an image where the
--                                  score is undefined, e.g. no foreground anywhere, is left out unless
--                                  `empty_score` is given: then it counts as that value)
--   accuracy                       pixel accuracy (correct / counted pixels)
--   mean_accuracy                  mean over classes present in the target of the per-class recall
--   per_class = {iou =, dice =, precision =, recall =, support =}   lists, entry k = class k - 1
--                                  (NaN where undefined)
--   confusion                      the matrix as nested lists, n_pixels, n_images
-- Options: include_background = false drops class 0 from the multi-class means; input = "logits"
-- (default) or "probs" says what a binary output holds (thresholds apply to probabilities; with logits
-- the threshold t becomes log(t / (1 - t))).
--
-- Regression outputs: sg.metrics.mae / mse / psnr(pred, target[, data_range = 1]) -> numbers, and
-- sg.metrics.tracker{regression = true, data_range = 1} -> mae, mse, rmse, psnr, psnr_image (the mean
-- over images of their PSNR; exact images, of infinite PSNR, are left out).
local core = require "semseg.core"
local util = require "semseg.util"
local M = {}

local NaN = 0 / 0
local K = core.metrics_core -- the C half: engine/lua/lua_metrics.c
local function fail(op, fmt, ...) error("sg.metrics." .. op .. ": " .. string.format(fmt, ...), 0) end
local is_tensor = util.is_tensor
local function is_float(t) return t.dtype == "f32" or t.dtype == "f64" or t.dtype == "f16" or t.dtype == "bf16" end
local function shp(t) return "[" .. table.concat(t.shape, ",") .. "]" end
local function defined(v) return v == v end -- false for NaN

local function host(t) if t.device ~= "cpu" then return t:to("cpu") end return t end

-- confusion(pred_ids, target, classes, {ignore_index =, per_image = false}) -> i64 tensor (on the cpu; GPU
-- inputs are copied over: the counting runs in C on the host)
function M.confusion(pred, target, classes, opts)
  opts = opts or {}
  if not is_tensor(pred) or not is_tensor(target) then fail("confusion", "expected tensors of class ids") end
  if math.type(classes) ~= "integer" or classes < 1 then
    fail("confusion", "classes must be a positive integer (got %s)", tostring(classes))
  end
  return K.confusion(host(pred), host(target), classes, opts.ignore_index, opts.per_image and true or false)
end

local function ratio(a, b) if b == 0 then return NaN end return a / b end

local function mean_of(list, first)
  local s, n = 0, 0
  for k = first or 1, #list do
    if defined(list[k]) then s, n = s + list[k], n + 1 end
  end
  if n == 0 then return NaN end
  return s / n
end

-- scores(cm, opts): cm is an i64 C x C tensor or nested lists (rows = target class)
function M.scores(cm, opts)
  opts = opts or {}
  local m = is_tensor(cm) and cm:totable() or cm
  local C = #m
  if C < 1 then fail("scores", "empty confusion matrix") end
  local tp, fp, fn, support = {}, {}, {}, {}
  local total, correct = 0, 0
  for c = 1, C do tp[c], fp[c], fn[c], support[c] = m[c][c], 0, 0, 0 end
  for t = 1, C do
    for p = 1, C do
      local v = m[t][p]
      total = total + v
      support[t] = support[t] + v
      if t ~= p then fn[t] = fn[t] + v; fp[p] = fp[p] + v end
    end
    correct = correct + m[t][t]
  end
  local per = {iou = {}, dice = {}, precision = {}, recall = {}, support = support}
  for c = 1, C do
    per.iou[c] = ratio(tp[c], tp[c] + fp[c] + fn[c])
    per.dice[c] = ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c])
    per.precision[c] = ratio(tp[c], tp[c] + fp[c])
    per.recall[c] = ratio(tp[c], tp[c] + fn[c])
  end
  local r = {per_class = per, confusion = m, n_pixels = total, accuracy = ratio(correct, total),
             mean_accuracy = mean_of(per.recall)}
  -- the classes the headline and micro scores are over
  local first = 1
  if opts.binary then first = 2
  elseif opts.include_background == false and C > 1 then first = 2 end
  local TP, FP, FN = 0, 0, 0
  for c = first, C do TP, FP, FN = TP + tp[c], FP + fp[c], FN + fn[c] end
  r.iou_micro = ratio(TP, TP + FP + FN)
  r.dice_micro = ratio(2 * TP, 2 * TP + FP + FN)
  r.precision_micro = ratio(TP, TP + FP)
  r.recall_micro = ratio(TP, TP + FN)
  if opts.binary then
    r.iou, r.dice, r.precision, r.recall = per.iou[2], per.dice[2], per.precision[2], per.recall[2]
  else
    r.iou, r.dice = mean_of(per.iou, first), mean_of(per.dice, first)
    r.precision, r.recall = mean_of(per.precision, first), mean_of(per.recall, first)
  end
  return r
end

---------------------------------------------------------------- regression
local function check_pair(op, pred, target)
  if not is_tensor(pred) or not is_tensor(target) then fail(op, "expected two tensors") end
  if pred:numel() ~= target:numel() then
    fail(op, "prediction has %d elements but the target %d", pred:numel(), target:numel())
  end
  local t = target:detach()
  if t.device ~= pred.device then t = t:to(pred.device) end -- compared where the prediction is
  return pred:detach():to("f64"):reshape{-1}, t:to("f64"):reshape{-1}
end

function M.mae(pred, target)
  local p, t = check_pair("mae", pred, target)
  return (p - t):abs():mean():item()
end

function M.mse(pred, target)
  local p, t = check_pair("mse", pred, target)
  return ((p - t) ^ 2):mean():item()
end

local function psnr_of(mse, range)
  if mse == 0 then return math.huge end
  return 10 * math.log(range * range / mse, 10)
end

-- psnr(pred, target, data_range = 1) in dB (inf for identical inputs)
function M.psnr(pred, target, data_range)
  return psnr_of(M.mse(pred, target), data_range or 1)
end

---------------------------------------------------------------- the tracker
local Tracker = {}
Tracker.__index = Tracker
M.Tracker = Tracker

local TRACKER_KEYS = {classes = true, ignore_index = true, binary = true, threshold = true, input = true,
  include_background = true, empty_score = true, regression = true, data_range = true, per_image = true}

function M.tracker(opts)
  opts = util.check_options(opts or {}, TRACKER_KEYS, "sg.metrics.tracker")
  local self = setmetatable({opts = opts, classes = opts.classes, binary = opts.binary,
    threshold = opts.threshold or 0.5, input = opts.input or "logits", regression = opts.regression and true or false,
    data_range = opts.data_range or 1, per_image = opts.per_image ~= false}, Tracker)
  if self.input ~= "logits" and self.input ~= "probs" then
    fail("tracker", "input must be \"logits\" or \"probs\" (got %s)", tostring(self.input))
  end
  if not (self.threshold > 0 and self.threshold < 1) then fail("tracker", "threshold must be in (0, 1)") end
  if self.binary and self.classes and self.classes ~= 2 and self.classes ~= 1 then
    fail("tracker", "binary = true means 2 classes (got classes = %s)", tostring(self.classes))
  end
  if self.binary then self.classes = 2 end
  self:reset()
  return self
end

function Tracker:reset()
  self.cm = nil
  self.images = {}        -- per-image headline {iou, dice}
  self.n_images = 0
  self.sum_abs, self.sum_sq, self.count, self.psnrs = 0, 0, 0, {}
  return self
end

-- output -> predicted class ids N x ..., and the target N x ... (class ids)
function Tracker:_predict(out, target)
  out, target = out:detach(), target:detach()
  if not is_float(out) then -- class ids, or a 0/1 mask
    if out:numel() ~= target:numel() then
      fail("update", "class ids %s do not fit target %s", shp(out), shp(target))
    end
    if self.classes == nil then fail("update", "class-id predictions need classes = (or binary = true)") end
    if target.ndim < 2 then target = target:reshape{1, -1} end
    return out:reshape(target.shape), target
  end
  if target.ndim == out.ndim - 1 and out.ndim <= 3 and target.ndim == 2 then -- one image: C x H x W, H x W
    out, target = out:unsqueeze(1), target:unsqueeze(1)
  end
  if target.ndim == out.ndim and target.ndim >= 3 and target.shape[2] == 1 then target = target:squeeze(2) end
  if out.ndim == target.ndim then -- one channel without its dim: binary
    if self.binary == false then fail("update", "multi-class output needs a channel dim (N x C x H x W)") end
    self.binary, self.classes = true, 2
  elseif out.ndim == target.ndim + 1 then
    local C = out.shape[2]
    if self.classes == nil then
      if C == 1 then self.binary, self.classes = true, 2 else self.binary, self.classes = false, C end
    elseif C == 1 and self.classes == 2 and self.binary == nil then
      self.binary = true -- one sigmoid channel for two classes (background / foreground)
    end
    if self.binary then
      if C ~= 1 then fail("update", "binary output must have one channel (got %d)", C) end
      out = out:squeeze(2)
    elseif C ~= self.classes then
      fail("update", "output has %d channels but the tracker counts %d classes", C, self.classes)
    end
  else
    fail("update", "output %s does not fit target %s", shp(out), shp(target))
  end
  if self.binary then
    local th = self.threshold
    if self.input == "logits" then th = math.log(th / (1 - th)) end
    return out:gt(th), target -- bool: one byte per pixel to the host
  end
  local ids = out:argmax(2)
  -- on the GPU the ids cross to the host for counting: as bytes when they fit (8x less than i64)
  if ids.device ~= "cpu" and self.classes <= 256 then ids = ids:to("u8") end
  return ids, target
end

-- update(output, target): output = logits / probabilities N x C x H x W (binary: N x 1 x H x W or N x H x W;
-- one image: C x H x W) or class ids / a 0/1 mask of the target's size; target = class ids N x H x W
-- (N x 1 x H x W and, for binary, float 0/1 masks too)
function Tracker:update(out, target)
  if not is_tensor(out) or not is_tensor(target) then fail("update", "expected (output, target) tensors") end
  if self.regression then return self:_update_regression(out, target) end
  local pred, tgt = self:_predict(out, target)
  local per = M.confusion(pred, tgt, self.classes, {ignore_index = self.opts.ignore_index, per_image = true})
  local batch = per:sum(1)
  self.cm = self.cm and (self.cm + batch) or batch
  if self.per_image then
    local opts = {binary = self.binary, include_background = self.opts.include_background}
    for _, m in ipairs(per:totable()) do
      local s = M.scores(m, opts)
      self.images[#self.images + 1] = {s.iou, s.dice}
    end
  end
  self.n_images = self.n_images + tgt.shape[1]
  return self
end

function Tracker:_update_regression(pred, target)
  local p, t = check_pair("update", pred, target)
  local d = p - t
  self.sum_abs = self.sum_abs + d:abs():sum():item()
  self.sum_sq = self.sum_sq + (d * d):sum():item()
  self.count = self.count + p:numel()
  local n = pred.ndim >= 3 and pred.shape[1] or 1
  local per = (d * d):reshape{n, -1}:mean(2):totable()
  for i = 1, n do -- an exact image (infinite PSNR) is left out of the mean
    if per[i] > 0 then self.psnrs[#self.psnrs + 1] = psnr_of(per[i], self.data_range) end
  end
  self.n_images = self.n_images + n
  return self
end

function Tracker:compute()
  if self.regression then
    if self.count == 0 then fail("compute", "no data (call update first)") end
    local mse = self.sum_sq / self.count
    return {mae = self.sum_abs / self.count, mse = mse, rmse = math.sqrt(mse), psnr = psnr_of(mse, self.data_range),
            psnr_image = mean_of(self.psnrs), n_images = self.n_images}
  end
  if not self.cm then fail("compute", "no data (call update first)") end
  local r = M.scores(self.cm, {binary = self.binary, include_background = self.opts.include_background})
  local ious, dices = {}, {}
  local empty = self.opts.empty_score
  for i, s in ipairs(self.images) do
    ious[i], dices[i] = s[1], s[2]
    if empty and not defined(s[1]) then ious[i] = empty end
    if empty and not defined(s[2]) then dices[i] = empty end
  end
  r.iou_image, r.dice_image = mean_of(ious), mean_of(dices)
  r.n_images = self.n_images
  return r
end

-- evaluate(output, target, tracker options) -> compute() of one update
function M.evaluate(out, target, opts) return M.tracker(opts):update(out, target):compute() end

return M
