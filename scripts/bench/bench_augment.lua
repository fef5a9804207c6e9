-- Augmentation throughput: 256x256 samples per second on one core for a
-- typical EM recipe (flips, rot90, elastic deformation, Gaussian noise).
-- Usage: build/semseg run scripts/bench/bench_augment.lua [seconds] [size]
local sg = require "semseg"
local D = sg.data
local seconds = tonumber(arg and arg[1]) or 3
local size = math.tointeger(tonumber(arg and arg[2]) or 256)

local imgs, masks = D.synthetic_cells{n = 1, size = size, classes = 3, seed = 1}
local image, mask = imgs[1], masks[1]

local function bench(name, recipe)
  for s = 1, 3 do recipe:apply(image, mask, s) end -- warm up
  local n, t0 = 0, os.clock()
  repeat
    n = n + 1
    recipe:apply(image, mask, n)
    if n % 50 == 0 then collectgarbage("step", 0) end
  until os.clock() - t0 >= seconds
  local dt = os.clock() - t0
  print(string.format("%-40s %8.1f samples/s  (%.2f ms/sample, %d samples)", name, n / dt, 1000 * dt / n, n))
  return n / dt
end

print(string.format("semseg %s: augmenting a %dx%d image + i64 mask, one core (CPU time)", sg.version, size, size))
local typical = D.recipe{
  D.flip{axis = "both", p = 1}, D.rot90{}, D.elastic{alpha = 34, sigma = 4}, D.gaussian_noise{sigma = 0.05},
}
local rate = bench("flip + rot90 + elastic + noise", typical)
bench("flip + rot90", D.recipe{D.flip{axis = "both", p = 1}, D.rot90{}})
bench("elastic (alpha 34, sigma 4)", D.recipe{D.elastic{alpha = 34, sigma = 4}})
bench("elastic (alpha 300, sigma 12)", D.recipe{D.elastic{alpha = 300, sigma = 12}})
bench("rotate (any angle)", D.recipe{D.rotate{degrees = 180}})
bench("gaussian_noise", D.recipe{D.gaussian_noise{sigma = 0.05}})
bench("grid_distortion", D.recipe{D.grid_distortion{}})
print(string.format("typical EM recipe: %.0f samples/s per core", rate))
