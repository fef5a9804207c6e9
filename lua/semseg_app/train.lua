-- The training loop (sg.train.fit), its callbacks and evaluation.
--
--   local history = sg.train.fit{
--     model = model, loss = function(logits, masks) return sg.loss.dice_ce(logits, masks) end,
--     optimizer = opt, scheduler = sched,             -- scheduler optional, stepped once per epoch
--     train = train_loader, val = val_loader,         -- loaders (or see `batches` below)
--     epochs = 50, steps_per_epoch = nil,             -- epochs counts from 1 to `epochs`, also after a resume
--     metrics = {classes = 2},                        -- options of sg.metrics.tracker for validation
--     callbacks = {sg.train.early_stopping{monitor = "val_iou", patience = 10}},
--     seed = 1, out = "runs/unet",                    -- out: best.ckpt, last.ckpt and history.csv there
--     resume = "runs/unet/last.ckpt", verbose = 1,    -- verbose 0 silent, 1 progress, 2 also lines every 10 steps
--     device = nil, amp = nil}                        -- see "Devices and mixed precision" below
--
-- Each epoch: model:train(), then per batch zero_grad, forward, loss, backward, (clip_grad_norm), step;
-- then model:eval() and validation under sg.no_grad; the scheduler steps; callbacks see the epoch's record
-- {epoch, lr, loss, val_loss, val_iou, val_dice, ..., steps, samples, time}. fit returns the history, a
-- list of these records.
--
-- Ctrl-C finishes the current step, saves a checkpoint (the checkpoint callback's `last` file, else
-- out/last.ckpt, else ./interrupted.ckpt: weights as they are, epoch = the last complete epoch) and returns;
-- the history then ends with a record {interrupted = true, ...} and history.interrupted is true.
-- A second Ctrl-C stops the program as usual.
--
-- `train` and `val` may be sg.data.loader objects, anything with :epoch(e) returning an iterator of
-- (images, masks), a function(e) returning such an iterator, or a list of {images, masks} batches.
--
-- Devices and mixed precision: training runs on the model's device (that of its first parameter), so
-- model:to("cuda") before fit is all a script needs; device = "cuda" | "cpu" | "auto" (cuda when a GPU is
-- usable) moves the model there first. Each batch is copied to that device (pinned loader batches,
-- sg.data.loader{pin_memory = true}, copy asynchronously); metrics are counted on the cpu from the
-- predicted class ids (not the logits) and the batch's own masks. amp = "bf16" runs the forward pass under
-- sg.amp.autocast (convolutions and matrix products in bfloat16, f32 master weights, the loss on the
-- output cast to f32); amp = "fp16" does the same in float16 with dynamic loss scaling
-- (sg.amp.GradScaler, or your own as grad_scaler =): a step whose gradients hold inf/NaN is skipped and
-- counted in the record as amp_skipped. The scaler's state is saved in checkpoints and restored on resume.
local core = require "semseg.core"
local util = require "semseg.util"
local metrics = require "semseg.metrics"
local progress = require "semseg_app.progress"
local checkpoint = require "semseg.checkpoint"
local json = require "semseg.json"
local device_mod = require "semseg.device"
local amp_mod = require "semseg.amp"
local M = {}

local function fail(op, fmt, ...) error("sg.train." .. op .. ": " .. string.format(fmt, ...), 0) end
local function clock() return core.clock() end
local function MC() return core.metrics_core end

local function check_keys(op, o, allowed) util.check_options(o, allowed, "sg.train." .. op) end

-- batches(source, epoch) -> iterator of images, masks
local function batches(src, epoch)
  if type(src) == "function" then return src(epoch) end
  if type(src) == "table" and type(src.epoch) == "function" then return src:epoch(epoch) end
  if type(src) == "table" then
    local i = 0
    return function()
      i = i + 1
      local b = src[i]
      if b then return b[1], b[2] end
    end
  end
  fail("fit", "train / val must be a loader, a function(epoch) or a list of {images, masks} (got %s)", type(src))
end

local function count_batches(src)
  if type(src) ~= "table" then return nil end
  local mt = getmetatable(src)
  if (mt and mt.__len) or not src.epoch then
    local ok, n = pcall(function() return #src end)
    if ok and math.type(n) == "integer" and n > 0 then return n end
  end
  return nil
end

-- Whether larger is better for a monitored name (iou, dice, accuracy ... up; losses, errors down).
function M.default_mode(name)
  for _, w in ipairs{"iou", "dice", "acc", "precision", "recall", "psnr", "f1"} do
    if name:find(w, 1, true) then return "max" end
  end
  return "min"
end

local function improved(mode, v, best, min_delta)
  if best == nil then return true end
  min_delta = min_delta or 0
  if mode == "max" then return v > best + min_delta end
  return v < best - min_delta
end

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

-- a batch tensor on the training device (nil and tensors already there pass through)
local function move(t, dev)
  if type(t) == "userdata" and dev and t.device ~= dev then return t:to(dev) end
  return t
end

local HALF = {f16 = true, bf16 = true}

-- the model's output for x, under autocast when amp_dt is set; a 16-bit output comes back as f32, so the
-- loss and the metrics are computed in f32
local function forward(model, x, amp_dt, dev)
  local out
  if amp_dt then
    out = amp_mod.autocast({dtype = amp_dt, device = dev}, function() return model(x) end)
  else
    out = model(x)
  end
  if type(out) == "userdata" and HALF[out.dtype] then out = out:float() end
  return out
end
M._forward = forward

-- evaluate(model, loader, {loss = fn, metrics = tracker options, epoch = 0, steps = nil, amp = nil})
--   -> {loss =, iou =, dice =, ...} (numbers only; undefined scores are left out). Runs on the model's
--   device (batches are moved there); amp = "bf16" | "fp16" evaluates under autocast.
function M.evaluate(model, src, o)
  o = o or {}
  local tracker = metrics.tracker(o.metrics or {})
  local was_training = model.training
  local dev = device_mod.of(model)
  local amp_dt = amp_mod.normalize_dtype(o.amp, "sg.train.evaluate")
  model:eval()
  local sum, n, steps = 0, 0, 0
  core.no_grad(function()
    for images, masks in batches(src, o.epoch or 0) do
      local out = forward(model, move(images, dev), amp_dt, dev)
      local bs = images.shape[1]
      if o.loss then sum = sum + o.loss(out, move(masks, dev)):item() * bs end
      tracker:update(out, masks) -- class ids cross to the cpu, the masks are the batch's own
      n, steps = n + bs, steps + 1
      if o.steps and steps >= o.steps then break end
    end
  end)
  if was_training ~= false then model:train() end
  local r = {}
  if n == 0 then return r end
  if o.loss then r.loss = sum / n end
  for k, v in pairs(tracker:compute()) do
    if finite(v) and k ~= "n_pixels" and k ~= "n_images" then r[k] = v end
  end
  return r
end

---------------------------------------------------------------- callbacks
-- A callback is a table with any of on_fit_start(ctx), on_epoch_start(ctx, epoch), on_step_end(ctx, step,
-- loss), on_epoch_end(ctx, record), on_interrupt(ctx), on_fit_end(ctx), and state_dict() / load_state_dict()
-- when it has state a resumed run needs. ctx holds model, optimizer, scheduler, history, epoch (the last
-- complete one), out, and `stop` (set it to end training after this epoch).

local function strip_ckpt(path) return (path:gsub("%.ckpt$", "")) end

local function callback_states(ctx)
  local states = {}
  for i, cb in ipairs(ctx.callbacks) do
    if cb.state_dict then states[tostring(i) .. ":" .. (cb.kind or "callback")] = cb:state_dict() end
  end
  return states
end

local function history_list(h)
  local out = {}
  for i, r in ipairs(h) do out[i] = r end
  return out
end

local function save_checkpoint(ctx, path, epoch, extra)
  extra = extra or {}
  extra.callbacks = callback_states(ctx)
  if ctx.scaler then extra.amp_scaler = ctx.scaler:state_dict() end
  local history = {} -- an interrupted epoch's record is not part of the resumable history
  for _, r in ipairs(ctx.history) do
    if r.epoch <= epoch then history[#history + 1] = r end
  end
  checkpoint.save(path, {model = ctx.model, optimizer = ctx.optimizer, scheduler = ctx.scheduler, epoch = epoch,
    history = history, extra = extra, config = ctx.config})
end

-- checkpoint{path = "best.ckpt", monitor = "val_iou", mode = "max", save_last = true, last = path.last.ckpt}
-- Saves the best epoch (by `monitor`) to `path` and every epoch to `last` (for resume = last).
function M.checkpoint(o)
  o = o or {}
  check_keys("checkpoint", o, {path = true, monitor = true, mode = true, save_last = true, last = true,
    min_delta = true})
  if type(o.path) ~= "string" then fail("checkpoint", "path (the best checkpoint's file) is required") end
  local monitor = o.monitor or "val_iou"
  local cb = {kind = "checkpoint", path = o.path, monitor = monitor, mode = o.mode or M.default_mode(monitor),
    save_last = o.save_last ~= false, last = o.last or (strip_ckpt(o.path) .. ".last.ckpt"), min_delta = o.min_delta}
  if cb.mode ~= "min" and cb.mode ~= "max" then fail("checkpoint", "mode must be \"min\" or \"max\"") end
  function cb:on_epoch_end(ctx, rec)
    local v = rec[self.monitor]
    if v == nil then
      if not self.warned and ctx.verbose > 0 then
        io.stderr:write("sg.train.checkpoint: the record has no '", self.monitor, "'; only the last epoch is saved\n")
      end
      self.warned = true
    elseif improved(self.mode, v, self.best, self.min_delta) then
      self.best, self.best_epoch = v, rec.epoch
      save_checkpoint(ctx, self.path, rec.epoch, {best = {monitor = self.monitor, value = v}})
    end
    if self.save_last then save_checkpoint(ctx, self.last, rec.epoch) end
  end
  function cb:on_interrupt(ctx)
    save_checkpoint(ctx, self.last, ctx.epoch, {interrupted = true})
    return self.last
  end
  function cb:state_dict() return {best = self.best, best_epoch = self.best_epoch} end
  function cb:load_state_dict(s) self.best, self.best_epoch = s.best, s.best_epoch end
  return cb
end

-- early_stopping{monitor = "val_loss", patience = 10, min_delta = 0, mode = auto}: stops when `monitor`
-- has not improved by more than min_delta for `patience` epochs.
function M.early_stopping(o)
  o = o or {}
  check_keys("early_stopping", o, {monitor = true, patience = true, min_delta = true, mode = true})
  local monitor = o.monitor or "val_loss"
  local cb = {kind = "early_stopping", monitor = monitor, patience = o.patience or 10, min_delta = o.min_delta or 0,
    mode = o.mode or M.default_mode(monitor), wait = 0}
  if cb.mode ~= "min" and cb.mode ~= "max" then fail("early_stopping", "mode must be \"min\" or \"max\"") end
  function cb:on_epoch_end(ctx, rec)
    local v = rec[self.monitor]
    if v == nil then return end
    if improved(self.mode, v, self.best, self.min_delta) then
      self.best, self.best_epoch, self.wait = v, rec.epoch, 0
    else
      self.wait = self.wait + 1
      if self.wait >= self.patience then
        ctx.stop = true
        self.stopped_epoch = rec.epoch
        rec.stopped_early = true
        if ctx.verbose > 0 then
          print(string.format("early stopping: %s has not improved for %d epochs (best %s at epoch %d)", self.monitor,
            self.wait, progress.format_value(self.best), self.best_epoch))
        end
      end
    end
  end
  function cb:state_dict() return {best = self.best, best_epoch = self.best_epoch, wait = self.wait} end
  function cb:load_state_dict(s) self.best, self.best_epoch, self.wait = s.best, s.best_epoch, s.wait or 0 end
  return cb
end

-- reduce_lr_on_plateau{monitor = "val_loss", mode = auto, factor = 0.1, patience = 10, threshold = 1e-4,
-- threshold_mode = "rel", cooldown = 0, min_lr = 0}: sg.optim.lr.reduce_on_plateau stepped with `monitor`.
function M.reduce_lr_on_plateau(o)
  o = o or {}
  check_keys("reduce_lr_on_plateau", o, {monitor = true, mode = true, factor = true, patience = true,
    threshold = true, threshold_mode = true, cooldown = true, min_lr = true})
  local monitor = o.monitor or "val_loss"
  local opts = {}
  for k, v in pairs(o) do if k ~= "monitor" then opts[k] = v end end
  opts.mode = opts.mode or M.default_mode(monitor)
  local cb = {kind = "reduce_lr_on_plateau", monitor = monitor, opts = opts}
  function cb:on_fit_start(ctx)
    self.scheduler = require("semseg.schedulers").reduce_on_plateau(ctx.optimizer, self.opts)
    if self.pending then self.scheduler:load_state_dict(self.pending); self.pending = nil end
  end
  function cb:on_epoch_end(_, rec)
    local v = rec[self.monitor]
    if v ~= nil then self.scheduler:step(v) end
  end
  function cb:state_dict() return self.scheduler and self.scheduler:state_dict() or {} end
  function cb:load_state_dict(s)
    if self.scheduler then self.scheduler:load_state_dict(s) else self.pending = s end
  end
  return cb
end

-- writes text to path through a temporary file and a rename
local function write_atomic(path, text)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

-- the history as CSV text: a header of the keys with a number, string or boolean value in any record (epoch
-- first, then the others sorted), one row per record, empty cells where a record lacks the key
function M.history_csv(history)
  local keys, seen = {}, {}
  for _, h in ipairs(history) do
    for k, v in pairs(h) do
      if type(k) == "string" and (type(v) == "number" or type(v) == "string" or type(v) == "boolean") and not seen[k] then
        seen[k] = true
        if k ~= "epoch" then keys[#keys + 1] = k end
      end
    end
  end
  table.sort(keys)
  if seen.epoch then table.insert(keys, 1, "epoch") end
  local lines = {table.concat(keys, ",")}
  for _, h in ipairs(history) do
    local row = {}
    for i, k in ipairs(keys) do
      local v = h[k]
      if type(v) == "number" then
        row[i] = math.type(v) == "integer" and tostring(v) or string.format("%.8g", v)
      else
        row[i] = v == nil and "" or tostring(v)
      end
    end
    lines[#lines + 1] = table.concat(row, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- csv_logger{path = "history.csv"}: the whole history, rewritten after every epoch
function M.csv_logger(o)
  o = o or {}
  check_keys("csv_logger", o, {path = true})
  if type(o.path) ~= "string" then fail("csv_logger", "path is required") end
  local cb = {kind = "csv_logger", path = o.path}
  function cb:on_epoch_end(ctx) write_atomic(self.path, M.history_csv(ctx.history)) end
  cb.on_fit_end = cb.on_epoch_end
  return cb
end

-- json_logger{path = "history.json"}: the history as a JSON array, rewritten after every epoch
function M.json_logger(o)
  o = o or {}
  check_keys("json_logger", o, {path = true})
  if type(o.path) ~= "string" then fail("json_logger", "path is required") end
  local cb = {kind = "json_logger", path = o.path}
  function cb:on_epoch_end(ctx) write_atomic(self.path, json.encode(history_list(ctx.history)) .. "\n") end
  cb.on_fit_end = cb.on_epoch_end
  return cb
end

---------------------------------------------------------------- fit
local FIT_KEYS = {model = true, loss = true, optimizer = true, scheduler = true, train = true, val = true,
  epochs = true, steps_per_epoch = true, val_steps = true, callbacks = true, metrics = true, seed = true,
  resume = true, out = true, verbose = true, clip_grad_norm = true, train_metrics = true, config = true,
  log_every = true, device = true, amp = true, grad_scaler = true}

local function call(ctx, name, ...)
  for _, cb in ipairs(ctx.callbacks) do
    if cb[name] and cb.kind ~= "checkpoint" then cb[name](cb, ctx, ...) end
  end
  -- checkpoints last: they save what the other callbacks did (learning rate, counters)
  for _, cb in ipairs(ctx.callbacks) do
    if cb[name] and cb.kind == "checkpoint" then cb[name](cb, ctx, ...) end
  end
end

local function has_kind(cbs, kind)
  for _, cb in ipairs(cbs) do if cb.kind == kind then return true end end
  return false
end

local function is_plateau(s) return s and s.cooldown_counter ~= nil and s.num_bad ~= nil end

-- the record's value for a ReduceLROnPlateau scheduler passed as `scheduler`
local function plateau_value(s, rec)
  if s.monitor then return rec[s.monitor] end
  if s.mode == "max" then return rec.val_iou or rec.val_dice end
  return rec.val_loss or rec.loss
end

-- fit{...} -> history (see the top of this file)
function M.fit(o)
  check_keys("fit", o, FIT_KEYS)
  for _, k in ipairs{"model", "loss", "optimizer", "train"} do
    if o[k] == nil then fail("fit", "%s is required", k) end
  end
  local verbose = o.verbose
  if verbose == nil or verbose == true then verbose = 1 elseif verbose == false then verbose = 0 end
  local epochs = o.epochs or 1
  if math.type(epochs) ~= "integer" or epochs < 0 then fail("fit", "epochs must be an integer >= 0") end
  local spe = o.steps_per_epoch
  if spe ~= nil and (math.type(spe) ~= "integer" or spe < 1) then fail("fit", "steps_per_epoch must be a positive integer") end
  local model, opt, sched, loss_fn = o.model, o.optimizer, o.scheduler, o.loss
  local dev = device_mod.resolve(o.device, "sg.train.fit")
  if dev then
    if device_mod.of(model) ~= dev then model:to(dev) end -- parameters move in place: the optimizer keeps them
  else
    dev = device_mod.of(model)
  end
  local amp_dt = amp_mod.normalize_dtype(o.amp, "sg.train.fit")
  local scaler = o.grad_scaler
  if scaler ~= nil and (type(scaler) ~= "table" or type(scaler.step) ~= "function" or type(scaler.update) ~= "function") then
    fail("fit", "grad_scaler must be an sg.amp.GradScaler")
  end
  if amp_dt == "f16" and scaler == nil then scaler = amp_mod.GradScaler() end

  local cbs = {}
  for i, cb in ipairs(o.callbacks or {}) do cbs[i] = cb end
  if o.out then
    core.fs.mkdir_p(o.out)
    if not has_kind(cbs, "checkpoint") then
      cbs[#cbs + 1] = M.checkpoint{path = o.out .. "/best.ckpt", last = o.out .. "/last.ckpt",
        monitor = o.val and "val_iou" or "loss"}
    end
    if not has_kind(cbs, "csv_logger") then cbs[#cbs + 1] = M.csv_logger{path = o.out .. "/history.csv"} end
  end
  local ctx = {model = model, optimizer = opt, scheduler = sched, loss = loss_fn, history = {}, epoch = 0,
    stop = false, out = o.out, callbacks = cbs, verbose = verbose, config = o.config, device = dev, amp = amp_dt,
    scaler = scaler}

  if o.seed ~= nil then core.manual_seed(o.seed) end
  local saved_states
  if o.resume then
    local meta = checkpoint.load(o.resume, {model = model, optimizer = opt, scheduler = sched})
    ctx.epoch = meta.epoch or 0
    ctx.history = meta.history or {}
    ctx.resumed = true
    saved_states = meta.extra and meta.extra.callbacks
    if scaler and meta.extra and type(meta.extra.amp_scaler) == "table" then scaler:load_state_dict(meta.extra.amp_scaler) end
    if verbose > 0 then print(string.format("resumed from %s at epoch %d", o.resume, ctx.epoch)) end
  end
  call(ctx, "on_fit_start")
  if saved_states then
    for i, cb in ipairs(cbs) do
      local s = saved_states[tostring(i) .. ":" .. (cb.kind or "callback")]
      if s and cb.load_state_dict then cb:load_state_dict(s) end
    end
  end

  local mc = MC()
  if mc then mc.trap_interrupt() end
  local ok, err = pcall(M._epochs, ctx, o, epochs, spe)
  if mc then mc.release_interrupt() end
  if not ok then error(err, 0) end
  call(ctx, "on_fit_end")
  return ctx.history
end

local function interrupted()
  local mc = MC()
  return mc and mc.interrupted() or false
end

-- one epoch of training; returns its record (without validation)
local function train_epoch(ctx, o, epoch, spe)
  local model, opt, loss_fn = ctx.model, ctx.optimizer, ctx.loss
  local total = count_batches(o.train)
  if spe then total = total and math.min(total, spe) or spe end
  local bar = ctx.verbose > 0 and progress.new{title = string.format("epoch %d/%d", epoch, ctx.epochs), total = total,
    every = ctx.verbose > 1 and (o.log_every or 10) or 0} or nil
  local tracker = o.train_metrics and metrics.tracker(o.metrics or {}) or nil
  local rec = {epoch = epoch, lr = opt.param_groups[1].lr}
  local sum, n, steps = 0, 0, 0
  local dev, amp_dt, scaler = ctx.device, ctx.amp, ctx.scaler
  local finite_n, skipped = 0, 0
  model:train()
  for images, masks in batches(o.train, epoch) do
    local x, y = move(images, dev), move(masks, dev)
    opt:zero_grad()
    local out = forward(model, x, amp_dt, dev)
    local loss = loss_fn(out, y)
    if scaler then scaler:scale(loss):backward() else loss:backward() end
    -- read the loss before the update: the optimizer's kernels then queue behind the next forward pass
    local l, bs = loss:item(), images.shape[1]
    if l ~= l and not scaler then fail("fit", "the loss is NaN at epoch %d, step %d", epoch, steps + 1) end
    if scaler then
      if o.clip_grad_norm then
        scaler:unscale_(opt)
        require("semseg.optim").clip_grad_norm(model:parameters(), o.clip_grad_norm)
      end
      scaler:step(opt)
      scaler:update()
      if scaler.last_skipped then skipped = skipped + 1 end
    else
      if o.clip_grad_norm then require("semseg.optim").clip_grad_norm(model:parameters(), o.clip_grad_norm) end
      opt:step()
    end
    if finite(l) or not scaler then sum, finite_n = sum + l * bs, finite_n + bs end
    n, steps = n + bs, steps + 1
    if tracker then core.no_grad(function() tracker:update(out, masks) end) end
    call(ctx, "on_step_end", steps, l)
    if bar then bar:update(steps, {samples = bs, values = {loss = l}}) end
    if interrupted() then ctx.interrupted = true; break end
    if spe and steps >= spe then break end
  end
  if n == 0 then fail("fit", "the training data gave no batches in epoch %d", epoch) end
  rec.loss, rec.steps, rec.samples = finite_n > 0 and sum / finite_n or 0 / 0, steps, n
  if scaler then rec.amp_skipped = skipped end
  if tracker then
    for k, v in pairs(tracker:compute()) do
      if finite(v) and k ~= "n_pixels" and k ~= "n_images" then rec["train_" .. k] = v end
    end
  end
  return rec, bar
end

-- the summary line's keys: loss, val_loss, the headline scores
local SUMMARY = {"lr", "loss", "val_loss", "val_iou", "val_dice", "val_accuracy", "train_iou"}

local function on_interrupt(ctx)
  local path
  for _, cb in ipairs(ctx.callbacks) do
    if cb.on_interrupt then path = cb:on_interrupt(ctx) or path end
  end
  if not path then
    path = (ctx.out or ".") .. "/" .. (ctx.out and "last.ckpt" or "interrupted.ckpt")
    save_checkpoint(ctx, path, ctx.epoch, {interrupted = true})
  end
  ctx.history.interrupted = true
  if ctx.verbose > 0 then print("interrupted: checkpoint saved to " .. path) end
end

function M._epochs(ctx, o, epochs, spe)
  ctx.epochs = epochs
  local sched = ctx.scheduler
  for epoch = ctx.epoch + 1, epochs do
    call(ctx, "on_epoch_start", epoch)
    local t0 = clock()
    local rec, bar = train_epoch(ctx, o, epoch, spe)
    if ctx.interrupted then
      rec.interrupted, rec.time = true, clock() - t0
      ctx.history[#ctx.history + 1] = rec
      on_interrupt(ctx)
      return
    end
    if o.val then
      local v = M.evaluate(ctx.model, o.val, {loss = ctx.loss, metrics = o.metrics, epoch = epoch, steps = o.val_steps,
        amp = ctx.amp})
      for k, x in pairs(v) do rec["val_" .. k] = x end
    end
    rec.time = clock() - t0
    if sched then
      if is_plateau(sched) then
        local v = plateau_value(sched, rec)
        if v ~= nil then sched:step(v) end
      else
        sched:step()
      end
    end
    ctx.history[#ctx.history + 1] = rec
    ctx.epoch = epoch
    if bar then bar:finish(rec, SUMMARY) end
    call(ctx, "on_epoch_end", rec)
    if ctx.stop then return end
    if interrupted() then -- Ctrl-C during validation: the epoch is complete and saved by now
      ctx.interrupted = true
      rec.interrupted = true
      on_interrupt(ctx)
      return
    end
  end
end

return M
