-- Same seed, same loss curve and parameters for any number of OpenMP threads
-- in deterministic mode (F._deterministic / SEMSEG_DETERMINISTIC=1: direct
-- convolutions, weight gradients on one thread); the engine's own kernels
-- (batch norm, up-sampling, Adam, elementwise) never depend on the thread count.
local F = sg.F

local function train(threads)
  F._threads(threads)
  sg.manual_seed(7)
  local model = sg.models.attention_residual_unet{in_channels = 1, classes = 1, base = 16, depth = 2}
  local opt = sg.optim.adam(model:parameters(), {lr = 1e-3})
  local x = sg.randn{2, 1, 64, 64}
  local t = sg.rand{2, 1, 64, 64}:gt(0.5):float()
  local losses = {}
  for i = 1, 3 do
    opt:zero_grad()
    local loss = sg.loss.bce_with_logits(model(x), t)
    loss:backward()
    opt:step()
    losses[i] = loss:item()
  end
  local params = {}
  for _, p in ipairs(model:parameters()) do params[#params + 1] = p:detach():clone() end
  return losses, params
end

test("deterministic mode: the same loss curve and parameters on 1, 2 and 3 threads", function()
  local t0, d0 = F._threads(), F._deterministic()
  F._deterministic(true)
  local ok, err = pcall(function()
    local l1, p1 = train(1)
    for _, t in ipairs{2, 3} do
      local l, p = train(t)
      for i = 1, #l1 do check.eq(l[i], l1[i], string.format("loss %d on %d threads", i, t)) end
      for k = 1, #p1 do
        check.eq(p[k]:eq(p1[k]):all():item(), true, string.format("parameter %d on %d threads", k, t))
      end
    end
  end)
  F._threads(t0)
  F._deterministic(d0)
  if not ok then error(err, 0) end
end)
