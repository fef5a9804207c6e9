-- sg.data: augmentation recipes for segmentation samples, the synthetic EM-like
-- data set, and a preview sheet. The pixel work is done by the C kernels in
-- semseg.core.data_core (engine/data/augment.c); this file draws the random
-- parameters and composes transforms.
--
-- A sample is an image (float, C x H x W or H x W) and an optional mask of
-- class ids (u8, i32 or i64, H x W or 1 x H x W). Geometric transforms move
-- both (image bilinear, mask nearest-neighbour, so the mask keeps only label
-- values); photometric ones touch only the image.
--
-- Transforms are plain tables {op = "rotate", p = 1, degrees = {-30, 30}, ...}
-- made by constructors that check and complete their parameters:
--
--   flip{axis = "horizontal" | "vertical" | "both"}         (p defaults to 0.5)
--   rot90{k = nil (random 0..3) | integer}
--   transpose{}                                             (p defaults to 0.5)
--   rotate{degrees = 30 | {lo, hi}, fill =, fill_value =, mask_fill =}
--   scale{factor = {lo, hi} | f, fill =, ...}               zoom about the centre
--   elastic{alpha = 34 | {lo, hi}, sigma = 4 | {lo, hi}, fill =, ...}
--   grid_distortion{num_steps = 5, distort_limit = 0.3, fill =, ...}
--   random_crop{size = n | {h, w}}
--   random_resized_crop{size = n | {h, w}, scale = {0.08, 1}, ratio = {3/4, 4/3}}
--   brightness{delta = 0.1 | {lo, hi}}                      x + delta
--   contrast{factor = {0.8, 1.2} | f}                       (x - mean) * f + mean
--   gamma{gamma = {0.8, 1.25} | g}                          sign(x) |x|^g
--   gaussian_noise{sigma = 0.05 | {lo, hi}}
--   gaussian_blur{sigma = {0.1, 1.5} | s}
--   one_of{t1, t2, ..., weights = {...}}                    applies one child
--   some_of{t1, t2, ..., n = 2}                             n distinct children, in order
--   recipe{t1, t2, ...}                                     all children in order
--
-- A number for degrees or delta means the range {-x, x}; for the other ranges
-- it means that fixed value. Every transform has a probability p (default 1,
-- 0.5 for flip and transpose). fill is "reflect" (default), "constant" (with
-- fill_value for the image and the label mask_fill, default 0, for the mask)
-- or "nearest".
--
-- recipe:apply(image, mask, seed) -> image, mask (run by the C executor of
-- engine/data/recipe.c, which the batch loader's threads also use; the Lua
-- functions below stay as its reference, recipe:apply_reference). All randomness comes from the
-- 64-bit integer seed through a keyed hash (not from sg.manual_seed), so the
-- same seed gives the same result in any thread and any order. The inputs are
-- never modified. recipe:serialize() gives Lua source that sg.data.recipe_load
-- turns back into the same recipe.
local core = require "semseg.core"
local util = require "semseg.util"
local K = core.data_core -- the C half: engine/lua/lua_data.c

local M = {core = K}

local Node = {}
Node.__index = Node
M.Node = Node

-------------------------------------------------------------------- checking
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local parts = {}
    for i = 1, math.min(#v, 4) do parts[i] = show(v[i]) end
    return "{" .. table.concat(parts, ", ") .. (#v > 4 and ", ..." or "") .. "}"
  end
  return tostring(v)
end

local function fail(op, fmt, ...)
  error("sg.data." .. op .. ": " .. string.format(fmt, ...), 0)
end

local function is_num(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

-- Parameter checkers: chk(op, name, value) -> normalised value (value may be nil).
local function num(default, lo, hi)
  return function(op, name, v)
    if v == nil then return default end
    if not is_num(v) then fail(op, "%s must be a number (got %s)", name, show(v)) end
    if (lo and v < lo) or (hi and v > hi) then
      fail(op, "%s must be in [%s, %s] (got %s)", name, tostring(lo or "-inf"), tostring(hi or "inf"), show(v))
    end
    return v
  end
end

local function int(default, lo, hi, optional)
  return function(op, name, v)
    if v == nil then
      if optional then return nil end
      return default
    end
    if math.type(v) ~= "integer" and not (is_num(v) and v == math.floor(v)) then
      fail(op, "%s must be an integer (got %s)", name, show(v))
    end
    v = math.tointeger(v)
    if (lo and v < lo) or (hi and v > hi) then
      fail(op, "%s must be in %s..%s (got %s)", name, tostring(lo or "-inf"), tostring(hi or "inf"), show(v))
    end
    return v
  end
end

-- A {lo, hi} range; a number x means {-x, x} when symmetric, {x, x} otherwise.
local function range(default, symmetric, lo, hi)
  return function(op, name, v)
    if v == nil then v = default end
    local r
    if type(v) == "number" then
      if not is_num(v) then fail(op, "%s must be finite (got %s)", name, show(v)) end
      if symmetric then
        if v < 0 then fail(op, "%s must be >= 0 when given as one number (got %s)", name, show(v)) end
        r = {-v, v}
      else
        r = {v, v}
      end
    elseif type(v) == "table" then
      if #v ~= 2 or not is_num(v[1]) or not is_num(v[2]) then
        fail(op, "%s must be a number or a {lo, hi} range of two numbers (got %s)", name, show(v))
      end
      r = {v[1], v[2]}
    else
      fail(op, "%s must be a number or a {lo, hi} range (got %s)", name, show(v))
    end
    if r[1] > r[2] then fail(op, "%s: lo > hi in {%s, %s}", name, show(r[1]), show(r[2])) end
    if (lo and r[1] < lo) or (hi and r[2] > hi) then
      fail(op, "%s must lie in [%s, %s] (got {%s, %s})", name, tostring(lo or "-inf"), tostring(hi or "inf"),
        show(r[1]), show(r[2]))
    end
    return r
  end
end

local function choice(default, ...)
  local allowed = {...}
  return function(op, name, v)
    if v == nil then return default end
    for _, a in ipairs(allowed) do if v == a then return v end end
    local quoted = {}
    for i, a in ipairs(allowed) do quoted[i] = string.format("%q", a) end
    fail(op, "%s must be one of %s (got %s)", name, table.concat(quoted, ", "), show(v))
  end
end

local function size2(op, name, v)
  if v == nil then fail(op, "%s is required (a number or {h, w})", name) end
  local h, w
  if type(v) == "number" then h, w = v, v
  elseif type(v) == "table" and #v == 2 then h, w = v[1], v[2]
  else fail(op, "%s must be a number or {h, w} (got %s)", name, show(v)) end
  if math.type(h) ~= "integer" or math.type(w) ~= "integer" or h < 1 or w < 1 then
    fail(op, "%s must be positive integers (got %s)", name, show(v))
  end
  return {h, w}
end

local FILL = {
  fill = choice("reflect", "reflect", "constant", "nearest"),
  fill_value = num(0),
  mask_fill = int(0),
}
local function with_fill(t)
  for k, v in pairs(FILL) do t[k] = v end
  return t
end

-------------------------------------------------------------------- transforms
-- SPECS[op] = {p = default p, params = {name = checker}, children = bool,
--              validate = fn(node), apply = fn(node, seed, image, mask, owned)}
-- apply returns image, mask, owned (owned: the image is ours to modify in place).
local SPECS = {}
M.SPECS = SPECS

local function U(seed, i) return K.uniform(seed, 0, i) end
local function between(r, u) return r[1] + (r[2] - r[1]) * u end
local function kseed(seed) return K.subseed(seed, 0) end

local function dims(op, img)
  local s = img.shape
  if #s == 3 then return s[2], s[3] elseif #s == 2 then return s[1], s[2] end
  fail(op, "the image must be C x H x W or H x W (got %d dims)", #s)
end

SPECS.flip = {
  p = 0.5,
  params = {axis = choice("horizontal", "horizontal", "vertical", "both")},
  apply = function(n, s, img, mask, owned)
    local h = n.axis == "horizontal" or (n.axis == "both" and U(s, 1) < 0.5)
    local v = n.axis == "vertical" or (n.axis == "both" and U(s, 2) < 0.5)
    if h then img, mask = K.flip(img, mask, true); owned = true end
    if v then img, mask = K.flip(img, mask, false); owned = true end
    return img, mask, owned
  end,
}

SPECS.rot90 = {
  params = {k = int(nil, nil, nil, true)},
  apply = function(n, s, img, mask, owned)
    local k = n.k or math.floor(U(s, 1) * 4)
    if k % 4 == 0 then return img, mask, owned end
    img, mask = K.rot90(img, mask, k)
    return img, mask, true
  end,
}

SPECS.transpose = {
  p = 0.5,
  params = {},
  apply = function(_, _, img, mask)
    img, mask = K.transpose(img, mask)
    return img, mask, true
  end,
}

SPECS.rotate = {
  params = with_fill {degrees = range(30, true)},
  apply = function(n, s, img, mask)
    img, mask = K.rotate(img, mask, between(n.degrees, U(s, 1)), n.fill, n.fill_value, n.mask_fill)
    return img, mask, true
  end,
}

SPECS.scale = {
  params = with_fill {factor = range({0.9, 1.1}, false, 1e-3, 1e3)},
  validate = function(n)
    if n.factor[1] <= 0 then fail("scale", "factor must be > 0 (got %s)", show(n.factor[1])) end
  end,
  apply = function(n, s, img, mask)
    img, mask = K.scale(img, mask, between(n.factor, U(s, 1)), n.fill, n.fill_value, n.mask_fill)
    return img, mask, true
  end,
}

SPECS.elastic = {
  params = with_fill {alpha = range(34, false, 0, 1e6), sigma = range(4, false, 0, 1000)},
  validate = function(n)
    if n.sigma[1] <= 0 then fail("elastic", "sigma must be > 0 (got %s)", show(n.sigma[1])) end
  end,
  apply = function(n, s, img, mask)
    img, mask = K.elastic(img, mask, between(n.alpha, U(s, 1)), between(n.sigma, U(s, 2)), kseed(s),
      n.fill, n.fill_value, n.mask_fill)
    return img, mask, true
  end,
}

SPECS.grid_distortion = {
  params = with_fill {num_steps = int(5, 1, 4096), distort_limit = num(0.3, 0, 0.999)},
  apply = function(n, s, img, mask)
    img, mask = K.grid_distortion(img, mask, n.num_steps, n.distort_limit, kseed(s), n.fill, n.fill_value,
      n.mask_fill)
    return img, mask, true
  end,
}

SPECS.random_crop = {
  params = {size = size2},
  apply = function(n, s, img, mask)
    local H, W = dims("random_crop", img)
    local h, w = n.size[1], n.size[2]
    if h > H or w > W then
      fail("random_crop", "size %dx%d is larger than the image %dx%d", h, w, H, W)
    end
    local top = math.min(H - h, math.floor(U(s, 1) * (H - h + 1)))
    local left = math.min(W - w, math.floor(U(s, 2) * (W - w + 1)))
    img, mask = K.crop(img, mask, top, left, h, w)
    return img, mask, true
  end,
}

SPECS.random_resized_crop = {
  params = {size = size2, scale = range({0.08, 1}, false, 1e-6, 1), ratio = range({3 / 4, 4 / 3}, false, 1e-3, 1e3)},
  validate = function(n)
    if n.ratio[1] <= 0 then fail("random_resized_crop", "ratio must be > 0") end
  end,
  apply = function(n, s, img, mask)
    local H, W = dims("random_resized_crop", img)
    local area = H * W
    local lr1, lr2 = math.log(n.ratio[1]), math.log(n.ratio[2])
    local top, left, h, w
    for attempt = 0, 9 do -- torchvision's procedure, with draws from the seed
      local b = 1 + 4 * attempt
      local target = area * between(n.scale, U(s, b))
      local aspect = math.exp(lr1 + (lr2 - lr1) * U(s, b + 1))
      local cw = math.floor(math.sqrt(target * aspect) + 0.5)
      local chh = math.floor(math.sqrt(target / aspect) + 0.5)
      if cw > 0 and chh > 0 and cw <= W and chh <= H then
        h, w = chh, cw
        top = math.min(H - h, math.floor(U(s, b + 2) * (H - h + 1)))
        left = math.min(W - w, math.floor(U(s, b + 3) * (W - w + 1)))
        break
      end
    end
    if not h then -- central crop with the ratio clamped to the range
      local r = W / H
      if r < n.ratio[1] then w = W; h = math.floor(w / n.ratio[1] + 0.5)
      elseif r > n.ratio[2] then h = H; w = math.floor(h * n.ratio[2] + 0.5)
      else h, w = H, W end
      h, w = math.max(1, math.min(h, H)), math.max(1, math.min(w, W))
      top, left = (H - h) // 2, (W - w) // 2
    end
    img, mask = K.resized_crop(img, mask, top, left, h, w, n.size[1], n.size[2])
    return img, mask, true
  end,
}

local function photometric(param, checker, kernel)
  return {
    params = {[param] = checker},
    apply = function(n, s, img, mask, owned)
      return K[kernel](img, between(n[param], U(s, 1)), owned), mask, true
    end,
  }
end
SPECS.brightness = photometric("delta", range(0.1, true, -1e6, 1e6), "brightness")
SPECS.contrast = photometric("factor", range({0.8, 1.2}, false, 0, 1e6), "contrast")
SPECS.gamma = photometric("gamma", range({0.8, 1.25}, false, 1e-6, 1e6), "gamma")
SPECS.gamma.validate = function(n)
  if n.gamma[1] <= 0 then fail("gamma", "gamma must be > 0 (got %s)", show(n.gamma[1])) end
end
SPECS.gaussian_blur = photometric("sigma", range({0.1, 1.5}, false, 0, 1000), "gaussian_blur")
SPECS.gaussian_noise = {
  params = {sigma = range(0.05, false, 0, 1e6)},
  apply = function(n, s, img, mask, owned)
    return K.gaussian_noise(img, between(n.sigma, U(s, 1)), kseed(s), owned), mask, true
  end,
}

local run -- run(node, seed, img, mask, owned)

-- children of composite node i get seeds subseed(seed, i) (i >= 1)
local function run_child(n, i, s, img, mask, owned)
  return run(n[i], K.subseed(s, i), img, mask, owned)
end

SPECS.recipe = {
  children = true,
  params = {},
  apply = function(n, s, img, mask, owned)
    for i = 1, #n do img, mask, owned = run_child(n, i, s, img, mask, owned) end
    return img, mask, owned
  end,
}

SPECS.one_of = {
  children = true,
  params = {weights = function(op, name, v)
    if v == nil then return nil end
    if type(v) ~= "table" then fail(op, "%s must be a list of numbers (got %s)", name, show(v)) end
    local out = {}
    for i, x in ipairs(v) do
      if not is_num(x) or x < 0 then fail(op, "%s[%d] must be a number >= 0 (got %s)", name, i, show(x)) end
      out[i] = x
    end
    return out
  end},
  validate = function(n)
    if #n == 0 then fail("one_of", "needs at least one transform") end
    if n.weights then
      if #n.weights ~= #n then
        fail("one_of", "weights has %d entries for %d transforms", #n.weights, #n)
      end
      local total = 0
      for _, x in ipairs(n.weights) do total = total + x end
      if total <= 0 then fail("one_of", "weights must not all be 0") end
    end
  end,
  apply = function(n, s, img, mask, owned)
    local u, pick = U(s, 1), #n
    if n.weights then
      local total, acc = 0, 0
      for _, x in ipairs(n.weights) do total = total + x end
      for i, x in ipairs(n.weights) do
        acc = acc + x / total
        if u < acc and x > 0 then pick = i; break end
      end
    else
      pick = math.min(#n, math.floor(u * #n) + 1)
    end
    return run_child(n, pick, s, img, mask, owned)
  end,
}

SPECS.some_of = {
  children = true,
  params = {n = int(nil, 0, nil, true)},
  validate = function(n)
    if n.n == nil then fail("some_of", "n (how many transforms to apply) is required") end
    if n.n > #n then fail("some_of", "n = %d but only %d transforms are given", n.n, #n) end
  end,
  apply = function(n, s, img, mask, owned)
    local idx, chosen = {}, {}
    for i = 1, #n do idx[i] = i end
    for j = 1, n.n do -- partial Fisher-Yates
      local r = j + math.min(#n - j, math.floor(U(s, j) * (#n - j + 1)))
      idx[j], idx[r] = idx[r], idx[j]
      chosen[idx[j]] = true
    end
    for i = 1, #n do
      if chosen[i] then img, mask, owned = run_child(n, i, s, img, mask, owned) end
    end
    return img, mask, owned
  end,
}

function run(n, s, img, mask, owned)
  if n.p <= 0 then return img, mask, owned end
  if n.p < 1 and U(s, 0) >= n.p then return img, mask, owned end
  return SPECS[n.op].apply(n, s, img, mask, owned)
end

-------------------------------------------------------------------- construction
local build

local function as_node(x, parent, i)
  if getmetatable(x) == Node then return x end
  if type(x) == "table" and type(x.op) == "string" then return build(x.op, x) end
  fail(parent, "transform #%d is not a transform (got %s)", i, show(x))
end

function build(op, opts)
  local sp = SPECS[op]
  if not sp then error("sg.data: unknown transform " .. show(op), 0) end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then fail(op, "expected a table of parameters (got %s)", type(opts)) end
  for k in pairs(opts) do
    if type(k) ~= "string" and not (math.type(k) == "integer" and sp.children and k >= 1 and k <= #opts) then
      fail(op, "unexpected positional argument [%s]%s", tostring(k),
        sp.children and "" or " (this transform takes only named parameters)")
    end
  end
  local known = {op = true, p = true}
  for name in pairs(sp.params) do known[name] = true end
  util.check_options(opts, known, "sg.data." .. op, true)
  if opts.op ~= nil and opts.op ~= op then fail(op, "op field says %s", show(opts.op)) end
  local node = {op = op}
  local p = opts.p
  if p == nil then p = sp.p or 1 end
  if not is_num(p) or p < 0 or p > 1 then fail(op, "p must be a probability in [0, 1] (got %s)", show(p)) end
  node.p = p
  for name, chk in pairs(sp.params) do node[name] = chk(op, name, opts[name]) end
  if sp.children then
    for i = 1, #opts do node[i] = as_node(opts[i], op, i) end
  end
  if sp.validate then sp.validate(node) end
  return setmetatable(node, Node)
end

for op in pairs(SPECS) do
  M[op] = function(opts) return build(op, opts) end
end

-------------------------------------------------------------------- applying
local function check_seed(what, seed)
  if math.type(seed) ~= "integer" then
    if is_num(seed) and seed == math.floor(seed) and math.abs(seed) < 2 ^ 63 then return math.tointeger(seed) end
    error(string.format("%s: seed must be an integer (got %s)", what, show(seed)), 0)
  end
  return seed
end

-- node:apply(image, mask, seed) -> image, mask (mask nil when none was given).
-- The outputs are new tensors unless no transform fired, in which case the
-- inputs themselves come back.
function Node:apply(image, mask, seed)
  if type(image) ~= "userdata" then
    error("apply: image must be a tensor (got " .. type(image) .. ")", 0)
  end
  seed = check_seed("apply", seed)
  return K.recipe_apply(K.recipe_compile(self), image, mask, seed)
end

-- node:compile() -> the recipe as C nodes (data/recipe.c), for the batch loader's
-- worker threads; it draws exactly what apply draws.
function Node:compile() return K.recipe_compile(self) end

-- The Lua reference of apply (same draws, same kernels); tests compare the two.
function Node:apply_reference(image, mask, seed)
  seed = check_seed("apply_reference", seed)
  local img, m = run(self, seed, image, mask, false)
  return img, m
end

-- node:apply_batch(images N x C x H x W, masks N x H x W or nil, seed): sample i
-- uses the seed subseed(seed, i - 1); the outputs must all have one shape.
function Node:apply_batch(images, masks, seed)
  seed = check_seed("apply_batch", seed)
  local n = images.shape[1]
  local out_i, out_m
  for i = 1, n do
    local img, m = self:apply(images[i], masks and masks[i], K.subseed(seed, i - 1))
    if not out_i then
      local s = img.shape
      table.insert(s, 1, n)
      out_i = core.empty(s, "f32")
      if m then
        local ms = m.shape
        table.insert(ms, 1, n)
        out_m = core.empty(ms, m.dtype)
      end
    end
    local ok, err = pcall(function()
      out_i[i] = img
      if m then out_m[i] = m end
    end)
    if not ok then
      error("apply_batch: sample " .. i .. " came out with another shape than sample 1 (" .. tostring(err) .. ")", 0)
    end
  end
  return out_i, out_m
end

-------------------------------------------------------------------- serialization
local function ident(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") end

local function lit(v, out, indent)
  local t = type(v)
  if t == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = string.format("%d", v)
    else
      if not is_num(v) then error("serialize: cannot write the number " .. tostring(v), 0) end
      local s = string.format("%.17g", v)
      if not s:find("[%.eEn]") then s = s .. ".0" end
      out[#out + 1] = s
    end
  elseif t == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "table" then
    local is_node = type(v.op) == "string"
    out[#out + 1] = "{"
    local keys = {}
    for k in pairs(v) do
      if type(k) == "string" then
        if not ident(k) then error("serialize: bad key " .. show(k), 0) end
        keys[#keys + 1] = k
      end
    end
    table.sort(keys, function(a, b)
      if a == "op" or b == "op" then return a == "op" end
      return a < b
    end)
    local first = true
    for _, k in ipairs(keys) do
      if not first then out[#out + 1] = ", " end
      first = false
      out[#out + 1] = k .. " = "
      lit(v[k], out, indent)
    end
    for i = 1, #v do
      if is_node then
        out[#out + 1] = (first and "" or ",") .. "\n" .. string.rep("  ", indent + 1)
      elseif not first then
        out[#out + 1] = ", "
      end
      first = false
      lit(v[i], out, indent + 1)
    end
    if is_node and #v > 0 then out[#out + 1] = "\n" .. string.rep("  ", indent) end
    out[#out + 1] = "}"
  else
    error("serialize: cannot write a " .. t, 0)
  end
end

-- Lua source ("return {...}") that recipe_load turns back into this recipe.
function Node:serialize()
  local out = {"return "}
  lit(self, out, 0)
  out[#out + 1] = "\n"
  return table.concat(out)
end
Node.__tostring = Node.serialize

-- Loads a serialized recipe (runs it as a chunk with no globals, then checks
-- every transform as the constructors do).
function M.recipe_load(src)
  if type(src) ~= "string" then error("sg.data.recipe_load: expected a string (got " .. type(src) .. ")", 0) end
  local chunk, err = load(src, "=recipe", "t", {})
  if not chunk then error("sg.data.recipe_load: " .. err, 0) end
  local ok, t = pcall(chunk)
  if not ok then error("sg.data.recipe_load: " .. tostring(t), 0) end
  if type(t) ~= "table" or type(t.op) ~= "string" then
    error("sg.data.recipe_load: the source must return a transform table (got " .. type(t) .. ")", 0)
  end
  return as_node(t, "recipe_load", 1)
end

-------------------------------------------------------------------- synthetic data
-- synthetic_cells{n = 1, size = 256 | {h, w}, classes = 2 | 3, seed = 0,
--   cell_size = 40, membrane = 3, noise = 0.06, blur = 0.8, mitochondria = (classes == 3)}
-- -> images f32 N x 1 x H x W in [0, 1], masks i64 N x H x W.
-- Labels: classes = 2: 0 cell interior, 1 membrane;
--         classes = 3: 0 cytoplasm, 1 membrane, 2 mitochondria.
-- (With classes = 2 and mitochondria = true the blobs are drawn but labelled 0.)
local SYN_KEYS = {n = true, size = true, classes = true, seed = true, cell_size = true, membrane = true,
  noise = true, blur = true, mitochondria = true}
function M.synthetic_cells(opts)
  opts = util.check_options(opts or {}, SYN_KEYS, "sg.data.synthetic_cells")
  local size = opts.size == nil and {256, 256} or size2("synthetic_cells", "size", opts.size)
  local seed = opts.seed == nil and 0 or check_seed("sg.data.synthetic_cells", opts.seed)
  return K.synthetic_cells{n = opts.n, h = size[1], w = size[2], classes = opts.classes, seed = seed,
    cell_size = opts.cell_size, membrane = opts.membrane, noise = opts.noise, blur = opts.blur,
    mitochondria = opts.mitochondria}
end

-------------------------------------------------------------------- preview
-- preview(recipe, image, mask, path, {n = 8, seed = 0, gap = 2}): a PNG sheet
-- with n augmented versions of the sample: images (first channel, clipped to
-- [0, 1]) on the top row, masks (labels spread over 0..255) below. Needs
-- sg.io.write_png(path, u8 H x W tensor).
function M.preview(recipe, image, mask, path, opts)
  opts = opts or {}
  local sg = require "semseg"
  if not (sg.io and sg.io.write_png) then error("sg.data.preview: needs sg.io.write_png, which is not available", 0) end
  if getmetatable(recipe) ~= Node then error("sg.data.preview: argument #1 must be a recipe", 0) end
  if type(path) ~= "string" then error("sg.data.preview: path must be a string (got " .. type(path) .. ")", 0) end
  local n = opts.n or 8
  local seed = check_seed("sg.data.preview", opts.seed or 0)
  local gap = opts.gap or 2
  local imgs, masks, ch, cw, maxlab = {}, {}, 1, 1, 1
  for i = 1, n do
    local a, b = recipe:apply(image, mask, K.subseed(seed, i - 1))
    if a.ndim == 3 then a = a[1] end
    if b and b.ndim == 3 then b = b[1] end
    imgs[i], masks[i] = a, b
    ch, cw = math.max(ch, a.shape[1]), math.max(cw, a.shape[2])
    if b then maxlab = math.max(maxlab, b:amax():item()) end
  end
  local rows = mask and 2 or 1
  local sheet = core.full(128, {rows * ch + (rows + 1) * gap, n * cw + (n + 1) * gap}, "u8")
  local step = math.max(1, 255 // maxlab)
  for i = 1, n do
    local x0 = gap + (i - 1) * (cw + gap) + 1
    local a = imgs[i]
    local h, w = a.shape[1], a.shape[2]
    sheet[{{gap + 1, gap + h}, {x0, x0 + w - 1}}] = (a:clamp(0, 1) * 255 + 0.5):to("u8")
    if masks[i] then
      local y0 = 2 * gap + ch + 1
      sheet[{{y0, y0 + h - 1}, {x0, x0 + w - 1}}] = (masks[i]:to("i64"):clamp(0, maxlab) * step):to("u8")
    end
  end
  sg.io.write_png(path, sheet)
  return sheet
end

return M
