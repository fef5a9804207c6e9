-- A small U-Net overfits a tiny synthetic segmentation batch: the loss must fall 10x.
local nn, F = sg.nn, sg.F

local function block(cin, cout)
  return nn.Sequential(nn.Conv2d(cin, cout, 3, {padding = 1, bias = false}), nn.BatchNorm2d(cout), nn.ReLU())
end
local SmallUNet = nn.class("SmallUNet")
function SmallUNet:init(c)
  self.e1, self.e2, self.b = block(1, c), block(c, 2 * c), block(2 * c, 4 * c)
  self.u2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, {stride = 2})
  self.d2 = block(4 * c, 2 * c)
  self.u1 = nn.ConvTranspose2d(2 * c, c, 2, {stride = 2})
  self.d1 = block(2 * c, c)
  self.head = nn.Conv2d(c, 1, 1)
end
function SmallUNet:forward(x)
  local s1 = self.e1(x)
  local s2 = self.e2((F.max_pool2d(s1, {kernel = 2})))
  local b = self.b((F.max_pool2d(s2, {kernel = 2})))
  local d2 = self.d2(sg.cat({s2, self.u2(b)}, 2))
  local d1 = self.d1(sg.cat({s1, self.u1(d2)}, 2))
  return self.head(d1)
end

-- discs of random centre and radius: bright, noisy foreground on a dark background
local function discs(n, size)
  local ys = sg.arange(size, "f32"):view(1, size, 1):expand(n, size, size)
  local xs = sg.arange(size, "f32"):view(1, 1, size):expand(n, size, size)
  local cy = (sg.rand{n, 1, 1} * 0.5 + 0.25) * size
  local cx = (sg.rand{n, 1, 1} * 0.5 + 0.25) * size
  local r = sg.rand{n, 1, 1} * size * 0.15 + size * 0.1
  local mask = ((ys - cy):square() + (xs - cx):square()):lt(r:square()):float():unsqueeze(2)
  local image = mask * 0.6 + 0.2 + sg.randn{n, 1, size, size} * 0.1
  return image, mask
end

test("loss falls 10x when overfitting one batch", function()
  sg.manual_seed(42)
  local net = SmallUNet(8)
  local image, mask = discs(4, 32)
  local opt = sg.optim.adam(net:parameters(), {lr = 1e-2})
  local first, last
  for step = 1, 80 do
    opt:zero_grad()
    local logits = net(image)
    local loss = sg.loss.bce_with_logits(logits, mask) + sg.loss.dice(logits, mask)
    loss:backward()
    opt:step()
    first = first or loss:item()
    last = loss:item()
    if last < first / 10 then break end
  end
  check.truthy(last < first / 10, string.format("loss went from %.4f to %.4f", first, last))
end)
