-- Sliding-window prediction of whole images with a segmentation network.
--
--   sg.predict.tiled(model, image, opts) -> probabilities
--     image: C x H x W (-> K x H x W) or N x C x H x W (-> N x K x H x W), floating point, any size.
--     opts: tile = 256 (or {h, w}), overlap = 0.25 (fraction of the tile shared by neighbours, 0 <= overlap < 1),
--           batch = 4 (tiles per forward pass), tta = false (average the h, v and hv flips too),
--           activation = "sigmoid" | "softmax" | "none" (default: sigmoid for one output channel, else
--           softmax), progress = function(done, total) called after every batch,
--           margin = 0 (pixels along each tile's edges whose predictions get no weight: with margin >= the
--           network's receptive-field radius, zero-padding effects at tile edges vanish; at most half the
--           overlap in pixels).
--   The image is mirrored (reflect padding) by half the overlap on every side and up to the tile size,
--   tiles are laid evenly over it, and their outputs are blended with a Gaussian importance map
--   (sigma = tile / 8, as nnU-Net). The model runs in eval mode under sg.no_grad; its mode is restored.
--   Devices: the tiles run on the model's device (that of its first parameter); a host image is padded
--   on the host and copied over once per image, the blending runs on the model's device too (no
--   per-tile transfers), and the probabilities come back on the image's device (the cpu for an image
--   from a file). amp = "bf16" | "fp16" runs the model under sg.amp.autocast; the blend stays f32.
--
--   sg.predict.classes(probs, {threshold = 0.5}) -> class ids (H x W or N x H x W, i64): argmax over the
--     class dim, or probs > threshold for a single (sigmoid) channel.
--   sg.predict.overlay(image, pred, truth_or_nil, path) -> writes an RGB PNG (semseg_app.overlay).
--   sg.predict.main(args) -> exit status: the `semseg predict` command.
local core = require "semseg.core"
local util = require "semseg.util"
local F = require "semseg.functional"

local M = {}

local function fail(op, fmt, ...) error("predict." .. op .. ": " .. string.format(fmt, ...), 3) end

local is_tensor = util.is_tensor

local FLOAT = {f32 = true, f64 = true, f16 = true, bf16 = true}

-- Reflect padding {left, right, top, bottom} of the last two dims, in several rounds when a pad is not
-- smaller than the size (tiny images under a large tile); a size-1 dim is replicated.
local function reflect_pad(x, l, r, t, b)
  while l + r + t + b > 0 do
    local h, w = x.shape[x:dim() - 1], x.shape[x:dim()]
    local cap_w, cap_h = w - 1, h - 1
    if (cap_w < 1 and l + r > 0) or (cap_h < 1 and t + b > 0) then
      return x:pad({l, r, t, b}, "replicate")
    end
    local pl, pr = math.min(l, cap_w), math.min(r, cap_w)
    local pt, pb = math.min(t, cap_h), math.min(b, cap_h)
    x = x:pad({pl, pr, pt, pb}, "reflect")
    l, r, t, b = l - pl, r - pr, t - pt, b - pb
  end
  return x
end
M._reflect_pad = reflect_pad

-- Tile origins (0-based) along a padded length n for a tile t and a step s: evenly spread, first at 0,
-- last at n - t.
local function positions(n, t, s)
  if n <= t then return {0} end
  local k = math.ceil((n - t) / s) + 1
  local out = {}
  for i = 0, k - 1 do out[#out + 1] = math.floor(i * (n - t) / (k - 1) + 0.5) end
  return out
end
M._positions = positions

-- The Gaussian importance map (th x tw, max 1, sigma = size / 8 per dim), zero within `margin` pixels
-- of the tile's edges.
local gauss_cache = {}
local function gaussian(th, tw, dtype, margin, device)
  margin = margin or 0
  device = device or "cpu"
  local key = th .. "x" .. tw .. dtype .. "m" .. margin .. device
  if gauss_cache[key] then return gauss_cache[key] end
  local function line(n)
    local sigma, c, v = n / 8, (n - 1) / 2, {}
    for i = 0, n - 1 do
      v[i + 1] = (i < margin or i >= n - margin) and 0 or math.exp(-0.5 * ((i - c) / sigma) ^ 2)
    end
    return core.tensor(v, "f64")
  end
  local g = line(th):reshape{th, 1} * line(tw):reshape{1, tw}
  g = (g / g:amax()):to(dtype)
  if device ~= "cpu" then g = g:to(device) end
  gauss_cache[key] = g
  return g
end
M._gaussian = gaussian

local function tile_size(op, v)
  local th, tw
  if type(v) == "number" then th, tw = v, v
  elseif type(v) == "table" then th, tw = v[1], v[2]
  else fail(op, "tile must be a number or {h, w} (got %s)", type(v)) end
  if math.type(th) ~= "integer" or math.type(tw) ~= "integer" or th < 1 or tw < 1 then
    fail(op, "tile must be positive integers (got %s x %s)", tostring(th), tostring(tw))
  end
  return th, tw
end

local function check_opts(op, opts, known)
  if opts == nil then return {} end
  return util.check_options(opts, known, "predict." .. op)
end

local function activate(y, activation)
  if activation == "sigmoid" then return y:sigmoid() end
  if activation == "softmax" then return F.softmax(y, 2) end
  return y
end

local TILED_OPTS = {tile = true, overlap = true, batch = true, tta = true, activation = true, progress = true,
                    margin = true, amp = true}

function M.tiled(model, image, opts)
  local op = "tiled"
  if type(model) ~= "table" or type(model.forward) ~= "function" then
    fail(op, "argument #1 must be a model (got %s)", type(model))
  end
  if not is_tensor(image) then fail(op, "argument #2 must be an image tensor (got %s)", type(image)) end
  opts = check_opts(op, opts, TILED_OPTS)
  local nd = image:dim()
  if nd ~= 3 and nd ~= 4 then
    fail(op, "image must be C x H x W or N x C x H x W (got shape [%s])", table.concat(image.shape, ","))
  end
  if not FLOAT[image.dtype] then
    fail(op, "image must be floating point (got %s); scale it first, e.g. img:float() / 255", image.dtype)
  end
  local th, tw = tile_size(op, opts.tile or 256)
  local overlap = opts.overlap or 0.25
  if type(overlap) ~= "number" or overlap < 0 or overlap >= 1 then
    fail(op, "overlap must be a number in [0, 1) (got %s)", tostring(overlap))
  end
  local batch = opts.batch or 4
  if math.type(batch) ~= "integer" or batch < 1 then fail(op, "batch must be a positive integer (got %s)", tostring(batch)) end
  local activation = opts.activation
  if activation ~= nil and activation ~= "sigmoid" and activation ~= "softmax" and activation ~= "none" then
    fail(op, "activation must be 'sigmoid', 'softmax' or 'none' (got %s)", tostring(activation))
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then fail(op, "progress must be a function") end

  local amp_dt = require("semseg.amp").normalize_dtype(opts.amp, "predict.tiled")
  local images = nd == 4 and image or image:unsqueeze(1)
  local N, H, W = images.shape[1], images.shape[3], images.shape[4]
  if H < 1 or W < 1 then fail(op, "empty image (shape [%s])", table.concat(image.shape, ",")) end
  local dtype = image.dtype
  local device = "cpu"
  if type(model.parameters) == "function" then
    for _, p in ipairs(model:parameters()) do dtype, device = p.dtype, p.device break end
  end
  if dtype ~= image.dtype then images = images:to(dtype) end
  local out_device = image.device

  -- padded geometry: half the overlap of mirrored context on every side, at least one tile
  local sh, sw = math.max(1, math.floor(th * (1 - overlap))), math.max(1, math.floor(tw * (1 - overlap)))
  local mh, mw = (th - sh) // 2, (tw - sw) // 2
  local PH, PW = math.max(H + 2 * mh, th), math.max(W + 2 * mw, tw)
  local top, left = (PH - H) // 2, (PW - W) // 2
  local bottom, right = PH - H - top, PW - W - left
  local ys, xs = positions(PH, th, sh), positions(PW, tw, sw)
  local boxes = {}
  for _, y in ipairs(ys) do for _, x in ipairs(xs) do boxes[#boxes + 1] = {y, x} end end
  local total, done = N * #boxes, 0
  local margin = opts.margin or 0
  if math.type(margin) ~= "integer" or margin < 0 or margin > math.min(mh, mw) then
    fail(op, "margin must be an integer from 0 to half the overlap, %d pixels here (got %s)", math.min(mh, mw),
      tostring(margin))
  end
  local g = gaussian(th, tw, dtype, margin, device)
  local function run(xb)
    local y
    if amp_dt then
      y = require("semseg.amp").autocast({dtype = amp_dt, device = device}, function() return model(xb) end)
    else
      y = model(xb)
    end
    if is_tensor(y) and y.dtype ~= dtype and (y.dtype == "bf16" or y.dtype == "f16") then y = y:to(dtype) end
    return y
  end

  local was_training = model.training
  if type(model.eval) == "function" then model:eval() end
  local ok, result = pcall(core.no_grad, function()
    local outs = {}
    for n = 1, N do
      -- padded where the image is (the cpu for a file), then one copy to the model's device
      local img = reflect_pad(images[n], left, right, top, bottom)
      if img.device ~= device then img = img:to(device) end
      local acc, wsum, K
      for b0 = 1, #boxes, batch do
        local tiles = {}
        for i = b0, math.min(b0 + batch - 1, #boxes) do
          local y, x = boxes[i][1], boxes[i][2]
          tiles[#tiles + 1] = img[{{}, {y + 1, y + th}, {x + 1, x + tw}}]
        end
        local xb = core.stack(tiles)
        local y = run(xb)
        if not is_tensor(y) or y:dim() ~= 4 or y.shape[1] ~= #tiles or y.shape[3] ~= th or y.shape[4] ~= tw then
          error(string.format("predict.tiled: the model maps a [%d,%d,%d,%d] batch of tiles to %s; tiled prediction "
            .. "needs an output of the tiles' size (B x K x %d x %d)", #tiles, xb.shape[2], th, tw,
            is_tensor(y) and ("[" .. table.concat(y.shape, ",") .. "]") or type(y), th, tw), 0)
        end
        local act = activation or (y.shape[2] == 1 and "sigmoid" or "softmax")
        local p = activate(y, act)
        if opts.tta then
          for _, dims in ipairs{{4}, {3}, {3, 4}} do
            p = p + activate(run(xb:flip(dims)), act):flip(dims)
          end
          p = p / 4
        end
        if not acc then
          K = p.shape[2]
          acc = core.zeros({K, PH, PW}, {dtype = dtype, device = device})
          wsum = core.zeros({PH, PW}, {dtype = dtype, device = device})
        end
        for i = 1, #tiles do
          local by, bx = boxes[b0 + i - 1][1], boxes[b0 + i - 1][2]
          local av = acc[{{}, {by + 1, by + th}, {bx + 1, bx + tw}}]
          av:copy_(av + p[i] * g)
          local wv = wsum[{{by + 1, by + th}, {bx + 1, bx + tw}}]
          wv:copy_(wv + g)
        end
        done = done + #tiles
        if opts.progress then opts.progress(done, total) end
      end
      local out = acc[{{}, {top + 1, top + H}, {left + 1, left + W}}] / wsum[{{top + 1, top + H}, {left + 1, left + W}}]
      out = out:contiguous()
      if out.device ~= out_device then out = out:to(out_device) end
      outs[n] = out
    end
    return nd == 4 and core.stack(outs) or outs[1]
  end)
  if was_training ~= nil and type(model.train) == "function" then model:train(was_training) end
  if not ok then error(result, 2) end
  return result
end

function M.classes(probs, opts)
  local op = "classes"
  if not is_tensor(probs) then fail(op, "argument #1 must be a tensor of probabilities (got %s)", type(probs)) end
  opts = check_opts(op, opts, {threshold = true})
  local nd = probs:dim()
  if nd ~= 3 and nd ~= 4 then
    fail(op, "probabilities must be K x H x W or N x K x H x W (got shape [%s])", table.concat(probs.shape, ","))
  end
  local cdim = nd - 2
  if probs.shape[cdim] == 1 then
    local thr = opts.threshold or 0.5
    if type(thr) ~= "number" then fail(op, "threshold must be a number (got %s)", type(thr)) end
    return probs:select(cdim, 1):gt(thr):to("i64")
  end
  return probs:argmax(cdim)
end

local overlay = require "semseg_app.overlay"
M.overlay = overlay.write
M.compose_overlay = overlay.compose

------------------------------------------------------------------ the `semseg predict` command

M.usage = [[
usage: semseg predict --model CKPT --input PATH --out DIR [options]
  --model CKPT       a checkpoint written by sg.checkpoint.save (the model is rebuilt from its
                     metadata, arch and config, through sg.models.build or --builder)
  --input PATH       an image (PNG or TIFF), a folder of them, or a multi-page TIFF stack
  --out DIR          where the results go (created if missing):
                       NAME.png class ids (u8) for an image, NAME.tif (one page per section) for a stack
  --tile N           tile size in pixels (default 256, or the checkpoint's config.tile)
  --overlap F        fraction of a tile shared with its neighbours, 0 <= F < 1 (default 0.25)
  --batch N          tiles per forward pass (default 4)
  --margin N         pixels along tile edges given no weight (default 0)
  --tta              average the predictions of the h, v and hv flips too
  --activation A     sigmoid, softmax or none (default: sigmoid for one output channel, else softmax)
  --threshold F      for a single sigmoid channel: class 1 where p > F (default 0.5)
  --probs            also write NAME_probs.tif: f32 probabilities, one page per class (per section)
  --overlay          also write NAME_overlay.png (.tif for stacks): the image in gray, classes tinted
  --truth DIR        label images named like the inputs (any of .png .tif .tiff); the overlay then
                     marks wrong pixels (red: false detection of class 0 pixels, magenta: other errors)
  --builder FILE     a Lua file returning function(config, arch, meta) -> model, for models that
                     sg.models does not know
  --device D         cpu (default), cuda, or auto (cuda when a GPU is usable)
  --amp T            bf16 or fp16: run the network under autocast (mixed precision) on the GPU
  --quiet            no progress lines on stderr
Exit status: 0 ok, 1 error, 2 usage error.
]]

local function stem(path) return (path:gsub("^.*/", ""):gsub("%.[^.]*$", "")) end

local function is_dir(path)
  local st = path ~= "" and core.fs.stat(path)
  return st and st.type == "dir" or false
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- the PNG and TIFF files of dir, sorted by name; hidden files are left out
local function list_images(dir)
  local files = {}
  for _, f in ipairs(core.fs.list_dir(dir)) do
    local l = f:lower()
    if f:sub(1, 1) ~= "." and (l:match("%.png$") or l:match("%.tiff?$")) then files[#files + 1] = dir .. "/" .. f end
  end
  return files
end

-- args: {"--model", "x", ...} -> options table, or nil and a usage message
local FLAGS = {tta = true, probs = true, overlay = true, quiet = true}
local VALUES = {model = "string", input = "string", out = "string", tile = "integer", overlap = "number",
                batch = "integer", margin = "integer", activation = "string", threshold = "number",
                truth = "string", builder = "string", device = "string", amp = "string"}
function M.parse_args(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then o.help = true; i = i + 1
    else
      local name, inline = a:match("^%-%-([%w-]+)=(.*)$")
      name = name or a:match("^%-%-([%w-]+)$")
      if not name then return nil, string.format("unexpected argument '%s'", a) end
      if FLAGS[name] then
        if inline then return nil, string.format("--%s takes no value", name) end
        o[name] = true
        i = i + 1
      elseif VALUES[name] then
        local v = inline
        if not v then
          v = args[i + 1]
          if v == nil then return nil, string.format("--%s needs a value", name) end
          i = i + 1
        end
        i = i + 1
        local kind = VALUES[name]
        if kind ~= "string" then
          local n = math.tointeger(tonumber(v)) or tonumber(v)
          if not n or (kind == "integer" and math.type(n) ~= "integer") then
            return nil, string.format("--%s needs %s (got '%s')", name, kind == "integer" and "an integer" or "a number", v)
          end
          v = n
        end
        o[name] = v
      else
        return nil, string.format("unknown option '%s'", a)
      end
    end
  end
  if o.help then return o end
  for _, req in ipairs{"model", "input", "out"} do
    if not o[req] then return nil, string.format("--%s is required", req) end
  end
  if o.tile and o.tile < 1 then return nil, "--tile must be positive" end
  if o.overlap and (o.overlap < 0 or o.overlap >= 1) then return nil, "--overlap must be in [0, 1)" end
  if o.batch and o.batch < 1 then return nil, "--batch must be positive" end
  if o.margin and o.margin < 0 then return nil, "--margin must be >= 0" end
  if o.activation and o.activation ~= "sigmoid" and o.activation ~= "softmax" and o.activation ~= "none" then
    return nil, string.format("--activation must be sigmoid, softmax or none (got '%s')", o.activation)
  end
  if o.device and o.device ~= "cpu" and o.device ~= "cuda" and o.device ~= "auto" then
    return nil, string.format("--device must be cpu, cuda or auto (got '%s')", o.device)
  end
  if o.amp and not ({bf16 = true, fp16 = true, f16 = true})[o.amp] then
    return nil, string.format("--amp must be bf16 or fp16 (got '%s')", o.amp)
  end
  return o
end

-- The model of a checkpoint, rebuilt from its metadata, with its weights; and the metadata.
function M.load_model(path, builder_file)
  local ckpt = require "semseg.checkpoint"
  if not exists(path) then error("cannot read the checkpoint '" .. path .. "'", 0) end
  local meta = ckpt.load(path, {restore_rng = false})
  local arch, config = meta.arch, meta.config
  local model
  if builder_file then
    local chunk, err = loadfile(builder_file)
    if not chunk then error("--builder: " .. err, 0) end
    local build = chunk()
    if type(build) ~= "function" then
      error("--builder: " .. builder_file .. " must return function(config, arch, meta) -> model (got " .. type(build) .. ")", 0)
    end
    model = build(config, arch, meta)
  else
    local sg = package.loaded.semseg
    local models = sg and sg.models
    if type(models) ~= "table" or type(models.build) ~= "function" then
      error(string.format("cannot rebuild model '%s': sg.models is not available (give --builder file.lua)",
        tostring(arch)), 0)
    end
    local ok, m = pcall(models.build, arch, config)
    if not ok then error(string.format("cannot rebuild model '%s': %s", tostring(arch), tostring(m)), 0) end
    model = m
  end
  if type(model) ~= "table" or type(model.state_dict) ~= "function" then
    error(string.format("cannot rebuild model '%s': the builder returned %s, not a model", tostring(arch), type(model)), 0)
  end
  ckpt.load(path, {model = model, restore_rng = false})
  return model, meta
end

-- Intensities as in training (sg.data's normalize, from the checkpoint config): f32 C x H x W or D x C x H x W.
local function normalize(img, nz, stats)
  nz = nz or "unit"
  if nz == "unit" then return img end
  if nz == "zscore_dataset" and type(stats) == "table" and stats.mean and stats.std then
    return (img - stats.mean) / stats.std
  end
  if nz == "zscore_image" or nz == "zscore_dataset" then
    local m = img:to("f64"):mean():item()
    local s = img:to("f64"):std():item()
    return (img - m) / (s > 1e-12 and s or 1)
  end
  if type(nz) == "table" and type(nz.percentile) == "table" then
    local lo, hi = core.loader_core.quantiles(img, nz.percentile[1], nz.percentile[2])
    return (img:clamp(lo, hi) - lo) / math.max(hi - lo, 1e-12)
  end
  error("unknown normalize setting in the checkpoint config: " .. tostring(nz), 0)
end

-- value -> class map of a truth mask: config.classes (keys are label values), else identity when the values
-- are already class ids, else the sorted distinct values in order.
local function truth_classes(mask, K, classes)
  local m = mask:to("i64")
  if type(classes) == "table" and next(classes) then
    local out = core.full(m.shape, -1, "i64")
    for v, c in pairs(classes) do out = core.where(m:eq(tonumber(v)), core.tensor(c, "i64"), out) end
    return out
  end
  local hi = m:amax():item()
  if hi < math.max(K, 2) then return m end
  local vals = {}
  local counts = core.loader_core.counts(m, hi + 1)
  for v = 0, hi do if counts[v + 1] > 0 then vals[#vals + 1] = v end end
  local out = core.zeros(m.shape, "i64")
  for c, v in ipairs(vals) do out = core.where(m:eq(v), core.tensor(c - 1, "i64"), out) end
  return out
end

local function find_truth(dir, name)
  for _, ext in ipairs{".png", ".tif", ".tiff", ".PNG", ".TIF", ".TIFF"} do
    local p = dir .. "/" .. name .. ext
    if exists(p) then return p end
  end
  return nil
end

function M.run(o, log)
  log = log or function() end
  local overlay = require "semseg_app.overlay"
  local model, meta = M.load_model(o.model, o.builder)
  if o.device then
    local dev = require("semseg.device").resolve(o.device, "--device")
    model:to(dev)
    log("running on " .. dev)
  end
  local config = type(meta.config) == "table" and meta.config or {}
  local inputs
  if is_dir(o.input) then
    inputs = list_images(o.input)
    if #inputs == 0 then error("no PNG or TIFF images in " .. o.input, 0) end
  elseif exists(o.input) then
    inputs = {o.input}
  else
    error("cannot read the input '" .. o.input .. "'", 0)
  end
  if o.truth and not is_dir(o.truth) then error("--truth must be a folder (got '" .. o.truth .. "')", 0) end
  local ok, err = pcall(core.fs.mkdir_p, o.out)
  if not ok then error("cannot create the output folder '" .. o.out .. "': " .. tostring(err):gsub("^.*: ", ""), 0) end
  local topts = {tile = o.tile or math.tointeger(config.tile) or 256, overlap = o.overlap or 0.25,
                 batch = o.batch or 4, tta = o.tta or false, activation = o.activation, margin = o.margin,
                 amp = o.amp}
  local written = {}
  for idx, path in ipairs(inputs) do
    local info = core.io.info(path)
    local is_stack = info.format == "tiff" and (info.pages or 1) > 1
    local img = is_stack and core.io.read_tiff(path, {stack = true, dtype = "f32", scale = true})
                          or core.io.read_image(path, {dtype = "f32", scale = true})
    if is_stack and img:dim() == 3 then img = img:unsqueeze(2) end -- D x 1 x H x W
    img = normalize(img, config.normalize, config.stats)
    local name = stem(path)
    log(string.format("predict %s (%d/%d)%s", path, idx, #inputs,
      is_stack and string.format(", %d sections", img.shape[1]) or ""))
    topts.progress = function(k, n) log(string.format("tile %d/%d", k, n)) end
    local probs = M.tiled(model, img, topts)
    local mask = M.classes(probs, {threshold = o.threshold})
    if mask:amax():item() > 255 then error("more than 256 classes do not fit a u8 mask", 0) end
    local out = o.out .. "/" .. name
    if is_stack then
      core.io.write_tiff(out .. ".tif", mask:to("u8"), {stack = true, compression = "deflate"})
      written[#written + 1] = out .. ".tif"
    else
      core.io.write_png(out .. ".png", mask:to("u8"))
      written[#written + 1] = out .. ".png"
    end
    if o.probs then
      local pages = probs:reshape{-1, probs.shape[probs:dim() - 1], probs.shape[probs:dim()]}
      core.io.write_tiff(out .. "_probs.tif", pages:to("f32"):contiguous(), {stack = true, compression = "deflate"})
      written[#written + 1] = out .. "_probs.tif"
    end
    if o.overlay then
      local truth
      if o.truth then
        local tp = find_truth(o.truth, name)
        if not tp then error(string.format("no truth for %s in %s (looked for %s.png/.tif/.tiff)", path, o.truth, name), 0) end
        truth = is_stack and core.io.read_tiff(tp, {stack = true}) or core.io.read_image(tp)
        if not is_stack and truth:dim() == 3 then truth = truth[1] end
        local K = probs.shape[probs:dim() - 2]
        if truth.shape[truth:dim()] ~= mask.shape[mask:dim()] or truth.shape[truth:dim() - 1] ~= mask.shape[mask:dim() - 1]
          or (is_stack and truth.shape[1] ~= mask.shape[1]) then
          error(string.format("truth %s has shape [%s], the prediction [%s]", tp, table.concat(truth.shape, ","),
            table.concat(mask.shape, ",")), 0)
        end
        truth = truth_classes(truth, K, config.classes)
      end
      if is_stack then
        local pages = {}
        for d = 1, mask.shape[1] do pages[d] = overlay.compose(img[d], mask[d], truth and truth[d]) end
        core.io.write_tiff(out .. "_overlay.tif", core.stack(pages), {compression = "deflate"})
        written[#written + 1] = out .. "_overlay.tif"
      else
        overlay.write(img, mask, truth, out .. "_overlay.png")
        written[#written + 1] = out .. "_overlay.png"
      end
    end
  end
  return written
end

-- main(args) -> exit status; messages on stderr.
function M.main(args)
  local o, err = M.parse_args(args or {})
  if not o then
    io.stderr:write("semseg predict: ", err, " (see `semseg predict --help`)\n")
    return 2
  end
  if o.help then io.stdout:write(M.usage) return 0 end
  local log = o.quiet and function() end or function(line) io.stderr:write(line, "\n") io.stderr:flush() end
  local ok, res = pcall(M.run, o, log)
  if not ok then
    io.stderr:write("semseg predict: ", tostring(res), "\n")
    return 1
  end
  for _, p in ipairs(res) do io.stdout:write(p, "\n") end
  return 0
end

return M
