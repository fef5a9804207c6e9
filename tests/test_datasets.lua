-- sg.data data sets: folders, stacks, pairs, normalisation, tiles, crops and splits,
-- on the real EM data (skipped when absent) and on small files written here.
local core = require "semseg.core"
local D = sg.data

local function need_core() if not core.loader_core then skip("semseg.core has no loader_core") end end
local function data_dir()
  local d = os.getenv("SEMSEG_DATA") or "../shared/data"
  local f = io.open(d .. "/README.md", "r")
  if not f then return nil end
  f:close()
  return d
end
local function need_data()
  need_core()
  local d = data_dir()
  if not d then skip("no data directory (set SEMSEG_DATA or provide ../shared/data)") end
  return d
end

local tmpdirs = {}
local function tmpdir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  tmpdirs[#tmpdirs + 1] = d
  return d
end
local function cleanup()
  for _, d in ipairs(tmpdirs) do os.execute("rm -rf '" .. d .. "'") end
  tmpdirs = {}
end

local ISBI = {[0] = 0, [255] = 1}
local VNC = {[255] = 0, [159] = 0, [0] = 1, [32] = 1, [64] = 1, [96] = 1, [128] = 1, [223] = 1, [191] = 2}

test("ISBI 2012 folder: shapes, values, normalisation", function()
  local d = need_data()
  local ds = D.folder{images = d .. "/isbi2012/train/images", labels = d .. "/isbi2012/train/labels", classes = ISBI}
  check.eq(#ds, 25)
  local img, m = ds:get(1)
  check.eq(img.shape, {1, 512, 512}) check.eq(img.dtype, "f32")
  check.eq(m.shape, {512, 512}) check.eq(m.dtype, "i64")
  check.eq(m:amin():item(), 0) check.eq(m:amax():item(), 1)
  check.truthy(img:amin():item() >= 0 and img:amax():item() <= 1, "unit range")
  -- the same pixels as the file, divided by 255
  local raw = sg.io.read_png(d .. "/isbi2012/train/images/00.png"):to("f32") / 255
  check.near(img, raw, 1e-6)
  local lab = sg.io.read_png(d .. "/isbi2012/train/labels/00.png")[1]
  check.eq((lab:to("f64") / 255 - m:to("f64")):abs():amax():item(), 0, "labels mapped")
  check.truthy(rawequal(select(1, ds:get(1)), img), "decoded once and cached")
  local z = D.folder{images = d .. "/isbi2012/train/images", labels = d .. "/isbi2012/train/labels", classes = ISBI,
    normalize = "zscore_image"}:get(2)
  check.near(z:mean():item(), 0, 1e-4) check.near(z:std():item(), 1, 1e-3)
  local p = D.folder{images = d .. "/isbi2012/train/images", normalize = {percentile = {1, 99}}}
  local pi, pm = p:get(3)
  check.eq(pm, nil)
  check.near(pi:amin():item(), 0, 1e-6) check.near(pi:amax():item(), 1, 1e-6)
  -- a label map that misses 255 is an error naming the file and the value
  local bad = D.folder{images = d .. "/isbi2012/train/images", labels = d .. "/isbi2012/train/labels",
    classes = {[0] = 0}}
  local err = check.errors(function() bad:get(1) end, "label value 255 is not in the classes map")
  check.truthy(err:find("00.png", 1, true), "names the file: " .. err)
  local ign = D.folder{images = d .. "/isbi2012/train/images", labels = d .. "/isbi2012/train/labels",
    classes = {[0] = 0}, ignore_unmapped = 7}
  local _, im = ign:get(1)
  check.eq(im:amax():item(), 7)
end)

test("ISBI: splits and folds are disjoint by image, tiles cover every image", function()
  local d = need_data()
  local ds = D.folder{images = d .. "/isbi2012/train/images", labels = d .. "/isbi2012/train/labels", classes = ISBI}
  local tr, va = ds:split{0.8, 0.2, seed = 3}
  check.eq(#tr + #va, 25) check.eq(#va, 5)
  local seen = {}
  for i = 1, #tr do seen[tr:name(i)] = "train" end
  for i = 1, #va do check.eq(seen[va:name(i)], nil, "disjoint") seen[va:name(i)] = "val" end
  local tr2 = ds:split{0.8, 0.2, seed = 3}
  for i = 1, #tr do check.eq(tr2:name(i), tr:name(i), "same seed, same split") end
  -- tiles of a split only come from its images
  local tv, vv = ds:tiles{size = 256}:split{0.8, 0.2, seed = 3}
  check.eq(#tv, 4 * #tr) check.eq(#vv, 4 * #va)
  for i = 1, #vv do check.eq(seen[vv.ds:name(vv:box(i))], "val") end
  -- k folds: each image is validation exactly once
  local count = {}
  for fold = 1, 5 do
    local a, b = ds:kfold{k = 5, fold = fold, seed = 1}
    check.eq(#a + #b, 25) check.eq(#b, 5)
    for i = 1, #b do count[b:name(i)] = (count[b:name(i)] or 0) + 1 end
  end
  local n = 0
  for _, c in pairs(count) do check.eq(c, 1) n = n + 1 end
  check.eq(n, 25)
  -- overlapping tiles with padding cover the image; the top-left tile is the image itself
  local t = ds:tiles{size = 200, overlap = 40}
  local img, m = ds:get(1)
  local cover = sg.zeros({512, 512}, "i64")
  local per = #t // 25
  check.eq(per, 9) -- starts 0, 160, 320 per axis; the last reaches 520 > 512 (padded)
  for i = 1, per do
    local src, y, x, h, w = t:box(i)
    check.eq(src, 1)
    local y1, x1 = math.min(y + h, 512), math.min(x + w, 512)
    cover[{{y + 1, y1}, {x + 1, x1}}] = 1
  end
  check.eq(cover:sum():item(), 512 * 512, "covered")
  local ti, tm = t:get(1)
  check.eq(ti.shape, {1, 200, 200}) check.eq(tm.shape, {200, 200})
  check.near(ti, img[{{}, {1, 200}, {1, 200}}], 0)
  -- the last tile reaches past the border: reflected padding
  local li = t:get(per)
  check.eq(li.shape, {1, 200, 200})
  local _, ly, lx = t:box(per)
  check.near(li[{{}, {1, 512 - ly}, {1, 512 - lx}}], img[{{}, {ly + 1, 512}, {lx + 1, 512}}], 0)
end)

test("Drosophila VNC: TIFF sections and the 3-class map", function()
  local d = need_data()
  local root = d .. "/drosophila-vnc/stack1"
  local ds = D.folder{images = root .. "/raw", labels = root .. "/labels", classes = VNC}
  check.eq(#ds, 16)
  local img, m = ds:get(1)
  check.eq(img.shape, {1, 1024, 1024}) check.eq(m.shape, {1024, 1024})
  check.truthy(ds:name(1):find("00.tif", 1, true))
  -- the 16 labelled sections present: 76.9 % cytoplasm, 17.9 % membrane, 5.3 % mitochondria
  local f = ds:class_frequencies(3)
  check.near(f[1], 0.769, 5e-4) check.near(f[2], 0.179, 5e-4) check.near(f[3], 0.053, 5e-4)
  -- the published 16 non-overlapping 256 x 256 tiles per section
  check.eq(#ds:tiles{size = 256}, 16 * 16)
  local missing = {}
  for k, v in pairs(VNC) do if k ~= 191 then missing[k] = v end end
  local bad = D.folder{images = root .. "/raw", labels = root .. "/labels", classes = missing}
  check.errors(function() bad:get(1) end, "label value 191 is not in the classes map")
  -- foreground crops: every forced crop holds mitochondria
  local crops = ds:random_crops{size = 64, n = 20, foreground = {class = 2, fraction = 1}, seed = 5}
  for i = 1, #crops do
    local _, cm = crops:get(i)
    check.eq(cm.shape, {64, 64})
    check.truthy((cm:eq(2)):sum():item() > 0, "crop " .. i .. " holds the foreground class")
  end
end)

test("stack, pairs, single: small files written here", function()
  need_core()
  local dir = tmpdir()
  sg.manual_seed(1)
  local imgs = sg.randint(0, 256, {3, 20, 24}, "u8")
  local labs = (sg.randint(0, 2, {3, 20, 24}, "u8") * 255):to("u8")
  sg.io.write_tiff(dir .. "/x.tif", imgs, {stack = true})
  sg.io.write_tiff(dir .. "/y.tif", labs, {stack = true})
  local ds = D.stack{images = dir .. "/x.tif", labels = dir .. "/y.tif", classes = ISBI, normalize = "zscore_dataset"}
  check.eq(#ds, 3)
  local all = imgs:to("f64") / 255
  local mean, std = all:mean():item(), all:std():item()
  for p = 1, 3 do
    local im, m = ds:get(p)
    check.eq(im.shape, {1, 20, 24})
    check.near(im, ((imgs[p]:to("f64") / 255 - mean) / std):unsqueeze(1), 2e-3)
    check.eq((m:to("f64") - labs[p]:to("f64") / 255):abs():amax():item(), 0)
  end
  sg.io.write_png(dir .. "/a.png", imgs[1])
  sg.io.write_png(dir .. "/b.png", labs[1])
  local pr = D.pairs({{dir .. "/a.png", dir .. "/b.png"}}, {classes = ISBI})
  local a, b = pr:get(1)
  check.near(a, imgs[1]:to("f32"):unsqueeze(1) / 255, 1e-6)
  check.eq((b:to("f64") - labs[1]:to("f64") / 255):abs():amax():item(), 0)
  local s = D.single(dir .. "/a.png")
  check.eq(#s, 1)
  local si, sm = s:get(1)
  check.eq(si.shape, {1, 20, 24}) check.eq(sm, nil)
  check.errors(function() D.folder{images = dir, labels = dir .. "/none"} end, "no PNG or TIFF files")
  check.errors(function() D.folder{images = dir, bogus = 1} end, "unknown option")
  check.errors(function() D.pairs({{dir .. "/a.png", dir .. "/b.png"}}, {normalize = "max"}) end, "normalize must be")
  cleanup()
end)
