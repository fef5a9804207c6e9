-- gelu (exact x * Phi(x) and approximate = "tanh"): known values, every backend against the reference
-- forward and backward (f32 and f64, oneDNN-sized, strided, large |x|, inf and NaN), finite differences on
-- the reference, and the Lua face (options, nn.GELU).
local B = require "tests.ops.backends"
local F, nn = sg.F, sg.nn
local FORMS = {{"exact", nil}, {"tanh", {approximate = "tanh"}}}

-- the values python3's math.erf / math.tanh give for 0.5 x (1 + erf(x / sqrt 2)) and the tanh form
test("gelu: known values on every backend", function()
  local xs = {1, -1, 0.5, -3, 0}
  local exact = {0.8413447460685429, -0.15865525393145707, 0.34573123063700656, -0.00404969409489031, 0}
  local tanh1 = 0.8411919906082768
  for _, backend in ipairs{"reference", table.unpack(B.list())} do
    local prev = sg.config.reference
    sg.config.reference = backend == "reference"
    local dev = backend == "cuda" and "cuda" or "cpu"
    local ok, err = pcall(function()
      for _, dt in ipairs{"f64", "f32"} do
        local tol = dt == "f64" and 1e-14 or 1e-7
        local x = sg.tensor(xs, dt):to(dev)
        check.near(F.gelu(x):cpu(), exact, tol, tol, backend .. " " .. dt .. " exact")
        check.near(x:gelu({approximate = "tanh"}):cpu()[1]:item(), tanh1, tol, tol, backend .. " " .. dt .. " tanh")
        check.near(x:gelu({approximate = "none"}):cpu(), exact, tol, tol, backend .. " " .. dt .. " none")
      end
    end)
    sg.config.reference = prev
    if not ok then error(err, 0) end
  end
end)

test("gelu: every backend matches the reference (f32 and f64, forward and backward)", function()
  sg.manual_seed(21)
  local shapes = {{7}, {3, 5, 4}, {2, 3, 80, 90}} -- the last is past oneDNN's size threshold
  for _, form in ipairs(FORMS) do
    for _, dt in ipairs{"f32", "f64"} do
      for _, shape in ipairs(shapes) do
        local x = sg.randn(shape, dt) * 3
        local name = string.format("gelu %s %s %s", form[1], dt, table.concat(shape, "x"))
        B.compare(name, function(t) return F.gelu(t, form[2]) end, {x})
        -- a strided view: the loops' general case
        B.compare(name .. " transposed", function(t) return F.gelu(t:transpose(1, -1), form[2]) end, {x})
      end
    end
  end
end)

test("gelu: the cpu's own loops (oneDNN off) match the reference", function()
  if not F._dnnl() then skip("built without oneDNN: the loops already ran above") end
  sg.manual_seed(22)
  local x = sg.randn({2, 3, 80, 90}) * 3
  for _, form in ipairs(FORMS) do
    F._dnnl(false)
    local ok, err = pcall(B.compare, "gelu " .. form[1] .. " loops", function(t) return F.gelu(t, form[2]) end,
      {x}, {backends = {"cpu"}})
    F._dnnl(true)
    if not ok then error(err, 0) end
  end
  F.gelu(x:requires_grad())
  check.eq(F._eltwise_path(), "dnnl", "a large contiguous f32 gelu runs on oneDNN")
end)

test("gelu: large |x| on every backend", function()
  local big = {-1e30, -1e4, -60, -30, -12, -8, -5, 5, 8, 12, 30, 60, 1e4, 1e30}
  for _, form in ipairs(FORMS) do
    for _, dt in ipairs{"f32", "f64"} do
      B.compare("gelu " .. form[1] .. " large " .. dt, function(t) return F.gelu(t, form[2]) end,
        {sg.tensor(big, dt)}, {rtol = 1e-5, rtol64 = 1e-12})
    end
  end
end)

-- NaN-aware comparison: NaN where the other has NaN, infinities equal, else near
local function same(got, want, tol, what)
  for i = 1, want:numel() do
    local g, w = got[i]:item(), want[i]:item()
    local ok = (g ~= g and w ~= w) or g == w or math.abs(g - w) <= tol * (1 + math.abs(w))
    check.truthy(ok, string.format("%s: element %d: got %s, want %s", what, i, g, w))
  end
end

test("gelu: inf and NaN on every backend (limits 0 at -inf, x at +inf)", function()
  local specials = {math.huge, -math.huge, 0 / 0, 0, -0.0, 40, -40}
  local want = {exact = {math.huge, 0, 0 / 0, 0, 0, 40, 0}, tanh = {math.huge, 0, 0 / 0, 0, 0, 40, 0}}
  local wgrad = {1, 0, 0 / 0, 0.5, 0.5, 1, 0} -- d/dx: 1 at +inf, 0 at -inf, NaN stays NaN
  for _, form in ipairs(FORMS) do
    for _, dt in ipairs{"f32", "f64"} do
      for _, backend in ipairs{"reference", table.unpack(B.list())} do
        local prev = sg.config.reference
        sg.config.reference = backend == "reference"
        local dev = backend == "cuda" and "cuda" or "cpu"
        local ok, err = pcall(function()
          local x = sg.tensor(specials, dt):to(dev):requires_grad()
          local y = F.gelu(x, form[2])
          y:sum():backward()
          local what = string.format("%s %s %s", backend, form[1], dt)
          same(y:detach():cpu(), sg.tensor(want[form[1]], "f64"), 1e-6, what .. " forward")
          same(x.grad:cpu(), sg.tensor(wgrad, "f64"), 1e-6, what .. " gradient")
        end)
        sg.config.reference = prev
        if not ok then error(err, 0) end
      end
    end
  end
end)

test("gelu: reference gradients against finite differences (f64)", function()
  sg.manual_seed(23)
  for _, form in ipairs(FORMS) do
    B.gradcheck("gelu " .. form[1], function(t) return F.gelu(t, form[2]) end, {sg.randn({3, 4}, "f64") * 2})
  end
end)

test("gelu: dtypes, in place, and options", function()
  check.eq(F.gelu(sg.tensor{1, 2, 3}:to("i64")).dtype, "f32", "integers give f32")
  local h = sg.randn{5, 6}
  check.near(F.gelu(h:to("bf16")):float(), F.gelu(h:to("bf16"):float()), 1e-2, 1e-2, "bf16")
  local y = h:clone()
  y:gelu_({approximate = "tanh"})
  check.near(y, F.gelu(h, {approximate = "tanh"}), 0, 0, "in place")
  check.errors(function() F.gelu(h, {approx = "tanh"}) end, "gelu: unknown option 'approx'")
  check.errors(function() F.gelu(h, {approximate = "fast"}) end, "approximate must be \"none\" or \"tanh\" (got fast)")
  check.errors(function() nn.GELU({approximate = true}) end, "approximate must be")
  check.near(nn.GELU({approximate = "tanh"})(h), F.gelu(h, {approximate = "tanh"}), 0, 0, "nn.GELU tanh")
  check.near(nn.GELU()(h), F.gelu(h), 0, 0, "nn.GELU")
end)
