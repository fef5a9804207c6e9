-- Fused losses (the loss family of the device table): bce_with_logits, mean and sum, against the reference on
-- the cpu table (the threaded chunked sum) for several shapes and both float dtypes, gradients included; empty
-- inputs; the reference's gradient against finite differences; on a device without the fused entry (cuda) the op
-- fails naming it and sg.loss.bce_with_logits runs the composite there.
local B = require "tests.ops.backends"
local F = sg.F

-- the fused op; the target is not differentiated (B.compare makes float inputs require grad)
local function fused(red) return function(x, t) return F.bce_with_logits(x, t:detach(), red) end end

local SHAPES = {{1}, {7}, {3, 2, 7, 5}, {2, 1, 64, 64}, {2, 3, 70001}} -- the last spans many chunks

test("bce_with_logits: the cpu table matches the reference, loss and gradient, mean and sum", function()
  sg.manual_seed(41)
  for _, dt in ipairs{"f32", "f64"} do
    for _, shape in ipairs(SHAPES) do
      for _, red in ipairs{"mean", "sum"} do
        local x = sg.randn(shape, dt) * 4
        for _, soft in ipairs{false, true} do
          local t = soft and sg.rand(shape, dt) or sg.rand(shape, dt):gt(0.5):to(dt)
          local what = string.format("%s {%s} %s%s", dt, table.concat(shape, ","), red, soft and " soft" or "")
          B.compare("bce " .. what, fused(red), {x, t}, {backends = {"cpu"}, rtol = 1e-5, rtol64 = 1e-11})
        end
      end
    end
  end
  -- large logits: no overflow on either side
  local x = sg.tensor({-800, -40, -1e-3, 0, 1e-3, 40, 800}, "f64")
  B.compare("bce extremes", fused("sum"), {x, sg.tensor({1, 0, 1, 0.5, 0, 1, 0}, "f64")}, {backends = {"cpu"}})
end)

test("bce_with_logits: empty inputs give NaN (mean) and 0 (sum) on every backend", function()
  for _, red in ipairs{"mean", "sum"} do
    for _, be in ipairs{"reference", "cpu"} do
      local l = B.on(be, function() return F.bce_with_logits(sg.zeros(0, 3), sg.zeros(0, 3), red) end)
      if red == "mean" then check.truthy(l:item() ~= l:item(), be .. " mean of nothing is NaN")
      else check.eq(l:item(), 0, be .. " sum of nothing") end
    end
  end
end)

test("bce_with_logits: the reference's gradient against finite differences (f64)", function()
  sg.manual_seed(42)
  local t = sg.rand({2, 3, 4}, "f64")
  for _, red in ipairs{"mean", "sum"} do
    B.gradcheck("bce " .. red, function(x) return F.bce_with_logits(x, t, red) end, {sg.randn({2, 3, 4}, "f64") * 3})
  end
end)

test("bce_with_logits: errors name the problem on every backend", function()
  for _, be in ipairs{"reference", "cpu"} do
    check.errors(function() B.on(be, function() return F.bce_with_logits(sg.randn(2, 3), sg.rand(3, 2)) end) end,
      "logits of shape [2,3] and target of shape [3,2] differ")
    check.errors(function()
      B.on(be, function() return F.bce_with_logits(sg.randn(2):requires_grad(), sg.rand(2):requires_grad()) end)
    end, "does not differentiate the target")
  end
  for _, dev in ipairs(B.list()) do
    if dev ~= "cpu" then
      local x, t = sg.randn(3, 4), sg.rand(3, 4)
      check.errors(function() F.bce_with_logits(x:to(dev), t:to(dev), "mean") end,
        "bce_with_logits: the fused op has no kernel on " .. dev)
      -- the loss users call runs the composite there, with the fused op's value
      local want = sg.loss.bce_with_logits(x, t):item()
      check.near(sg.loss.bce_with_logits(x:to(dev), t:to(dev)):item(), want, 1e-6, 1e-5, dev .. " composite")
    end
  end
end)

-- ---------------------------------------------------------------- the f32 cpu kernels against the f64 loops (was tests/test_cpu_kernels.lua)
do
  local C = require "tests.ops.cpu_fast"
  local F, same, both, on_threads, close = C.F, C.same, C.both, C.on_threads, C.close
  test("fused bce_with_logits matches the composed reference, gradients included, on any thread count", function()
    sg.manual_seed(60)
    for _, dt in ipairs{"f32", "f64"} do
      for _, shape in ipairs{{4, 1, 128, 128}, {3, 2, 7, 5}, {1}, {2, 3, 70001}} do
        for _, red in ipairs{"mean", "sum"} do
          local x0 = (sg.randn(shape, dt) * 4):detach()
          x0[1] = 0 -- x = 0: sigmoid(0) - t (the composite's subgradient differs there)
          local t = sg.rand(shape, dt):gt(0.5):to(dt)
          if #shape == 4 then t = sg.rand(shape, dt) end -- soft targets too
          local what = string.format("%s {%s} %s", dt, table.concat(shape, ","), red)
          local function run(fn, threads)
            F._threads(threads)
            local x = x0:clone():requires_grad()
            local l = fn(x, t, {reduction = red})
            l:backward()
            return l, x.grad
          end
          local t0 = F._threads()
          local l1, g1 = run(sg.loss.bce_with_logits, 1)
          check.eq(l1.grad_fn, "bce_with_logits", what .. ": the fused op ran")
          local l3, g3 = run(sg.loss.bce_with_logits, 3)
          local lr, gr = run(sg.loss.bce_with_logits_reference, 1)
          F._threads(t0)
          check.eq(l1:item(), l3:item(), what .. ": loss on 1 and 3 threads")
          check.eq(g1:eq(g3):all():item(), true, what .. ": gradient on 1 and 3 threads")
          local tol = dt == "f32" and 1e-6 or 1e-12
          check.near(l1:item(), lr:item(), tol * (1 + math.abs(lr:item())), 0, what .. ": loss")
          local n = red == "mean" and l1.shape and x0:numel() or 1
          -- the composite's derivative at exactly 0 is (1 - t) instead of (0.5 - t)
          local d = (g1 - gr):abs()
          d[1] = 0
          check.truthy(d:amax():item() <= tol * 4 / n + tol * 1e-3, what .. ": gradient")
        end
      end
    end
  end)
end
