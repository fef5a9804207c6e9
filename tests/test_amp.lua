-- The device-aware library on the cpu: sg.amp (autocast regions, GradScaler), sg.device, Module:to keeping
-- parameters, fit's device / amp / grad_scaler options, the loader's pin_memory fallback and the host
-- entry points that must behave as before. The same paths on a GPU: tests/test_cuda_train.lua.
local nn = sg.nn

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. d)
  return d
end
local dirs = {}

---------------------------------------------------------------- autocast
test("autocast: fn and guard forms set the type and restore the previous one, also on error", function()
  for _, dev in ipairs{"cpu", "cuda"} do -- the state exists per device even without a GPU
    check.eq(sg.amp.autocast_dtype(dev), nil, dev .. " off at start")
    local a, b = sg.amp.autocast({dtype = "bf16", device = dev}, function(x, y)
      return sg.amp.autocast_dtype(dev), x + y
    end, 2, 3)
    check.eq(a, "bf16"); check.eq(b, 5, "arguments and results pass through")
    check.eq(sg.amp.autocast_dtype(dev), nil, "restored")
    -- nested: the inner region restores the outer one
    sg.amp.autocast({dtype = "fp16", device = dev}, function()
      check.eq(sg.amp.autocast_dtype(dev), "f16")
      sg.amp.autocast({dtype = "bf16", device = dev}, function() check.eq(sg.amp.autocast_dtype(dev), "bf16") end)
      check.eq(sg.amp.autocast_dtype(dev), "f16", "outer restored")
      sg.amp.autocast({device = dev, enabled = false}, function() check.eq(sg.amp.is_autocast_enabled(dev), false) end)
      check.eq(sg.amp.autocast_dtype(dev), "f16", "enabled = false region restores")
    end)
    -- an error inside still restores, and the error comes through
    local err = check.errors(function()
      sg.amp.autocast({dtype = "bf16", device = dev}, function() error("inner failure") end)
    end, "inner failure")
    check.truthy(err)
    check.eq(sg.amp.autocast_dtype(dev), nil, "restored after an error")
    -- a to-be-closed guard
    do
      local g <close> = sg.amp.autocast{dtype = "float16", device = dev}
      check.eq(sg.amp.autocast_dtype(dev), "f16")
      g:close(); g:close() -- closing twice is harmless
      check.eq(sg.amp.autocast_dtype(dev), nil)
    end
    local ok = pcall(function()
      local g <close> = sg.amp.autocast{dtype = "bf16", device = dev}
      error("boom")
    end)
    check.eq(ok, false)
    check.eq(sg.amp.autocast_dtype(dev), nil, "a <close> guard restores on error")
  end
  -- the cpu state and the cuda state are separate
  sg.amp.autocast({dtype = "bf16", device = "cpu"}, function() check.eq(sg.amp.autocast_dtype("cuda"), nil) end)
end)

test("autocast: bad arguments are clear errors", function()
  check.errors(function() sg.amp.autocast("f64", function() end) end, "dtype must be \"bf16\" or \"fp16\" (got f64)")
  check.errors(function() sg.amp.autocast({dtype = "bf16", device = "tpu"}, function() end) end,
    "device must be \"cuda\" or \"cpu\" (got tpu)")
  check.errors(function() sg.amp.autocast({dtype = "bf16", fast = true}, function() end) end, "sg.amp.autocast: unknown option 'fast' (known: device, dtype, enabled)")
  check.errors(function() sg.amp.autocast("bf16", 42) end, "argument #2 must be a function")
  check.errors(function() sg.amp.autocast(7) end, "expected a dtype")
  check.errors(function() sg.amp_core.set_autocast("cpu", "i32") end, "must be bf16 or f16")
  check.eq(sg.amp.autocast_dtype("cpu"), nil, "nothing left switched on")
  check.eq(sg.amp.normalize_dtype("BFloat16"), "bf16")
  check.eq(sg.amp.normalize_dtype("half"), "f16")
  check.eq(sg.amp.normalize_dtype(nil), nil)
  check.eq(sg.amp.normalize_dtype("f32"), nil)
end)

---------------------------------------------------------------- GradScaler
local function quad_problem()
  sg.manual_seed(4)
  local w = sg.randn{5}:requires_grad()
  local target = sg.randn{5}
  return w, target, function() return ((w - target) ^ 2):sum() end
end

test("GradScaler: scaled backward + step equals the unscaled step; the scale grows after growth_interval", function()
  local w, target, loss_fn = quad_problem()
  local w_ref = w:detach():clone():requires_grad()
  local opt = sg.optim.sgd({w}, {lr = 0.1})
  local opt_ref = sg.optim.sgd({w_ref}, {lr = 0.1})
  local scaler = sg.amp.GradScaler{init_scale = 1024, growth_interval = 3}
  check.eq(scaler:get_scale(), 1024)
  for step = 1, 7 do
    opt:zero_grad(); opt_ref:zero_grad()
    local l = loss_fn()
    local scaled = scaler:scale(l)
    check.near(scaled:item(), l:item() * scaler:get_scale(), 1e-3, 1e-6, "scaled loss")
    scaled:backward()
    scaler:step(opt)
    scaler:update()
    ;((w_ref - target) ^ 2):sum():backward()
    opt_ref:step()
    check.eq(scaler.last_skipped, false)
    check.near(w, w_ref, 1e-6, 1e-6, "step " .. step)
  end
  -- 7 clean steps with interval 3: grown twice
  check.eq(scaler:get_scale(), 1024 * 4)
  check.eq(scaler.skipped, 0)
end)

test("GradScaler: an inf or NaN gradient skips the step and halves the scale", function()
  for _, bad in ipairs{math.huge, -math.huge, 0 / 0} do
    local w = sg.tensor{1, 2, 3}:requires_grad()
    local opt = sg.optim.adam({w}, {lr = 0.1})
    local scaler = sg.amp.GradScaler()
    check.eq(scaler:get_scale(), 65536)
    w.grad = sg.tensor{0.5, bad, 1}
    check.eq(scaler:step(opt), nil, "skipped")
    check.eq(scaler.last_skipped, true)
    scaler:update()
    check.eq(w:totable(), {1, 2, 3}, "weights untouched")
    check.eq(next(opt.state), nil, "the optimizer did not even start its state")
    check.eq(scaler:get_scale(), 32768, "backoff 0.5")
    check.eq(scaler.skipped, 1)
    -- the next clean step goes through and resets nothing else
    w.grad = sg.tensor{65536, 65536, 65536}
    scaler:step(opt); scaler:update()
    check.eq(scaler.last_skipped, false)
    check.truthy(w:totable()[1] < 1, "stepped")
  end
end)

test("GradScaler: unscale_ before clipping, f16/bf16/f64 gradients, call-order errors, state_dict", function()
  local w = sg.tensor{1, 2, 3}:requires_grad()
  local opt = sg.optim.sgd({w}, {lr = 1})
  local scaler = sg.amp.GradScaler{init_scale = 8}
  w.grad = sg.tensor{8, 16, 24}
  scaler:unscale_(opt)
  check.eq(w.grad:totable(), {1, 2, 3}, "unscaled in place")
  check.errors(function() scaler:unscale_(opt) end, "already called on this optimizer")
  scaler:step(opt) -- does not unscale twice
  check.eq(w:totable(), {0, 0, 0})
  check.errors(function() scaler:step(opt) end, "already called on this optimizer since the last update()")
  scaler:update()
  check.errors(function() scaler:update() end, "no step() or unscale_() since the last update()")
  -- gradients of other floating types, non-contiguous ones made contiguous
  for _, dt in ipairs{"f16", "bf16", "f64"} do
    local g = sg.tensor({{2, 4}, {6, 8}}, dt):t()
    local flag = sg.zeros({1})
    check.errors(function() sg.amp_core.unscale({g}, 0.5, flag) end, "not contiguous")
    g = g:contiguous()
    sg.amp_core.unscale({g}, 0.5, flag)
    check.eq(g:totable(), {{1, 3}, {2, 4}}, dt)
    check.eq(flag:item(), 0, dt .. " finite")
    local h = sg.tensor({1, 0 / 0}, dt)
    sg.amp_core.unscale({h}, 0.5, flag)
    check.eq(flag:item(), 1, dt .. " NaN found")
  end
  check.errors(function() sg.amp_core.unscale({sg.tensor({1, 2}, "i64")}, 1, sg.zeros({1})) end, "floating point expected")
  check.errors(function() sg.amp_core.unscale({sg.zeros(2)}, 1, sg.zeros({2})) end, "one-element f32")
  check.errors(function() sg.amp_core.unscale({sg.zeros(2)}, math.huge, sg.zeros({1})) end, "not finite")
  -- state round trip
  local s2 = sg.amp.GradScaler()
  s2:load_state_dict(scaler:state_dict())
  check.eq(s2:get_scale(), scaler:get_scale())
  check.eq(s2:state_dict().growth_tracker, scaler:state_dict().growth_tracker)
  -- options
  check.errors(function() sg.amp.GradScaler{init_scale = 0} end, "init_scale must be a positive number")
  check.errors(function() sg.amp.GradScaler{backoff_factor = 2} end, "backoff_factor must be a number in (0, 1)")
  check.errors(function() sg.amp.GradScaler{growth_factor = 1} end, "growth_factor must be a number > 1")
  check.errors(function() sg.amp.GradScaler{growth_interval = 1.5} end, "growth_interval must be a positive integer")
  check.errors(function() sg.amp.GradScaler{scale = 2} end, "sg.amp.GradScaler: unknown option 'scale'")
  check.errors(function() scaler:step({}) end, "must be an optimizer")
end)

test("GradScaler: enabled = false passes everything through", function()
  local w = sg.tensor{1, 2}:requires_grad()
  local opt = sg.optim.sgd({w}, {lr = 1})
  local scaler = sg.amp.GradScaler{enabled = false}
  local l = (w * 1):sum()
  check.truthy(scaler:scale(l) == l, "the loss itself")
  l:backward()
  scaler:unscale_(opt); scaler:step(opt); scaler:update()
  check.eq(w:totable(), {0, 1})
  check.eq(scaler:get_scale(), 1.0)
end)

---------------------------------------------------------------- devices
test("sg.device and Module:to keep parameters (optimizers built before still work), grads and state follow", function()
  check.eq(sg.device.resolve(nil), nil)
  check.eq(sg.device.resolve("cpu"), "cpu")
  check.eq(sg.device.resolve("auto"), sg.cuda.is_available() and "cuda" or "cpu")
  check.errors(function() sg.device.resolve("gpu", "op") end, "op: device must be \"cpu\", \"cuda\" or \"auto\" (got gpu)")
  check.errors(function() sg.device.resolve("cuda:1", "op") end, "only one GPU")
  if not sg.cuda.is_available() then
    check.errors(function() sg.device.resolve("cuda", "op") end, "op: device 'cuda' is not available")
  end
  sg.manual_seed(2)
  local m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
  check.eq(m:device(), "cpu"); check.eq(sg.device.of(m), "cpu"); check.eq(sg.device.of(sg.zeros(1)), "cpu")
  local params = m:parameters()
  local opt = sg.optim.adam(params, {lr = 0.1})
  m(sg.randn{2, 1, 5, 5}):sum():backward()
  opt:step()
  m:to("f64")
  for i, p in ipairs(m:parameters()) do
    check.truthy(p == params[i], "parameter " .. i .. " kept its identity")
    check.eq(p.dtype, "f64"); check.truthy(p:needs_grad()); check.eq(p.grad.dtype, "f64", "grad followed")
  end
  opt:zero_grad()
  m(sg.randn({2, 1, 5, 5}, "f64")):sum():backward()
  opt:step() -- the state built in f32 follows the parameters
  check.eq(opt.state["1:1"].exp_avg.dtype, "f64")
  check.eq(m:to("auto"):device(), sg.cuda.is_available() and "cuda" or "cpu")
  m:to("cpu")
  check.errors(function() m:to(5) end, "expected a device")
  if not sg.cuda.is_available() then
    check.errors(function() m:cuda() end, "device 'cuda' is not available")
    check.eq(m:parameters()[1].device, "cpu", "nothing moved")
  end
  -- set_data_ only for leaves
  local x = sg.randn{3}:requires_grad()
  local y = x * 2
  check.errors(function() y:set_data_(sg.zeros(3)) end, "only a leaf tensor")
  check.errors(function() x:set_data_(sg.zeros({3}, "i64")) end, "needs floating-point data")
  x.grad = sg.ones{3}
  x:set_data_(sg.zeros{4})
  check.eq(x.shape, {4}); check.eq(x.grad, nil, "a gradient that no longer fits is dropped")
  check.truthy(x:needs_grad())
end)

test("host entry points unchanged on the cpu: tensor{device}, to{dtype}, item, totable, to_bytes", function()
  local t = sg.tensor({{1, 2}, {3, 4}}, {dtype = "i64", device = "cpu"})
  check.eq(t.device, "cpu"); check.eq(t.dtype, "i64")
  check.eq(sg.tensor(t, {dtype = "f32"}).dtype, "f32")
  check.eq(sg.randn{2}:to{dtype = "f64"}.device, "cpu")
  check.eq(t[2][1]:item(), 3); check.eq(math.type(t[2][1]:item()), "integer")
  check.eq(t:totable(), {{1, 2}, {3, 4}})
  check.eq(sg.tensor(2.5):item(), 2.5)
  local b = sg.tensor({1.5, -2}, "f32"):to_bytes()
  check.eq(b, string.pack("<ff", 1.5, -2))
  check.eq(sg.tensor({{1, 2}, {3, 4}}, "i32"):t():to_bytes(), string.pack("<i4i4i4i4", 1, 3, 2, 4))
  if not sg.cuda.is_available() then
    check.errors(function() sg.tensor({1}, {device = "cuda"}) end, "device 'cuda' is not available")
  end
end)

---------------------------------------------------------------- loader
test("loader: pin_memory gives the same batches (pinned only when a GPU is usable)", function()
  local d = tmpdir(); dirs[#dirs + 1] = d
  local ds = sg.experiment.synthetic_dataset(d, {n = 4, size = 48, classes = 2, seed = 3})
  local view = ds:random_crops{size = 32, n = 10, seed = 1}
  local aug = sg.data.recipe{sg.data.flip{}, sg.data.rot90{}}
  for _, workers in ipairs{0, 2} do
    local plain = sg.data.loader(view, {batch = 3, shuffle = true, seed = 4, augment = aug, workers = workers})
    local pinned = sg.data.loader(view, {batch = 3, shuffle = true, seed = 4, augment = aug, workers = workers,
      pin_memory = true})
    local a, b = {}, {}
    for x, y in plain:epoch(1) do a[#a + 1] = {x, y} end
    for x, y in pinned:epoch(1) do b[#b + 1] = {x, y} end
    check.eq(#a, 4); check.eq(#b, 4)
    for i = 1, #a do
      check.eq(b[i][1].is_pinned, sg.cuda.is_available(), "images pinned iff a device")
      check.eq(b[i][2].is_pinned, sg.cuda.is_available(), "masks pinned iff a device")
      check.eq(a[i][1].is_pinned, false)
      check.eq((a[i][1] - b[i][1]):abs():max():item(), 0, "images identical")
      check.eq((a[i][2] - b[i][2]):abs():max():item(), 0, "masks identical")
    end
    plain:close(); pinned:close()
  end
  check.errors(function() sg.data.loader(view, {pin_memory = "yes"}) end, "pin_memory must be true or false")
end)

---------------------------------------------------------------- fit
local function fit_setup(seed)
  sg.manual_seed(seed)
  local model = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
  local images, masks = sg.data.synthetic_cells{n = 4, size = 16, classes = 2, seed = 5}
  local batches = {{images[{{1, 2}}], masks[{{1, 2}}]}, {images[{{3, 4}}], masks[{{3, 4}}]}}
  return model, batches
end
local function ce(y, t) return sg.loss.cross_entropy(y, t) end

test("fit: device = \"cpu\"/\"auto\" and a GradScaler give the plain run's weights; the scaler is checkpointed", function()
  if not sg.metrics_core then skip("no metrics_core") end
  local m1, batches = fit_setup(7)
  local h1 = sg.train.fit{model = m1, loss = ce, optimizer = sg.optim.adam(m1:parameters(), {lr = 0.01}),
    train = batches, val = batches, epochs = 3, metrics = {classes = 2}, verbose = 0, seed = 1}
  local m2 = fit_setup(7)
  local dir = tmpdir(); dirs[#dirs + 1] = dir
  local scaler = sg.amp.GradScaler{init_scale = 256, growth_interval = 4}
  local h2 = sg.train.fit{model = m2, loss = ce, optimizer = sg.optim.adam(m2:parameters(), {lr = 0.01}),
    train = batches, val = batches, epochs = 3, metrics = {classes = 2}, verbose = 0, seed = 1, device = "cpu",
    grad_scaler = scaler, out = dir}
  for i = 1, 3 do
    check.near(h2[i].loss, h1[i].loss, 1e-5, 1e-4, "epoch " .. i .. " loss")
    check.near(h2[i].val_iou, h1[i].val_iou, 1e-5, 1e-4, "epoch " .. i .. " val_iou")
    check.eq(h2[i].amp_skipped, 0)
  end
  check.eq(h1[1].amp_skipped, nil, "no scaler, no column")
  local sd1, sd2 = m1:state_dict(), m2:state_dict()
  for k, v in pairs(sd1) do check.near(sd2[k], v, 1e-5, 1e-4, k) end
  check.eq(scaler:get_scale(), 256 * 2, "6 clean steps, interval 4: grown once")
  local meta = sg.checkpoint.load(dir .. "/last.ckpt", {restore_rng = false})
  check.eq(meta.extra.amp_scaler.scale, 512)
  check.eq(meta.extra.amp_scaler.growth_tracker, 2)
  -- resume: the scaler continues from the checkpoint
  local m3 = fit_setup(7)
  local s3 = sg.amp.GradScaler{init_scale = 1}
  sg.train.fit{model = m3, loss = ce, optimizer = sg.optim.adam(m3:parameters(), {lr = 0.01}), train = batches,
    epochs = 3, verbose = 0, grad_scaler = s3, resume = dir .. "/last.ckpt", device = "auto"}
  check.eq(s3:get_scale(), 512, "restored (no epochs left to run)")
end)

test("fit / evaluate: bad device, amp and grad_scaler options are clear errors", function()
  local m, batches = fit_setup(1)
  local opt = sg.optim.sgd(m:parameters())
  check.errors(function() sg.train.fit{model = m, loss = ce, optimizer = opt, train = batches, device = "gpu"} end,
    "sg.train.fit: device must be \"cpu\", \"cuda\" or \"auto\"")
  check.errors(function() sg.train.fit{model = m, loss = ce, optimizer = opt, train = batches, amp = "f8"} end,
    "sg.train.fit: dtype must be \"bf16\" or \"fp16\" (got f8)")
  check.errors(function() sg.train.fit{model = m, loss = ce, optimizer = opt, train = batches, grad_scaler = 1} end,
    "grad_scaler must be an sg.amp.GradScaler")
  check.errors(function() sg.train.evaluate(m, batches, {amp = "int8"}) end, "sg.train.evaluate: dtype must be")
  if not sg.cuda.is_available() then
    check.errors(function() sg.train.fit{model = m, loss = ce, optimizer = opt, train = batches, device = "cuda"} end,
      "sg.train.fit: device 'cuda' is not available")
  end
  check.errors(function() sg.predict.tiled(m, sg.zeros{1, 8, 8}, {amp = "f64"}) end, "predict.tiled: dtype must be")
  local o, err = sg.predict.parse_args{"--model", "a", "--input", "b", "--out", "c", "--device", "tpu"}
  check.eq(o, nil); check.truthy(err:find("--device must be cpu, cuda or auto", 1, true), err)
  o = sg.predict.parse_args{"--model", "a", "--input", "b", "--out", "c", "--device", "auto", "--amp", "bf16"}
  check.eq(o.device, "auto"); check.eq(o.amp, "bf16")
end)

test("losses: class weights from tables and cpu tensors; metrics confusion unchanged", function()
  local logits = sg.randn{2, 3, 4, 4}
  local target = sg.randint(0, 3, {2, 4, 4})
  local a = sg.loss.cross_entropy(logits, target, {weight = sg.tensor{1, 2, 3}}):item()
  check.truthy(a > 0)
  check.truthy(sg.loss.dice(logits, target, {class_weights = {1, 1, 2}}):item() > 0)
  check.truthy(sg.loss.focal(logits, target, {alpha = {0.2, 0.3, 0.5}}):item() > 0)
  local cm = sg.metrics.confusion(sg.tensor({0, 1, 1}, "u8"), sg.tensor({0, 1, 0}, "i64"), 2)
  check.eq(cm:totable(), {{1, 1}, {0, 1}})
end)

test("amp: temporary files removed", function()
  for _, d in ipairs(dirs) do os.execute("rm -rf '" .. d .. "'") end
end)
