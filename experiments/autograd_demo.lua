-- A first experiment on the engine core alone: a per-pixel logistic model
-- fitted with a hand-written Tversky loss; gradients come from autograd.
-- Data: a synthetic "EM-like" image where membrane pixels are darker than
-- cell interior, plus noise.   semseg run experiments/autograd_demo.lua [steps]
local steps = tonumber(arg and arg[1]) or 300
sg.manual_seed(7)

local H, W = 128, 128
local label = sg.rand{H, W}:lt(0.2):float()               -- 1 = membrane
local image = 1 - label * 0.6 + sg.randn{H, W} * 0.25       -- membranes are dark

-- model parameters: p = sigmoid(a * image + b * image^2 + c)
local a = sg.zeros{1}:requires_grad()
local b = sg.zeros{1}:requires_grad()
local c = sg.zeros{1}:requires_grad()

local function tversky(p, t, alpha, beta)
  local tp = (p * t):sum()
  local fp = (p * (1 - t)):sum()
  local fn = ((1 - p) * t):sum()
  return 1 - tp / (tp + alpha * fp + beta * fn + 1e-6)
end

local function iou(p, t)
  local pred = p:gt(0.5):float()
  local inter = (pred * t):sum():item()
  local union = (pred + t):gt(0):float():sum():item()
  return inter / math.max(union, 1)
end

local lr = 2.0
local first_loss, loss_value
for step = 1, steps do
  local p = (image * a + image:square() * b + c):sigmoid()
  local loss = tversky(p, label, 0.3, 0.7)
  loss:backward()
  loss_value = loss:item()
  first_loss = first_loss or loss_value
  sg.no_grad(function()
    for _, w in ipairs{a, b, c} do
      w:sub_(w.grad * lr)
      w.grad = nil
    end
  end)
  if step == 1 or step % 50 == 0 or step == steps then
    print(string.format("step %4d  tversky loss %.4f  IoU %.3f", step, loss_value,
                        sg.no_grad(function() return iou(p, label) end)))
  end
end
print(string.format("loss %.4f -> %.4f", first_loss, loss_value))
