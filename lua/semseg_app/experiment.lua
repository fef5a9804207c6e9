-- sg.experiment: train several models under one recipe and compare them.
--
--   sg.experiment.compare{
--     name = "compare_unets", out = "runs/compare_unets",
--     models = {unet = {arch = "unet", cfg = {in_channels = 1, classes = 2, base = 16, depth = 4}},
--               mine = function() return my_model end},      -- or a list {{name =, arch =, cfg =}, ...}
--     order = {"unet", "mine"},                               -- optional; map keys sorted otherwise
--     data = dataset, split = {0.9, 0.1} | {0.8, 0.1, 0.1}, test = dataset (optional),
--     patch = 128, crops = 64 (random crops per epoch), sampling = "crops" | "tiles", val_tile = 128,
--     recipe = sg.data.recipe{...}, loss = function(logits, target) ... end,
--     optimizer = function(params) return sg.optim.adam(params, {lr = 1e-3}) end,
--     scheduler = function(opt) ... end, callbacks = function(model_name, model, opt) return {...} end,
--     epochs = 10, batch = 8, seed = 1, workers = 1, metrics = {classes = 2}, class_names = {...},
--     tile = {size = 256, overlap = 0.25}, panels = 3, config = {...}, -- extra config.json content
--     device = "cpu" | "cuda" | "auto", amp = "bf16" | "fp16"          -- optional, see below
--   } -> results (list of per-model rows), table text
--
-- device: where the models train and predict ("cpu" when not given; "auto" is "cuda" when a GPU is
-- usable, else "cpu"); the loaders then hand out pinned batches so the copies to the GPU are
-- asynchronous. amp: mixed precision for training and test prediction (sg.train.fit's amp option).
--
-- Every model sees the same split, the same crops and the same augmentation (one seed).
-- Written under out: config.json, <model>/history.csv|json, <model>/checkpoint.safetensors,
-- metrics.csv|json, loss.png, val_iou.png, val_dice.png, panels.png, report.html.
-- Stand-ins for the training, model and prediction modules can be given as fit =, build =, predict =.
local core = require "semseg.core"
local util = require "semseg.util"
local json = require "semseg.json"
local amp_mod = require "semseg.amp"
local checkpoint = require "semseg.checkpoint"
local datasets = require "semseg.datasets"
local device_mod = require "semseg.device"
local models_mod = require "semseg.models"
local plot = require "semseg_app.plot"
local predict_mod = require "semseg_app.predict"
local report = require "semseg_app.report"
local train_mod = require "semseg_app.train"

local M = {}

local function fail(fmt, ...) error("sg.experiment.compare: " .. string.format(fmt, ...), 0) end

---------------------------------------------------------------- small helpers
local function mkdir(d)
  local ok, err = pcall(core.fs.mkdir_p, d)
  if not ok then fail("cannot create the folder %s: %s", d, tostring(err):gsub("^.*: ", "")) end
end

-- JSON-safe copy: functions and userdata become descriptive strings, NaN/inf become null
local function plain(v, seen)
  local tv = type(v)
  if tv == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return json.null end
    return v
  elseif tv == "string" or tv == "boolean" or v == nil then
    return v
  elseif tv == "function" then
    return "<function>"
  elseif tv == "userdata" then
    if v.shape then return "<tensor [" .. table.concat(v.shape, ",") .. "] " .. tostring(v.dtype) .. ">" end
    return "<" .. tostring(v) .. ">"
  elseif tv == "table" then
    if v == json.null then return v end
    seen = seen or {}
    if seen[v] then return "<cycle>" end
    seen[v] = true
    if type(v.serialize) == "function" then
      local ok, s = pcall(v.serialize, v)
      seen[v] = nil
      if ok then return s end
    end
    local out = {}
    for k, x in pairs(v) do
      if type(k) == "string" or math.type(k) == "integer" then out[k] = plain(x, seen) end
    end
    seen[v] = nil
    return out
  end
  return tostring(v)
end
M.plain = plain

local function fmt_num(v, digits)
  if v == nil then return "-" end
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if math.type(v) == "integer" then return tostring(v) end
  return string.format("%." .. (digits or 4) .. "f", v)
end

local function mean_std(xs)
  local n = #xs
  if n == 0 then return nil, nil end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  local m = s / n
  local v = 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, n > 1 and math.sqrt(v / (n - 1)) or 0
end
M.mean_std = mean_std

-- a text table with aligned columns
function M.format_table(header, rows)
  local w = {}
  local cells = {header}
  for _, r in ipairs(rows) do cells[#cells + 1] = r end
  for _, r in ipairs(cells) do
    for c = 1, #header do w[c] = math.max(w[c] or 0, #tostring(r[c] or "")) end
  end
  local lines = {}
  for i, r in ipairs(cells) do
    local parts = {}
    for c = 1, #header do
      local s = tostring(r[c] or "")
      parts[c] = c == 1 and (s .. string.rep(" ", w[c] - #s)) or (string.rep(" ", w[c] - #s) .. s)
    end
    lines[#lines + 1] = table.concat(parts, "  ")
    if i == 1 then
      local dash = {}
      for c = 1, #header do dash[c] = string.rep("-", w[c]) end
      lines[#lines + 1] = table.concat(dash, "  ")
    end
  end
  return table.concat(lines, "\n")
end

-- history (list of tables) -> CSV text (the format of sg.train's csv_logger)
M.history_csv = train_mod.history_csv

---------------------------------------------------------------- metrics on predictions
-- class ids (H x W, i64) from probabilities C x H x W (C = 1: sigmoid foreground > 0.5)
function M.classes_of(probs)
  if probs.ndim == 4 then probs = probs[1] end
  if probs.ndim == 2 then return probs:gt(0.5):to("i64") end
  if probs.shape[1] == 1 then return probs[1]:gt(0.5):to("i64") end
  return probs:argmax(1):to("i64")
end

-- per-class intersection, predicted and true pixel counts
function M.confusion(pred, truth, nclasses)
  local t = truth
  if t.ndim == 3 then t = t[1] end
  local inter, np, nt = {}, {}, {}
  for c = 0, nclasses - 1 do
    local p, q = pred:eq(c), t:eq(c)
    inter[c + 1] = p:logical_and(q):count_nonzero():item()
    np[c + 1] = p:count_nonzero():item()
    nt[c + 1] = q:count_nonzero():item()
  end
  return {inter = inter, pred = np, truth = nt, pixels = pred:numel()}
end

-- mean IoU, mean Dice (over classes present in prediction or truth) and accuracy of one confusion
function M.scores(cf)
  local iou, dice, n, correct = 0, 0, 0, 0
  local per_iou = {}
  for c = 1, #cf.inter do
    local i, p, t = cf.inter[c], cf.pred[c], cf.truth[c]
    correct = correct + i
    local u = p + t - i
    if u > 0 then
      per_iou[c] = i / u
      iou, dice, n = iou + i / u, dice + 2 * i / (p + t), n + 1
    end
  end
  if n == 0 then return 1, 1, 1, per_iou end
  return iou / n, dice / n, correct / cf.pixels, per_iou
end

---------------------------------------------------------------- the comparison
local KEYS = {name = true, out = true, models = true, order = true, data = true, split = true, test = true,
  patch = true, crops = true, val_tile = true, recipe = true, loss = true, optimizer = true, scheduler = true,
  callbacks = true, epochs = true, batch = true, seed = true, workers = true, metrics = true, class_names = true,
  tile = true, panels = true, config = true, fit = true, build = true, predict = true, quiet = true,
  foreground = true, fit_options = true, sampling = true, device = true, amp = true}

local function model_list(o)
  local list = {}
  if type(o.models) ~= "table" then fail("models must be {name = builder_fn or {arch =, cfg =}, ...}") end
  if #o.models > 0 then
    for i, m in ipairs(o.models) do
      if type(m) ~= "table" or type(m.name) ~= "string" then fail("models[%d] needs a name", i) end
      list[#list + 1] = {name = m.name, spec = m.build or m}
    end
  else
    local names = {}
    if o.order then
      names = o.order
      for _, n in ipairs(names) do if o.models[n] == nil then fail("order names '%s', which is not in models", n) end end
    else
      for n in pairs(o.models) do names[#names + 1] = n end
      table.sort(names)
    end
    for _, n in ipairs(names) do list[#list + 1] = {name = n, spec = o.models[n]} end
  end
  if #list == 0 then fail("models is empty") end
  for _, m in ipairs(list) do
    if m.name:find("[/\\]") or m.name == "" then fail("model name '%s' cannot name a folder", m.name) end
    local s = m.spec
    if type(s) ~= "function" and not (type(s) == "table" and type(s.arch) == "string") then
      fail("model '%s' must be a builder function or {arch = \"name\", cfg = {...}}", m.name)
    end
  end
  return list
end

-- validates the options and returns the resolved model list (no training, no files)
function M.validate(o)
  if type(o) ~= "table" then fail("expected a table of options") end
  util.check_options(o, KEYS, "sg.experiment.compare")
  local list = model_list(o)
  if o.data == nil then fail("data must be a data set with labels (sg.data.folder{...})") end
  if type(o.loss) ~= "function" then fail("loss must be a function(logits, target)") end
  if type(o.optimizer) ~= "function" then fail("optimizer must be a function(params) returning an optimizer") end
  if o.scheduler ~= nil and type(o.scheduler) ~= "function" then fail("scheduler must be a function(optimizer)") end
  if math.type(o.epochs) ~= "integer" or o.epochs < 1 then fail("epochs must be a positive integer") end
  if o.batch ~= nil and (math.type(o.batch) ~= "integer" or o.batch < 1) then fail("batch must be a positive integer") end
  if type(o.out) ~= "string" then fail("out must be the run folder") end
  local split = o.split or {0.9, 0.1}
  if type(split) ~= "table" or (#split ~= 2 and #split ~= 3) then fail("split must be {train, val} or {train, val, test}") end
  local classes = o.metrics and o.metrics.classes
  if math.type(classes) ~= "integer" or classes < 1 then fail("metrics = {classes = n} is required") end
  if o.device ~= nil and o.device ~= "cpu" and o.device ~= "cuda" and o.device ~= "auto" then
    fail("device must be \"cpu\", \"cuda\" or \"auto\" (got %s)", tostring(o.device))
  end
  local ok, err = pcall(amp_mod.normalize_dtype, o.amp, "amp")
  if not ok then fail("%s", err) end
  return list
end

local function build_model(m, o)
  local s = m.spec
  if type(s) == "function" then return s() end
  local builder
  if o.build then
    builder = type(o.build) == "table" and o.build[s.arch] or nil
    if type(o.build) == "function" then return o.build(s.arch, s.cfg or {}) end
  else
    builder = models_mod[s.arch]
  end
  if type(builder) ~= "function" then fail("model '%s': unknown arch '%s'", m.name, s.arch) end
  return builder(s.cfg or {})
end

local function num_params(model)
  if type(model.num_parameters) == "function" then return model:num_parameters() end
  local n = 0
  for _, p in ipairs(model:parameters()) do n = n + p:numel() end
  return n
end

local function last_with(history, keys)
  for i = #history, 1, -1 do
    for _, k in ipairs(keys) do
      local v = history[i][k]
      if type(v) == "number" then return v end
    end
  end
end

local function best_of(history, key)
  local b
  for _, h in ipairs(history) do
    local v = h[key]
    if type(v) == "number" and v == v and (b == nil or v > b) then b = v end
  end
  return b
end

local function centre_crop(t, size)
  -- t: C x H x W or H x W
  local hd, wd = t.ndim - 1, t.ndim
  local H, W = t.shape[hd], t.shape[wd]
  if H > size then t = t:narrow(hd, (H - size) // 2 + 1, size) end
  if W > size then t = t:narrow(wd, (W - size) // 2 + 1, size) end
  return t:contiguous()
end

-- compare(o) is the five steps below in turn; each can be called on its own (a driver that wants
-- another test protocol or more figures calls them itself):
--   local run = experiment.data(o)                  -- validate, split, plan crops and tiles, config.json
--   for i = 1, #run.models do
--     local model = experiment.train(run, i)        -- train model i, write its history and checkpoint
--     experiment.test(run, i, model)                -- score it on the test images -> run.results[i]
--   end
--   experiment.figures(run)                         -- loss / IoU / Dice curves and the prediction panels
--   local results, table_text = experiment.report(run)   -- metrics.csv|json, report.html, the text table
function M.data(o)
  local models = M.validate(o)
  local run = {o = o, models = models, say = o.quiet and function() end or function(...) print(string.format(...)) end}
  run.fit = o.fit or train_mod.fit
  local tile = o.tile or {size = o.val_tile or o.patch or 256, overlap = 0.25}
  local device = device_mod.resolve(o.device or "cpu", "sg.experiment.compare")
  local amp = amp_mod.normalize_dtype(o.amp, "sg.experiment.compare")
  run.tile, run.device, run.amp = tile, device, amp
  run.predict = o.predict or function(model, image)
    -- sliding windows of tile.size, overlapping by the fraction tile.overlap, Gaussian-blended
    return predict_mod.tiled(model, image, {tile = tile.size, overlap = tile.overlap, amp = amp})
  end
  local seed = o.seed or 0
  run.seed, run.nclasses, run.out = seed, o.metrics.classes, o.out
  mkdir(run.out)

  -- one split, one crop plan, one augmentation stream for every model
  local split = o.split or {0.9, 0.1}
  local parts = {o.data:split{split[1], split[2], split[3], seed = seed}}
  local train_ds, val_ds = parts[1], parts[2]
  local test_ds = o.test or parts[3] or val_ds
  run.train_ds, run.val_ds, run.test_ds = train_ds, val_ds, test_ds
  run.test_kind = o.test and "test set" or (parts[3] and "test split" or "validation split")
  local patch = o.patch or 256
  run.patch = patch
  if o.sampling == "tiles" then
    run.train_view = train_ds:tiles{size = patch}
  elseif o.sampling == nil or o.sampling == "crops" then
    run.train_view = train_ds:random_crops{size = patch, n = o.crops or math.max(#train_ds * 4, o.batch or 1),
      foreground = o.foreground, seed = seed}
  else
    fail("sampling must be \"crops\" or \"tiles\" (got %s)", tostring(o.sampling))
  end
  run.val_view = val_ds:tiles{size = o.val_tile or patch}

  -- config.json: everything that can be written down, plus the caller's re-run recipe
  local config = {
    name = o.name, out = run.out, seed = seed, epochs = o.epochs, batch = o.batch or 1, split = split, patch = patch,
    crops = #run.train_view, val_tile = o.val_tile or patch, tile = tile, metrics = o.metrics,
    class_names = o.class_names, workers = o.workers or 0, recipe = o.recipe and plain(o.recipe) or nil,
    device = device, amp = amp, models = {},
    sizes = {train = #train_ds, val = #val_ds, test = #test_ds, test_kind = run.test_kind},
    split_names = {train = {}, val = {}, test = {}},
    run = o.config,
  }
  for i = 1, #train_ds do config.split_names.train[i] = train_ds:name(i) end
  for i = 1, #val_ds do config.split_names.val[i] = val_ds:name(i) end
  for i = 1, #test_ds do config.split_names.test[i] = test_ds:name(i) end
  for i, m in ipairs(models) do
    config.models[i] = type(m.spec) == "table" and {name = m.name, arch = m.spec.arch, cfg = plain(m.spec.cfg or {})}
      or {name = m.name, builder = "<function>"}
  end
  core.write_file_atomic(run.out .. "/config.json", json.encode(config) .. "\n")
  run.config = config
  run.results, run.histories, run.panel_preds = {}, {}, {}
  run.npanel = math.min(o.panels or 3, #test_ds)
  return run
end

-- the training and validation loaders of one model (fresh per model: the same batches for each)
local function loaders(run)
  local o, pin = run.o, run.device ~= "cpu"
  local tl = datasets.loader(run.train_view, {batch = o.batch or 1, shuffle = true, seed = run.seed,
    augment = o.recipe, workers = o.workers or 0, pin_memory = pin})
  local vl = datasets.loader(run.val_view, {batch = o.batch or 1, shuffle = false, seed = run.seed, workers = 0,
    pin_memory = pin})
  return tl, vl
end

-- builds model mi from the seed, trains it, writes <out>/<name>/history.csv|json and checkpoint.safetensors;
-- returns the trained model (run.histories[name] holds its history, run.train_seconds[name] the time)
function M.train(run, mi)
  local o, m = run.o, run.models[mi]
  run.say("== %s (%d/%d)", m.name, mi, #run.models)
  core.manual_seed(run.seed)
  local model = build_model(m, o)
  if run.device ~= "cpu" and type(model.to) == "function" then model:to(run.device) end
  local opt = o.optimizer(model:parameters())
  local sched = o.scheduler and o.scheduler(opt) or nil
  local tl, vl = loaders(run)
  local args = {model = model, loss = o.loss, optimizer = opt, scheduler = sched, train = tl, val = vl,
    epochs = o.epochs, metrics = o.metrics, amp = run.amp}
  if o.callbacks then args.callbacks = o.callbacks(m.name, model, opt) end
  for k, v in pairs(o.fit_options or {}) do args[k] = v end
  local t0 = core.clock()
  local history = run.fit(args) or {}
  run.train_seconds = run.train_seconds or {}
  run.train_seconds[m.name] = core.clock() - t0
  tl:close(); vl:close()
  run.histories[m.name] = history
  local dir = run.out .. "/" .. m.name
  mkdir(dir)
  core.write_file_atomic(dir .. "/history.csv", M.history_csv(history))
  core.write_file_atomic(dir .. "/history.json", json.encode(plain(history)) .. "\n")
  checkpoint.save(dir .. "/checkpoint.safetensors", {model = model, optimizer = opt, scheduler = sched,
    epoch = #history, history = plain(history), config = run.config.models[mi]})
  return model
end

-- scores model mi per image on the test images (full-image predictions) -> run.results[mi]; keeps the
-- first run.npanel predictions for the panels
function M.test(run, mi, model)
  local m, nclasses, test_ds = run.models[mi], run.nclasses, run.test_ds
  local history = run.histories[m.name] or {}
  if type(model.eval) == "function" then model:eval() end
  local ious, dices, accs = {}, {}, {}
  local total = {inter = {}, pred = {}, truth = {}, pixels = 0}
  for c = 1, nclasses do total.inter[c], total.pred[c], total.truth[c] = 0, 0, 0 end
  run.panel_preds[m.name] = {}
  local tt0 = core.clock()
  for i = 1, #test_ds do
    local image, truth = test_ds:get(i)
    local probs = core.no_grad(function() return run.predict(model, image) end)
    local pred = M.classes_of(probs)
    local cf = M.confusion(pred, truth, nclasses)
    local iou, dice, acc = M.scores(cf)
    ious[i], dices[i], accs[i] = iou, dice, acc
    for c = 1, nclasses do
      total.inter[c] = total.inter[c] + cf.inter[c]
      total.pred[c] = total.pred[c] + cf.pred[c]
      total.truth[c] = total.truth[c] + cf.truth[c]
    end
    total.pixels = total.pixels + cf.pixels
    if i <= run.npanel then run.panel_preds[m.name][i] = pred end
  end
  local test_time = core.clock() - tt0
  local iou_m, iou_s = mean_std(ious)
  local dice_m, dice_s = mean_std(dices)
  local acc_m = mean_std(accs)
  local _, _, _, per_class = M.scores(total)
  local pooled, npc = 0, 0
  for c = 1, nclasses do if per_class[c] then pooled, npc = pooled + per_class[c], npc + 1 end end
  local nep = math.max(#history, 1)
  local r = {
    model = m.name, params = num_params(model), epochs = #history,
    time_per_epoch = (run.train_seconds and run.train_seconds[m.name] or 0) / nep,
    train_loss = last_with(history, {"loss", "train_loss"}),
    val_loss = last_with(history, {"val_loss"}),
    val_iou = last_with(history, {"val_iou", "val_miou"}),
    best_val_iou = best_of(history, "val_iou"),
    val_dice = last_with(history, {"val_dice"}),
    val_acc = last_with(history, {"val_acc", "val_accuracy", "val_pixel_accuracy"}),
    test_iou = iou_m, test_iou_std = iou_s, test_dice = dice_m, test_dice_std = dice_s, test_acc = acc_m,
    test_class_iou = per_class, test_miou_pooled = npc > 0 and pooled / npc or nil, test_images = #test_ds,
    test_seconds = test_time,
  }
  run.results[mi] = r
  run.say("   %s: %d params, %.1f s/epoch, test IoU %s +- %s, Dice %s +- %s", m.name, r.params, r.time_per_epoch,
    fmt_num(iou_m), fmt_num(iou_s), fmt_num(dice_m), fmt_num(dice_s))
  if type(model.train) == "function" then model:train() end
  return r
end

-- the training curves (loss.png, val_iou.png, val_dice.png) and the prediction panels (panels.png) of the
-- models trained and tested so far; sets run.images and run.panel_file for the report
function M.figures(run)
  local out, models, nclasses, test_ds = run.out, run.models, run.nclasses, run.test_ds
  local function curve(file, title, ylabel, keys)
    local series = {}
    for _, m in ipairs(models) do
      local h = run.histories[m.name] or {}
      for _, k in ipairs(keys) do
        local x, y, any = {}, {}, false
        for i, e in ipairs(h) do
          x[i] = type(e.epoch) == "number" and e.epoch or i
          local v = e[k[1]]
          y[i] = type(v) == "number" and v or 0 / 0
          if type(v) == "number" then any = true end
        end
        if any then series[#series + 1] = {name = m.name .. (k[2] and (" " .. k[2]) or ""), y = y, x = x} end
      end
    end
    if #series == 0 then return nil end
    plot.lines{path = out .. "/" .. file, title = title, xlabel = "epoch", ylabel = ylabel, series = series}
    return file
  end
  local images = {}
  local f = curve("loss.png", "loss", "loss", {{"loss", "train"}, {"val_loss", "val"}})
  if f then images[#images + 1] = {src = f, caption = "training (train) and validation (val) loss per epoch"} end
  f = curve("val_iou.png", "validation IoU", "IoU", {{"val_iou"}})
  if f then images[#images + 1] = {src = f, caption = "validation mean IoU per epoch"} end
  f = curve("val_dice.png", "validation Dice", "Dice", {{"val_dice"}})
  if f then images[#images + 1] = {src = f, caption = "validation mean Dice per epoch"} end
  run.images = images

  -- prediction panels: image | truth | each model
  run.panel_file = nil
  if run.npanel > 0 then
    local psize = 256
    local rows_p, titles = {}, {"image", "truth"}
    for _, m in ipairs(models) do titles[#titles + 1] = m.name end
    for i = 1, run.npanel do
      local image, truth = test_ds:get(i)
      local img1 = image[1]
      local lo, hi = img1:min():item(), img1:max():item()
      local shown = (img1 - lo) / math.max(hi - lo, 1e-12)
      local row = {centre_crop(shown, psize), plot.colorize(centre_crop(truth, psize), nclasses)}
      for _, m in ipairs(models) do
        row[#row + 1] = plot.colorize(centre_crop(run.panel_preds[m.name][i], psize), nclasses)
      end
      rows_p[i] = row
    end
    local names = {}
    for i = 1, run.npanel do names[i] = (test_ds:name(i):gsub("^.*/", ""):gsub("%.[^.]*$", "")) end
    run.panel_file = "panels.png"
    plot.grid{path = out .. "/" .. run.panel_file, rows = rows_p, titles = titles, row_titles = names}
  end
  return images, run.panel_file
end

-- metrics.csv and metrics.json, report.html (with the figures when M.figures ran) and the text table
-- -> results, table text
function M.report(run)
  local o, out, results, nclasses = run.o, run.out, run.results, run.nclasses
  local header = {"model", "params", "s/epoch", "epochs", "train loss", "val loss", "val IoU", "val Dice", "val acc",
    "test IoU", "test Dice"}
  local class_names = o.class_names
  if class_names then
    for c = 1, nclasses do header[#header + 1] = "IoU " .. (class_names[c] or tostring(c - 1)) end
    header[#header + 1] = "mean IoU"
  end
  local rows, csv = {}, {}
  for _, r in ipairs(results) do
    local row = {r.model, tostring(r.params), fmt_num(r.time_per_epoch, 1), tostring(r.epochs), fmt_num(r.train_loss),
      fmt_num(r.val_loss), fmt_num(r.val_iou), fmt_num(r.val_dice), fmt_num(r.val_acc),
      r.test_iou and (fmt_num(r.test_iou) .. " ± " .. fmt_num(r.test_iou_std)) or "-",
      r.test_dice and (fmt_num(r.test_dice) .. " ± " .. fmt_num(r.test_dice_std)) or "-"}
    if class_names then
      for c = 1, nclasses do row[#row + 1] = fmt_num(r.test_class_iou[c]) end
      row[#row + 1] = fmt_num(r.test_miou_pooled)
    end
    rows[#rows + 1] = row
  end
  local csv_keys = {"model", "params", "epochs", "time_per_epoch", "train_loss", "val_loss", "val_iou", "best_val_iou",
    "val_dice", "val_acc", "test_iou", "test_iou_std", "test_dice", "test_dice_std", "test_acc", "test_miou_pooled"}
  local ck = {}
  for i, k in ipairs(csv_keys) do ck[i] = k end
  for c = 1, nclasses do ck[#ck + 1] = "test_iou_class" .. (c - 1) end
  csv[1] = table.concat(ck, ",")
  for _, r in ipairs(results) do
    local vals = {}
    for i, k in ipairs(csv_keys) do
      local v = r[k]
      vals[i] = v == nil and "" or (type(v) == "number" and math.type(v) ~= "integer") and string.format("%.6g", v)
        or tostring(v)
    end
    for c = 1, nclasses do
      local v = r.test_class_iou[c]
      vals[#vals + 1] = v and string.format("%.6g", v) or ""
    end
    csv[#csv + 1] = table.concat(vals, ",")
  end
  core.write_file_atomic(out .. "/metrics.csv", table.concat(csv, "\n") .. "\n")
  core.write_file_atomic(out .. "/metrics.json", json.encode(plain(results)) .. "\n")

  local table_text = M.format_table(header, rows)
  local html_rows = {}
  for i, r in ipairs(rows) do html_rows[i] = r end
  local sections = {
    {heading = "Set-up", text = string.format(
      "%d models trained with the same split (seed %d), the same training " .. (o.sampling == "tiles" and "tiles"
      or "random crops") .. " (%dx%d, %d per epoch) and the same "
      .. "augmentation; %d epochs, batch %d. Train %d / validation %d images; test scores are per image on the %s "
      .. "(%d images), mean ± standard deviation.",
      #run.models, run.seed, run.patch, run.patch, #run.train_view, o.epochs, o.batch or 1, #run.train_ds,
      #run.val_ds, run.test_kind, #run.test_ds),
     pre = json.encode(plain(run.config.models))},
    {heading = "Metrics", table = {header = header, rows = html_rows}},
  }
  local images = run.images or {}
  if #images > 0 then sections[#sections + 1] = {heading = "Training curves", images = images} end
  if run.panel_file then
    local legend = {}
    for c = 1, nclasses do
      local col = plot.class_colors[(c - 1) % #plot.class_colors + 1]
      legend[c] = string.format("%s = rgb(%d,%d,%d)", class_names and class_names[c] or ("class " .. (c - 1)),
        col[1], col[2], col[3])
    end
    sections[#sections + 1] = {heading = "Predictions", text = "Central crops of test images. Colours: "
      .. table.concat(legend, ", ") .. ".", images = {{src = run.panel_file, caption = "image | truth | each model"}}}
  end
  report.html{path = out .. "/report.html", title = o.name or "comparison", subtitle = out, sections = sections}
  run.say("\n%s\n\nrun folder: %s (report.html, metrics.csv, config.json)", table_text, out)
  return results, table_text
end

function M.compare(o)
  local run = M.data(o)
  for mi = 1, #run.models do
    local model = M.train(run, mi)
    M.test(run, mi, model)
    collectgarbage()
  end
  M.figures(run)
  return M.report(run)
end

---------------------------------------------------------------- data helpers for drivers
-- writes synthetic EM-like images and masks (sg.data.synthetic_cells) as PNGs under dir and
-- returns them as a folder data set: {n, size, classes, seed} -> dataset
function M.synthetic_dataset(dir, opts)
  local aug = require "semseg.augment" -- sg.data's transforms and synthetic data
  opts = opts or {}
  local classes = opts.classes or 2
  local images, masks = aug.synthetic_cells{n = opts.n or 8, size = opts.size or 256, classes = classes,
    seed = opts.seed or 0}
  mkdir(dir .. "/images"); mkdir(dir .. "/labels")
  for i = 1, images.shape[1] do
    local name = string.format("%02d.png", i - 1)
    core.io.write_png(dir .. "/images/" .. name, (images[i] * 255 + 0.5):clamp(0, 255):to("u8"))
    core.io.write_png(dir .. "/labels/" .. name, masks[i]:to("u8"):unsqueeze(1))
  end
  local map = {}
  for c = 0, classes - 1 do map[c] = c end
  return datasets.folder{images = dir .. "/images", labels = dir .. "/labels", classes = map}
end

-- --key value / --flag command-line options for drivers (semseg_app.cli)
M.parse_args = require("semseg_app.cli").parse_args

return M
