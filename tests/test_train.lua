-- sg.train: fit, callbacks, logs, resume and Ctrl-C
local train = sg.train or require "semseg_app.train"
local nn = sg.nn
local function need_core() if not sg.metrics_core then skip("semseg.core has no metrics_core") end end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. d)
  return d
end

local IMAGES, MASKS = sg.data.synthetic_cells{n = 8, size = 24, classes = 2, seed = 3}

-- a loader-like object over in-memory tensors: a fixed order shuffled per epoch
local function mem_loader(images, masks, batch, shuffle)
  local n = images.shape[1]
  local L = {}
  function L:epoch(e)
    local order = {}
    for i = 1, n do order[i] = i end
    if shuffle then
      for i = n, 2, -1 do local j = (i * 7 + e * 13) % i + 1; order[i], order[j] = order[j], order[i] end
    end
    local i = 0
    return function()
      if i >= n then return nil end
      local xs, ys = {}, {}
      for k = i + 1, math.min(i + batch, n) do xs[#xs + 1] = images[order[k]]; ys[#ys + 1] = masks[order[k]] end
      i = i + batch
      return sg.stack(xs), sg.stack(ys)
    end
  end
  return setmetatable(L, {__len = function() return (n + batch - 1) // batch end})
end

local function setup(seed)
  sg.manual_seed(seed or 1)
  local model = nn.Sequential(nn.Conv2d(1, 6, 3, {padding = 1}), nn.ReLU(), nn.Dropout2d(0.2), nn.Conv2d(6, 2, 1))
  local opt = sg.optim.adam(model:parameters(), {lr = 0.02})
  local sched = sg.optim.lr.cosine(opt, {t_max = 6})
  return model, opt, sched
end

local function ce(logits, masks) return sg.loss.cross_entropy(logits, masks) end
local TRAIN = mem_loader(IMAGES[{{1, 6}}], MASKS[{{1, 6}}], 2, true)
local VAL = mem_loader(IMAGES[{{7, 8}}], MASKS[{{7, 8}}], 2, false)

test("fit lowers the loss and reports validation metrics", function()
  need_core()
  local model, opt, sched = setup(1)
  local h = train.fit{model = model, loss = ce, optimizer = opt, scheduler = sched, train = TRAIN, val = VAL,
                      epochs = 5, metrics = {classes = 2}, seed = 2, verbose = 0}
  check.eq(#h, 5)
  check.truthy(h[5].loss < h[1].loss, "loss went down")
  check.eq(h[1].epoch, 1)
  check.eq(h[1].steps, 3); check.eq(h[1].samples, 6)
  for _, k in ipairs{"val_loss", "val_iou", "val_dice", "val_accuracy", "time", "lr"} do
    check.truthy(type(h[5][k]) == "number", k)
  end
  check.truthy(h[5].lr < h[1].lr, "the scheduler stepped")
  check.truthy(model.training, "back in training mode")
end)

test("steps_per_epoch, lists of batches and evaluate", function()
  need_core()
  local model, opt = setup(1)
  local batches = {{IMAGES[{{1, 4}}], MASKS[{{1, 4}}]}, {IMAGES[{{5, 8}}], MASKS[{{5, 8}}]}}
  local h = train.fit{model = model, loss = ce, optimizer = opt, train = batches, epochs = 2, steps_per_epoch = 1,
                      verbose = 0}
  check.eq(h[2].steps, 1)
  local r = train.evaluate(model, batches, {loss = ce, metrics = {classes = 2}})
  check.truthy(r.loss > 0 and r.iou >= 0 and r.iou <= 1)
  check.errors(function() train.fit{model = model, loss = ce, optimizer = opt, train = batches, epoch = 2} end,
    "sg.train.fit: unknown option 'epoch' (did you mean 'epochs'?")
end)

test("early stopping, best checkpoint, csv and json logs", function()
  need_core()
  local dir = tmpdir()
  local model, opt = setup(1)
  local es = train.early_stopping{monitor = "val_loss", patience = 2, min_delta = 1e9} -- nothing is good enough
  local h = train.fit{model = model, loss = ce, optimizer = opt, train = TRAIN, val = VAL, epochs = 10,
    metrics = {classes = 2}, verbose = 0,
    callbacks = {es, train.checkpoint{path = dir .. "/best.ckpt", monitor = "val_loss"},
                 train.csv_logger{path = dir .. "/h.csv"}, train.json_logger{path = dir .. "/h.json"}}}
  check.eq(#h, 3) -- epoch 1 sets the best, 2 and 3 do not improve
  check.eq(h[3].stopped_early, true)
  local meta = sg.checkpoint.load(dir .. "/best.ckpt")
  local best = 1
  for e = 2, 3 do if h[e].val_loss < h[best].val_loss then best = e end end
  check.eq(meta.epoch, best)
  check.eq(meta.extra.best.value, h[best].val_loss)
  check.eq(sg.checkpoint.load(dir .. "/best.last.ckpt").epoch, 3)
  local lines = {}
  for l in io.lines(dir .. "/h.csv") do lines[#lines + 1] = l end
  check.eq(#lines, 4)
  -- epoch first, then every key with a scalar value in some record, sorted (sg.experiment writes the same)
  local keys, seen = {}, {}
  for _, r in ipairs(h) do
    for k, v in pairs(r) do
      if k ~= "epoch" and type(v) ~= "table" and not seen[k] then seen[k] = true; keys[#keys + 1] = k end
    end
  end
  table.sort(keys)
  check.eq(lines[1], "epoch," .. table.concat(keys, ","))
  check.truthy(lines[1]:match("^epoch,loss,lr,samples,steps,stopped_early,time,val_"), lines[1])
  local cells = {}
  for c in (lines[3] .. ","):gmatch("([^,]*),") do cells[#cells + 1] = c end
  for i, k in ipairs(keys) do
    if k == "val_loss" then check.eq(cells[i + 1], string.format("%.8g", h[2].val_loss)) end
  end
  check.eq(cells[1], "2")
  check.eq(sg.experiment.history_csv, train.history_csv)
  local f = io.open(dir .. "/h.json"); local js = sg.json.decode(f:read("a")); f:close()
  check.eq(#js, 3)
  check.near(js[2].val_loss, h[2].val_loss, 1e-12)
  os.execute("rm -rf " .. dir)
end)

test("reduce_lr_on_plateau callback lowers the learning rate", function()
  need_core()
  local model, opt = setup(1)
  local h = train.fit{model = model, loss = ce, optimizer = opt, train = TRAIN, epochs = 3, verbose = 0,
    callbacks = {train.reduce_lr_on_plateau{monitor = "loss", mode = "max", patience = 0, factor = 0.5}}}
  -- mode max on a falling loss: epoch 1 sets the best, epochs 2 and 3 are worse
  check.near(h[3].lr, 0.01)
  check.near(opt.param_groups[1].lr, 0.005)
end)

local function weights(model)
  local out = {}
  for name, t in pairs(model:state_dict()) do out[name] = t:clone() end
  return out
end

test("4 epochs straight equal 2 epochs + resume + 2 epochs, bit for bit", function()
  need_core()
  local function run(epochs, out, resume)
    local model, opt, sched = setup(1)
    local h = train.fit{model = model, loss = ce, optimizer = opt, scheduler = sched, train = TRAIN, val = VAL,
      epochs = epochs, metrics = {classes = 2}, seed = 9, out = out, resume = resume, verbose = 0,
      callbacks = {train.early_stopping{monitor = "val_iou", patience = 50}}}
    return h, model, opt
  end
  local d1, d2 = tmpdir(), tmpdir()
  local h1, m1, o1 = run(4, d1)
  run(2, d2)
  local h2, m2, o2 = run(4, d2, d2 .. "/last.ckpt")
  check.eq(#h2, 4)
  for e = 1, 4 do
    for _, k in ipairs{"loss", "val_loss", "val_iou", "lr"} do check.eq(h2[e][k], h1[e][k], k .. " of epoch " .. e) end
  end
  local w1, w2 = weights(m1), weights(m2)
  for name, t in pairs(w1) do check.truthy(t:eq(w2[name]):all():item(), name .. " equal") end
  check.eq(o2.param_groups[1].lr, o1.param_groups[1].lr)
  local lines = 0
  for _ in io.lines(d2 .. "/history.csv") do lines = lines + 1 end
  check.eq(lines, 5)
  os.execute("rm -rf " .. d1 .. " " .. d2)
end)

test("Ctrl-C finishes the step, saves a checkpoint and returns", function()
  need_core()
  local dir = tmpdir()
  local model, opt = setup(1)
  local steps = 0
  local stopper = {on_step_end = function(_, _, step)
    steps = steps + 1
    if steps == 5 then sg.metrics_core.interrupt() end -- raises SIGINT: the handler only sets the flag
  end}
  local h = train.fit{model = model, loss = ce, optimizer = opt, train = TRAIN, val = VAL, epochs = 5,
    metrics = {classes = 2}, out = dir, verbose = 0, callbacks = {stopper}}
  check.eq(h.interrupted, true)
  check.eq(#h, 2)
  check.eq(h[2].interrupted, true)
  check.eq(h[2].steps, 2)
  check.eq(steps, 5)
  local meta = sg.checkpoint.load(dir .. "/last.ckpt")
  check.eq(meta.epoch, 1)
  check.eq(#meta.history, 1)
  check.eq(meta.extra.interrupted, true)
  check.eq(sg.metrics_core.interrupted(), false) -- the flag is cleared for the next fit
  -- and the interrupted run resumes
  local model2, opt2 = setup(1)
  local h2 = train.fit{model = model2, loss = ce, optimizer = opt2, train = TRAIN, epochs = 2, verbose = 0,
    resume = dir .. "/last.ckpt"}
  check.eq(#h2, 2)
  check.eq(h2[2].epoch, 2)
  os.execute("rm -rf " .. dir)
end)

test("progress: plain lines off a terminal, a bar on one", function()
  local progress = require "semseg_app.progress"
  check.eq(progress.format_time(3725), "1:02:05")
  check.eq(progress.format_time(65), "1:05")
  local buf = {}
  local stream = {write = function(self, ...) for _, s in ipairs{...} do buf[#buf + 1] = s end return self end,
                  flush = function() end}
  local bar = progress.new{title = "epoch 1/2", total = 4, stream = stream, tty = false, every = 2}
  for s = 1, 4 do bar:update(s, {samples = 2, values = {loss = 1 / s}}) end
  bar:finish({loss = 0.5, val_iou = 0.25}, {"loss", "val_iou"})
  local text = table.concat(buf)
  check.eq(select(2, text:gsub("\n", "")), 3)
  check.truthy(text:find("epoch 1/2 step 2/4", 1, true), text)
  check.truthy(text:find("loss 0.5000  val_iou 0.2500", 1, true), text)
  check.truthy(not text:find("\r", 1, true))
  buf = {}
  bar = progress.new{title = "e", total = 4, stream = stream, tty = true, width = 100}
  bar:update(4, {samples = 2, values = {loss = 0.5}})
  bar:finish({loss = 0.5})
  text = table.concat(buf)
  check.truthy(text:find("\r", 1, true) and text:find("[==============================]", 1, true), text)
  check.eq(progress.is_tty(io.stdout), sg.metrics_core and sg.metrics_core.isatty(1) and os.getenv("TERM") ~= "dumb"
    and os.getenv("SEMSEG_PROGRESS") ~= "plain" or os.getenv("SEMSEG_PROGRESS") == "tty")
end)
