local nn = sg.nn

local Net = nn.class("Net")
function Net:init()
  self.body = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
  self.scale = sg.ones{2}:requires_grad()
  self:register_buffer("count", sg.zeros{1})
end
function Net:forward(x) return self.body(x) * self.scale end

test("parameters, buffers and names follow PyTorch's scheme", function()
  local n = Net()
  local names = {}
  for i, p in ipairs(n:named_parameters()) do names[i] = p[1] end
  check.eq(names, {"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "scale"})
  check.eq(n:named_buffers()[1][1], "count")
  check.eq(n:num_parameters(), 4 * 3 + 3 + 3 * 2 + 2 + 2)
end)

test("forward, backward and zero_grad", function()
  local n = Net()
  local y = n(sg.randn{5, 4})
  check.eq(y.shape, {5, 2})
  y:sum():backward()
  for _, p in ipairs(n:parameters()) do check.truthy(p.grad, "every parameter gets a gradient") end
  n:zero_grad()
  for _, p in ipairs(n:parameters()) do check.eq(p.grad, nil) end
end)

test("Linear matches x @ W^T + b and PyTorch's default init bounds", function()
  sg.manual_seed(3)
  local l = nn.Linear(10, 4)
  local x = sg.randn{2, 10}
  check.near(l(x), x:matmul(l.weight:transpose(1, 2)) + l.bias, 1e-6)
  local bound = 1 / math.sqrt(10)
  check.truthy(l.weight:abs():max():item() <= bound + 1e-7, "weight within kaiming_uniform(a=sqrt 5) bound")
  check.truthy(l.bias:abs():max():item() <= bound + 1e-7, "bias within 1/sqrt(fan_in)")
end)

test("state_dict round trip and mismatch report", function()
  local a, b = Net(), Net()
  b:load_state_dict(a:state_dict())
  local x = sg.randn{3, 4}
  check.near(a(x), b(x), 0)
  local sd = a:state_dict()
  sd["body.0.weight"] = sg.zeros{2, 2}
  sd.extra = sg.zeros{1}
  sd.count = nil
  local err = check.errors(function() b:load_state_dict(sd) end, "'body.0.weight': shape [2,2] in the state dict, [3,4]")
  check.truthy(err:find("unexpected key 'extra'", 1, true), err)
  check.truthy(err:find("missing key 'count'", 1, true), err)
end)

test("train/eval reach every submodule", function()
  local n = Net()
  n:eval()
  for _, m in ipairs(n:modules()) do check.eq(m[2].training, false) end
  n:train()
  check.eq(n.body:get(2).training, true)
end)

test("initialisers follow their formulas", function()
  sg.manual_seed(1)
  local w = sg.empty{256, 128}
  nn.init.kaiming_normal(w, {nonlinearity = "relu"})
  check.near(w:std():item(), math.sqrt(2 / 128), 0.01)
  nn.init.xavier_uniform(w)
  check.truthy(w:abs():max():item() <= math.sqrt(6 / (256 + 128)) + 1e-7)
  nn.init.constant(w, 0.5)
  check.eq(w:mean():item(), 0.5)
end)

test("to(dtype) casts parameters and buffers; an unavailable device is a clear error", function()
  local m = sg.nn.Sequential(sg.nn.Conv2d(1, 2, 3), sg.nn.BatchNorm2d(2))
  m:to("f64")
  for _, p in ipairs(m:parameters()) do check.eq(p.dtype, "f64"); check.truthy(p:needs_grad()) end
  check.eq(m:get(2).running_mean.dtype, "f64")
  check.eq(m:get(2).num_batches_tracked.dtype, "i64")
  check.eq(m(sg.randn({1, 1, 5, 5}, "f64")).dtype, "f64")
  if not sg.cuda.is_available() then check.errors(function() m:to("cuda") end, "device 'cuda' is not available") end
end)
