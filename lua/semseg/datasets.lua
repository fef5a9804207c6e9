-- sg.data datasets, views of them (tiles, random crops), splits, and the
-- threaded batch loader.
--
--   sg.data.folder{images = dir, labels = dir, classes = {[0] = 0, [255] = 1}, ignore_unmapped = nil | class,
--                  normalize = "unit" | "zscore_image" | "zscore_dataset" | {percentile = {1, 99}}}
--   sg.data.stack{images = "x.tif", labels = "y.tif", ...}     multi-page TIFF stacks, one item per page
--   sg.data.pairs({{image_path, label_path}, ...}, opts)
--   sg.data.single(image_path, opts)                          one image, no labels
--
-- Images and labels are paired by file stem ("03.tif" with "03.png"), decoded
-- once on first use and cached: image f32 C x H x W (gray 1 x H x W), mask i64
-- H x W after the value -> class map (a value outside the map is an error
-- naming the file and the value, or becomes ignore_unmapped when given;
-- without `classes` the label values are the class ids).
--
-- Intensity: normalize = "unit" (the default: integer samples divided by the
-- largest value of their bit depth), "zscore_image" ((x - mean) / std per
-- image), "zscore_dataset" (mean and std over all images of the data set as
-- constructed, shared by its splits) or {percentile = {lo, hi}} (clipped to
-- the per-image percentiles, then mapped to [0, 1]).
--
-- #ds, ds:get(i) -> image, mask; ds:tiles{size =, stride = | overlap =, pad = "reflect" | "constant"};
-- ds:random_crops{size =, n =, foreground = {class =, fraction =}, pad =, seed =};
-- ds:split{0.9, 0.1, seed =} -> datasets; ds:kfold{k =, fold =, seed =} -> train, val
-- (splits are by image: the views of one split never share a section);
-- ds:class_frequencies(nclasses) -> {f0, f1, ...}.
--
-- sg.data.loader(dataset_or_view, {batch = 1, shuffle = false, seed = 0, drop_last = false,
--                                  augment = recipe, workers = 0, prefetch = 2, pin_memory = false})
--   for images, masks in loader:epoch(e) do ... end     images f32 N x C x H x W, masks i64 N x H x W
--   pin_memory = true: batches in page-locked host memory (t.is_pinned), so images:cuda() copies
--   asynchronously; without a CUDA device the batches are plain memory, the same values either way.
--   loader:close() (also on garbage collection; starting another epoch ends a running one)
-- The epoch's plan (order, crop boxes, per-sample seeds) is computed here from
-- (seed, epoch); C worker threads cut, augment (data/recipe.c, the same draws
-- as recipe:apply) and stack, so the batches do not depend on `workers`.
-- Sample k (0-based, in delivery order) of epoch e gets the recipe seed
-- subseed(subseed(seed, e), k).
local core = require "semseg.core"
local util = require "semseg.util"
local K = core.data_core

local M = {}

local LC = core.loader_core -- the C half: engine/lua/lua_loader.c

local function fail(op, fmt, ...) error("sg.data." .. op .. ": " .. string.format(fmt, ...), 0) end

-- the list part (split fractions) is no option
local function check_keys(op, opts, allowed) util.check_options(opts, allowed, "sg.data." .. op, true) end

local function to_seed(op, s)
  if s == nil then return 0 end
  if math.type(s) == "integer" then return s end
  if type(s) == "number" and s == math.floor(s) and math.abs(s) < 2 ^ 63 then return math.tointeger(s) end
  fail(op, "seed must be an integer (got %s)", tostring(s))
end

local function size2(op, v)
  local h, w
  if math.type(v) == "integer" then h, w = v, v
  elseif type(v) == "table" and #v == 2 then h, w = v[1], v[2] end
  if math.type(h) ~= "integer" or math.type(w) ~= "integer" or h < 1 or w < 1 then
    fail(op, "size must be a positive integer or {h, w} of positive integers (got %s)", tostring(v))
  end
  return {h, w}
end

-- a permutation of 1..n from the keyed generator
local function permutation(n, seed, stream)
  local p = {}
  for i = 1, n do p[i] = i end
  for i = n, 2, -1 do
    local j = math.min(i, math.floor(K.uniform(seed, stream, i) * i) + 1)
    p[i], p[j] = p[j], p[i]
  end
  return p
end

local function stem(name) return (name:gsub("^.*/", ""):gsub("%.[^.]*$", "")) end

local function list_dir(op, dir)
  if type(dir) ~= "string" then fail(op, "expected a directory path (got %s)", type(dir)) end
  local st = dir ~= "" and core.fs.stat(dir) or nil
  local files = {}
  if st and st.type == "dir" then
    for _, f in ipairs(core.fs.list_dir(dir)) do -- sorted; hidden files are left out
      local l = f:lower()
      if f:sub(1, 1) ~= "." and (l:match("%.png$") or l:match("%.tiff?$")) then files[#files + 1] = f end
    end
  end
  if #files == 0 then fail(op, "no PNG or TIFF files in %s", dir) end
  return files
end

-------------------------------------------------------------------- data sets
local Dataset = {}
Dataset.__index = Dataset
M.Dataset = Dataset
local View = {}
View.__index = View
M.View = View

local NORMS = {unit = true, zscore_image = true, zscore_dataset = true}
local COMMON = {classes = true, ignore_unmapped = true, normalize = true}

local function check_common(op, opts)
  local cfg = {classes = opts.classes, ignore = opts.ignore_unmapped, normalize = opts.normalize or "unit"}
  if cfg.classes ~= nil then
    if type(cfg.classes) ~= "table" then fail(op, "classes must be a table {[label value] = class}") end
    for v, c in pairs(cfg.classes) do
      if math.type(v) ~= "integer" or math.type(c) ~= "integer" then
        fail(op, "classes must map integer label values to integer classes (got [%s] = %s)", tostring(v), tostring(c))
      end
    end
  end
  if cfg.ignore ~= nil and math.type(cfg.ignore) ~= "integer" then
    fail(op, "ignore_unmapped must be an integer class (got %s)", tostring(cfg.ignore))
  end
  local nz = cfg.normalize
  if type(nz) == "table" then
    local p = nz.percentile
    if type(p) ~= "table" or type(p[1]) ~= "number" or type(p[2]) ~= "number" or not (0 <= p[1] and p[1] < p[2]
      and p[2] <= 100) then
      fail(op, "normalize = {percentile = {lo, hi}} needs 0 <= lo < hi <= 100")
    end
  elseif not NORMS[nz] then
    fail(op, "normalize must be \"unit\", \"zscore_image\", \"zscore_dataset\" or {percentile = {lo, hi}} (got %s)",
      tostring(nz))
  end
  cfg.stats = {} -- zscore_dataset mean/std, shared by splits
  return cfg
end

local function new_dataset(op, items, cfg)
  if #items == 0 then fail(op, "the data set is empty") end
  return setmetatable({items = items, cfg = cfg, op = op}, Dataset)
end

-- raw image (f32 in [0, 1] for integer samples) of an item, C x H x W
local function read_image(item)
  local t
  if item.page then
    local st = item.stack
    if not st.images then st.images = core.io.read_tiff(st.image_path, {stack = true, scale = true, dtype = "f32"}) end
    local all = st.images
    t = all.ndim == 2 and all or all[item.page]
  else
    t = core.io.read_image(item.image_path, {scale = true, dtype = "f32"})
  end
  if t.ndim == 2 then t = t:unsqueeze(1) end
  return t:to("f32"):contiguous()
end

local function read_labels(item, cfg)
  local t
  if item.page then
    local st = item.stack
    if not st.labels then st.labels = core.io.read_tiff(st.label_path, {stack = true}) end
    t = st.labels.ndim == 2 and st.labels or st.labels[item.page]
  else
    t = core.io.read_image(item.label_path)
  end
  if t.ndim == 3 then
    if t.shape[1] ~= 1 then
      error(string.format("sg.data: %s: labels must be a single-channel image (got %d channels)", item.label_name,
        t.shape[1]), 0)
    end
    t = t[1]
  end
  if cfg.classes then
    local m, bad = LC.remap(t, cfg.classes, cfg.ignore)
    if not m then
      error(string.format("sg.data: %s: label value %d is not in the classes map", item.label_name, bad), 0)
    end
    return m
  end
  return t:to("i64"):contiguous()
end

local function moments(t)
  local mean = t:mean():item()
  local std = t:std():item()
  return mean, std > 1e-12 and std or 1
end

function Dataset:_decode(i)
  local item = self.items[i]
  if item.image then return item end
  local cfg = self.cfg
  local img = read_image(item)
  local nz = cfg.normalize
  if nz == "zscore_image" then
    local m, s = moments(img)
    img = (img - m) / s
  elseif nz == "zscore_dataset" then
    local st = cfg.stats
    if not st.mean then
      -- mean and std over every pixel of every image (from sums, one image decoded at a time)
      local n, s1, s2 = 0, 0, 0
      for _, it in ipairs(cfg.all_items) do
        local x = read_image(it)
        local c = x:numel()
        local m = x:to("f64"):mean():item()
        local v = ((x:to("f64") - m) ^ 2):sum():item()
        s1, s2, n = s1 + m * c, s2 + v + c * m * m, n + c
      end
      st.mean = s1 / n
      st.std = math.sqrt(math.max(s2 / n - st.mean * st.mean, 0))
      if st.std < 1e-12 then st.std = 1 end
    end
    img = (img - st.mean) / st.std
  elseif type(nz) == "table" then
    local lo, hi = LC.quantiles(img, nz.percentile[1], nz.percentile[2])
    img = (img:clamp(lo, hi) - lo) / math.max(hi - lo, 1e-12)
  end
  img = img:to("f32"):contiguous()
  local mask
  if item.label_path or (item.stack and item.stack.label_path) then
    mask = read_labels(item, cfg)
    local s = img.shape
    if mask.shape[1] ~= s[2] or mask.shape[2] ~= s[3] then
      error(string.format("sg.data: %s is %dx%d but its labels %s are %dx%d", item.name, s[2], s[3], item.label_name,
        mask.shape[1], mask.shape[2]), 0)
    end
  end
  item.image, item.mask = img, mask
  return item
end

function Dataset:__len() return #self.items end
Dataset.size = Dataset.__len

-- ds:get(i) -> image f32 C x H x W, mask i64 H x W (nil without labels)
function Dataset:get(i)
  if math.type(i) ~= "integer" or i < 1 or i > #self.items then
    fail("get", "index %s out of range 1..%d", tostring(i), #self.items)
  end
  local it = self:_decode(i)
  return it.image, it.mask
end

function Dataset:name(i) return self.items[i].name end

-- decodes every item; returns the lists of images and masks (masks nil without labels)
function Dataset:load()
  local imgs, masks = {}, {}
  for i = 1, #self.items do
    local it = self:_decode(i)
    imgs[i], masks[i] = it.image, it.mask
  end
  if #masks ~= #imgs then
    if #masks > 0 then fail("load", "some items have labels and some do not") end
    masks = nil
  end
  return imgs, masks
end

-- fraction of pixels of each class 0..nclasses-1 over all masks
function Dataset:class_frequencies(nclasses)
  local tot, n = {}, 0
  for c = 1, nclasses do tot[c] = 0 end
  for i = 1, #self.items do
    local _, m = self:get(i)
    if not m then fail("class_frequencies", "the data set has no labels") end
    local c = LC.counts(m, nclasses)
    for k = 1, nclasses do tot[k] = tot[k] + c[k] end
    n = n + m:numel()
  end
  for k = 1, nclasses do tot[k] = tot[k] / n end
  return tot
end

function Dataset:_subset(idx)
  local items = {}
  for k, i in ipairs(idx) do items[k] = self.items[i] end
  return setmetatable({items = items, cfg = self.cfg, op = self.op}, Dataset)
end

local function split_indices(op, n, opts)
  if type(opts) ~= "table" or #opts < 1 then fail(op, "expected {fraction, fraction, ..., seed = }") end
  local total = 0
  for i, f in ipairs(opts) do
    if type(f) ~= "number" or f < 0 then fail(op, "fraction #%d must be a number >= 0", i) end
    total = total + f
  end
  if total <= 0 then fail(op, "the fractions must not all be 0") end
  local perm = permutation(n, to_seed(op, opts.seed), 11)
  local out, acc, prev = {}, 0, 0
  for i, f in ipairs(opts) do
    acc = acc + f
    local b = i == #opts and n or math.floor(acc / total * n + 0.5)
    local part = {}
    for k = prev + 1, b do part[#part + 1] = perm[k] end
    table.sort(part)
    out[i] = part
    prev = b
  end
  return out
end

local function kfold_indices(op, n, opts)
  check_keys(op, opts, {k = true, fold = true, seed = true})
  local k, fold = opts.k, opts.fold
  if math.type(k) ~= "integer" or k < 2 or k > n then fail(op, "k must be an integer in 2..%d (got %s)", n, tostring(k)) end
  if math.type(fold) ~= "integer" or fold < 1 or fold > k then
    fail(op, "fold must be an integer in 1..%d (got %s)", k, tostring(fold))
  end
  local perm = permutation(n, to_seed(op, opts.seed), 12)
  local lo, hi = (fold - 1) * n // k, fold * n // k
  local train, val = {}, {}
  for p = 1, n do
    if p > lo and p <= hi then val[#val + 1] = perm[p] else train[#train + 1] = perm[p] end
  end
  table.sort(train)
  table.sort(val)
  return {train, val}
end

-- ds:split{0.9, 0.1, seed = 0} -> one data set per fraction (by image)
function Dataset:split(opts)
  local parts = split_indices("split", #self.items, opts)
  for i, p in ipairs(parts) do parts[i] = self:_subset(p) end
  return table.unpack(parts)
end

-- ds:kfold{k = 5, fold = 1, seed = 0} -> train, val
function Dataset:kfold(opts)
  local parts = kfold_indices("kfold", #self.items, opts)
  return self:_subset(parts[1]), self:_subset(parts[2])
end

-- full-image plan: one box per image
function Dataset:plan()
  local boxes = {}
  for i = 1, #self.items do
    local img = self:get(i)
    boxes[i] = {i, 0, 0, img.shape[2], img.shape[3]}
  end
  return boxes
end
Dataset.pad = "reflect"

local function make_items(op, pairs_list, cfg)
  local items = {}
  for i, pr in ipairs(pairs_list) do
    local img, lbl = pr[1], pr[2]
    if type(img) ~= "string" or (lbl ~= nil and type(lbl) ~= "string") then
      fail(op, "entry #%d must be {image_path, label_path}", i)
    end
    items[i] = {name = img, image_path = img, label_path = lbl, label_name = lbl}
  end
  cfg.all_items = items
  return new_dataset(op, items, cfg)
end

function M.folder(opts)
  local op = "folder"
  check_keys(op, opts or {}, setmetatable({images = true, labels = true}, {__index = COMMON}))
  local cfg = check_common(op, opts)
  local imgs = list_dir(op, opts.images)
  local list = {}
  if opts.labels then
    local by_stem = {}
    for _, f in ipairs(list_dir(op, opts.labels)) do by_stem[stem(f)] = f end
    for _, f in ipairs(imgs) do
      local l = by_stem[stem(f)]
      if not l then fail(op, "%s/%s has no label file named %s.* in %s", opts.images, f, stem(f), opts.labels) end
      by_stem[stem(f)] = nil
      list[#list + 1] = {opts.images .. "/" .. f, opts.labels .. "/" .. l}
    end
    local extra = next(by_stem)
    if extra then fail(op, "label file %s/%s has no image in %s", opts.labels, by_stem[extra], opts.images) end
  else
    for _, f in ipairs(imgs) do list[#list + 1] = {opts.images .. "/" .. f} end
  end
  return make_items(op, list, cfg)
end

function M.pairs(list, opts)
  opts = opts or {}
  check_keys("pairs", opts, COMMON)
  if type(list) ~= "table" then fail("pairs", "expected a list of {image_path, label_path}") end
  return make_items("pairs", list, check_common("pairs", opts))
end

function M.single(path, opts)
  opts = opts or {}
  check_keys("single", opts, COMMON)
  if type(path) ~= "string" then fail("single", "expected an image path (got %s)", type(path)) end
  return make_items("single", {{path}}, check_common("single", opts))
end

function M.stack(opts)
  local op = "stack"
  check_keys(op, opts or {}, setmetatable({images = true, labels = true}, {__index = COMMON}))
  local cfg = check_common(op, opts)
  if type(opts.images) ~= "string" then fail(op, "images must be the path of a multi-page TIFF") end
  local info = core.io.info(opts.images)
  local pages = info.pages
  if opts.labels then
    local li = core.io.info(opts.labels)
    if li.pages ~= pages then fail(op, "%s has %d pages but %s has %d", opts.images, pages, opts.labels, li.pages) end
  end
  local st = {image_path = opts.images, label_path = opts.labels}
  local items = {}
  for p = 1, pages do
    items[p] = {name = opts.images .. "[" .. p .. "]", stack = st, page = pages > 1 and p or nil,
      label_name = opts.labels and (opts.labels .. "[" .. p .. "]")}
    if pages == 1 then items[p].image_path, items[p].label_path = opts.images, opts.labels end
  end
  cfg.all_items = items
  return new_dataset(op, items, cfg)
end

-------------------------------------------------------------------- views
local PADS = {reflect = true, constant = true, nearest = true}

local function axis_starts(len, size, stride)
  local t, p = {}, 0
  if len <= size then return {0} end
  while true do
    t[#t + 1] = p
    if p + size >= len then break end
    p = p + stride
  end
  return t
end

local function new_view(ds, kind, params)
  local v = setmetatable({ds = ds, kind = kind, params = params, pad = params.pad or "reflect"}, View)
  if kind == "tiles" then
    local h, w, sh, sw = params.size[1], params.size[2], params.stride[1], params.stride[2]
    local boxes = {}
    for i = 1, #ds do
      local img = ds:get(i)
      for _, y in ipairs(axis_starts(img.shape[2], h, sh)) do
        for _, x in ipairs(axis_starts(img.shape[3], w, sw)) do boxes[#boxes + 1] = {i, y, x, h, w} end
      end
    end
    v.boxes = boxes
  end
  return v
end

-- ds:tiles{size = 256, stride = 256 | overlap = 0, pad = "reflect"}: every tile of every
-- image, starting at the top-left corner; tiles reaching past a border are padded.
function Dataset:tiles(opts)
  local op = "tiles"
  check_keys(op, opts or {}, {size = true, stride = true, overlap = true, pad = true})
  local size = size2(op, opts.size)
  local stride
  if opts.stride ~= nil and opts.overlap ~= nil then fail(op, "give stride or overlap, not both") end
  if opts.overlap ~= nil then
    local o = opts.overlap
    if math.type(o) == "integer" then o = {o, o} end
    if type(o) ~= "table" or math.type(o[1]) ~= "integer" or math.type(o[2]) ~= "integer" or o[1] < 0 or o[2] < 0 then
      fail(op, "overlap must be an integer >= 0 or {h, w} (got %s)", tostring(opts.overlap))
    end
    stride = {size[1] - o[1], size[2] - o[2]}
  else
    stride = opts.stride and size2(op, opts.stride) or {size[1], size[2]}
  end
  if stride[1] < 1 or stride[2] < 1 then fail(op, "the overlap must be smaller than the tile size") end
  local pad = opts.pad or "reflect"
  if not PADS[pad] then fail(op, "pad must be \"reflect\", \"constant\" or \"nearest\" (got %s)", tostring(pad)) end
  return new_view(self, "tiles", {size = size, stride = stride, pad = pad})
end

-- ds:random_crops{size = 256, n = 100, foreground = {class = 1, fraction = 0.33}, pad = "reflect", seed = 0}:
-- n crops per epoch, each from a random image; with foreground, a crop is centred
-- on a random pixel of that class with probability `fraction` (nnU-Net's
-- oversampling; images without such a pixel give a random crop).
function Dataset:random_crops(opts)
  local op = "random_crops"
  check_keys(op, opts or {}, {size = true, n = true, foreground = true, pad = true, seed = true})
  local size = size2(op, opts.size)
  local n = opts.n or #self
  if math.type(n) ~= "integer" or n < 1 then fail(op, "n must be a positive integer (got %s)", tostring(n)) end
  local fg = opts.foreground
  if fg ~= nil then
    if type(fg) ~= "table" or math.type(fg.class) ~= "integer" or type(fg.fraction or 0.33) ~= "number" then
      fail(op, "foreground must be {class = integer, fraction = number in [0, 1]}")
    end
    fg = {class = fg.class, fraction = fg.fraction or 0.33}
    if fg.fraction < 0 or fg.fraction > 1 then fail(op, "foreground fraction must be in [0, 1]") end
  end
  local pad = opts.pad or "reflect"
  if not PADS[pad] then fail(op, "pad must be \"reflect\", \"constant\" or \"nearest\" (got %s)", tostring(pad)) end
  return new_view(self, "crops", {size = size, n = n, foreground = fg, pad = pad, seed = to_seed(op, opts.seed)})
end

function View:__len()
  if self.kind == "tiles" then return #self.boxes end
  return self.params.n
end
View.size = View.__len

local function clamp(v, lo, hi) return math.max(lo, math.min(hi, v)) end

-- the crop boxes {src, top, left, h, w} (0-based offsets) for this seed
function View:plan(seed)
  if self.kind == "tiles" then return self.boxes end
  local p, ds = self.params, self.ds
  seed = seed or p.seed
  local h, w = p.size[1], p.size[2]
  local boxes = {}
  for j = 1, p.n do
    local src = math.min(#ds, math.floor(K.uniform(seed, 1, j) * #ds) + 1)
    local img, mask = ds:get(src)
    local H, W = img.shape[2], img.shape[3]
    local top, left
    if p.foreground and K.uniform(seed, 2, j) < p.foreground.fraction then
      if not mask then fail("random_crops", "foreground crops need labels") end
      local r, c = LC.pick(mask, p.foreground.class, K.uniform(seed, 3, j))
      if r then
        top = H >= h and clamp(r - h // 2, 0, H - h) or (H - h) // 2
        left = W >= w and clamp(c - w // 2, 0, W - w) or (W - w) // 2
      end
    end
    if not top then
      top = H >= h and math.min(H - h, math.floor(K.uniform(seed, 4, j) * (H - h + 1))) or (H - h) // 2
      left = W >= w and math.min(W - w, math.floor(K.uniform(seed, 5, j) * (W - w + 1))) or (W - w) // 2
    end
    boxes[j] = {src, top, left, h, w}
  end
  return boxes
end

-- view:get(i) -> image, mask of tile / crop i (crops from the view's seed)
function View:get(i)
  local n = #self
  if math.type(i) ~= "integer" or i < 1 or i > n then fail("get", "index %s out of range 1..%d", tostring(i), n) end
  local b = self:plan()[i]
  local img, mask = self.ds:get(b[1])
  return LC.crop(img, mask, b[2], b[3], b[4], b[5], self.pad, 0, 0)
end

function View:box(i) return table.unpack(self:plan()[i]) end

function View:split(opts)
  local parts = {self.ds:split(opts)}
  for i, d in ipairs(parts) do parts[i] = new_view(d, self.kind, self.params) end
  return table.unpack(parts)
end

function View:kfold(opts)
  local a, b = self.ds:kfold(opts)
  return new_view(a, self.kind, self.params), new_view(b, self.kind, self.params)
end

-------------------------------------------------------------------- the loader
local Loader = {}
Loader.__index = Loader
M.Loader = Loader

local LOADER_KEYS = {batch = true, shuffle = true, seed = true, drop_last = true, augment = true, workers = true,
  prefetch = true, pin_memory = true}

function M.loader(src, opts)
  opts = opts or {}
  check_keys("loader", opts, LOADER_KEYS)
  local mt = getmetatable(src)
  if mt ~= Dataset and mt ~= View then fail("loader", "argument #1 must be a data set or a view of one") end
  local batch = opts.batch or 1
  if math.type(batch) ~= "integer" or batch < 1 then fail("loader", "batch must be a positive integer") end
  local workers = opts.workers or 0
  if math.type(workers) ~= "integer" or workers < 0 or workers > 256 then
    fail("loader", "workers must be an integer in 0..256 (got %s)", tostring(workers))
  end
  local prefetch = opts.prefetch or math.max(2, workers)
  if math.type(prefetch) ~= "integer" or prefetch < 1 then fail("loader", "prefetch must be a positive integer") end
  if opts.pin_memory ~= nil and type(opts.pin_memory) ~= "boolean" then
    fail("loader", "pin_memory must be true or false (got %s)", tostring(opts.pin_memory))
  end
  local recipe = opts.augment
  if recipe ~= nil and getmetatable(recipe) ~= require("semseg.augment").Node then
    fail("loader", "augment must be a recipe (sg.data.recipe{...})")
  end
  local ds = mt == View and src.ds or src
  local self = setmetatable({src = src, ds = ds, batch = batch, shuffle = opts.shuffle and true or false,
    seed = to_seed("loader", opts.seed), drop_last = opts.drop_last and true or false, workers = workers,
    prefetch = prefetch, recipe = recipe, pin_memory = opts.pin_memory or false}, Loader)
  local imgs, masks = ds:load()
  self.c = LC.new(imgs, masks, recipe and recipe:compile() or nil, src.pad or "reflect", 0, 0, workers, prefetch,
    self.pin_memory)
  return self
end

-- batches per epoch
function Loader:__len()
  local n = #self.src
  return self.drop_last and n // self.batch or (n + self.batch - 1) // self.batch
end

-- the epoch's items: flat {src, top, left, h, w, seed, ...}
function Loader:plan(epoch)
  local es = K.subseed(self.seed, epoch)
  local boxes = self.src:plan(K.subseed(es, -1))
  local n = #boxes
  local order = self.shuffle and permutation(n, K.subseed(es, -2), 0) or nil
  if self.drop_last then n = n - n % self.batch end
  local flat = {}
  for k = 1, n do
    local b = boxes[order and order[k] or k]
    local o = (k - 1) * 6
    flat[o + 1], flat[o + 2], flat[o + 3], flat[o + 4], flat[o + 5] = b[1], b[2], b[3], b[4], b[5]
    flat[o + 6] = K.subseed(es, k - 1)
  end
  return flat
end

-- for images, masks in loader:epoch(e) do ... end
function Loader:epoch(epoch)
  if not self.c then fail("loader", "the loader is closed") end
  epoch = to_seed("loader", epoch or 0)
  local c = self.c
  c:start(self:plan(epoch), self.batch)
  return function()
    if self.c ~= c then return nil end
    local images, masks = c:next()
    return images, masks
  end
end

function Loader:close()
  if self.c then self.c:close() end
  self.c = nil
end

return M
