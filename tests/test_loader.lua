-- The C recipe executor (data/recipe.c) and the threaded batch loader (data/loader.c).
local D = sg.data

local function maxdiff(a, b) return (a:to("f64") - b:to("f64")):abs():max():item() end
local function same(got, want, msg)
  msg = msg or "values"
  check.eq(got.shape, want.shape, msg .. ": shape")
  check.eq(got.dtype, want.dtype, msg .. ": dtype")
  if got:numel() > 0 then check.eq(maxdiff(got, want), 0, msg .. ": max abs difference") end
end

local RECIPES = {
  D.recipe{D.flip{axis = "both"}, D.rot90{}, D.transpose{}},
  D.recipe{D.rotate{degrees = 40, p = 0.7}, D.scale{factor = {0.8, 1.3}, fill = "constant", fill_value = 0.5,
    mask_fill = 2}, D.brightness{delta = 0.2}, D.contrast{}, D.gamma{}},
  D.recipe{D.elastic{alpha = {10, 30}, sigma = {3, 5}}, D.grid_distortion{num_steps = 4}, D.gaussian_noise{sigma = {0, 0.1}},
    D.gaussian_blur{p = 0.5}},
  D.recipe{D.random_crop{size = {20, 24}}, D.one_of{D.flip{}, D.rot90{k = 3}, D.transpose{p = 1}, weights = {1, 2, 0.5}},
    D.one_of{D.brightness{}, D.gamma{}}},
  D.recipe{D.random_resized_crop{size = 16, scale = {0.2, 1}}, D.some_of{D.flip{p = 1}, D.rotate{}, D.contrast{},
    D.gaussian_noise{}, n = 2}},
  D.recipe{D.random_resized_crop{size = {8, 30}, scale = {0.9, 1}, ratio = {5, 6}}},
}

test("C recipe executor draws exactly what the Lua reference draws", function()
  sg.manual_seed(3)
  local img = sg.rand({2, 32, 36})
  local mask = sg.randint(0, 3, {32, 36}, "i64")
  for r, rec in ipairs(RECIPES) do
    for seed = 0, 24 do
      local a, m = rec:apply(img, mask, seed * 7919 + r)
      local b, n = rec:apply_reference(img, mask, seed * 7919 + r)
      same(a, b, "recipe " .. r .. " seed " .. seed .. " image")
      same(m, n, "recipe " .. r .. " seed " .. seed .. " mask")
    end
    local a, m = rec:apply(img[1], nil, 5) -- H x W image without a mask
    local b = rec:apply_reference(img[1], nil, 5)
    same(a, b, "2-D image") check.eq(m, nil)
  end
  -- a recipe rebuilt from its serialization runs identically
  local back = D.recipe_load(RECIPES[4]:serialize())
  same(back:apply(img, mask, 11), RECIPES[4]:apply(img, mask, 11), "reloaded recipe")
  -- errors come through with the transform's name
  check.errors(function() D.recipe{D.random_crop{size = 64}}:apply(img, mask, 1) end, "larger than the image")
end)

-- a small labelled data set written to a temporary folder
local core = require "semseg.core"
local function tmp_dataset(n, size)
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  os.execute("mkdir -p '" .. dir .. "/img' '" .. dir .. "/lab'")
  local imgs, masks = D.synthetic_cells{n = n, size = size, classes = 3, seed = 4}
  for i = 1, n do
    local name = string.format("%02d.png", i - 1)
    sg.io.write_png(dir .. "/img/" .. name, (imgs[i] * 255 + 0.5):clamp(0, 255):to("u8"))
    sg.io.write_png(dir .. "/lab/" .. name, (masks[i] * 100):to("u8"))
  end
  local ds = D.folder{images = dir .. "/img", labels = dir .. "/lab", classes = {[0] = 0, [100] = 1, [200] = 2}}
  ds:load()
  os.execute("rm -rf '" .. dir .. "'")
  return ds
end

local AUG = D.recipe{D.flip{axis = "both"}, D.rot90{}, D.rotate{degrees = 20, p = 0.5}, D.elastic{alpha = 20, p = 0.5},
  D.brightness{delta = 0.1}, D.gaussian_noise{sigma = 0.03}}

local function collect(loader, epoch)
  local out = {}
  for images, masks in loader:epoch(epoch) do out[#out + 1] = {images, masks} end
  return out
end

test("loader: the same batches with 0, 1 and 4 workers; shapes, dtypes, class ids", function()
  if not core.loader_core then skip("semseg.core has no loader_core") end
  local ds = tmp_dataset(6, 64)
  local view = ds:random_crops{size = 40, n = 22, foreground = {class = 2, fraction = 0.5}}
  local ref
  for _, w in ipairs{0, 1, 4} do
    local L = D.loader(view, {batch = 4, shuffle = true, seed = 9, augment = AUG, workers = w, prefetch = 2})
    check.eq(#L, 6)
    local b = collect(L, 3)
    check.eq(#b, 6, "batches")
    for i, x in ipairs(b) do
      local n = i < 6 and 4 or 2
      check.eq(x[1].shape, {n, 1, 40, 40}) check.eq(x[1].dtype, "f32")
      check.eq(x[2].shape, {n, 40, 40}) check.eq(x[2].dtype, "i64")
      check.truthy(x[2]:amin():item() >= 0 and x[2]:amax():item() <= 2, "class ids only")
    end
    if not ref then ref = b else
      for i = 1, #b do
        same(b[i][1], ref[i][1], w .. " workers, batch " .. i .. " images")
        same(b[i][2], ref[i][2], w .. " workers, batch " .. i .. " masks")
      end
    end
    -- another epoch differs; the same epoch again is identical
    local other = collect(L, 4)
    check.truthy(maxdiff(other[1][1], b[1][1]) > 0, "epochs differ")
    same(collect(L, 3)[2][1], b[2][1], "epoch replayed")
    L:close()
  end
  -- sample k of epoch e is recipe:apply(crop, subseed(subseed(seed, e), k)) (no shuffle)
  local L = D.loader(ds, {batch = 2, seed = 5, augment = AUG, workers = 2})
  local first = collect(L, 1)[1]
  local es = D.core.subseed(5, 1)
  local img, m = ds:get(2)
  local a, am = AUG:apply(img, m, D.core.subseed(es, 1))
  same(first[1][2], a, "sample 2") same(first[2][2], am, "mask 2")
  L:close()
  check.errors(function() L:epoch(1) end, "closed")
end)

test("loader: early break, close, garbage collection, drop_last, tiles", function()
  if not core.loader_core then skip("semseg.core has no loader_core") end
  local ds = tmp_dataset(5, 48)
  local L = D.loader(ds:tiles{size = 32, stride = 16}, {batch = 3, workers = 3, prefetch = 2, augment = AUG})
  check.eq(#ds:tiles{size = 32, stride = 16}, 5 * 4)
  for e = 1, 3 do
    local k = 0
    for images in L:epoch(e) do
      k = k + 1
      check.eq(images.shape[2], 1)
      if k == 2 then break end -- workers still busy: the next epoch stops them
    end
  end
  local k = 0
  for _ in L:epoch(9) do k = k + 1 end
  check.eq(k, 7) -- 20 tiles in batches of 3
  for _ in L:epoch(10) do break end
  L:close() L:close()
  local D2 = D.loader(ds, {batch = 2, drop_last = true, workers = 2, shuffle = true})
  check.eq(#D2, 2)
  local sizes = {}
  for images, masks in D2:epoch(0) do sizes[#sizes + 1] = images.shape[1] check.eq(masks.shape[1], 2) end
  check.eq(sizes, {2, 2})
  for _ in D2:epoch(1) do break end
  D2 = nil -- dropped mid-epoch: __gc stops and joins the workers
  collectgarbage() collectgarbage()
  -- samples of different sizes cannot be stacked: a clear error, then the loader still works
  local bad = D.loader(ds, {batch = 2, workers = 2, augment = D.recipe{D.random_resized_crop{size = 20, p = 0.5}}})
  check.errors(function() for _ in bad:epoch(0) do end end, "must have one size")
  bad:close()
  check.errors(function() D.loader(ds, {batch = 0}) end, "batch must be")
  check.errors(function() D.loader(ds, {workers = -1}) end, "workers must be")
  check.errors(function() D.loader(ds, {augment = {}}) end, "augment must be a recipe")
end)
