-- The published 3-class set-up on the Drosophila VNC ssTEM stack (Gerhard et al. 2013):
-- cytoplasm / cell membrane / mitochondria, U-Net vs Attention U-Net vs R2U-Net.
--
--   semseg run experiments/drosophila_3class.lua [data root] [--quick] [--out runs/drosophila_3class]
--          [--epochs N] [--base N] [--depth N] [--batch N] [--lr X] [--seed N] [--workers N]
--          [--check] [--config runs/.../config.json]
--
-- Data: <root>/drosophila-vnc/stack1/{raw/NN.tif, labels/NN.png} (root: the argument, $SEMSEG_DATA or
-- ../shared/data). Label values map to classes as in the data README: cytoplasm = {255, 159},
-- membrane = {0, 32, 64, 96, 128, 223}, mitochondria = {191}.
-- Recipe (published): 256x256 non-overlapping tiles, split by section (no section in two splits),
-- categorical focal loss (alpha 0.25, gamma 2), batch 4, Adam lr 1e-3, ReduceLROnPlateau (factor 0.8,
-- patience 5, min_lr 1e-4), early stopping (patience 7), flips, rotation 0-179 degrees, zoom up to 50 %.
-- Reports per-class IoU and mean IoU (published: U-Net 0.837, Attention U-Net 0.827, R2U-Net 0.840).
-- --quick: a small CPU preset (base 8, a few epochs) to check the pipeline end to end.
local experiment = sg.experiment or require "semseg_app.experiment"
local json = sg.json
local D = sg.data

local args = experiment.parse_args(arg, {quick = true, check = true})
if args.config then
  local f = assert(io.open(args.config, "rb"), "cannot open " .. tostring(args.config))
  local saved = json.decode(f:read("a"), args.config)
  f:close()
  if type(saved.run) ~= "table" or saved.run.script ~= "drosophila_3class" then
    error(args.config .. " was not written by experiments/drosophila_3class.lua", 0)
  end
  local again = saved.run.options
  for k, v in pairs(args) do if k ~= "config" then again[k] = v end end
  args = again
end

local quick = args.quick == true
local o = {
  quick = quick,
  data = args[1] or args.data or os.getenv("SEMSEG_DATA") or "../shared/data",
  out = args.out or (quick and "runs/drosophila_3class_quick" or "runs/drosophila_3class"),
  epochs = args.epochs or (quick and 4 or 100), -- early stopping (patience 7) ends the full run sooner
  base = args.base or (quick and 8 or 64),
  depth = args.depth or 4,
  tile = 256,
  batch = args.batch or 4,
  lr = args.lr or 1e-3,
  seed = args.seed or 42,
  workers = args.workers or 1,
  split = {0.7, 0.15, 0.15}, -- by section
}
for _, k in ipairs{"epochs", "base", "depth", "batch", "seed", "workers"} do
  if math.type(o[k]) ~= "integer" or o[k] < ((k == "seed" or k == "workers") and 0 or 1) then
    error(string.format("drosophila_3class: --%s must be a positive integer (got %s)", k, tostring(o[k])), 0)
  end
end
if type(o.lr) ~= "number" or o.lr <= 0 then error("drosophila_3class: --lr must be a positive number", 0) end

local stack = o.data .. "/drosophila-vnc/stack1"
local probe = io.open(stack .. "/raw/00.tif", "rb")
if not probe then
  error("drosophila_3class: no Drosophila VNC data under " .. o.data .. " (expected " .. stack .. "/raw/00.tif; "
    .. "give the data root as the first argument or in SEMSEG_DATA)", 0)
end
probe:close()
local CLASSES = {[255] = 0, [159] = 0, [0] = 1, [32] = 1, [64] = 1, [96] = 1, [128] = 1, [223] = 1, [191] = 2}
local ds = D.folder{images = stack .. "/raw", labels = stack .. "/labels", classes = CLASSES}
local source = string.format("Drosophila VNC stack1 (%s): %d sections of 1024x1024, 3 classes", stack, #ds)

local recipe = D.recipe{D.flip{axis = "horizontal"}, D.flip{axis = "vertical"},
  D.rotate{degrees = {0, 179}, fill = "reflect"}, D.scale{factor = {0.5, 1.5}, fill = "reflect"}}

local function loss(logits, target) return sg.loss.focal(logits, target, {alpha = 0.25, gamma = 2}) end

local function cfg() return {in_channels = 1, classes = 3, base = o.base, depth = o.depth} end
local function callbacks()
  return {sg.train.early_stopping{monitor = "val_loss", patience = 7}}
end
local opts = {
  name = "Drosophila VNC, 3 classes" .. (quick and " (quick CPU preset)" or " (published recipe)"),
  out = o.out, data = ds, split = o.split, seed = o.seed,
  models = {
    {name = "unet", arch = "unet", cfg = cfg()},
    {name = "attention_unet", arch = "attention_unet", cfg = cfg()},
    {name = "r2unet", arch = "r2unet", cfg = cfg()},
  },
  sampling = "tiles", patch = o.tile, val_tile = o.tile, batch = o.batch, epochs = o.epochs, workers = o.workers,
  recipe = recipe, loss = loss,
  optimizer = function(params) return sg.optim.adam(params, {lr = o.lr}) end,
  scheduler = function(opt)
    return sg.optim.lr.reduce_on_plateau(opt, {mode = "min", factor = 0.8, patience = 5, min_lr = 1e-4})
  end,
  callbacks = callbacks,
  metrics = {classes = 3}, class_names = {"cytoplasm", "membrane", "mitochondria"},
  tile = {size = o.tile, overlap = 0}, panels = 3,
  config = {script = "drosophila_3class", source = source, options = o,
    rerun = "build/semseg run experiments/drosophila_3class.lua --config " .. o.out .. "/config.json"},
}
experiment.validate(opts)
print("drosophila_3class: " .. source)
print(string.format("drosophila_3class: %s, up to %d epochs, base %d, depth %d, 256x256 tiles, batch %d, Adam lr %g, "
  .. "focal (alpha 0.25, gamma 2), plateau 0.8/5, early stop 7, out %s", quick and "quick CPU preset" or
  "published recipe", o.epochs, o.base, o.depth, o.batch, o.lr, o.out))

if args.check then
  print("drosophila_3class: configuration OK")
  return
end
local results = experiment.compare(opts)
print("\nmean IoU over the three classes (published: U-Net 0.837, Attention U-Net 0.827, R2U-Net 0.840):")
for _, r in ipairs(results) do
  local c = r.test_class_iou
  print(string.format("  %-16s cytoplasm %.3f  membrane %.3f  mitochondria %.3f  mean %.3f", r.model, c[1] or 0 / 0,
    c[2] or 0 / 0, c[3] or 0 / 0, r.test_miou_pooled or 0 / 0))
end
