-- Reductions (sum, mean, prod, amax/amin, all/any, count_nonzero, max/min with a dim, argmax/argmin): every
-- backend against the reference on random shapes, dim sets, keepdim, dtypes and layouts (contiguous,
-- transposed, permuted, expanded), NaN rows, empty tensors; forward and input gradients; the reference's
-- gradients against finite differences. The cpu adds in the reference's order, so it must match bit for bit;
-- another device within a tolerance (its sums run in another order).
local B = require "tests.ops.backends"

local FLOATS, INTS = {"f32", "f64", "f16"}, {"i32", "i64", "u8", "bool"}

local function make(shape, dt)
  if dt == "f32" or dt == "f64" or dt == "f16" or dt == "bf16" then return sg.randn(shape, dt) end
  if dt == "bool" then return sg.randint(0, 2, shape, "i32"):to("bool") end
  if dt == "u8" then return sg.randint(0, 7, shape, "i32"):to("u8") end
  return sg.randint(-5, 6, shape, dt)
end

-- x of `shape` in a layout: "contiguous", "transposed" (first and last dims swapped), "permuted" (dims rotated),
-- "expanded" (a size-1 dim broadcast)
local function layout(shape, dt, how)
  local nd = #shape
  if how == "transposed" and nd >= 2 then
    local s = {table.unpack(shape)}
    s[1], s[nd] = shape[nd], shape[1]
    return make(s, dt):transpose(1, nd)
  elseif how == "permuted" and nd >= 3 then
    local s, p = {}, {}
    for d = 1, nd do s[d] = shape[d % nd + 1] end -- s is shape rotated left; permuting back rotates right
    for d = 1, nd do p[d] = (d - 2) % nd + 1 end
    return make(s, dt):permute(table.unpack(p))
  elseif how == "expanded" and nd >= 2 then
    local s = {table.unpack(shape)}
    s[2] = 1
    return make(s, dt):expand(table.unpack(shape))
  end
  return make(shape, dt)
end

local LAYOUTS = {"contiguous", "transposed", "permuted", "expanded"}

-- a random nonempty dim set of nd dims (1-based), or nil for all dims
local function random_dims(r, nd)
  if nd == 0 or r(4) == 1 then return nil end
  local dims = {}
  for d = 1, nd do if r(2) == 1 then dims[#dims + 1] = d end end
  if #dims == 0 then dims[1] = r(nd) end
  return dims
end

local function fmt(shape, dims, keep)
  return string.format("{%s} dims {%s}%s", table.concat(shape, ","), dims and table.concat(dims, ",") or "all",
    keep and " keepdim" or "")
end

-- the cpu exactly; other devices within a tolerance (f32 and f64; integer results exactly)
local function compare(name, fn, inputs, dt, opts)
  opts = opts or {}
  B.compare(name, fn, inputs, {exact = true, backends = {"cpu"}})
  local others = {}
  for _, b in ipairs(B.list()) do if b ~= "cpu" then others[#others + 1] = b end end
  if #others > 0 and dt ~= "f16" then
    B.compare(name, fn, inputs, {backends = others, exact = opts.exact_other, atol = 1e-4, rtol = 1e-4})
  end
end

local SUMLIKE = {
  {"sum", function(d, k) return function(t) return sg.sum(t, d, k) end end},
  {"prod", function(d, k) return function(t) return sg.prod(t, d, k) end end},
  {"all", function(d, k) return function(t) return sg.all(t, d, k) end end, exact = true},
  {"any", function(d, k) return function(t) return sg.any(t, d, k) end end, exact = true},
  {"count_nonzero", function(d, k) return function(t) return sg.count_nonzero(t, d, k) end end, exact = true},
  {"amax", function(d, k) return function(t) return sg.amax(t, d, k) end end, exact = true},
  {"amin", function(d, k) return function(t) return sg.amin(t, d, k) end end, exact = true},
}

test("reduce: every backend matches the reference on random shapes, dims, dtypes and layouts", function()
  sg.manual_seed(41)
  math.randomseed(41)
  local r = math.random
  for it = 1, 40 do
    local nd = r(0, 4)
    local shape = {}
    for d = 1, nd do shape[d] = r(1, 6) end
    local dims, keep = random_dims(r, nd), r(2) == 1
    local how = LAYOUTS[r(#LAYOUTS)]
    local dtypes = it % 2 == 0 and FLOATS or INTS
    for _, dt in ipairs(dtypes) do
      local x = layout(shape, dt, how)
      for _, op in ipairs(SUMLIKE) do
        -- prod of f16 overflows easily
        if not (op[1] == "prod" and dt == "f16") then
          local name = op[1] .. " " .. dt .. " " .. how .. " " .. fmt(shape, dims, keep)
          compare(name, op[2](dims, keep), {x}, dt, {exact_other = op.exact or dt ~= "f32" and dt ~= "f64"})
        end
      end
      if dt ~= "bool" and (dt == "f32" or dt == "f64") then
        compare("mean " .. dt .. " " .. how .. " " .. fmt(shape, dims, keep),
          function(t) return sg.mean(t, dims, keep) end, {x}, dt)
      end
    end
  end
end)

test("reduce: max/min and argmax/argmin along a dim (values, 0-based indices, gradients)", function()
  sg.manual_seed(42)
  math.randomseed(42)
  local r = math.random
  for it = 1, 25 do
    local nd = r(1, 4)
    local shape = {}
    for d = 1, nd do shape[d] = r(1, 6) end
    local dim, keep, how = r(nd), r(2) == 1, LAYOUTS[r(#LAYOUTS)]
    for _, dt in ipairs{"f32", "f64", "f16", "i32", "i64", "u8"} do
      local x = layout(shape, dt, how)
      if it % 3 == 0 and (dt == "f32" or dt == "f64") then x = x:relu() end -- many tied zeros
      local name = dt .. " " .. how .. " {" .. table.concat(shape, ",") .. "} dim " .. dim .. (keep and " keepdim" or "")
      compare("max " .. name, function(t) return {t:max(dim, keep)} end, {x}, dt, {exact_other = true})
      compare("min " .. name, function(t) return {t:min(dim, keep)} end, {x}, dt, {exact_other = true})
      compare("argmax " .. name, function(t) return t:argmax(dim, keep) end, {x}, dt, {exact_other = true})
      compare("argmin " .. name, function(t) return t:argmin(dim, keep) end, {x}, dt, {exact_other = true})
    end
  end
  -- ties (many equal values): the first position wins; the gradient of amax is shared among the ties
  local t = sg.tensor{{1, 3, 3, 0}, {2, 2, 2, 2}, {-1, 5, 0, 5}}
  compare("max ties", function(a) return {a:max(2)} end, {t}, "f32", {exact_other = true})
  compare("argmin ties", function(a) return a:argmin(2) end, {t}, "f32", {exact_other = true})
  compare("amax ties", function(a) return sg.amax(a, {2}) end, {t}, "f32", {exact_other = true})
  compare("argmax all", function(a) return a:argmax() end, {t}, "f32", {exact_other = true})
end)

test("reduce: NaN wins max/min and their positions (the first NaN of a row)", function()
  local nan = 0 / 0
  -- values only: a NaN output makes every gradient of the seeded loss NaN
  local function values(f) return function(t) local o = f(t); return o:detach() end end
  local function both(f) return function(t) local v, i = f(t); return {v:detach(), i} end end
  for _, dt in ipairs{"f32", "f64"} do
    local x = sg.tensor({{1, nan, 3, nan}, {nan, 2, -1, 0}, {4, 5, 6, 7}, {-2, -3, nan, 9}}, dt)
    for dim = 1, 2 do
      compare("max nan " .. dt .. " dim " .. dim, both(function(t) return t:max(dim) end), {x}, dt, {exact_other = true})
      compare("min nan " .. dt .. " dim " .. dim, both(function(t) return t:min(dim) end), {x}, dt, {exact_other = true})
      compare("argmax nan " .. dt, function(t) return t:argmax(dim) end, {x}, dt, {exact_other = true})
      compare("amin nan " .. dt, values(function(t) return sg.amin(t, {dim}) end), {x}, dt, {exact_other = true})
    end
    local i = x:argmax(2)
    check.eq(i:totable(), {1, 0, 3, 2}, "argmax takes the first NaN")
    check.eq(x:argmin(1):totable(), {1, 0, 3, 0}, "argmin takes the first NaN")
    compare("sum nan " .. dt, values(function(t) return sg.sum(t, {2}) end), {x}, dt, {exact_other = true})
  end
end)

test("reduce: empty tensors", function()
  for _, dt in ipairs{"f32", "f64", "i64", "bool"} do
    local x = make({0, 3}, dt)
    for _, op in ipairs(SUMLIKE) do
      if op[1] ~= "amax" and op[1] ~= "amin" then
        compare(op[1] .. " empty rows " .. dt, op[2]({1}, false), {x}, dt, {exact_other = true})
        compare(op[1] .. " empty output " .. dt, op[2]({2}, true), {x}, dt, {exact_other = true})
        compare(op[1] .. " empty all " .. dt, op[2](nil, false), {x}, dt, {exact_other = true})
      end
    end
    compare("amax empty output " .. dt, function(t) return sg.amax(t, {2}) end, {x}, dt, {exact_other = true})
    check.errors(function() return sg.amax(x, {1}) end, "cannot reduce over an empty dimension")
    check.errors(function() return x:argmin(1) end, "cannot reduce over an empty dimension")
  end
  check.eq(sg.zeros(0, 3):sum(1):totable(), {0, 0, 0})
  check.eq(sg.ones(2, 0):prod(2):totable(), {1, 1})
  check.eq(sg.zeros({2, 0}, "bool"):all(2):totable(), {true, true})
end)

test("reduce: f32 sums on the cpu's fast paths (middle block, rows, strided) match the reference bit for bit",
  function()
  sg.manual_seed(43)
  local cases = {
    {{4, 8, 16, 16}, {1, 3, 4}}, {{4, 8, 16, 16}, {2}}, {{4, 8, 16, 16}, {2, 3}}, {{4, 8, 16, 16}, {1, 2}},
    {{4, 8, 16, 16}, {4}}, {{3, 700, 5}, {2}}, {{2, 3, 1000}, {1}}, {{6, 1, 9}, {2}}, {{5, 7}, nil},
  }
  for _, c in ipairs(cases) do
    for _, how in ipairs{"contiguous", "transposed", "permuted"} do
      local x = layout(c[1], "f32", how)
      for _, keep in ipairs{false, true} do
        compare("sum f32 " .. how .. " " .. fmt(c[1], c[2], keep), function(t) return sg.sum(t, c[2], keep) end,
          {x}, "f32")
      end
    end
  end
  -- the same bits for any thread count
  local x = sg.randn{8, 16, 32, 32}
  local prev = sg.config.threads
  sg.config.threads = 1
  local one = {x:sum({1, 3, 4}), x:sum({2}), x:sum({2, 3})}
  sg.config.threads = 2
  local two = {x:sum({1, 3, 4}), x:sum({2}), x:sum({2, 3})}
  sg.config.threads = prev
  for k = 1, 3 do check.eq(one[k]:eq(two[k]):all():item(), true, "threads " .. k) end
end)

test("reduce: reference gradients against finite differences (f64)", function()
  sg.manual_seed(44)
  local x = sg.randn({3, 4, 5}, "f64")
  B.gradcheck("sum", function(t) return sg.sum(t, {1, 3}) end, {x})
  B.gradcheck("sum keepdim", function(t) return sg.sum(t, {2}, true) end, {x})
  B.gradcheck("mean", function(t) return sg.mean(t, {3}) end, {x})
  B.gradcheck("prod", function(t) return sg.prod(t, {2}) end, {x})
  B.gradcheck("prod with a zero", function(t) return sg.prod(t, {2}) end,
    {sg.tensor({{1.5, 0, 2}, {0.5, -1, 3}}, "f64")})
  B.gradcheck("amax", function(t) return sg.amax(t, {1, 2}) end, {x})
  B.gradcheck("amin all", function(t) return sg.amin(t) end, {x})
  B.gradcheck("max dim", function(t) return (t:max(3)) end, {x})
  B.gradcheck("min dim keepdim", function(t) return (t:min(1, true)) end, {x})
  B.gradcheck("var", function(t) return sg.var(t, {2}) end, {x})
end)

-- ---------------------------------------------------------------- on the GPU (was tests/test_cuda_reduce.lua)
do
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
end

-- ---------------------------------------------------------------- values, dims and errors (was tests/test_reduce.lua)
do
  -- Reductions over any set of dims (torch goldens).
  local X = {{{1, -2, 3, 0.5}, {4, 5, -6, 2}}, {{7, 8, 9, -1}, {-10, 11, 12, 3}}} -- [2,2,4]
  local function x64() return sg.tensor(X, "f64") end

  test("sum over dim sets, keepdim", function()
    local x = x64()
    check.eq(x:sum():item(), 46.5)
    check.eq(x:sum({1, 3}):totable(), {25.5, 21})
    check.eq(x:sum({1, 3}, true).shape, {1, 2, 1})
    check.eq(x:sum({-1, 1}):totable(), {25.5, 21})
    check.eq(x:sum(2):totable(), {{5, 3, -3, 2.5}, {-3, 19, 21, 2}})
    check.eq(x:sum(2, true).shape, {2, 1, 4})
    check.eq(x:sum(nil, true).shape, {1, 1, 1})
    check.eq(x:sum({1, 2, 3}):item(), 46.5)
    check.eq(sg.sum(x, 3):totable(), {{2.5, 5}, {23, 16}})
    -- f32 and the non-contiguous input
    check.eq(sg.tensor(X):sum({1, 3}):totable(), {25.5, 21})
    check.eq(x:transpose(1, 3):sum(1):totable(), {{2.5, 23}, {5, 16}})
    check.eq(x:transpose(1, 3):sum(3):totable(), {{8, -6}, {6, 16}, {12, 6}, {-0.5, 5}})
    -- integer and bool sums are i64
    check.eq(sg.tensor({1, 2, 3}, "i32"):sum().dtype, "i64")
    check.eq(sg.tensor({true, true, false}, "bool"):sum():item(), 2)
    -- empty
    check.eq(sg.zeros(0, 3):sum():item(), 0)
    check.eq(sg.zeros(0, 3):sum(1):totable(), {0, 0, 0})
    -- 0-dim
    check.eq(sg.tensor(5):sum():item(), 5)
  end)

  test("mean and prod", function()
    local x = x64()
    check.eq(x:mean(2):totable(), {{2.5, 1.5, -1.5, 1.25}, {-1.5, 9.5, 10.5, 1}})
    check.eq(x:mean():item(), 46.5 / 16)
    check.eq(x:mean({2, 3}, true).shape, {2, 1, 1})
    check.eq(x:prod(3):totable(), {{-3, -240}, {-504, -3960}})
    check.eq(sg.tensor({{1, 2}, {3, 4}}, "i64"):prod(1):totable(), {3, 8})
    check.eq(sg.tensor({2, 0, 5}):prod():item(), 0)
    check.errors(function() return sg.tensor({1, 2}, "i64"):mean() end, "mean: needs a floating-point tensor")
  end)

  test("max/min with dim: values and 0-based indices", function()
    local x = x64()
    local v, i = x:max(3)
    check.eq(v:totable(), {{3, 5}, {9, 12}})
    check.eq(i:totable(), {{2, 1}, {2, 2}}); check.eq(i.dtype, "i64")
    v, i = x:min(1)
    check.eq(v:totable(), {{1, -2, 3, -1}, {-10, 5, -6, 2}})
    check.eq(i:totable(), {{0, 0, 0, 1}, {1, 0, 0, 0}})
    v, i = x:max(-1, true)
    check.eq(v.shape, {2, 2, 1}); check.eq(i.shape, {2, 2, 1})
    check.eq(i:totable(), {{{2}, {1}}, {{2}, {2}}})
    -- ints
    v, i = sg.tensor({{3, 9, 9}, {-1, -5, 0}}, "i64"):max(2)
    check.eq(v:totable(), {9, 0}); check.eq(i:totable(), {1, 2}) -- first of ties
    -- no dim: the extreme value, 0-dim
    check.eq(x:max():item(), 12); check.eq(x:min():item(), -10); check.eq(x:max().ndim, 0)
    -- 0-dim input with a dim
    v, i = sg.tensor(4.0):max(1)
    check.eq(v:item(), 4); check.eq(i:item(), 0)
    check.errors(function() return sg.zeros(0, 3):max(1) end, "cannot reduce over an empty dimension")
  end)

  test("NaN propagates in max/min/amax/argmax", function()
    local t = sg.tensor({{1, 0 / 0, 3}, {1, 2, 3}})
    local v, i = t:max(2)
    local vt = v:totable()
    check.truthy(vt[1] ~= vt[1], "NaN row gives NaN"); check.eq(vt[2], 3)
    check.eq(i:totable(), {1, 2})
    local m = t:amax():item(); check.truthy(m ~= m)
    m = t:min():item(); check.truthy(m ~= m)
    check.eq(t:argmax():item(), 1)
    check.eq(t:argmin(2):totable(), {1, 0})
  end)

  test("amax / amin / argmax / argmin", function()
    local x = x64()
    check.eq(x:amax({1, 2}):totable(), {7, 11, 12, 3})
    check.eq(x:amin():item(), -10)
    check.eq(x:amin(3, true).shape, {2, 2, 1})
    check.eq(x:argmax():item(), 14) -- flat index
    check.eq(x:argmax(2):totable(), {{1, 1, 0, 1}, {0, 1, 1, 1}})
    check.eq(x:argmin(-1):totable(), {{1, 2}, {3, 0}})
    check.eq(x:argmax(2, true).shape, {2, 1, 4})
    check.eq(sg.tensor({5, 1, 5}):argmax():item(), 0)
  end)

  test("var and std with correction", function()
    local x = x64()
    check.near(x:var(3), {{4.229166666666667, 24.916666666666668}, {20.916666666666668, 103.33333333333333}}, 1e-12)
    check.near(x:var():item(), 35.27395833333333, 1e-12)
    check.near(x:var(3, false, 0), {{3.171875, 18.6875}, {15.6875, 77.5}}, 1e-12)
    check.near(x:std({1, 2}), {7.416198487095663, 5.567764362830022, 7.937253933193772, 1.75}, 1e-12)
    check.near(x:std():item(), 5.939188356445124, 1e-12)
    check.eq(x:var(3, true).shape, {2, 2, 1})
    check.near(sg.tensor(X):std(), 5.939188356445124, 1e-5)
    check.errors(function() return sg.tensor({1, 2}, "i64"):var() end, "var: needs a floating-point tensor")
  end)

  test("norm p = 1, 2, 3, inf", function()
    local x = x64()
    check.near(x:norm(1):item(), 84.5, 1e-12)
    check.near(x:norm():item(), 25.773047937719745, 1e-12)
    check.near(x:norm(3):item(), 18.29167308065724, 1e-12)
    check.near(x:norm(math.huge):item(), 12, 1e-12)
    check.near(x:norm("inf"):item(), 12, 1e-12)
    check.near(x:norm(1, 3), {{6.5, 17.0}, {25.0, 36.0}}, 1e-12)
    check.near(x:norm(2, 3), {{3.774917217635375, 9.0}, {13.96424004376894, 19.339079605813716}}, 1e-12)
    check.near(x:norm(3, 3), {{3.305744509228972, 7.447034238345107}, {11.659405913044141, 15.986968555889675}}, 1e-12)
    check.near(x:norm(math.huge, 3), {{3, 6}, {9, 12}}, 1e-12)
    check.eq(x:norm(2, {1, 3}, true).shape, {1, 2, 1})
    check.errors(function() return x:norm(0) end, "p must be positive")
    check.errors(function() return sg.tensor({1}, "i64"):norm() end, "norm: needs a floating-point tensor")
  end)

  test("all / any / count_nonzero", function()
    local b = sg.tensor({{true, false, true}, {true, true, true}}, "bool")
    check.eq(b:all(2):totable(), {false, true})
    check.eq(b:any(1):totable(), {true, true, true})
    check.eq(b:all():item(), false); check.eq(b:any():item(), true)
    check.eq(b:all(2, true).shape, {2, 1})
    check.eq(x64():gt(2):count_nonzero(3):totable(), {{1, 2}, {3, 3}})
    check.eq(sg.tensor({0, 1.5, 0, -2}):count_nonzero():item(), 2)
    check.eq(sg.tensor({0, 1.5}):all():item(), false)
    check.eq(sg.zeros(0):all():item(), true); check.eq(sg.zeros(0):any():item(), false)
  end)

  test("dims arguments are checked", function()
    local x = x64()
    check.errors(function() return x:sum(0) end, "sum: dim 0 is out of range for a tensor of 3 dims")
    check.errors(function() return x:sum(4) end, "dim 4 is out of range")
    check.errors(function() return x:sum(-4) end, "dim -4 is out of range")
    check.errors(function() return x:sum({1, 1}) end, "dim 1 is given twice")
    check.errors(function() return x:max(5) end, "max: dim 5 is out of range")
    check.errors(function() return x:argmax(0) end, "argmax: dim 0")
    check.errors(function() return x:sum(1.5) end, "dim must be an integer")
  end)
end

-- ---------------------------------------------------------------- the f32 cpu kernels against the f64 loops (was tests/test_cpu_kernels.lua)
do
  local C = require "tests.ops.cpu_fast"
  local F, same, both, on_threads, close = C.F, C.same, C.both, C.on_threads, C.close
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
end
