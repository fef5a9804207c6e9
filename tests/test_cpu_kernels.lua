-- The hand-written f32 CPU kernels (engine/backend_cpu/cpu_kernels.c) against
-- the generic loops: the same values run through the f64 loops (which add in
-- the same order, in double) and are compared after rounding to f32, on
-- several thread counts.
local F = sg.F

-- bitwise equality of two f32 tensors (NaN == NaN)
local function same(got, want, what)
  check.eq(got.dtype, want.dtype, what .. " dtype")
  check.eq(got.shape, want.shape, what .. " shape")
  local differ = got:ne(want):logical_and(got:eq(got):logical_or(want:eq(want))):sum():item()
  check.eq(differ, 0, what .. ": elements that differ")
end

-- runs fn on f32 leaves and on f64 copies with the same output gradient;
-- returns the f32 results and gradients and the f64 ones rounded to f32
local function both(inputs, fn)
  local function run(dt)
    local leaves = {}
    for k, t in ipairs(inputs) do leaves[k] = t:detach():to(dt):clone():requires_grad() end
    local y = fn(table.unpack(leaves))
    return leaves, y
  end
  local l32, y32 = run("f32")
  local l64, y64 = run("f64")
  local gy = sg.randn(y32.shape)
  y32:backward(gy)
  y64:backward(gy:to("f64"))
  local g32, g64 = {}, {}
  for k = 1, #inputs do g32[k], g64[k] = l32[k].grad, l64[k].grad:to("f32") end
  return y32, y64:to("f32"), g32, g64
end

local function on_threads(fn)
  local t0 = F._threads()
  for _, t in ipairs{1, 2, 3} do
    F._threads(t)
    fn(t)
  end
  F._threads(t0)
end

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

test("Adam, AdamW and AMSGrad on f32 (threaded kernel) follow the f64 update and do not depend on threads", function()
  local n = 300007 -- above the threading threshold, and not a multiple of any vector width
  local variants = {{sg.optim.adam, {lr = 1e-2, weight_decay = 0.1}}, {sg.optim.adamw, {lr = 1e-2}},
                    {sg.optim.adam, {lr = 1e-2, amsgrad = true, betas = {0.8, 0.9}}}}
  for vi, v in ipairs(variants) do
    local function run(dt, threads)
      F._threads(threads)
      sg.manual_seed(50 + vi)
      local p = sg.randn({n}, dt):requires_grad()
      local opt = v[1]({p}, v[2])
      for _ = 1, 4 do
        opt:zero_grad()
        local loss = (p * p):sum() * 0.5 + p:sum()
        loss:backward()
        opt:step()
      end
      return p:detach()
    end
    local t0 = F._threads()
    local a, b, c = run("f32", 1), run("f32", 3), run("f64", 1)
    F._threads(t0)
    same(a, b, "variant " .. vi .. " on 1 and 3 threads")
    check.near(a, c, 1e-6, 1e-5, "variant " .. vi .. " f32 against f64")
  end
end)

-- |got - want| <= tol * (1 + max |want|)
local function close(got, want, tol, what)
  check.eq(got.dtype, want.dtype, what .. " dtype")
  local scale = want:numel() > 0 and want:abs():amax():item() or 0
  check.near(got, want, tol * (1 + scale), 0, what)
end

test("batch norm (f32 kernels, with and without the fused ReLU) matches the f64 loops", function()
  sg.manual_seed(34)
  math.randomseed(34)
  local r = math.random
  for k = 1, 40 do
    local shape = ({{r(1, 4), r(1, 9), r(1, 8), r(1, 8)}, {r(2, 6), r(1, 9)}, {r(1, 3), r(1, 5), r(2, 9)},
                    {r(1, 3), r(1, 20), r(9, 40), r(9, 40)}})[r(4)]
    local C = shape[2]
    local training, relu = r(2) == 1, r(2) == 1
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    if training and n // C <= 1 then shape[1] = shape[1] + 1 end
    local with_w, with_b, with_stats = r(3) > 1, r(3) > 1, not training or r(2) == 1
    local label = string.format("case %d (x {%s}, %s%s, weight %s, bias %s, stats %s)", k, table.concat(shape, ","),
      training and "training" or "eval", relu and ", relu" or "", tostring(with_w), tostring(with_b),
      tostring(with_stats))
    local rm0, rv0 = sg.randn{C}, sg.rand{C} + 0.5
    local inputs = {sg.randn(shape) * 3 + 1}
    if with_w then inputs[#inputs + 1] = sg.randn{C} end
    if with_b then inputs[#inputs + 1] = sg.randn{C} end
    local stats = {}
    local function fn(x, a, b)
      local w = with_w and a or nil
      local bias = with_b and (with_w and b or a) or nil
      local rm, rv = with_stats and rm0:to(x.dtype):clone() or nil, with_stats and rv0:to(x.dtype):clone() or nil
      local y = F.batch_norm(x, rm, rv, w, bias, {training = training, momentum = 0.3, eps = 1e-4, relu = relu})
      stats[#stats + 1] = rm and {rm, rv} or nil
      check.eq(F._bn_path(), x.dtype == "f32" and "kernel" or "loops", label .. ": path")
      return y
    end
    local y, yr, g, gr = both(inputs, fn)
    close(y, yr, 1e-5, label .. ": output")
    for i = 1, #g do close(g[i], gr[i], 1e-5, label .. ": gradient " .. i) end
    if with_stats then
      close(stats[1][1], stats[2][1]:to("f32"), 1e-6, label .. ": running mean")
      close(stats[1][2], stats[2][2]:to("f32"), 1e-6, label .. ": running var")
    end
  end
end)

test("batch norm kernels: the fused ReLU equals relu(batch_norm), results do not depend on threads", function()
  sg.manual_seed(35)
  local x0, w0, b0 = sg.randn{4, 24, 33, 31} * 2 + 0.5, sg.randn{24}, sg.randn{24}
  local gy = sg.randn{4, 24, 33, 31}
  local function run(threads, fused, training)
    F._threads(threads)
    local x, w, b = x0:clone():requires_grad(), w0:clone():requires_grad(), b0:clone():requires_grad()
    local rm, rv = sg.zeros{24}, sg.ones{24}
    local o = {training = training, relu = fused}
    local y = fused and F.batch_norm(x, rm, rv, w, b, o) or F.batch_norm(x, rm, rv, w, b, o):relu()
    y:backward(gy)
    return {y:detach(), x.grad, w.grad, b.grad, rm, rv}
  end
  local t0 = F._threads()
  for _, training in ipairs{true, false} do
    local a, b, c = run(1, true, training), run(3, true, training), run(2, false, training)
    for i = 1, #a do
      same(a[i], b[i], string.format("result %d (training %s) on 1 and 3 threads", i, tostring(training)))
      close(a[i], c[i], 1e-6, string.format("result %d (training %s) fused against two ops", i, tostring(training)))
    end
  end
  F._threads(t0)
end)

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

test("f32 sums over a block of leading or middle dims (in place) equal the row path bitwise", function()
  sg.manual_seed(61)
  local cases = {{{4, 32, 64, 64}, {2}}, {{4, 32, 64, 64}, {1}}, {{3, 5, 7, 9}, {2, 3}}, {{3, 5, 7, 9}, {1, 2}},
                 {{2, 3, 1000}, {2}}, {{6, 0, 4}, {2}}, {{2, 3, 4, 5}, {1, 2, 3}}}
  on_threads(function(t)
    for k, c in ipairs(cases) do
      local x = sg.randn(c[1]) * 3
      -- the same values as a non-contiguous view: summed through the transposing copy to rows
      local xv = x:transpose(1, #c[1]):contiguous():transpose(1, #c[1])
      check.eq(xv:is_contiguous(), #c[1] == 1 or c[1][1] == 1 or c[1][#c[1]] == 1, "the view is strided")
      local a = x:sum(c[2], true)
      local b = xv:sum(c[2], true)
      same(a, b, string.format("case %d on %d threads", k, t))
    end
  end)
end)
