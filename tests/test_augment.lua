-- Augmentation kernels, recipes and the synthetic EM-like data set (sg.data).
local D = sg.data
local K = D.core

local function maxdiff(a, b)
  check.eq(table.concat(a.shape, "x"), table.concat(b.shape, "x"), "shape")
  if a:numel() == 0 then return 0 end
  return (a:to("f64") - b:to("f64")):abs():amax():item()
end
local function same(a, b, msg) check.eq(maxdiff(a, b), 0, msg) end

-- a 1 x H x W image with distinct values and a mask with labels {0, 3, 7}
local function sample(h, w, c)
  c = c or 1
  local img = sg.rand({c, h, w})
  local m = sg.randint(0, 3, {h, w}, "i64")
  local mask = m:eq(1):to("i64") * 3 + m:eq(2):to("i64") * 7
  return img, mask
end

-- the set of values of an integer tensor (small tensors only)
local function values(t)
  local set = {}
  local function walk(x) if type(x) == "table" then for _, y in ipairs(x) do walk(y) end else set[x] = true end end
  walk(t:totable())
  return set
end
local function only_labels(mask, allowed, msg)
  for v in pairs(values(mask)) do
    if not allowed[v] then error((msg or "mask") .. ": value " .. tostring(v) .. " is not a label", 2) end
  end
end

test("flip twice, rot90 four times and transpose twice are identities", function()
  sg.manual_seed(1)
  local img, mask = sample(7, 5, 2)
  local a, m = K.flip(img, mask, true)
  a, m = K.flip(a, m, true)
  same(a, img, "hflip") same(m, mask, "hflip mask")
  a, m = K.flip(img, mask, false)
  check.truthy(maxdiff(a, img) > 0, "vflip changes the image")
  a, m = K.flip(a, m, false)
  same(a, img, "vflip") same(m, mask, "vflip mask")
  a, m = img, mask
  for _ = 1, 4 do a, m = K.rot90(a, m, 1) end
  same(a, img, "rot90^4") same(m, mask, "rot90^4 mask")
  a, m = K.transpose(img, mask)
  check.eq(a.shape, {2, 5, 7})
  a, m = K.transpose(a, m)
  same(a, img, "transpose^2") same(m, mask, "transpose^2 mask")
end)

test("flip, rot90 and transpose move pixels as numpy/torch do", function()
  local x = sg.tensor({{1, 2, 3}, {4, 5, 6}})
  check.near(K.flip(x, nil, true), {{3, 2, 1}, {6, 5, 4}}, 0)
  check.near(K.flip(x, nil, false), {{4, 5, 6}, {1, 2, 3}}, 0)
  check.near(K.rot90(x, nil, 1), {{3, 6}, {2, 5}, {1, 4}}, 0) -- np.rot90
  check.near(K.rot90(x, nil, 2), {{6, 5, 4}, {3, 2, 1}}, 0)
  check.near(K.rot90(x, nil, 3), {{4, 1}, {5, 2}, {6, 3}}, 0)
  check.near(K.rot90(x, nil, -1), {{4, 1}, {5, 2}, {6, 3}}, 0)
  check.near(K.transpose(x, nil), {{1, 4}, {2, 5}, {3, 6}}, 0)
  local a, m = K.flip(x, nil, true)
  check.eq(m, nil)
  check.eq(a.dtype, "f32")
end)

test("rotate by 0 and 360, scale 1, elastic with alpha 0 and grid distortion with limit 0 are identities", function()
  sg.manual_seed(2)
  local img, mask = sample(16, 12)
  for _, deg in ipairs({0, 360, -720}) do
    local a, m = K.rotate(img, mask, deg, "constant", 0, 0)
    same(a, img, "rotate " .. deg) same(m, mask, "rotate mask " .. deg)
  end
  local a, m = K.scale(img, mask, 1.0)
  same(a, img, "scale 1") same(m, mask, "scale 1 mask")
  a, m = K.elastic(img, mask, 0, 4, 7)
  same(a, img, "elastic alpha 0") same(m, mask)
  a, m = K.grid_distortion(img, mask, 4, 0, 7)
  check.truthy(maxdiff(a, img) < 1e-5, "grid_distortion limit 0") same(m, mask)
  -- small angles are close to the identity away from the corners
  a = K.rotate(sg.ones({1, 16, 16}), nil, 1e-3, "reflect")
  check.truthy(maxdiff(a, sg.ones({1, 16, 16})) < 1e-5)
end)

test("rotate by quarter turns equals rot90 on square images", function()
  sg.manual_seed(3)
  local img, mask = sample(9, 9, 3)
  for k = 1, 3 do
    local a, m = K.rotate(img, mask, 90 * k, "constant", 0, 0)
    local b, n = K.rot90(img, mask, k)
    same(a, b, "rotate " .. 90 * k) same(m, n)
  end
end)

test("masks keep only their label values through every transform (u8 and i64, 2-D and 1xHxW)", function()
  sg.manual_seed(4)
  local img, mask = sample(40, 36)
  local allowed = {[0] = true, [3] = true, [7] = true}
  local r = D.recipe{
    D.flip{p = 1, axis = "both"}, D.rot90{}, D.transpose{p = 1},
    D.rotate{degrees = 37, fill = "constant", mask_fill = 7}, D.scale{factor = {0.7, 1.3}},
    D.elastic{alpha = 40, sigma = 4}, D.grid_distortion{num_steps = 4, distort_limit = 0.4},
    D.random_crop{size = {30, 28}}, D.random_resized_crop{size = 24, scale = {0.3, 1}},
    D.brightness{}, D.contrast{}, D.gamma{}, D.gaussian_noise{}, D.gaussian_blur{},
  }
  for i = 1, #r do
    local one = D.recipe{r[i]}
    for seed = 1, 3 do
      local _, m = one:apply(img, mask, seed)
      only_labels(m, allowed, r[i].op)
    end
  end
  for seed = 1, 4 do
    local a, m = r:apply(img, mask, seed)
    check.eq(a.shape, {1, 24, 24})
    check.eq(m.dtype, "i64")
    only_labels(m, allowed, "recipe")
    local _, m8 = r:apply(img, mask:to("u8"), seed)
    check.eq(m8.dtype, "u8")
    same(m8, m, "u8 mask goes the same way")
    local a3, m3 = r:apply(img, mask:unsqueeze(1), seed)
    check.eq(m3.shape, {1, 24, 24})
    same(a3, a)
  end
  -- the constant fill label shows up where the rotation reaches outside
  local _, m = K.rotate(img, sg.zeros({40, 36}, "i64"), 45, "constant", 0, 5)
  check.truthy(values(m)[5], "fill label present")
  check.errors(function() K.rotate(img, mask:to("u8"), 45, "constant", 0, 300) end, "does not fit a u8 mask")
end)

test("the same seed gives the same result; different seeds differ; inputs are untouched", function()
  sg.manual_seed(5)
  local img, mask = sample(48, 48)
  local before_i, before_m = img:clone(), mask:clone()
  local r = D.recipe{D.flip{}, D.rot90{}, D.elastic{alpha = 30, sigma = 5}, D.gaussian_noise{sigma = 0.05},
    D.brightness{delta = 0.1}}
  local a1, m1 = r:apply(img, mask, 123)
  sg.manual_seed(99) -- the global generator plays no part
  local a2, m2 = r:apply(img, mask, 123)
  same(a1, a2) same(m1, m2)
  local a3 = r:apply(img, mask, 124)
  check.truthy(maxdiff(a1, a3) > 0.01, "different seeds differ")
  same(img, before_i, "image untouched") same(mask, before_m, "mask untouched")
  -- a recipe that does nothing returns the inputs
  local id = D.recipe{D.flip{p = 0}}
  local a, m = id:apply(img, nil, 1)
  check.truthy(rawequal(a, img)) check.eq(m, nil)
  -- photometric only: the output is a copy, not the input
  a = D.recipe{D.brightness{delta = {0.5, 0.5}}}:apply(img, nil, 1)
  same(img, before_i, "image untouched by photometric")
  check.near(maxdiff(a, img), 0.5, 1e-6)
end)

test("kernel seeds: elastic, grid distortion and noise depend on the seed only", function()
  sg.manual_seed(6)
  local img = sg.rand({2, 32, 32})
  same(K.elastic(img, nil, 20, 3, 11), K.elastic(img, nil, 20, 3, 11))
  check.truthy(maxdiff(K.elastic(img, nil, 20, 3, 11), K.elastic(img, nil, 20, 3, 12)) > 0)
  same(K.grid_distortion(img, nil, 5, 0.3, 1), K.grid_distortion(img, nil, 5, 0.3, 1))
  check.truthy(maxdiff(K.grid_distortion(img, nil, 5, 0.3, 1), K.grid_distortion(img, nil, 5, 0.3, 2)) > 0)
  same(K.gaussian_noise(img, 0.1, 5), K.gaussian_noise(img, 0.1, 5))
  -- channels move together: channel 2 = channel 1 + 1 stays so after a warp
  local two = sg.zeros({2, 32, 32})
  two[1] = img[1]
  two[2] = img[1] + 1
  local e = K.elastic(two, nil, 30, 4, 3)
  check.truthy(maxdiff(e[2] - e[1], sg.ones({32, 32})) < 1e-5)
  check.eq(K.uniform(1, 2, 3), K.uniform(1, 2, 3))
  check.truthy(K.uniform(1, 2, 3) ~= K.uniform(1, 2, 4))
  check.truthy(K.subseed(1, 1) ~= K.subseed(1, 2))
end)

test("crop sizes and positions", function()
  sg.manual_seed(7)
  local img, mask = sample(30, 40, 2)
  local a, m = K.crop(img, mask, 5, 7, 10, 12)
  check.eq(a.shape, {2, 10, 12}) check.eq(m.shape, {10, 12})
  same(a, img[{{}, {6, 15}, {8, 19}}]) same(m, mask[{{6, 15}, {8, 19}}])
  check.errors(function() K.crop(img, mask, 25, 0, 10, 10) end, "not inside")
  for seed = 1, 5 do
    local b, n = D.recipe{D.random_crop{size = {16, 24}}}:apply(img, mask, seed)
    check.eq(b.shape, {2, 16, 24}) check.eq(n.shape, {16, 24})
    b, n = D.recipe{D.random_resized_crop{size = {20, 10}}}:apply(img, mask, seed)
    check.eq(b.shape, {2, 20, 10}) check.eq(n.shape, {20, 10})
  end
  -- a resized crop of the whole image at the same size is the identity
  same(K.resized_crop(img, nil, 0, 0, 30, 40, 30, 40), img)
  check.errors(function() D.recipe{D.random_crop{size = 64}}:apply(img, mask, 1) end,
    "random_crop: size 64x64 is larger than the image 30x40")
end)

test("noise statistics", function()
  local z = sg.zeros({1, 200, 200})
  local n = K.gaussian_noise(z, 0.1, 42)
  check.near(n:mean():item(), 0, 0.003)
  check.near(n:std():item(), 0.1, 0.003)
  check.near(((n / 0.1):abs():gt(3)):to("f64"):mean():item(), 0.0027, 0.0015) -- 3-sigma tail
  same(z, sg.zeros({1, 200, 200}), "not in place by default")
  -- blur keeps the mean and lowers the variance
  local b = K.gaussian_blur(n, 2.0)
  check.near(b:mean():item(), n:mean():item(), 1e-4)
  check.truthy(b:std():item() < 0.03, "blurred noise is smoother")
  local c = sg.full(0.3, {1, 9, 9})
  check.truthy(maxdiff(K.gaussian_blur(c, 1.5), c) < 1e-6, "blur of a constant")
end)

test("brightness, contrast and gamma math", function()
  local x = sg.tensor({{{0.1, 0.2}, {0.5, 0.8}}, {{0.0, 1.0}, {0.25, 0.75}}})
  check.near(K.brightness(x, 0.2), x + 0.2, 1e-6)
  local c = K.contrast(x, 2)
  local m1, m2 = 0.4, 0.5 -- channel means
  check.near(c, {{{(0.1 - m1) * 2 + m1, (0.2 - m1) * 2 + m1}, {(0.5 - m1) * 2 + m1, (0.8 - m1) * 2 + m1}},
    {{(0 - m2) * 2 + m2, (1 - m2) * 2 + m2}, {(0.25 - m2) * 2 + m2, (0.75 - m2) * 2 + m2}}}, 1e-6)
  check.near(K.gamma(x, 2), x * x, 1e-6)
  check.near(K.gamma(sg.tensor({{-0.5, 0.5}}), 2), {{-0.25, 0.25}}, 1e-6)
  -- in place on an owned tensor
  local y = x:clone()
  local r = K.brightness(y, 1, true)
  check.near(y, x + 1, 1e-6)
  check.truthy(rawequal(r, r))
  check.errors(function() K.brightness(x:transpose(2, 3), 1, true) end, "in place needs a contiguous f32 image")
  -- the recipe draws factors within the ranges
  for seed = 1, 5 do
    local b = D.recipe{D.brightness{delta = {0.1, 0.2}}}:apply(x, nil, seed)
    local d = (b - x):mean():item()
    check.truthy(d >= 0.1 - 1e-6 and d <= 0.2 + 1e-6, "delta in range")
  end
end)

test("serialize and recipe_load round trip", function()
  sg.manual_seed(8)
  local img, mask = sample(32, 32)
  local r = D.recipe{
    D.one_of{D.flip{axis = "vertical"}, D.rot90{k = 3}, weights = {1, 2}},
    D.some_of{n = 2, D.rotate{degrees = {-10.5, 20}, fill = "constant", fill_value = 0.25, mask_fill = 3},
      D.scale{factor = 1.1}, D.elastic{alpha = {10, 30}, sigma = 3.3}},
    D.grid_distortion{num_steps = 3, p = 0.7},
    D.random_resized_crop{size = {24, 20}, scale = {0.5, 1}},
    D.gamma{gamma = 1.5, p = 0.3}, D.gaussian_noise{sigma = {0.01, 0.1}}, D.gaussian_blur{sigma = 0.5},
    D.contrast{factor = {0.9, 1.1}}, D.brightness{delta = 1 / 3},
  }
  local src = r:serialize()
  check.truthy(src:find("^return {"), "source starts with return")
  local r2 = D.recipe_load(src)
  check.eq(r2:serialize(), src)
  check.eq(tostring(r2), src)
  check.eq(r2[2].op, "some_of")
  check.eq(r2[9].delta[2], 1 / 3)
  check.eq(math.type(r2[2][1].mask_fill), "integer")
  for seed = 1, 6 do
    local a1, m1 = r:apply(img, mask, seed)
    local a2, m2 = r2:apply(img, mask, seed)
    same(a1, a2) same(m1, m2)
  end
  check.errors(function() D.recipe_load("return {op = 'rotate', degrees = 'x'}") end, "sg.data.rotate: degrees")
  check.errors(function() D.recipe_load("return 42") end, "must return a transform table")
  check.errors(function() D.recipe_load("os.exit()") end, "recipe_load")
  check.errors(function() D.recipe_load("return {") end, "recipe_load")
end)

test("one_of and some_of choose among their children", function()
  local x = sg.tensor({{{1, 2}, {3, 4}}})
  local seen = {}
  local r = D.recipe{D.one_of{D.brightness{delta = {1, 1}}, D.brightness{delta = {2, 2}}, D.brightness{delta = {3, 3}}}}
  for seed = 1, 60 do
    seen[(r:apply(x, nil, seed) - x):mean():item()] = true
  end
  check.truthy(seen[1] and seen[2] and seen[3], "all children picked at some point")
  local w = D.recipe{D.one_of{D.brightness{delta = {1, 1}}, D.brightness{delta = {2, 2}}, weights = {0, 1}}}
  for seed = 1, 20 do check.near((w:apply(x, nil, seed) - x):mean():item(), 2, 1e-6) end
  -- some_of with n = 2 of three +1, +10, +100: sums of two distinct ones
  local s = D.recipe{D.some_of{n = 2, D.brightness{delta = {1, 1}}, D.brightness{delta = {10, 10}},
    D.brightness{delta = {100, 100}}}}
  local sums = {}
  for seed = 1, 60 do
    local d = math.floor((s:apply(x, nil, seed) - x):mean():item() + 0.5)
    check.truthy(d == 11 or d == 101 or d == 110, "two distinct transforms (got " .. d .. ")")
    sums[d] = true
  end
  check.truthy(sums[11] and sums[101] and sums[110])
  -- p: about half of the flips fire
  local f = D.recipe{D.flip{}}
  local fired = 0
  for seed = 1, 400 do
    if not rawequal(f:apply(x, nil, seed), x) then fired = fired + 1 end
  end
  check.truthy(fired > 160 and fired < 240, "p = 0.5 fires about half the time (" .. fired .. ")")
end)

test("apply_batch", function()
  local imgs, masks = D.synthetic_cells{n = 3, size = 32, seed = 3}
  local r = D.recipe{D.rot90{}, D.elastic{alpha = 10, sigma = 3}}
  local a, m = r:apply_batch(imgs, masks, 9)
  check.eq(a.shape, {3, 1, 32, 32}) check.eq(m.shape, {3, 32, 32})
  local a2, m2 = r:apply(imgs[2], masks[2], K.subseed(9, 1))
  same(a[2], a2) same(m[2], m2)
end)

test("synthetic_cells: shapes, labels, determinism and class frequencies", function()
  local imgs, masks = D.synthetic_cells{n = 3, size = 128, classes = 2, seed = 5}
  check.eq(imgs.shape, {3, 1, 128, 128}) check.eq(masks.shape, {3, 128, 128})
  check.eq(imgs.dtype, "f32") check.eq(masks.dtype, "i64")
  check.truthy(imgs:amin():item() >= 0 and imgs:amax():item() <= 1, "images in [0, 1]")
  only_labels(masks, {[0] = true, [1] = true})
  local memb = masks:eq(1):to("f64"):mean():item()
  check.truthy(memb > 0.04 and memb < 0.35, "membrane fraction " .. memb)
  -- membranes are dark
  local fm = masks:eq(1):to("f32"):unsqueeze(2)
  local mean_m = (imgs * fm):sum():item() / fm:sum():item()
  local mean_c = (imgs * (1 - fm)):sum():item() / (1 - fm):sum():item()
  check.truthy(mean_m + 0.2 < mean_c, string.format("membrane %.2f vs interior %.2f", mean_m, mean_c))
  -- determinism, and image i does not depend on n
  local i2, m2 = D.synthetic_cells{n = 1, size = 128, classes = 2, seed = 5}
  same(i2[1], imgs[1]) same(m2[1], masks[1])
  local i3 = D.synthetic_cells{n = 1, size = 128, classes = 2, seed = 6}
  check.truthy(maxdiff(i3[1], imgs[1]) > 0.1)
  check.truthy(maxdiff(imgs[1], imgs[2]) > 0.1, "images differ within a batch")

  local ti, tm = D.synthetic_cells{n = 2, size = {96, 128}, classes = 3, seed = 1}
  check.eq(ti.shape, {2, 1, 96, 128})
  only_labels(tm, {[0] = true, [1] = true, [2] = true})
  local f0 = tm:eq(0):to("f64"):mean():item()
  local f1 = tm:eq(1):to("f64"):mean():item()
  local f2 = tm:eq(2):to("f64"):mean():item()
  check.truthy(f0 > 0.5, "cytoplasm majority " .. f0)
  check.truthy(f1 > 0.04 and f1 < 0.35, "membrane " .. f1)
  check.truthy(f2 > 0.01 and f2 < 0.3, "mitochondria " .. f2)
  local fmi = tm:eq(2):to("f32"):unsqueeze(2)
  local mean_mito = (ti * fmi):sum():item() / fmi:sum():item()
  check.truthy(mean_mito < 0.5, "mitochondria are dark " .. mean_mito)
end)

test("bad parameters give errors naming the transform and the parameter", function()
  check.errors(function() D.rotate{degrees = "x"} end, "sg.data.rotate: degrees must be a number or a {lo, hi} range")
  check.errors(function() D.rotate{degrees = {10, -10}} end, "sg.data.rotate: degrees: lo > hi")
  check.errors(function() D.elastic{sigma = -1} end, "sg.data.elastic: sigma")
  check.errors(function() D.elastic{sigma = 0} end, "sg.data.elastic: sigma must be > 0")
  check.errors(function() D.flip{axis = "diagonal"} end, "sg.data.flip: axis must be one of")
  check.errors(function() D.flip{p = 2} end, "sg.data.flip: p must be a probability")
  check.errors(function() D.rotate{degree = 3} end, "sg.data.rotate: unknown option 'degree' (did you mean 'degrees'?")
  check.errors(function() D.flip{D.rot90{}} end, "sg.data.flip: unexpected positional argument")
  check.errors(function() D.grid_distortion{num_steps = 2.5} end, "sg.data.grid_distortion: num_steps must be an integer")
  check.errors(function() D.grid_distortion{distort_limit = 1.5} end, "sg.data.grid_distortion: distort_limit")
  check.errors(function() D.random_crop{} end, "sg.data.random_crop: size is required")
  check.errors(function() D.random_crop{size = {0, 4}} end, "sg.data.random_crop: size must be positive integers")
  check.errors(function() D.random_resized_crop{size = 8, scale = {0.5, 2}} end, "sg.data.random_resized_crop: scale")
  check.errors(function() D.some_of{n = 3, D.flip{}} end, "sg.data.some_of: n = 3 but only 1 transforms")
  check.errors(function() D.some_of{D.flip{}} end, "sg.data.some_of: n (how many")
  check.errors(function() D.one_of{} end, "sg.data.one_of: needs at least one transform")
  check.errors(function() D.one_of{D.flip{}, weights = {1, 2}} end, "sg.data.one_of: weights has 2 entries")
  check.errors(function() D.recipe{42} end, "sg.data.recipe: transform #1 is not a transform")
  check.errors(function() D.gaussian_noise{sigma = -0.1} end, "sg.data.gaussian_noise: sigma")
  check.errors(function() D.gamma{gamma = 0} end, "sg.data.gamma: gamma")
  check.errors(function() D.rotate{fill = "wrap"} end, "sg.data.rotate: fill must be one of")
  check.errors(function() D.rotate{mask_fill = 0.5} end, "sg.data.rotate: mask_fill must be an integer")
  local r = D.recipe{D.flip{}}
  local img = sg.rand({1, 8, 8})
  check.errors(function() r:apply(img, nil) end, "apply: seed must be an integer")
  check.errors(function() r:apply(img, nil, 1.5) end, "apply: seed must be an integer")
  check.errors(function() D.recipe{D.flip{p = 1}}:apply(img, sg.zeros({8, 9}, "i64"), 1) end,
    "does not fit the image")
  check.errors(function() K.flip(img, sg.zeros({8, 8}), true) end, "the mask must be an integer tensor")
  check.errors(function() K.flip(sg.zeros({8, 8}, "i64"), nil, true) end, "the image must be a float tensor")
  check.errors(function() K.flip(sg.zeros({1, 1, 8, 8}), nil, true) end, "the image must be C x H x W or H x W")
  check.errors(function() K.rotate(img, nil, 10, "wrap") end, "rotate: fill must be")
  check.errors(function() D.synthetic_cells{classes = 4} end, "synthetic_cells: classes must be 2 or 3")
  check.errors(function() D.synthetic_cells{size = 4} end, "synthetic_cells: size must be in 8..16384")
  check.errors(function() D.synthetic_cells{colour = 1} end, "sg.data.synthetic_cells: unknown option")
end)

test("preview writes a sheet of augmented samples", function()
  if not (sg.io and sg.io.write_png) then skip("sg.io.write_png is not available") end
  local imgs, masks = D.synthetic_cells{n = 1, size = 48, classes = 3, seed = 2}
  local r = D.recipe{D.flip{}, D.rot90{}, D.elastic{alpha = 20, sigma = 4}}
  local path = os.tmpname() .. ".png"
  local sheet = D.preview(r, imgs[1], masks[1], path, {n = 4, seed = 1})
  check.eq(sheet.shape, {2 * 48 + 3 * 2, 4 * 48 + 5 * 2})
  local f = io.open(path, "rb")
  check.truthy(f, "file written")
  check.eq(f:read(8), "\137PNG\r\n\26\n")
  f:close()
  os.remove(path)
end)
