-- upsample (nearest, bilinear, align_corners; size or scale factor): every
-- backend against the reference, forward and backward, and the reference's
-- gradient against finite differences.
local B = require "tests.ops.backends"
local F = sg.F

local cases = {
  {"nearest 2x", {2, 3, 5, 7}, {scale = 2, mode = "nearest"}},
  {"nearest to a size", {1, 2, 5, 6}, {size = {7, 13}, mode = "nearest"}},
  {"nearest down", {1, 2, 9, 8}, {size = {4, 3}, mode = "nearest"}},
  {"bilinear 2x", {2, 3, 5, 7}, {scale = 2, mode = "bilinear"}},
  {"bilinear align_corners", {1, 2, 4, 6}, {size = {9, 11}, mode = "bilinear", align_corners = true}},
  {"bilinear fractional scale", {1, 1, 6, 5}, {scale = 1.7, mode = "bilinear"}},
  {"bilinear to 1x1", {1, 2, 3, 3}, {size = {1, 1}, mode = "bilinear"}},
}

test("upsample: every backend matches the reference (f32 and f64, forward and backward)", function()
  sg.manual_seed(11)
  for _, c in ipairs(cases) do
    for _, dt in ipairs{"f32", "f64"} do
      local x = sg.randn(c[2], dt)
      B.compare(c[1] .. " " .. dt, function(t) return F.upsample(t, c[3]) end, {x})
    end
  end
end)

test("upsample: nearest copies exactly, also inf and NaN", function()
  local x = sg.tensor{{{{1, math.huge}, {0 / 0, -math.huge}}}}
  B.compare("nearest specials", function(t) return F.upsample(t, {scale = 2, mode = "nearest"}) end, {x},
    {exact = true})
end)

test("upsample: reference gradients against finite differences", function()
  sg.manual_seed(12)
  for _, c in ipairs(cases) do
    local x = sg.randn(c[2], "f64")
    B.gradcheck(c[1], function(t) return F.upsample(t, c[3]) end, {x})
  end
end)

-- ---------------------------------------------------------------- upsampling on the GPU; own kernels repeat bit for bit (was tests/test_cuda_nn_ops.lua)
do
  local G = require "tests.ops.gpu_nn"
  local F, DEV, need_dev, need_cuda, copy, f64, leaf_pair, rounded, close, same_bits, on_dev, randn, pool_case =
    G.F, G.DEV, G.need_dev, G.need_cuda, G.copy, G.f64, G.leaf_pair, G.rounded, G.close, G.same_bits, G.on_dev, G.randn,
    G.pool_case
  -- ------------------------------------------------------------------ upsampling
  test("upsample on cuda: nearest and bilinear (both corner rules), sizes and scales, forward and backward", function()
    need_dev()
    sg.manual_seed(71)
    local CASES = {
      {x={2, 3, 4, 5}, o={scale=2}},
      {x={1, 2, 4, 5}, o={size={7, 9}}},
      {x={1, 2, 6, 4}, o={scale=1.5}},
      {x={1, 2, 7, 5}, o={size={3, 2}}},
      {x={2, 1, 5, 5}, o={size={5, 5}}},
      {x={1, 3, 5, 7}, o={scale={0.6, 1.7}}},
      {x={1, 1, 1, 1}, o={size={3, 4}}},
      {x={1, 2, 16, 12}, o={scale=4}},
    }
    for k, c in ipairs(CASES) do
      for _, mode in ipairs({"nearest", "bilinear"}) do
        for _, align in ipairs(mode == "bilinear" and {false, true} or {false}) do
          local o = copy(c.o)
          o.mode, o.align_corners = mode, align
          local label = "case " .. k .. " " .. mode .. (align and " align_corners" or "")
          pool_case(label, randn(c.x, "f32"), function(x) return F.upsample(x, o) end)
          pool_case(label .. " f64", randn(c.x), function(x) return F.upsample(x, o) end, "f64", 1e-10)
        end
      end
    end
  end)

  test("upsample on cuda in 16 bits", function()
    need_cuda()
    sg.manual_seed(72)
    for _, dt in ipairs({"bf16", "f16"}) do
      pool_case("bilinear " .. dt, randn({2, 3, 5, 6}, dt), function(x) return F.upsample(x, {scale=2, mode="bilinear"}) end,
                dt, 2e-2)
      pool_case("nearest " .. dt, randn({2, 3, 5, 6}, dt), function(x) return F.upsample(x, {size={7, 13}}) end, dt, 2e-2)
    end
  end)

  -- ------------------------------------------------------------------ determinism of the own kernels
  test("pooling, norm and upsampling backwards on cuda repeat bit for bit", function()
    need_dev()
    sg.manual_seed(81)
    local x64 = sg.randn({4, 8, 33, 29}, "f64")
    local function grads(fn)
      local x = x64:to("f32"):to(DEV):requires_grad()
      local y = fn(x)
      y:backward(sg.ones(y.shape, "f64"):to("f32"):to(DEV))
      return x.grad
    end
    local FNS = {
      max_pool = function(x) return (F.max_pool2d(x, {kernel=3, stride=2, padding=1})) end,
      avg_pool = function(x) return F.avg_pool2d(x, {kernel=3, stride=2, padding=1}) end,
      adaptive = function(x) return F.adaptive_avg_pool2d(x, {5, 7}) end,
      batch_norm = function(x) return F.batch_norm(x, nil, nil, nil, nil, {training=true}) end,
      group_norm = function(x) return F.group_norm(x, 4) end,
      bilinear = function(x) return F.upsample(x, {scale=1.7, mode="bilinear"}) end,
    }
    for name, fn in pairs(FNS) do same_bits(grads(fn), grads(fn), name) end
  end)
end

-- ---------------------------------------------------------------- the f32 cpu kernels against the f64 loops (was tests/test_cpu_kernels.lua)
do
  local C = require "tests.ops.cpu_fast"
  local F, same, both, on_threads, close = C.F, C.same, C.both, C.on_threads, C.close
  test("nearest upsampling (f32 kernels) equals the generic loops bitwise", function()
    sg.manual_seed(41)
    local cases = {
      {{2, 3, 5, 7}, {scale = 2}}, {{1, 2, 64, 96}, {scale = 2}}, {{2, 3, 5, 7}, {scale = 3}},
      {{2, 2, 5, 7}, {scale = {2, 1.5}}}, {{1, 3, 6, 4}, {size = {7, 11}}}, {{2, 2, 9, 8}, {size = {4, 3}}},
      {{1, 1, 1, 1}, {size = {3, 2}}}, {{3, 40, 33, 33}, {scale = 2}},
    }
    on_threads(function(t)
      for k, c in ipairs(cases) do
        local what = string.format("case %d on %d threads", k, t)
        local y, yr, g, gr = both({sg.randn(c[1])}, function(x) return F.upsample(x, c[2]) end)
        same(y, yr, what .. " output")
        same(g[1], gr[1], what .. " gradient")
      end
    end)
  end)
end
