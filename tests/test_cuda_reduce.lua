-- Reductions on the GPU against the CPU reference: sum, mean, prod, amax,
-- amin, all, any, count_nonzero, var, std, norm, max/min with a dim (values and
-- first indices), argmax/argmin (per dim and flat) over every set of dims,
-- keepdim, non-contiguous and broadcast inputs, f32/f64/f16/bf16/i64/i32/u8/
-- bool, shapes that take each kernel plan (one long row split over blocks,
-- many short rows, reductions over leading dims), forward values and the
-- gradients of a weighted sum. Every test skips when no CUDA device is usable.
--
-- Both devices accumulate floats in double, in different orders, so sums of
-- f32 agree to about one f32 rounding (rtol 1e-5) and f64 to 1e-12 of the
-- largest magnitude; integer, bool and index results must be equal.

local C = require("tests.cuda_compare")(check, skip)
local need_cuda, is_float, TOL, close, compare, randn, positive =
  C.need_cuda, C.is_float, C.TOL, C.close, C.compare, C.randn, C.positive


-- every non-empty subset of dims 1..n (as tables)
local function subsets(n)
  local out = {}
  for m = 1, (1 << n) - 1 do
    local s = {}
    for d = 1, n do if m & (1 << (d - 1)) ~= 0 then s[#s + 1] = d end end
    out[#out + 1] = s
  end
  return out
end
local function name_of(dims) return dims and ("{" .. table.concat(dims, ",") .. "}") or "all" end

test("sum, mean, prod, amax, amin over every set of dims, keepdim, f32 and f64", function()
  need_cuda()
  sg.manual_seed(21)
  for _, shape in ipairs{{3, 4, 5}, {2, 3, 4, 5}} do
    for _, dt in ipairs{"f32", "f64"} do
      local x = sg.randn(shape):to(dt)
      local p = (sg.rand(shape) * 0.5 + 0.75):to(dt) -- products stay near 1
      local sets = subsets(#shape)
      sets[#sets + 1] = false -- no dims: everything
      for _, dims in ipairs(sets) do
        local d = dims or nil
        for _, keep in ipairs{false, true} do
          local what = dt .. " " .. #shape .. "d " .. name_of(d) .. (keep and " keepdim" or "")
          for _, op in ipairs{"sum", "mean", "amax", "amin"} do
            compare(op .. " " .. what, function(t) return t[op](t, d, keep) end, {x})
          end
          compare("prod " .. what, function(t) return t:prod(d, keep) end, {p})
        end
      end
    end
  end
end)

test("reductions of non-contiguous and broadcast views", function()
  need_cuda()
  sg.manual_seed(22)
  local x = sg.randn({6, 5, 4})
  local views = {
    transposed = function(t) return t:transpose(1, 3) end,
    permuted = function(t) return t:permute({2, 3, 1}) end,
    sliced = function(t) return t:slice(1, 2, 6, 2):slice(3, 1, 4, 3) end,
    expanded = function(t) return t:narrow(2, 3, 1):expand(6, 7, 4) end,
    selected = function(t) return t:select(2, 4) end,
  }
  for vname, view in pairs(views) do
    local nd = #view(x).shape
    for _, dims in ipairs(subsets(nd)) do
      for _, op in ipairs{"sum", "amax", "amin", "prod"} do
        compare(op .. " of " .. vname .. " over " .. name_of(dims), function(t) return view(t)[op](view(t), dims) end,
          {x})
      end
      compare("argmax of " .. vname .. " dim " .. dims[1], function(t) return view(t):argmax(dims[1]) end, {x},
        {grad = false})
    end
  end
end)

test("integer and bool reductions; all, any, count_nonzero", function()
  need_cuda()
  sg.manual_seed(23)
  local i = sg.randint(-50, 50, {4, 6, 5})
  for _, dt in ipairs{"i64", "i32", "u8", "bool"} do
    local t = dt == "bool" and i:gt(0) or dt == "u8" and (i + 50):to("u8") or i:to(dt)
    for _, dims in ipairs{{1}, {2}, {3}, {1, 3}, {2, 3}} do
      for _, op in ipairs{"sum", "amax", "amin", "all", "any", "count_nonzero"} do
        compare(op .. " " .. dt .. " " .. name_of(dims), function(x) return x[op](x, dims) end, {t})
        compare(op .. " " .. dt .. " " .. name_of(dims) .. " keepdim", function(x) return x[op](x, dims, true) end,
          {t})
      end
      compare("prod " .. dt .. " " .. name_of(dims), function(x) return x:prod(dims) end, {t})
    end
    compare("sum " .. dt .. " all", function(x) return x:sum() end, {t})
  end
  -- int64 sums and products wrap like the CPU's
  local big = sg.tensor({9223372036854775807, 5, 3, -2}, "i64")
  compare("i64 sum wraps", function(x) return x:sum() end, {big})
  compare("i64 prod wraps", function(x) return x:prod() end, {big})
  -- floats: NaN counts as nonzero (true)
  local f = sg.tensor({{0, 0.5, 0 / 0}, {0, 0, 0}, {-1, 2, 3}})
  for _, op in ipairs{"all", "any", "count_nonzero"} do
    compare(op .. " f32 with NaN", function(x) return x[op](x, 2) end, {f}, {grad = false})
    compare(op .. " f32 all dims", function(x) return x[op](x) end, {f}, {grad = false})
  end
end)

test("max/min with a dim: values, first index on ties, first NaN; argmax/argmin", function()
  need_cuda()
  sg.manual_seed(24)
  -- few distinct values: many ties
  local x = (sg.randn({5, 6, 7}) * 1.5):to("i64"):to("f32")
  for d = 1, 3 do
    for _, keep in ipairs{false, true} do
      for _, op in ipairs{"max", "min"} do
        local what = op .. " dim " .. d .. (keep and " keepdim" or "")
        compare(what .. " values", function(t) local v = t[op](t, d, keep); return v end, {x})
        compare(what .. " indices", function(t) local _, ix = t[op](t, d, keep); return ix end, {x}, {grad = false})
      end
      compare("argmax dim " .. d, function(t) return t:argmax(d, keep) end, {x}, {grad = false})
      compare("argmin dim " .. d, function(t) return t:argmin(d, keep) end, {x}, {grad = false})
      compare("argmax i64 dim " .. d, function(t) return t:argmax(d, keep) end, {x:to("i64")})
    end
  end
  compare("argmax flat", function(t) return t:argmax() end, {x}, {grad = false})
  compare("argmin flat", function(t) return t:argmin() end, {x}, {grad = false})
  compare("argmax flat of a transposed view", function(t) return t:transpose(1, 3):argmax() end, {x}, {grad = false})
  compare("max of everything", function(t) return t:max() end, {x})
  -- NaN: the first NaN wins, for values and indices
  local nan = 0 / 0
  local n = sg.tensor({{1, nan, 3, nan}, {2, 2, -1, 2}, {nan, 0, 0, 5}, {-0.0, 0.0, -0.0, 0.0}})
  for d = 1, 2 do
    for _, op in ipairs{"max", "min"} do
      compare(op .. " with NaN dim " .. d, function(t) local v = t[op](t, d); return v end, {n}, {grad = false})
      compare(op .. " with NaN indices dim " .. d, function(t) local _, ix = t[op](t, d); return ix end, {n},
        {grad = false})
    end
  end
  compare("argmax with NaN flat", function(t) return t:argmax() end, {n}, {grad = false})
  compare("amax with NaN", function(t) return t:amax(2) end, {n}, {grad = false})
  compare("amin with NaN over dim 1", function(t) return t:amin(1) end, {n}, {grad = false})
  -- 0-dim input with a dim
  local v, i = sg.tensor(4.0):cuda():max(1)
  check.eq(v:item(), 4); check.eq(i:item(), 0); check.eq(i.device, "cuda")
  check.errors(function() return sg.zeros({0, 3}):cuda():max(1) end, "cannot reduce over an empty dimension")
  check.errors(function() return sg.zeros({0, 3}):cuda():argmax() end, "cannot reduce over an empty dimension")
end)

test("amax/amin gradients are shared between ties; max(dim) gradient goes to the first index", function()
  need_cuda()
  local x = sg.tensor({{1, 3, 3, 0}, {2, 2, 2, 2}, {5, -1, 5, 4}})
  compare("amax ties", function(t) return t:amax(2) end, {x})
  compare("amin ties all dims", function(t) return t:amin() end, {x})
  compare("max dim ties", function(t) local v = t:max(2); return v end, {x})
  compare("min dim keepdim ties", function(t) local v = t:min(1, true); return v end, {x})
end)

test("var, std, norm", function()
  need_cuda()
  sg.manual_seed(25)
  local x = sg.randn({4, 5, 6})
  for _, dt in ipairs{"f32", "f64"} do
    local t = x:to(dt)
    for _, dims in ipairs{{1}, {3}, {1, 2}, {2, 3}} do
      compare("var " .. dt .. " " .. name_of(dims), function(y) return y:var(dims) end, {t})
      compare("var keepdim correction 0 " .. dt, function(y) return y:var(dims, true, 0) end, {t})
      compare("std " .. dt .. " " .. name_of(dims), function(y) return y:std(dims) end, {t})
      for _, p in ipairs{1, 2, 3, math.huge} do
        compare("norm p=" .. p .. " " .. dt .. " " .. name_of(dims), function(y) return y:norm(p, dims) end, {t})
      end
    end
    compare("std of everything " .. dt, function(y) return y:std() end, {t})
    compare("norm of everything " .. dt, function(y) return y:norm() end, {t})
    compare("mean of everything " .. dt, function(y) return y:mean() end, {t})
  end
end)

test("f16 and bf16 reductions accumulate in double", function()
  need_cuda()
  sg.manual_seed(26)
  local x = sg.randn({16, 300})
  for _, dt in ipairs{"bf16", "f16"} do
    local t = x:to(dt)
    for _, op in ipairs{"sum", "mean", "amax", "amin"} do
      compare(op .. " " .. dt .. " dim 2", function(y) return y[op](y, 2) end, {t})
      compare(op .. " " .. dt .. " dim 1", function(y) return y[op](y, 1) end, {t})
      compare(op .. " " .. dt .. " all", function(y) return y[op](y) end, {t})
    end
    compare("argmax " .. dt, function(y) return y:argmax(2) end, {t}, {grad = false})
  end
end)

test("shapes that take each kernel plan", function()
  need_cuda()
  sg.manual_seed(27)
  local function sums(what, x, dims, opts)
    compare("sum " .. what, function(t) return t:sum(dims) end, {x}, opts)
    compare("amax " .. what, function(t) return t:amax(dims) end, {x}, opts)
    compare("count_nonzero " .. what, function(t) return t:gt(0):count_nonzero(dims) end, {x}, {grad = false})
  end
  -- one long row: split over many blocks, then the partials combined
  local long = sg.randn({1000003})
  sums("one long row", long, nil)
  compare("mean one long row f64", function(t) return t:mean() end, {long:to("f64")})
  compare("prod one long row", function(t) return t:prod() end, {(sg.rand({300001}) * 1e-3 + 0.9995):to("f64")})
  -- a few long rows, contiguous
  sums("[64, 100000] over dim 2", sg.randn({64, 100000}), {2})
  -- many short rows
  sums("[100000, 3] over dim 2", sg.randn({100000, 3}), {2})
  sums("[50000, 1] over dim 2", sg.randn({50000, 1}), {2})
  -- reductions over leading dims: outputs contiguous, rows strided
  sums("[200000, 7] over dim 1", sg.randn({200000, 7}), {1})
  sums("[3000, 500] over dim 1", sg.randn({3000, 500}), {1})
  sums("[8, 16, 32, 32] over {1, 3, 4} (per channel)", sg.randn({8, 16, 32, 32}), {1, 3, 4})
  sums("[8, 16, 32, 32] over {1} (batch)", sg.randn({8, 16, 32, 32}), {1})
  -- argmax over a long row and over long columns, with planted ties and NaNs
  local z = sg.zeros({1000003})
  z[777777] = 5; z[999999] = 5; z[12] = -5; z[500000] = -5
  compare("argmax long row, ties", function(t) return t:argmax() end, {z}, {grad = false})
  compare("argmin long row, ties", function(t) return t:argmin() end, {z}, {grad = false})
  z[654321] = 0 / 0; z[900000] = 0 / 0
  compare("argmax long row, NaN", function(t) return t:argmax() end, {z}, {grad = false})
  compare("amin long row, NaN", function(t) return t:amin() end, {z}, {grad = false})
  local c = sg.zeros({300000, 3})
  c[{250000, 2}] = 1; c[{260000, 2}] = 1; c[{100, 3}] = -1
  compare("argmax down long columns", function(t) return t:argmax(1) end, {c}, {grad = false})
  compare("argmin down long columns", function(t) return t:argmin(1) end, {c}, {grad = false})
  -- empty and 0-dim
  compare("sum over an empty dim", function(t) return t:sum(1) end, {sg.zeros({0, 3})})
  compare("prod over an empty dim", function(t) return t:prod(1) end, {sg.zeros({0, 3})})
  compare("all/any of empty", function(t) return t:all(1):logical_and(t:any(1):logical_not()) end,
    {sg.zeros({0, 4}):gt(0)}, {grad = false})
  compare("sum keeping an empty dim", function(t) return t:sum(2) end, {sg.zeros({0, 3})})
  compare("sum of 0-dim", function(t) return t:sum() end, {sg.tensor(2.5)})
  compare("amax of 0-dim", function(t) return t:amax() end, {sg.tensor(2.5)})
end)

test("reductions are deterministic", function()
  need_cuda()
  sg.manual_seed(28)
  local x = sg.randn({4000001}):cuda()
  local a, b = x:sum():item(), x:sum():item()
  check.eq(a, b, "sum twice")
  local m = sg.randn({1000, 3000}):cuda()
  check.eq(m:sum(1):cpu():totable(), m:sum(1):cpu():totable(), "column sums twice")
  check.eq(m:var(2):cpu():totable(), m:var(2):cpu():totable(), "row variances twice")
end)

test("gradients reduced back to broadcast inputs (sum_to) on the GPU", function()
  need_cuda()
  sg.manual_seed(29)
  compare("broadcast add then mean", function(x, y) return (x + y):mean({1, 2}) end,
    {sg.randn({4, 1, 5}), sg.randn({3, 1})})
  compare("bias-like gradient", function(x, b) return (x * b:view(1, 3, 1, 1)):sum() end,
    {sg.randn({2, 3, 4, 4}), sg.randn({3})})
  compare("softmax-like chain", function(x)
    local m = x:amax(2, true)
    local e = (x - m):exp()
    return e / e:sum(2, true)
  end, {sg.randn({5, 9})})
end)
