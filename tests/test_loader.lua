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
