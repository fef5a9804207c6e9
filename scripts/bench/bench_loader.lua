-- Loader throughput: augmented 256 x 256 samples per second with 1 and 2 workers
-- (and 0: in the calling thread). Uses ISBI 2012 when present (../shared/data or
-- $SEMSEG_DATA), else synthetic images written to a temporary folder.
--   build/semseg run scripts/bench/bench_loader.lua [epochs]
local sg = require "semseg"
local D = sg.data
local epochs = tonumber(arg and arg[1]) or 2

local function now()
  local ok, socket = pcall(require, "socket")
  if ok then return socket.gettime() end
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local root = os.getenv("SEMSEG_DATA") or "../shared/data"
local ds, tmp
local f = io.open(root .. "/isbi2012/train/images/00.png")
if f then
  f:close()
  ds = D.folder{images = root .. "/isbi2012/train/images", labels = root .. "/isbi2012/train/labels",
    classes = {[0] = 0, [255] = 1}}
else
  local p = io.popen("mktemp -d")
  tmp = p:read("l")
  p:close()
  os.execute("mkdir -p '" .. tmp .. "/img' '" .. tmp .. "/lab'")
  local imgs, masks = D.synthetic_cells{n = 8, size = 512, seed = 1}
  for i = 1, 8 do
    sg.io.write_png(string.format("%s/img/%02d.png", tmp, i), (imgs[i] * 255):clamp(0, 255):to("u8"))
    sg.io.write_png(string.format("%s/lab/%02d.png", tmp, i), (masks[i] * 255):to("u8"))
  end
  ds = D.folder{images = tmp .. "/img", labels = tmp .. "/lab", classes = {[0] = 0, [255] = 1}}
end
ds:load()

local recipe = D.recipe{D.flip{axis = "both"}, D.rot90{}, D.rotate{degrees = 30, p = 0.5},
  D.elastic{alpha = 34, sigma = 4, p = 0.3}, D.brightness{delta = 0.1}, D.contrast{}, D.gaussian_noise{sigma = 0.03, p = 0.5}}
local view = ds:random_crops{size = 256, n = 128, foreground = {class = 0, fraction = 0.33}}

print(string.format("%d source images, %d crops of 256x256 per epoch, batch 8, %d epochs", #ds, #view, epochs))
for _, w in ipairs{0, 1, 2} do
  local L = D.loader(view, {batch = 8, shuffle = true, seed = 1, augment = recipe, workers = w})
  for _ in L:epoch(0) do end -- warm up
  local t0, n = now(), 0
  for e = 1, epochs do
    for images in L:epoch(e) do n = n + images.shape[1] end
  end
  local dt = now() - t0
  print(string.format("workers=%d  %7.1f samples/s  (%d samples in %.2f s)", w, n / dt, n, dt))
  L:close()
end
if tmp then os.execute("rm -rf '" .. tmp .. "'") end
