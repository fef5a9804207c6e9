-- sg.metrics: confusion counting in C and the scores, checked by hand on tiny cases
local metrics = sg.metrics or require "semseg.metrics"
local function need_core() if not sg.metrics_core then skip("semseg.core has no metrics_core") end end
local function ids(t) return sg.tensor(t, "i64") end

-- target 0 0 1 1 2 2, prediction 0 1 1 1 2 0:  rows (target) [1 1 0] [0 2 0] [1 0 1]
local T3 = {{{0, 0, 1}, {1, 2, 2}}}
local P3 = {{{0, 1, 1}, {1, 2, 0}}}

test("confusion matrix counts target rows against predicted columns", function()
  need_core()
  local cm = metrics.confusion(ids(P3), ids(T3), 3)
  check.eq(cm.dtype, "i64")
  check.eq(cm:totable(), {{1, 1, 0}, {0, 2, 0}, {1, 0, 1}})
  local per = metrics.confusion(ids{{0, 1}, {1, 1}}, ids{{0, 1}, {0, 1}}, 2, {per_image = true})
  check.eq(per.shape, {2, 2, 2})
  check.eq(per:totable(), {{{1, 0}, {0, 1}}, {{0, 1}, {0, 1}}})
end)

test("ignore_index drops pixels, out-of-range classes are errors", function()
  need_core()
  local cm = metrics.confusion(ids{0, 1, 1}, ids{0, 255, 1}, 2, {ignore_index = 255})
  check.eq(cm:totable(), {{1, 0}, {0, 1}})
  check.errors(function() metrics.confusion(ids{0, 1, 1}, ids{0, 255, 1}, 2) end, "target class 255")
  check.errors(function() metrics.confusion(ids{0, 3}, ids{0, 1}, 2) end, "predicted class 3")
  check.errors(function() metrics.confusion(ids{0, 1}, ids{0, 1, 1}, 2) end, "differ in shape")
end)

test("multi-class IoU, Dice, precision, recall, accuracy: macro and micro", function()
  need_core()
  local r = metrics.tracker{classes = 3}:update(ids(P3), ids(T3)):compute()
  check.near(r.per_class.iou, {1 / 3, 2 / 3, 1 / 2})
  check.near(r.per_class.dice, {1 / 2, 4 / 5, 2 / 3})
  check.near(r.per_class.precision, {1 / 2, 2 / 3, 1})
  check.near(r.per_class.recall, {1 / 2, 1, 1 / 2})
  check.near(r.iou, 0.5)
  check.near(r.dice, (0.5 + 0.8 + 2 / 3) / 3)
  check.near(r.precision, (0.5 + 2 / 3 + 1) / 3)
  check.near(r.recall, 2 / 3)
  check.near(r.accuracy, 4 / 6)
  check.near(r.mean_accuracy, 2 / 3)
  check.near(r.iou_micro, 4 / 8)
  check.near(r.dice_micro, 8 / 12)
  check.eq(r.n_pixels, 6)
  local nb = metrics.tracker{classes = 3, include_background = false}:update(ids(P3), ids(T3)):compute()
  check.near(nb.iou, (2 / 3 + 1 / 2) / 2)
  check.near(nb.iou_micro, 3 / 5)
end)

test("logits go through argmax; accumulation over batches equals one batch", function()
  need_core()
  -- one-hot logits of P3: N x C x H x W
  local logits = sg.zeros{1, 3, 2, 3}
  for i = 1, 2 do for j = 1, 3 do logits[{1, P3[1][i][j] + 1, i, j}] = 5 end end
  local a = metrics.tracker{classes = 3}:update(logits, ids(T3)):compute()
  check.near(a.iou, 0.5)
  local t = metrics.tracker{}
  t:update(logits[{{1, 1}, {}, {1, 1}, {}}], ids(T3)[{{1, 1}, {1, 1}, {}}])
  t:update(logits[{{1, 1}, {}, {2, 2}, {}}], ids(T3)[{{1, 1}, {2, 2}, {}}])
  local b = t:compute()
  check.eq(t.classes, 3)
  check.near(b.iou, 0.5)
  check.near(b.accuracy, 4 / 6)
  check.eq(b.n_images, 2)
  t:reset()
  check.errors(function() t:compute() end, "no data")
  check.errors(function() metrics.tracker{classes = 4}:update(logits, ids(T3)) end, "3 channels")
end)

test("binary: threshold on probabilities or logits, foreground scores", function()
  need_core()
  local p = sg.tensor{{{{0.2, 0.7}, {0.6, 0.4}}}}  -- 1 x 1 x 2 x 2
  local y = sg.tensor{{{0, 1}, {0, 1}}}             -- float 0/1 mask
  local r = metrics.tracker{binary = true, input = "probs"}:update(p, y):compute()
  check.near(r.iou, 1 / 3); check.near(r.dice, 1 / 2); check.near(r.precision, 1 / 2); check.near(r.recall, 1 / 2)
  check.near(r.accuracy, 1 / 2)
  local r2 = metrics.tracker{binary = true, input = "probs", threshold = 0.65}:update(p, y):compute()
  check.near(r2.iou, 1 / 2); check.near(r2.dice, 2 / 3); check.near(r2.precision, 1); check.near(r2.recall, 1 / 2)
  local logits = (p / (1 - p)):log()
  local r3 = metrics.tracker{binary = true, threshold = 0.65}:update(logits, y:unsqueeze(2)):compute()
  check.near(r3.iou, 1 / 2)
  local r4 = metrics.tracker{}:update(logits, y):compute() -- one channel: binary inferred, threshold 0.5
  check.near(r4.iou, 1 / 3)
end)

test("per-image mean differs from the pooled score; empty images", function()
  need_core()
  local y = ids{{{1, 1, 0, 0}}, {{1, 0, 0, 0}}}
  local pr = ids{{{1, 0, 0, 0}}, {{1, 1, 1, 1}}}
  local r = metrics.tracker{binary = true}:update(pr, y):compute()
  check.near(r.iou, 2 / 6)
  check.near(r.iou_image, (1 / 2 + 1 / 4) / 2)
  local e = metrics.tracker{binary = true}:update(ids{{{1, 0}}, {{0, 0}}}, ids{{{1, 1}}, {{0, 0}}})
  check.near(e:compute().iou_image, 1 / 2)     -- the empty image is left out
  e.opts.empty_score = 1
  check.near(e:compute().iou_image, 3 / 4)     -- or counts as 1
end)

test("regression metrics: MAE, MSE, PSNR", function()
  local p, t = sg.tensor{1, 2, 3}, sg.tensor{1, 1, 1}
  check.near(metrics.mae(p, t), 1)
  check.near(metrics.mse(p, t), 5 / 3)
  check.near(metrics.psnr(p, t), 10 * math.log(3 / 5, 10))
  check.eq(metrics.psnr(t, t), math.huge)
  local tr = metrics.tracker{regression = true, data_range = 2}
  tr:update(sg.tensor{{{0, 1}}, {{1, 1}}}, sg.tensor{{{0, 0}}, {{1, 1}}})
  local r = tr:compute()
  check.near(r.mae, 1 / 4); check.near(r.mse, 1 / 4); check.near(r.rmse, 1 / 2)
  check.near(r.psnr, 10 * math.log(4 / 0.25, 10))
  check.near(r.psnr_image, 10 * math.log(4 / 0.5, 10)) -- image 2 is exact: left out
end)

test("a single sigmoid channel counts as two classes when classes = 2", function()
  local t = sg.metrics.tracker{classes = 2}
  t:update(sg.tensor{{{{5.0, -5.0}}}}, sg.tensor({{{1, 0}}}, "i64"))
  local r = t:compute()
  check.eq(r.iou, 1)
  check.eq(r.accuracy, 1)
end)
