-- U-Net vs Attention U-Net vs Attention Residual U-Net on ISBI 2012 (membrane vs cell interior).
--
--   semseg run experiments/compare_unets.lua [data root] [--full] [--out runs/compare_unets]
--          [--epochs N] [--base N] [--depth N] [--patch N] [--crops N] [--batch N] [--lr X]
--          [--seed N] [--workers N] [--device cpu|cuda|auto] [--amp bf16|fp16] [--check]
--          [--config runs/.../config.json]
--
-- Data: the root given, else $SEMSEG_DATA, else ../shared/data, with isbi2012/train/{images,labels};
-- without it, synthetic EM-like cells (sg.data.synthetic_cells), and the script says so.
-- --full is the published recipe: 256x256 inputs, Adam lr 1e-2, binary focal loss (gamma 2), batch 8,
-- 50 epochs, 90/10 split, flips, rot90, transpose and grid distortion.
-- The default is a quick CPU preset (base 8, 128x128 crops, a few epochs; about 10 minutes on 2 cores).
-- --check builds the data and validates the configuration, then stops (no training).
-- --config re-runs a previous run with the options recorded in its config.json.
-- --device: where the models train and predict: cpu (the default), cuda, or auto (cuda when a GPU is
-- usable, else cpu). --amp bf16 trains and predicts in mixed precision (bfloat16 autocast, f32 weights);
-- --amp fp16 in float16 with dynamic loss scaling. On an H100, try --full --device cuda --amp bf16.
local experiment = sg.experiment or require "semseg_app.experiment"
local json = sg.json
local D = sg.data

local args = experiment.parse_args(arg, {full = true, check = true})
if args.config then
  local f = assert(io.open(args.config, "rb"), "cannot open " .. tostring(args.config))
  local saved = json.decode(f:read("a"), args.config)
  f:close()
  if type(saved.run) ~= "table" or saved.run.script ~= "compare_unets" then
    error(args.config .. " was not written by experiments/compare_unets.lua", 0)
  end
  local again = saved.run.options
  for k, v in pairs(args) do if k ~= "config" then again[k] = v end end -- command line wins
  args = again
end

local full = args.full == true
local o = {
  full = full,
  data = args[1] or args.data or os.getenv("SEMSEG_DATA") or "../shared/data",
  out = args.out or (full and "runs/compare_unets_full" or "runs/compare_unets"),
  epochs = args.epochs or (full and 50 or 30),
  base = args.base or (full and 64 or 8),
  depth = args.depth or 4,
  patch = args.patch or (full and 256 or 128),
  crops = args.crops, -- random crops per epoch; default 128, full: four 256x256 crops per training section
  batch = args.batch or 8,
  lr = args.lr or (full and 1e-2 or 3e-3),
  seed = args.seed or 42,
  workers = args.workers or 1,
  gamma = args.gamma or 2,
  device = args.device or "cpu",
  amp = args.amp,
}
if o.device ~= "cpu" and o.device ~= "cuda" and o.device ~= "auto" then
  error("compare_unets: --device must be cpu, cuda or auto (got " .. tostring(o.device) .. ")", 0)
end
if o.amp ~= nil and o.amp ~= "bf16" and o.amp ~= "fp16" then
  error("compare_unets: --amp must be bf16 or fp16 (got " .. tostring(o.amp) .. ")", 0)
end
if o.device == "cuda" and not sg.cuda.is_available() then
  error("compare_unets: --device cuda, but no GPU is usable: " .. tostring(sg.cuda.why_unavailable()), 0)
end
if o.crops == nil and not full then o.crops = 128 end
for _, k in ipairs{"epochs", "base", "depth", "patch", "crops", "batch", "seed", "workers"} do
  if o[k] ~= nil and (math.type(o[k]) ~= "integer" or o[k] < ((k == "seed" or k == "workers") and 0 or 1)) then
    error(string.format("compare_unets: --%s must be a positive integer (got %s)", k, tostring(o[k])), 0)
  end
end
if type(o.lr) ~= "number" or o.lr <= 0 then error("compare_unets: --lr must be a positive number", 0) end

-- data: ISBI 2012 when present, synthetic cells otherwise
local ds, source
local isbi = o.data .. "/isbi2012/train"
local probe = io.open(isbi .. "/images/00.png", "rb")
if probe then
  probe:close()
  ds = D.folder{images = isbi .. "/images", labels = isbi .. "/labels", classes = {[0] = 0, [255] = 1}}
  source = "ISBI 2012 (" .. isbi .. "): " .. #ds .. " sections, 0 = membrane, 1 = cell interior"
else
  print("compare_unets: no ISBI 2012 data under " .. o.data .. " (give the data root as the first argument or in "
    .. "SEMSEG_DATA); using synthetic EM-like cells instead")
  ds = experiment.synthetic_dataset(o.out .. "/synthetic_data", {n = 24, size = 256, classes = 2, seed = o.seed})
  source = "synthetic cells (sg.data.synthetic_cells, 24 images 256x256): 0 = cell interior, 1 = membrane"
end

local recipe = full and D.recipe{D.flip{axis = "horizontal"}, D.flip{axis = "vertical"}, D.rot90{}, D.transpose{},
  D.grid_distortion{num_steps = 5, distort_limit = 0.3, p = 0.5, fill = "reflect"}}
  or D.recipe{D.flip{axis = "both"}, D.rot90{}}

-- one sigmoid output and the binary focal loss on the class-1 mask
local function loss(logits, target)
  local t = target:to("f32")
  if t.ndim == logits.ndim - 1 then t = t:unsqueeze(2) end
  return sg.loss.binary_focal(logits, t, {gamma = o.gamma})
end

local function cfg() return {in_channels = 1, classes = 1, base = o.base, depth = o.depth} end
local opts = {
  name = "U-Net family on " .. (probe and "ISBI 2012" or "synthetic cells") .. (full and " (published recipe)" or
    " (quick CPU preset)"),
  out = o.out, data = ds, split = {0.9, 0.1}, seed = o.seed,
  models = {
    {name = "unet", arch = "unet", cfg = cfg()},
    {name = "attention_unet", arch = "attention_unet", cfg = cfg()},
    {name = "attention_residual_unet", arch = "attention_residual_unet", cfg = cfg()},
  },
  patch = o.patch, crops = o.crops, val_tile = o.patch, batch = o.batch, epochs = o.epochs, workers = o.workers,
  recipe = recipe, loss = loss,
  optimizer = function(params) return sg.optim.adam(params, {lr = o.lr}) end,
  metrics = {classes = 2}, tile = {size = o.patch, overlap = 0.25}, panels = 3, device = o.device, amp = o.amp,
  class_names = probe and {"membrane", "interior"} or {"interior", "membrane"},
  config = {script = "compare_unets", source = source, options = o,
    rerun = "build/semseg run experiments/compare_unets.lua --config " .. o.out .. "/config.json"},
}
experiment.validate(opts)
print("compare_unets: " .. source)
print(string.format("compare_unets: %s, %d epochs, base %d, depth %d, %dx%d crops (%s per epoch), batch %d, "
  .. "Adam lr %g, binary focal (gamma %g), out %s", full and "published recipe" or "quick CPU preset", o.epochs,
  o.base, o.depth, o.patch, o.patch, o.crops or "4 per training image", o.batch, o.lr, o.gamma, o.out))
print(string.format("compare_unets: device %s%s", sg.device.resolve(o.device), o.amp and (", mixed precision " .. o.amp) or ""))

if args.check then
  print("compare_unets: configuration OK")
  return
end
experiment.compare(opts)
