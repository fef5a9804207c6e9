-- A small U-Net-like network against PyTorch: forward, loss, every parameter
-- gradient, then one SGD-momentum and one Adam step (tests/golden_unet.safetensors,
-- written by scripts/golden_unet.py with torch 1.13).
local nn, F, L = sg.nn, sg.F, sg.loss
local G = sg.safetensors.load("tests/golden_unet.safetensors")

local function block(cin, cout)
  return nn.Sequential(nn.Conv2d(cin, cout, 3, {padding = 1, bias = false}), nn.BatchNorm2d(cout), nn.ReLU())
end

local TinyUNet = nn.class("TinyUNet")
function TinyUNet:init()
  self.enc1 = block(1, 4)
  self.enc2 = block(4, 8)
  self.up = nn.ConvTranspose2d(8, 4, 2, {stride = 2})
  self.side = nn.Conv2d(8, 4, 1)
  self.dec = block(12, 4)
  self.head = nn.Conv2d(4, 3, 1)
  self.aux = nn.Conv2d(4, 1, 1)
end
function TinyUNet:forward(x)
  local s1 = self.enc1(x)
  local b = self.enc2((F.max_pool2d(s1, {kernel = 2})))
  local u1 = self.up(b)
  local u2 = self.side(F.upsample(b, {scale = 2, mode = "nearest"}))
  local u3 = F.upsample(u2, {scale = 1, mode = "bilinear"})
  local d = self.dec(sg.cat({s1, u1, u3}, 2))
  return self.head(d), self.aux(d)
end

local function load_net()
  local net = TinyUNet()
  local sd = {}
  for name in pairs(net:state_dict()) do
    sd[name] = G["init." .. name] or G["buffer0." .. name]
  end
  net:load_state_dict(sd)
  return net
end

local function rel_close(got, want, what)
  local scale = math.max(want:abs():max():item(), 1e-6)
  local err = (got - want):abs():max():item() / scale
  if err > 1e-4 then error(string.format("%s: max error %.3g relative to max |value| %.3g", what, err, scale), 2) end
end

local function forward_backward(net)
  local logits, aux = net(G.input)
  local loss = L.cross_entropy(logits, G.target) + L.bce_with_logits(aux, G.mask)
  loss:backward()
  return logits, aux, loss
end

test("forward and loss match PyTorch within 1e-4 relative", function()
  local net = load_net()
  local logits, aux, loss = forward_backward(net)
  rel_close(logits, G.logits, "logits")
  rel_close(aux, G.aux, "aux head")
  rel_close(sg.softmax(logits, 2), G.probs, "softmax")
  rel_close(loss, G.loss, "loss")
  local n = 0
  for name, buf in pairs(net:state_dict()) do -- BatchNorm's running statistics after one training step
    if name:find("running") then rel_close(buf, G["buffer." .. name], name); n = n + 1 end
    if name:find("num_batches") then check.eq(buf:item(), G["buffer." .. name]:item(), name) end
  end
  check.eq(n, 6)
end)

test("every parameter gradient matches PyTorch within 1e-4 relative", function()
  local net = load_net()
  forward_backward(net)
  local n = 0
  for _, p in ipairs(net:named_parameters()) do
    rel_close(p[2].grad, G["grad." .. p[1]], "grad " .. p[1])
    n = n + 1
  end
  check.eq(n, 17)
end)

test("one SGD-momentum step and one Adam step match PyTorch", function()
  for _, case in ipairs{{"sgd", function(ps) return sg.optim.sgd(ps, {lr = 0.1, momentum = 0.9, weight_decay = 1e-4}) end},
                        {"adam", function(ps) return sg.optim.adam(ps, {lr = 1e-2}) end}} do
    local net = load_net()
    forward_backward(net)
    case[2](net:parameters()):step()
    for _, p in ipairs(net:named_parameters()) do rel_close(p[2], G[case[1] .. "." .. p[1]], case[1] .. " " .. p[1]) end
  end
end)
