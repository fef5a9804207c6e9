-- sg.plot (line plots, grids, font), sg.report (self-contained HTML) and
-- sg.experiment.compare driven by small stand-ins for the model, training and prediction modules.
local plot = sg.plot or require "semseg_app.plot"
local report = sg.report or require "semseg_app.report"
local BIN = require("tests.proc").bin() -- the binary running the tests (build/semseg by default)

local tmpfiles = {}
local function tmpdir()
  local n = os.tmpname()
  os.remove(n)
  assert(os.execute("mkdir -p '" .. n .. "'"))
  tmpfiles[#tmpfiles + 1] = n
  return n
end
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- number of pixels of a 3xHxW u8 image that equal colour c
local function count_color(img, c)
  local m = img[1]:eq(c[1]):logical_and(img[2]:eq(c[2])):logical_and(img[3]:eq(c[3]))
  return m:count_nonzero():item()
end
local function non_white(img)
  local w = img[1]:eq(255):logical_and(img[2]:eq(255)):logical_and(img[3]:eq(255))
  return img.shape[2] * img.shape[3] - w:count_nonzero():item()
end

---------------------------------------------------------------- plot
test("plot: font has every glyph at 5x7, text draws ink where expected", function()
  for ch, rows in pairs(plot.GLYPHS) do
    local n = 0
    for row in rows:gmatch("%S+") do check.eq(#row, 5, "glyph " .. ch); n = n + 1 end
    check.eq(n, 7, "glyph " .. ch .. " rows")
  end
  local cv = plot.canvas(20, 9)
  cv:text(1, 1, "1", {0, 0, 0})
  -- "1": the middle column of the glyph has ink in every row
  for r = 0, 6 do check.eq(cv:get(3, 1 + r)[1], 0, "row " .. r) end
  check.eq(cv:get(0, 0)[1], 255)
  check.eq(plot.text_width("12", 1), 11)
  check.eq(plot.text_width("ab", 2), 22)
end)

test("plot: ticks are nice numbers and labels carry the decimals the step needs", function()
  local t, step = plot.ticks(0, 1, 5)
  check.near(step, 0.2, 1e-12)
  check.eq(#t, 6)
  check.eq(plot.format_tick(0.4, 0.2), "0.4")
  check.eq(plot.format_tick(20, 5), "20")
  check.eq(plot.format_tick(0.05, 0.01), "0.05")
  check.eq(plot.format_tick(-0.0, 0.5), "0.0")
  check.eq(plot.format_tick(2e-6, 1e-6), "2e-6")
  local t2 = plot.ticks(-3.3, 17.2, 4)
  check.truthy(t2[1] >= -3.3 and t2[#t2] <= 17.2, "ticks inside the range")
end)

test("plot.lines: axes, series colours, legend; written as a readable PNG", function()
  local d = tmpdir()
  local x, a, b = {}, {}, {}
  for i = 1, 20 do x[i], a[i], b[i] = i, 1 / i, 0.5 + 0.01 * i end
  b[5] = 0 / 0 -- a gap, not an error
  local path = d .. "/curves.png"
  local img = plot.lines{path = path, title = "loss", x = x, xlabel = "epoch", ylabel = "loss",
    series = {{name = "train", y = a}, {name = "val", y = b}}, width = 400, height = 300}
  check.eq(img.shape, {3, 300, 400})
  check.eq(img.dtype, "u8")
  local back = sg.io.read_png(path)
  check.eq(back.shape, {3, 300, 400})
  check.eq((back:to("i32") - img:to("i32")):abs():max():item(), 0, "PNG round trip")
  check.truthy(count_color(img, plot.palette[1]) > 100, "first series drawn in the first colour")
  check.truthy(count_color(img, plot.palette[2]) > 100, "second series drawn in the second colour")
  check.truthy(count_color(img, {0, 0, 0}) > 500, "axes and text in black")
  local nw = non_white(img)
  check.truthy(nw < 0.5 * 400 * 300, "mostly white background")
end)

test("plot.lines: bad options are errors that name the problem", function()
  check.errors(function() plot.lines{series = {}} end, "series must be a non-empty list")
  check.errors(function() plot.lines{series = {{name = "a"}}} end, "series 1 needs y")
  check.errors(function() plot.lines{series = {{y = {1}}}, colour = 1} end, "unknown option 'colour'")
  check.errors(function() plot.lines{x = {1}, series = {{y = {1, 2}}}} end, "only 1 x values")
  -- a constant or single-point series still plots
  local img = plot.lines{series = {{name = "c", y = {0.5}}}, width = 200, height = 150}
  check.eq(img.shape, {3, 150, 200})
end)

test("plot.grid and colorize: cells placed with titles, classes coloured", function()
  local m = sg.tensor({{0, 1}, {2, 1}}, "i64")
  local c = plot.colorize(m, 3)
  check.eq(c.shape, {3, 2, 2})
  check.eq(c[{{1, 3}, 1, 1}]:totable(), plot.class_colors[1])
  check.eq(c[{{1, 3}, 2, 1}]:totable(), plot.class_colors[3])
  local img = sg.ones{1, 16, 16} * 0.5
  local mask = sg.zeros({16, 16}, "i64")
  mask[{{1, 8}}]:fill_(1)
  local g = plot.grid{rows = {{img, plot.colorize(mask, 2)}}, titles = {"a", "b"}, gap = 4}
  check.eq(g.shape[1], 3)
  check.eq(g.shape[3], 2 * 16 + 3 * 4)
  check.truthy(count_color(g, {128, 128, 128}) == 256, "the grey image is copied exactly")
  check.errors(function() plot.grid{rows = {{img, sg.zeros{1, 8, 8}}}} end, "cells must be the same size")
end)

---------------------------------------------------------------- report
test("report: base64 matches the RFC 4648 test vectors", function()
  local v = {[""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
    foobar = "Zm9vYmFy"}
  for k, want in pairs(v) do check.eq(report.base64(k), want, k) end
  check.eq(report.base64("\0\255\128"), "AP+A")
end)

test("report.html: self-contained file with escaped text, table and embedded image", function()
  local d = tmpdir()
  local png = d .. "/c.png"
  plot.lines{path = png, series = {{name = "s", y = {1, 2, 3}}}, width = 200, height = 150}
  local out = d .. "/report.html"
  report.html{path = out, title = "A <b> & c", sections = {
    {heading = "Metrics", text = "first para\n\nsecond <para>",
     table = {header = {"model", "IoU"}, rows = {{"unet", 0.81234567}, {"att", 12}}}},
    {heading = "Curves", images = {{src = "c.png", caption = "loss curves"}}},
  }}
  local html = slurp(out)
  check.truthy(html:find("<!DOCTYPE html>", 1, true), "doctype")
  check.truthy(html:find("A &lt;b&gt; &amp; c", 1, true), "title escaped")
  check.truthy(html:find("<p>second &lt;para&gt;</p>", 1, true), "paragraphs split and escaped")
  check.truthy(html:find("<td>0.8123</td>", 1, true), "numbers formatted")
  check.truthy(html:find("<th>IoU</th>", 1, true), "header")
  local b64 = report.base64(slurp(png))
  check.truthy(html:find("data:image/png;base64," .. b64, 1, true), "image embedded as a data URI")
  check.truthy(not html:find("src=\"c.png\"", 1, true), "no reference to neighbour files")
  check.truthy(not html:find("http", 1, true), "no network references")
  check.errors(function() report.html{path = d .. "/x.html", sections = {{images = {{src = "missing.png"}}}}} end,
    "cannot read image missing.png")
  check.errors(function() report.html{sections = {}} end, "path must be")
end)


---------------------------------------------------------------- experiment.compare with stand-ins
local experiment = sg.experiment or require "semseg_app.experiment"

test("experiment: confusion, scores and mean/std", function()
  local pred = sg.tensor({{0, 1}, {1, 1}}, "i64")
  local truth = sg.tensor({{0, 1}, {0, 1}}, "i64")
  local cf = experiment.confusion(pred, truth, 2)
  check.eq(cf.inter, {1, 2}); check.eq(cf.pred, {1, 3}); check.eq(cf.truth, {2, 2})
  local iou, dice, acc, per = experiment.scores(cf)
  check.near(per[1], 0.5); check.near(per[2], 2 / 3)
  check.near(iou, (0.5 + 2 / 3) / 2)
  check.near(dice, (2 / 3 + 0.8) / 2)
  check.near(acc, 0.75)
  local m, s = experiment.mean_std{1, 2, 3}
  check.near(m, 2); check.near(s, 1)
  check.eq(experiment.classes_of(sg.tensor{{{0.2, 0.7}}}):totable(), {{0, 1}})
  check.eq(experiment.classes_of(sg.tensor{{{0.2, 0.7}}, {{0.8, 0.1}}}):totable(), {{1, 0}})
  local csv = experiment.history_csv{{epoch = 1, loss = 0.5, val_iou = 0.25}, {epoch = 2, loss = 0.25}}
  check.eq(csv, "epoch,loss,val_iou\n1,0.5,0.25\n2,0.25,\n")
  local a = experiment.parse_args({"data/x", "--full", "--epochs", "3", "--lr=0.01"}, {full = true})
  check.eq({a[1], a.full, a.epochs, a.lr}, {"data/x", true, 3, 0.01})
end)

test("experiment.compare: stand-in models, training and prediction write the whole run folder", function()
  local d = tmpdir()
  local ds = experiment.synthetic_dataset(d .. "/data", {n = 5, size = 32, classes = 2, seed = 3})
  local nn = sg.nn
  local function tiny(cfg)
    return nn.Sequential(nn.Conv2d(1, cfg.width or 4, 3, {padding = 1}), nn.ReLU(),
      nn.Conv2d(cfg.width or 4, 2, 1))
  end
  local seen_batches = {}
  local function fit(a)
    check.truthy(a.model and a.loss and a.optimizer and a.train and a.val, "fit gets model, loss, optimizer, loaders")
    local hist, first = {}, {}
    for e = 1, a.epochs do
      local tot, n = 0, 0
      for x, y in a.train:epoch(e) do
        if e == 1 and #first == 0 then first[1] = x:sum():item() end
        a.optimizer:zero_grad()
        local l = a.loss(a.model(x), y)
        l:backward(); a.optimizer:step()
        tot, n = tot + l:item(), n + 1
      end
      local vl, vn = 0, 0
      sg.no_grad(function()
        for x, y in a.val:epoch(e) do vl, vn = vl + a.loss(a.model(x), y):item(), vn + 1 end
      end)
      hist[e] = {epoch = e, loss = tot / n, val_loss = vl / vn, val_iou = 0.5 + 0.1 * e, val_dice = 0.6 + 0.1 * e,
        lr = 0.1}
    end
    seen_batches[#seen_batches + 1] = first[1]
    return hist
  end
  local function predict(model, image) return sg.softmax(model(image:unsqueeze(1)), 2)[1] end
  local out = d .. "/run"
  local results, text = experiment.compare{
    name = "stand-in comparison", out = out, data = ds, split = {0.6, 0.4}, seed = 5,
    models = {b_ref = {arch = "tiny", cfg = {width = 3}}, a_fn = function() return tiny{width = 2} end},
    build = {tiny = tiny}, fit = fit, predict = predict, quiet = true,
    patch = 16, crops = 4, val_tile = 16, batch = 2, epochs = 2, panels = 2,
    recipe = sg.data.recipe{sg.data.flip{}},
    loss = function(logits, y) return sg.loss.cross_entropy(logits, y) end,
    optimizer = function(params) return sg.optim.sgd(params, {lr = 0.1}) end,
    metrics = {classes = 2}, class_names = {"interior", "membrane"}, config = {script = "test"},
  }
  check.eq(#results, 2)
  check.eq(results[1].model, "a_fn", "map keys sorted")
  check.eq(results[2].params, 1 * 3 * 9 + 3 + 3 * 2 + 2)
  check.eq(seen_batches[1], seen_batches[2], "every model sees the same first batch")
  for _, r in ipairs(results) do
    check.eq(r.epochs, 2)
    check.truthy(r.test_iou >= 0 and r.test_iou <= 1, "test IoU in [0, 1]")
    check.truthy(r.test_iou_std >= 0, "std")
    check.near(r.val_iou, 0.7, 1e-9)
    check.eq(r.test_images, 2)
  end
  for _, f in ipairs{"config.json", "metrics.csv", "metrics.json", "loss.png", "val_iou.png", "val_dice.png",
    "panels.png", "report.html", "a_fn/history.csv", "a_fn/history.json", "a_fn/checkpoint.safetensors",
    "b_ref/history.csv", "b_ref/checkpoint.safetensors"} do
    check.truthy(exists(out .. "/" .. f), f .. " written")
  end
  local cfg = sg.json.decode(slurp(out .. "/config.json"))
  check.eq(cfg.seed, 5); check.eq(cfg.models[2].arch, "tiny"); check.eq(cfg.models[2].cfg.width, 3)
  check.eq(cfg.run.script, "test")
  check.eq(#cfg.split_names.train + #cfg.split_names.val, 5)
  check.truthy(text:find("a_fn", 1, true) and text:find("test IoU", 1, true), "printed table")
  local html = slurp(out .. "/report.html")
  check.truthy(html:find("IoU interior", 1, true), "per-class IoU column")
  local n = 0
  for _ in html:gmatch("data:image/png;base64,") do n = n + 1 end
  check.eq(n, 4, "curves and panels embedded")
  local panels = sg.io.read_png(out .. "/panels.png")
  check.eq(panels.shape[1], 3)
  -- the checkpoint restores into a fresh model
  local m = tiny{width = 3}
  sg.checkpoint.load(out .. "/b_ref/checkpoint.safetensors", {model = m})
end)

test("experiment.compare: bad options are clear errors", function()
  check.errors(function() experiment.compare{models = {}, epochs = 1} end, "models is empty")
  check.errors(function() experiment.compare{models = {a = 1}} end, "must be a builder function")
  check.errors(function() experiment.compare{models = {a = function() end}, epocs = 1} end, "unknown option 'epocs'")
end)


test("experiment drivers load and validate their configuration (--check)", function()
  local d = tmpdir()
  for _, cmd in ipairs{
    BIN .. " run experiments/compare_unets.lua /nonexistent --check --out '" .. d .. "/cu'",
    BIN .. " run experiments/compare_unets.lua --full --check --out '" .. d .. "/cf'",
    BIN .. " run experiments/drosophila_3class.lua --check --out '" .. d .. "/dr'",
  } do
    local p = io.popen(cmd .. " 2>&1")
    local text = p:read("a")
    local ok = p:close()
    if cmd:find("drosophila", 1, true) and text:find("no Drosophila VNC data", 1, true) then
      -- the data set is not here: the error says so
    else
      check.truthy(ok, cmd .. " failed:\n" .. text)
      check.truthy(text:find("configuration OK", 1, true), text)
    end
  end
  local out = io.popen(BIN .. " run experiments/compare_unets.lua --check --epochs 0 2>&1"):read("a")
  check.truthy(out:find("--epochs must be a positive integer", 1, true), out)
end)

-- clean up
test("report: temporary files removed", function()
  for _, d in ipairs(tmpfiles) do os.execute("rm -rf '" .. d .. "'") end
  for _, d in ipairs(tmpfiles) do check.truthy(not exists(d .. "/report.html")) end
end)
