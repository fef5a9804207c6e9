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
