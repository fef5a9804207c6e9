-- The hand-written f32 CPU kernels (engine/backend_cpu/cpu_kernels.c) against
-- the generic loops: the same values run through the f64 loops (which add in
-- the same order, in double) and are compared after rounding to f32, on
-- several thread counts.
local F = sg.nn_functional

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
