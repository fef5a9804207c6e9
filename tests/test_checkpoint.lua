local nn = sg.nn
local tmp = os.tmpname()

local function make()
  local m = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))
  local opt = sg.optim.adam(m:parameters(), {lr = 1e-2})
  local sched = sg.optim.lr.reduce_on_plateau(opt, {patience = 0, factor = 0.5})
  return m, opt, sched
end

local function train_step(m, opt, x, y)
  opt:zero_grad()
  local loss = sg.loss.bce_with_logits(m(x), y)
  loss:backward()
  opt:step()
  return loss:item()
end

test("resuming from a checkpoint continues the run exactly", function()
  sg.manual_seed(5)
  local x, y = sg.randn{2, 1, 8, 8}, sg.rand{2, 1, 8, 8}:gt(0.5):float()
  local m, opt, sched = make()
  for _ = 1, 3 do train_step(m, opt, x, y) end
  sched:step(1.0); sched:step(2.0)
  sg.checkpoint.save(tmp, {model = m, optimizer = opt, scheduler = sched, epoch = 3,
                           history = {{epoch = 1, loss = 0.9}, {epoch = 2, loss = 0.7}}, config = {base = 4}})
  local noise_after_save = sg.rand{3}
  local expected = {train_step(m, opt, x, y), train_step(m, opt, x, y)}

  local m2, opt2, sched2 = make()
  local meta = sg.checkpoint.load(tmp, {model = m2, optimizer = opt2, scheduler = sched2})
  check.eq(meta.epoch, 3)
  check.eq(meta.history[2].loss, 0.7)
  check.eq(meta.config.base, 4)
  check.near(sg.rand{3}, noise_after_save, 0) -- the RNG continues where it was saved
  check.eq(opt2.param_groups[1].lr, opt.param_groups[1].lr)
  check.eq(sched2.num_bad, sched.num_bad)
  local got = {train_step(m2, opt2, x, y), train_step(m2, opt2, x, y)}
  check.near(got[1], expected[1], 0, 0)
  check.near(got[2], expected[2], 0, 0)
end)

test("mismatched models are reported by name; corrupt files are errors", function()
  local m, opt = make()
  sg.checkpoint.save(tmp, {model = m, optimizer = opt})
  local other = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8))
  local err = check.errors(function() sg.checkpoint.load(tmp, {model = other}) end, "'0.weight': shape [4,1,3,3] in the state dict, [8,1,3,3]")
  check.truthy(err:find("unexpected key '3.weight'", 1, true), err)
  local data = assert(io.open(tmp, "rb")):read("a")
  local f = assert(io.open(tmp, "wb")); f:write(data:sub(1, #data - 100)); f:close()
  check.errors(function() sg.checkpoint.load(tmp, {model = m}) end, "file truncated?")
  sg.safetensors.save(tmp, {w = sg.ones{1}})
  check.errors(function() sg.checkpoint.load(tmp, {model = m}) end, "is a weights file, not a semseg checkpoint")
  os.remove(tmp)
end)
