-- Sliding-window prediction (sg.predict.tiled / classes), overlays, and the `semseg predict` command.
local P = require "tests.proc"
local predict = sg.predict or require "semseg_app.predict"
local overlay = require "semseg_app.overlay"
local nn = sg.nn

-- a fully convolutional stack without pooling: receptive-field radius 2
local function conv_net(cin, cout, width, seed)
  sg.manual_seed(seed or 1)
  return nn.Sequential(nn.Conv2d(cin, width, 3, {padding = 1}), nn.ReLU(), nn.Conv2d(width, cout, 3, {padding = 1}))
end

local function whole(net, img, act)
  return sg.no_grad(function()
    local y = net(img:unsqueeze(1))
    if act == "sigmoid" then y = y:sigmoid() else y = sg.F.softmax(y, 2) end
    return y[1]
  end)
end

local function max_abs(a, b) return (a - b):abs():amax():item() end

test("tiled equals whole-image prediction away from the borders", function()
  local net = conv_net(1, 3, 4)
  local img = sg.rand{1, 100, 130}
  local full = whole(net, img)
  local interior = {{}, {5, 96}, {5, 126}}
  -- Gaussian blending alone: tile-edge effects get weight ~exp(-8) against a well-centred tile
  local p = predict.tiled(net, img, {tile = 32, overlap = 0.5})
  check.eq(p.shape, {3, 100, 130})
  check.truthy(max_abs(p[interior], full[interior]) < 1e-4, "gaussian blend: " .. max_abs(p[interior], full[interior]))
  -- a margin at least the receptive-field radius removes tile-edge effects entirely
  for _, o in ipairs{{0.25, 2}, {0.5, 4}} do
    local q = predict.tiled(net, img, {tile = 32, overlap = o[1], margin = o[2], batch = 3})
    check.near(q[interior], full[interior], 1e-6, 0, "overlap " .. o[1])
  end
  -- the borders are mirrored, not zero-padded: they differ from the whole-image (zero-padded) run
  check.truthy(max_abs(p, full) > 1e-3, "borders should differ")
  -- probabilities sum to one
  check.near(p:sum(1), sg.ones{100, 130}, 1e-5, 0)
end)

test("odd sizes, tiny images, batches of images and a single sigmoid channel", function()
  local net = conv_net(1, 2, 3)
  for _, hw in ipairs{{37, 53}, {5, 3}, {1, 1}, {64, 17}, {32, 32}} do
    local img = sg.rand{1, hw[1], hw[2]}
    local p = predict.tiled(net, img, {tile = 16, overlap = 0.25})
    check.eq(p.shape, {2, hw[1], hw[2]}, "size " .. hw[1] .. "x" .. hw[2])
    check.eq(p:ne(p):any():item(), false, "no NaN")
    local m = predict.classes(p)
    check.eq(m.shape, {hw[1], hw[2]})
    check.eq(m.dtype, "i64")
  end
  -- rectangular tiles
  check.eq(predict.tiled(net, sg.rand{1, 40, 41}, {tile = {16, 24}}).shape, {2, 40, 41})
  -- N x C x H x W: each image on its own
  local imgs = sg.rand{3, 1, 30, 20}
  local ps = predict.tiled(net, imgs, {tile = 16, overlap = 0.5, batch = 5})
  check.eq(ps.shape, {3, 2, 30, 20})
  check.near(ps[2], predict.tiled(net, imgs[2], {tile = 16, overlap = 0.5}), 1e-6, 0)
  check.eq(predict.classes(ps).shape, {3, 30, 20})
  -- one output channel: sigmoid by default, classes by threshold
  local net1 = conv_net(1, 1, 3, 5)
  local img = sg.rand{1, 40, 40}
  local p1 = predict.tiled(net1, img, {tile = 16, overlap = 0.5, margin = 4})
  check.near(p1[{{}, {4, 37}, {4, 37}}], whole(net1, img, "sigmoid")[{{}, {4, 37}, {4, 37}}], 1e-6, 0)
  local m1 = predict.classes(p1, {threshold = 0.3})
  check.eq(m1.shape, {40, 40})
  check.eq(m1:eq(1):sum():item(), p1[1]:gt(0.3):sum():item())
  -- activation none returns the blended logits
  local raw = predict.tiled(net1, img, {tile = 16, overlap = 0.5, margin = 4, activation = "none"})
  check.near(raw:sigmoid(), p1, 1e-5, 0)
end)

test("classes: argmax over the class dim", function()
  local p = sg.tensor{{{0.1, 0.7}}, {{0.6, 0.2}}, {{0.3, 0.1}}}     -- 3 x 1 x 2
  check.eq(predict.classes(p):totable(), {{1, 0}})
  check.eq(predict.classes(sg.tensor{{{0.2, 0.8}}}):totable(), {{0, 1}})
  check.errors(function() predict.classes(sg.zeros{2, 2}) end, "K x H x W")
  check.errors(function() predict.classes(p, {treshold = 1}) end, "unknown option 'treshold'")
end)

test("TTA with a flip-equivariant net equals no TTA; with another net it changes the result", function()
  local net = conv_net(1, 2, 4, 3)
  sg.no_grad(function()
    for _, m in ipairs{net:get(1), net:get(3)} do
      local w = m.weight
      w:copy_((w + w:flip(3) + w:flip(4) + w:flip{3, 4}) / 4)       -- kernels symmetric under both flips
    end
  end)
  local img = sg.rand{1, 45, 38}
  local a = predict.tiled(net, img, {tile = 16, overlap = 0.25})
  local b = predict.tiled(net, img, {tile = 16, overlap = 0.25, tta = true})
  check.near(b, a, 1e-5, 0)
  local other = conv_net(1, 2, 4, 4)
  local c = predict.tiled(other, img, {tile = 16, overlap = 0.25})
  local d = predict.tiled(other, img, {tile = 16, overlap = 0.25, tta = true})
  check.truthy(max_abs(c, d) > 1e-3, "TTA should change a non-symmetric net's output")
end)

test("the model runs in eval mode without recording, and its mode is restored", function()
  local net = conv_net(1, 2, 3)
  net:train()
  local seen
  local Probe = nn.class("Probe")
  function Probe:init(inner) self.inner = inner end
  function Probe:forward(x) seen = {self.training, sg.is_grad_enabled()} return self.inner(x) end
  local probe = Probe(net)
  probe:train()
  local calls = {}
  local p = predict.tiled(probe, sg.rand{1, 20, 20}, {tile = 8, overlap = 0.5, batch = 2,
                                                         progress = function(k, n) calls[#calls + 1] = {k, n} end})
  check.eq(seen, {false, false})
  check.eq(probe.training, true)
  check.eq(p.grad_fn, nil)
  check.truthy(#calls > 1)
  check.eq(calls[#calls][1], calls[#calls][2])
end)

test("bad arguments are errors that say what is wrong", function()
  local net = conv_net(1, 2, 3)
  local img = sg.rand{1, 20, 20}
  check.errors(function() predict.tiled({}, img) end, "argument #1 must be a model")
  check.errors(function() predict.tiled(net, {1, 2}) end, "argument #2 must be an image tensor")
  check.errors(function() predict.tiled(net, sg.rand{20, 20}) end, "C x H x W or N x C x H x W")
  check.errors(function() predict.tiled(net, sg.zeros({1, 20, 20}, "u8")) end, "must be floating point (got u8)")
  check.errors(function() predict.tiled(net, img, {overlap = 1}) end, "overlap must be a number in [0, 1)")
  check.errors(function() predict.tiled(net, img, {tile = 0}) end, "tile must be positive")
  check.errors(function() predict.tiled(net, img, {tile = 8.5}) end, "tile must be positive integers")
  check.errors(function() predict.tiled(net, img, {batch = 0}) end, "batch must be a positive integer")
  check.errors(function() predict.tiled(net, img, {activation = "relu"}) end, "activation must be")
  check.errors(function() predict.tiled(net, img, {tiles = 8}) end, "unknown option 'tiles'")
  check.errors(function() predict.tiled(net, img, {tile = 16, overlap = 0.25, margin = 3}) end, "margin must be")
  local strided = nn.Conv2d(1, 2, 3, {padding = 1, stride = 2})
  check.errors(function() predict.tiled(strided, img, {tile = 8}) end, "needs an output of the tiles' size")
  check.errors(function() predict.tiled(conv_net(3, 2, 3), img, {tile = 8}) end, "conv2d")
end)

test("overlay: gray image, tinted classes, errors in red and magenta", function()
  local img = sg.tensor({{{0, 100}, {200, 255}}}, "u8")
  local pred = sg.tensor({{0, 1}, {2, 0}}):long()
  local truth = sg.tensor({{0, 0}, {2, 1}}):long()
  local rgb = overlay.compose(img, pred, nil)
  check.eq(rgb.shape, {3, 2, 2})
  check.eq(rgb.dtype, "u8")
  check.eq(rgb[{{}, 1, 1}]:totable(), {0, 0, 0})                       -- class 0: plain gray
  check.eq(rgb[{{}, 2, 2}]:totable(), {255, 255, 255})
  local c1 = rgb[{{}, 1, 2}]:totable()                                  -- class 1: green tint
  check.truthy(c1[2] > c1[1] and c1[2] > c1[3], "green tint")
  local e = overlay.compose(img, pred, truth)
  local fp, miss = e[{{}, 1, 2}]:totable(), e[{{}, 2, 2}]:totable()
  check.truthy(fp[1] > 150 and fp[2] < 100 and fp[3] < 100, "false detection is red: " .. table.concat(fp, ","))
  check.truthy(miss[1] > 150 and miss[2] < 150 and miss[3] > 150, "miss is magenta: " .. table.concat(miss, ","))
  check.eq(e[{{}, 2, 1}]:totable(), rgb[{{}, 2, 1}]:totable())           -- right pixels unchanged
  check.errors(function() overlay.compose(img, sg.zeros({3, 3}, "i64")) end, "pred is 3x3 but the image is 2x2")
  check.errors(function() overlay.compose(sg.zeros{2, 2, 2}, pred) end, "1, 3 or 4 channels")
  local dir = P.tmpdir()
  predict.overlay(img:float(), pred, truth, dir .. "/o.png")
  local back = sg.io.read_image(dir .. "/o.png")
  check.eq(back.shape, {3, 2, 2})
  check.eq(back:to("i64"):totable(), e:to("i64"):totable())
  P.cleanup()
end)

------------------------------------------------------------------ the command line

local BUILDER = [[
return function(config)
  local nn = sg.nn
  return nn.Sequential(nn.Conv2d(config.in_channels, config.base, 3, {padding = 1}), nn.ReLU(),
                       nn.Conv2d(config.base, config.num_classes, 3, {padding = 1}))
end
]]

-- a checkpoint of conv_net(1, k, base) with its config, and the builder file that rebuilds it
local function tiny_checkpoint(dir, k, base)
  local net = conv_net(1, k, base, 11)
  local cfg = {in_channels = 1, base = base, num_classes = k}
  sg.checkpoint.save(dir .. "/tiny.ckpt", {model = net, config = cfg})
  P.write(dir .. "/builder.lua", BUILDER)
  return net, dir .. "/tiny.ckpt", dir .. "/builder.lua"
end

test("semseg predict: usage errors exit 2, help exits 0", function()
  local S = P.semseg
  local _, err, code = P.run(S("predict"))
  check.eq(code, 2)
  check.truthy(err:find("--model is required", 1, true), err)
  _, err, code = P.run(S("predict", "--model", "m", "--input", "i", "--out", "o", "--tile", "big"))
  check.eq(code, 2)
  check.truthy(err:find("--tile needs an integer (got 'big')", 1, true), err)
  _, err, code = P.run(S("predict", "--model", "m", "--input", "i", "--out", "o", "--overlap=1.5"))
  check.eq(code, 2)
  check.truthy(err:find("--overlap must be in [0, 1)", 1, true), err)
  _, err, code = P.run(S("predict", "--modle", "m"))
  check.eq(code, 2)
  check.truthy(err:find("unknown option '--modle'", 1, true), err)
  _, err, code = P.run(S("predict", "--model"))
  check.eq(code, 2)
  check.truthy(err:find("--model needs a value", 1, true), err)
  local out
  out, err, code = P.run(S("predict", "--help"))
  check.eq(code, 0)
  check.truthy(out:find("usage: semseg predict", 1, true), out)
  out = P.run(S("help"))
  check.truthy(out:find("semseg predict", 1, true), "help mentions predict")
  -- missing files: an error, exit 1
  local dir = P.tmpdir()
  _, err, code = P.run(S("predict", "--model", dir .. "/none.ckpt", "--input", dir, "--out", dir .. "/o"))
  check.eq(code, 1)
  check.truthy(err:find("cannot read the checkpoint", 1, true), err)
  P.cleanup()
end)

test("semseg predict: a model that sg.models cannot rebuild (and no --builder) is a clear error", function()
  local dir = P.tmpdir()
  local _, ckpt = tiny_checkpoint(dir, 2, 3)
  sg.io.write_png(dir .. "/a.png", sg.zeros({1, 8, 8}, "u8"))
  local _, err, code = P.run(P.semseg("predict", "--model", ckpt, "--input", dir .. "/a.png", "--out", dir .. "/o"))
  check.eq(code, 1)
  check.truthy(err:find("cannot rebuild model 'Sequential'", 1, true), err)
  P.cleanup()
end)

test("semseg predict: images, folders and stacks, with probabilities and overlays", function()
  local dir = P.tmpdir()
  local net, ckpt, builder = tiny_checkpoint(dir, 3, 4)
  os.execute("mkdir -p " .. P.q(dir .. "/in") .. " " .. P.q(dir .. "/truth"))
  sg.manual_seed(3)
  local a = (sg.rand{1, 45, 61} * 255):to("u8")
  local b = (sg.rand{1, 30, 30} * 255):to("u8")
  sg.io.write_png(dir .. "/in/a.png", a)
  sg.io.write_png(dir .. "/in/b.png", b)
  sg.io.write_png(dir .. "/truth/a.png", (sg.rand{45, 61} * 3):to("u8"))
  sg.io.write_png(dir .. "/truth/b.png", (sg.rand{30, 30} * 3):to("u8"))
  -- one image, with probabilities and an overlay against the truth
  local out, err, code = P.run(P.semseg("predict", "--model", ckpt, "--builder", builder, "--input", dir .. "/in/a.png",
    "--out", dir .. "/o1", "--tile", "16", "--overlap", "0.5", "--probs", "--overlay", "--truth", dir .. "/truth"))
  check.eq(code, 0, "exit status; stderr: " .. err)
  check.truthy(err:find("tile 4/48", 1, true), "progress lines: " .. err)
  check.truthy(out:find("a.png", 1, true), out)
  local want_p = predict.tiled(net, a:float() / 255, {tile = 16, overlap = 0.5})
  local mask = sg.io.read_image(dir .. "/o1/a.png")
  check.eq(mask.shape, {1, 45, 61})
  check.eq(mask[1]:to("i64"):eq(predict.classes(want_p)):all():item(), true, "mask as predicted in-process")
  local probs = sg.io.read_tiff(dir .. "/o1/a_probs.tif", {stack = true})
  check.eq(probs.shape, {3, 45, 61})
  check.near(probs, want_p, 1e-6, 0)
  check.eq(sg.io.read_image(dir .. "/o1/a_overlay.png").shape, {3, 45, 61})
  -- a folder, quiet, with TTA
  out, err, code = P.run(P.semseg("predict", "--model", ckpt, "--builder", builder, "--input", dir .. "/in",
    "--out", dir .. "/o2", "--tile", "16", "--tta", "--quiet"))
  check.eq(code, 0, "folder; stderr: " .. err)
  check.eq(err, "")
  check.eq(sg.io.read_image(dir .. "/o2/a.png").shape, {1, 45, 61})
  check.eq(sg.io.read_image(dir .. "/o2/b.png").shape, {1, 30, 30})
  -- a multi-page TIFF stack: a multi-page mask, probabilities D*K pages, overlay stack
  local stack = (sg.rand{3, 20, 24} * 255):to("u8")
  sg.io.write_tiff(dir .. "/stack.tif", stack, {stack = true})
  out, err, code = P.run(P.semseg("predict", "--model", ckpt, "--builder", builder, "--input", dir .. "/stack.tif",
    "--out", dir .. "/o3", "--tile", "16", "--probs", "--overlay"))
  check.eq(code, 0, "stack; stderr: " .. err)
  local sm = sg.io.read_tiff(dir .. "/o3/stack.tif", {stack = true})
  check.eq(sm.shape, {3, 20, 24})
  local want2 = predict.classes(predict.tiled(net, stack[2]:unsqueeze(1):float() / 255, {tile = 16}))
  check.eq(sm[2]:to("i64"):eq(want2):all():item(), true, "section 2")
  check.eq(sg.io.read_tiff(dir .. "/o3/stack_probs.tif", {stack = true}).shape, {9, 20, 24})
  check.eq(sg.io.info(dir .. "/o3/stack_overlay.tif").pages, 3)
  -- a truth file missing for an input is an error naming it
  os.remove(dir .. "/truth/b.png")
  _, err, code = P.run(P.semseg("predict", "--model", ckpt, "--builder", builder, "--input", dir .. "/in",
    "--out", dir .. "/o4", "--tile", "16", "--overlay", "--truth", dir .. "/truth", "--quiet"))
  check.eq(code, 1)
  check.truthy(err:find("no truth for", 1, true) and err:find("b.png", 1, true), err)
  P.cleanup()
end)

test("semseg predict on a 1024x1024 Drosophila section", function()
  local root = os.getenv("SEMSEG_DATA") or "../shared/data"
  local section = root .. "/drosophila-vnc/stack2/raw/00.tif"
  if not P.exists(section) then skip("no " .. section) end
  local dir = P.tmpdir()
  local _, ckpt, builder = tiny_checkpoint(dir, 3, 4)
  local _, err, code = P.run(P.semseg("predict", "--model", ckpt, "--builder", builder, "--input", section,
    "--out", dir .. "/o", "--quiet", "--overlay"))
  check.eq(code, 0, "stderr: " .. err)
  local m = sg.io.read_image(dir .. "/o/00.png")
  check.eq(m.shape, {1, 1024, 1024})
  check.truthy(m:amax():item() <= 2)
  check.eq(sg.io.read_image(dir .. "/o/00_overlay.png").shape, {3, 1024, 1024})
  P.cleanup()
end)
