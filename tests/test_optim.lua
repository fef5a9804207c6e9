-- Optimizers and schedulers against PyTorch 1.13 (golden values from
-- torch.optim with the same hyper-parameters, f64, three fixed gradients).
local optim = sg.optim
local P0 = {0.5, -1.0, 2.0, 0.25}
local GRADS = {{0.1, -0.2, 0.3, 0.0}, {0.05, 0.4, -0.1, 0.2}, {-0.3, 0.1, 0.2, -0.05}}
local GOLDEN = {
  sgd_plain = {0.51500000000000001, -1.03, 1.96, 0.23500000000000001},
  sgd_mom = {0.48873035649499996, -1.01792021299, 1.90726293408, 0.21898725729749999},
  sgd_nesterov = {0.50905999999999996, -1.0586200000000001, 1.8859299999999999, 0.20529999999999998},
  adam = {0.48116214857091438, -0.99097688378920146, 1.9731630751713196, 0.22636981136622764},
  adam_ams = {0.48489116228992424, -0.99860122621486236, 1.980417016547555, 0.23863148175034762},
  adamw = {0.48268125196624873, -0.99483687546022936, 1.9739969403424882, 0.237786615285631},
  rmsprop = {0.44890559978281208, -1.0114796739776826, 1.8779491440140581, 0.17436854706492524},
  rmsprop_cm = {0.34774759016952439, -0.9766876849010514, 1.8052143154990445, -0.052369376743790622},
}
local CASES = {
  sgd_plain = {optim.sgd, {lr = 0.1}},
  sgd_mom = {optim.sgd, {lr = 0.1, momentum = 0.9, weight_decay = 0.01, dampening = 0.1}},
  sgd_nesterov = {optim.sgd, {lr = 0.1, momentum = 0.9, nesterov = true}},
  adam = {optim.adam, {lr = 0.01, weight_decay = 0.1}},
  adam_ams = {optim.adam, {lr = 0.01, amsgrad = true, betas = {0.8, 0.9}}},
  adamw = {optim.adamw, {lr = 0.01, weight_decay = 0.1}},
  rmsprop = {optim.rmsprop, {lr = 0.01}},
  rmsprop_cm = {optim.rmsprop, {lr = 0.01, centered = true, momentum = 0.5, weight_decay = 0.01}},
}

local function run(name, dtype, steps)
  local p = sg.tensor(P0, dtype):requires_grad()
  local o = CASES[name][1]({p}, CASES[name][2])
  for k = 1, steps or #GRADS do
    p.grad = sg.tensor(GRADS[k], dtype)
    o:step()
  end
  return p, o
end

for name in pairs(CASES) do
  test("matches torch.optim: " .. name .. " (f64 and f32)", function()
    check.near(run(name, "f64"), GOLDEN[name], 1e-12, 1e-12)
    check.near(run(name, "f32"), GOLDEN[name], 1e-6, 1e-5)
  end)
end

test("state_dict restores the optimizer mid-run exactly", function()
  local p, o = run("adam", "f64", 2)
  local sd = o:state_dict()
  local q = p:detach():clone():requires_grad()
  local o2 = optim.adam({q}, {lr = 0.01, weight_decay = 0.1})
  o2:load_state_dict(sd)
  p.grad = sg.tensor(GRADS[3], "f64"); o:step()
  q.grad = sg.tensor(GRADS[3], "f64"); o2:step()
  check.near(q, p, 0, 0)
  check.near(q, GOLDEN.adam, 1e-12, 1e-12)
  check.errors(function() optim.sgd({q}):load_state_dict(sd) end, "state of a adam optimizer given to sgd")
end)

test("parameter groups keep their own lr and weight decay", function()
  local a = sg.tensor{1.0}:requires_grad()
  local b = sg.tensor{1.0}:requires_grad()
  local o = optim.sgd({{params = {a}, lr = 0.1}, {params = {b}, lr = 1.0}}, {lr = 0.5})
  a.grad, b.grad = sg.tensor{1.0}, sg.tensor{1.0}
  o:step()
  check.near(a, {0.9}, 1e-7)
  check.near(b, {0.0}, 1e-7)
  o:zero_grad()
  check.eq(a.grad, nil)
end)

test("bad optimizer arguments are clear errors", function()
  check.errors(function() optim.sgd({}) end, "params must be a non-empty list")
  check.errors(function() optim.adam({sg.zeros{2}}) end, "is not a tensor that requires grad")
  check.errors(function() optim.sgd({sg.zeros{1}:requires_grad()}, {lrr = 1}) end, "sgd: unknown option 'lrr' (did you mean 'lr'?")
  check.errors(function() optim.sgd({sg.zeros{1}:requires_grad()}, {nesterov = true}) end, "nesterov needs momentum")
end)

test("gradient clipping by global norm and by value", function()
  local a, b = sg.zeros{2}:requires_grad(), sg.zeros{1}:requires_grad()
  a.grad, b.grad = sg.tensor{3.0, 0.0}, sg.tensor{4.0}
  local total = optim.clip_grad_norm({a, b}, 1.0)
  check.near(total, 5, 1e-9)
  check.near(a.grad, {0.6, 0}, 1e-5)
  check.near(b.grad, {0.8}, 1e-5)
  a.grad = sg.tensor{3.0, -2.0}
  optim.clip_grad_value({a}, 1.0)
  check.near(a.grad, {1, -1}, 0)
end)

local function lrs(make_sched, epochs, metrics)
  local p = sg.zeros{1}:requires_grad()
  local o = optim.sgd({p}, {lr = 1.0})
  local s = make_sched(o)
  local out = {}
  for e = 1, epochs do
    if metrics then s:step(metrics[e]) else s:step() end
    out[e] = o.param_groups[1].lr
  end
  return out, s
end

test("schedulers follow PyTorch's formulas", function()
  local L = optim.lr
  check.near(lrs(function(o) return L.step(o, {step_size = 2, gamma = 0.5}) end, 5), {1, 0.5, 0.5, 0.25, 0.25}, 1e-12)
  check.near(lrs(function(o) return L.multistep(o, {milestones = {3, 1}, gamma = 0.1}) end, 4), {0.1, 0.1, 0.01, 0.01}, 1e-12)
  check.near(lrs(function(o) return L.exponential(o, {gamma = 0.9}) end, 2), {0.9, 0.81}, 1e-12)
  check.near(lrs(function(o) return L.cosine(o, {t_max = 4}) end, 4),
    {(1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0}, 1e-12)
  check.near(lrs(function(o) return L.cosine(o, {t_max = 2, warmup = 2}) end, 4), {0.5, 1, 0.5, 0}, 1e-12)
  check.near(lrs(function(o) return L.poly(o, {max_epochs = 4, exponent = 0.9}) end, 2), {0.75 ^ 0.9, 0.5 ^ 0.9}, 1e-12)
end)

test("ReduceLROnPlateau: patience, cooldown, min_lr", function()
  local out = lrs(function(o) return optim.lr.reduce_on_plateau(o, {patience = 1, factor = 0.5, cooldown = 1, min_lr = 0.2}) end,
    8, {1, 1, 1, 1, 1, 1, 1, 1})
  -- bad epochs 2,3 -> cut at 3; cooldown epoch 4; bad 5,6 -> cut at 6 (clamped at min_lr later)
  check.near(out, {1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25}, 1e-12)
  local improving = lrs(function(o) return optim.lr.reduce_on_plateau(o, {patience = 0}) end, 3, {3, 2, 1})
  check.near(improving, {1, 1, 1}, 0)
end)
