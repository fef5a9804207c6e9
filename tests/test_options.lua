-- Prepared options (sg.F.<op>_options{...}): parsed and validated once, they give what the same table
-- gives when passed to the op; unknown names and wrong types are errors in both forms; the layers build
-- theirs in init, so their forward parses no options table (sg.F._option_parses counts the parses).
local nn, F = sg.nn, sg.F

local function same(a, b, msg) check.near(a, b, 0, 0, msg) end

test("conv2d and conv_transpose2d: the prepared options give what the table gives", function()
  sg.manual_seed(1)
  local x, b = sg.randn{2, 4, 9, 9}, sg.randn{6}
  local w1, w2 = sg.randn{6, 4, 3, 3}, sg.randn{6, 2, 3, 3} -- groups 1 and 2
  for _, c in ipairs{{{}, w1}, {{stride = 2, padding = 1}, w1}, {{padding = "same", dilation = 2, groups = 2}, w2},
                     {{stride = {2, 1}, padding = {1, 0}, dilation = {1, 2}, groups = 2}, w2}, {{reference = true}, w1}} do
    local o, w = c[1], c[2]
    same(F.conv2d(x, w, b, F.conv2d_options(o)), F.conv2d(x, w, b, o), "conv2d")
  end
  local wt = sg.randn{4, 3, 3, 3}
  for _, o in ipairs{{stride = 2, padding = 1}, {stride = 2, padding = 1, output_padding = 1},
                     {stride = 2, padding = 1, size = {18, 17}}, {stride = {2, 3}, dilation = 2}} do
    local y = F.conv_transpose2d(x, wt, b:narrow(1, 1, 3), F.conv_transpose2d_options(o))
    same(y, F.conv_transpose2d(x, wt, b:narrow(1, 1, 3), o), "conv_transpose2d")
  end
  -- size is applied against each call's input
  local up = F.conv_transpose2d_options{stride = 2, padding = 1, size = {8, 8}}
  check.eq(F.conv_transpose2d(sg.randn{1, 4, 4, 4}, wt, nil, up).shape, {1, 3, 8, 8})
  check.errors(function() F.conv_transpose2d(sg.randn{1, 4, 6, 6}, wt, nil, up) end, "output size 8 is not reachable")
end)

test("pooling, unpooling, upsampling and batch norm: the prepared options give what the table gives", function()
  sg.manual_seed(2)
  local x = sg.randn{2, 3, 9, 8}
  for _, o in ipairs{{kernel = 2}, {kernel = 3, stride = 2, padding = 1}, {kernel = {3, 2}, stride = {1, 2}}} do
    local v1, i1 = F.max_pool2d(x, F.max_pool2d_options(o))
    local v2, i2 = F.max_pool2d(x, o)
    same(v1, v2, "max_pool2d values"); same(i1, i2, "max_pool2d indices")
    local no = {kernel = o.kernel, stride = o.stride, padding = o.padding, indices = false}
    check.eq(select("#", F.max_pool2d(x, F.max_pool2d_options(no))), 1, "indices = false: values only")
    for _, cip in ipairs{true, false} do
      local a = {kernel = o.kernel, stride = o.stride, padding = o.padding, count_include_pad = cip}
      same(F.avg_pool2d(x, F.avg_pool2d_options(a)), F.avg_pool2d(x, a), "avg_pool2d")
    end
  end
  local v, i = F.max_pool2d(x, 2)
  same(F.max_unpool2d(v, i, F.max_unpool2d_options{kernel = 2}), F.max_unpool2d(v, i, {kernel = 2}), "unpool kernel")
  same(F.max_unpool2d(v, i, F.max_unpool2d_options{size = {9, 8}}), F.max_unpool2d(v, i, {size = {9, 8}}), "unpool size")
  for _, o in ipairs{{scale = 2}, {scale = {1.5, 2}, mode = "bilinear"}, {size = {5, 7}, mode = "bilinear",
                     align_corners = true}, {size = {12, 3}}} do
    same(F.upsample(x, F.upsample_options(o)), F.upsample(x, o), "upsample")
  end
  for _, training in ipairs{false, true} do
    for _, relu in ipairs{false, true} do
      local o = {training = training, relu = relu, momentum = 0.3, eps = 1e-3}
      local rm1, rv1, rm2, rv2 = sg.zeros{3}, sg.ones{3}, sg.zeros{3}, sg.ones{3}
      local w, b = sg.rand{3} + 0.5, sg.randn{3}
      same(F.batch_norm(x, rm1, rv1, w, b, F.batch_norm_options(o)), F.batch_norm(x, rm2, rv2, w, b, o), "batch_norm")
      same(rm1, rm2, "running mean"); same(rv1, rv2, "running var")
    end
  end
end)

test("prepared options print their parsed values and belong to one op", function()
  check.eq(tostring(F.conv2d_options{stride = 2, padding = "same"}),
    "conv2d_options{stride = {2, 2}, padding = 'same', dilation = {1, 1}, groups = 1}")
  check.eq(tostring(F.max_pool2d_options{kernel = 3, stride = 1, padding = {1, 0}}),
    "max_pool2d_options{kernel = {3, 3}, stride = {1, 1}, padding = {1, 0}, indices = true}")
  check.eq(tostring(F.upsample_options{scale = 2, mode = "bilinear"}),
    "upsample_options{scale = {2, 2}, mode = 'bilinear', align_corners = false}")
  check.eq(tostring(F.batch_norm_options{training = true, eps = 1e-3}),
    "batch_norm_options{training = true, momentum = 0.1, eps = 0.001, relu = false}")
  check.truthy(tostring(F.avg_pool2d_options{kernel = 2}):find("count_include_pad = true", 1, true))
  check.truthy(tostring(F.conv_transpose2d_options{size = {4, 4}}):find("size = {4, 4}", 1, true))
  check.truthy(tostring(F.max_unpool2d_options{kernel = 2}):find("kernel = {2, 2}", 1, true))
  check.eq(getmetatable(F.conv2d_options{}).__name, "semseg.conv2d_options")
  local x = sg.randn{1, 1, 4, 4}
  check.errors(function() F.max_pool2d(x, F.avg_pool2d_options{kernel = 2}) end,
    "max_pool2d: argument #2 must be an options table or max_pool2d_options{...} (got semseg.avg_pool2d_options)")
  check.errors(function() F.conv2d(x, sg.randn{1, 1, 3, 3}, nil, F.conv_transpose2d_options{}) end,
    "conv2d: argument #4 must be an options table or conv2d_options{...} (got semseg.conv_transpose2d_options)")
  check.errors(function() F.upsample(x, "bilinear") end, "upsample: argument #2 must be an options table")
  check.errors(function() F.conv2d_options(2) end, "conv2d_options: expected an options table (got number)")
end)

test("unknown names and wrong types are errors naming the function and the option, in both forms", function()
  local x, w, wt = sg.randn{1, 2, 6, 6}, sg.randn{2, 2, 3, 3}, sg.randn{2, 2, 3, 3}
  local conv = function(o) return F.conv2d(x, w, nil, o) end
  local convt = function(o) return F.conv_transpose2d(x, wt, nil, o) end
  local maxp = function(o) return F.max_pool2d(x, o) end
  local avgp = function(o) return F.avg_pool2d(x, o) end
  local unpool = function(o) local v, i = F.max_pool2d(x, 2); return F.max_unpool2d(v, i, o) end
  local up = function(o) return F.upsample(x, o) end
  local bn = function(o) return F.batch_norm(x, nil, nil, nil, nil, o) end
  -- each case: the op called with a table, the prepared constructor, the options, the message (OP: the
  -- op's or the constructor's name)
  local cases = {
    {conv, "conv2d_options", {strid = 2},
     "OP: unknown option 'strid' (did you mean 'stride'?; known: dilation, groups, padding, reference, stride)"},
    {conv, "conv2d_options", {stride = 1, paddin = 1}, "OP: unknown option 'paddin' (did you mean 'padding'?"},
    {conv, "conv2d_options", {output_padding = 1}, "OP: unknown option 'output_padding' (known: dilation, groups"},
    {conv, "conv2d_options", {stride = "2"}, "OP: stride must be a number or a pair {h, w} (got string)"},
    {conv, "conv2d_options", {padding = "full"}, "OP: padding must be a number, {h, w}, 'same' or 'valid' (got 'full')"},
    {conv, "conv2d_options", {groups = 1.5}, "OP: groups must be an integer (got 1.5)"},
    {conv, "conv2d_options", {reference = 1}, "OP: reference must be true or false (got number)"},
    {convt, "conv_transpose2d_options", {output_pading = 1}, "OP: unknown option 'output_pading' (did you mean 'output_padding'?"},
    {convt, "conv_transpose2d_options", {size = {8, 8}, output_padding = 1}, "OP: give either size or output_padding, not both"},
    {maxp, "max_pool2d_options", {kernal = 2}, "OP: unknown option 'kernal' (did you mean 'kernel'?; known: indices, kernel, padding, stride)"},
    {maxp, "max_pool2d_options", {kernel = 2, count_include_pad = false}, "OP: unknown option 'count_include_pad' (known:"},
    {maxp, "max_pool2d_options", {stride = 2}, "OP: options need kernel="},
    {maxp, "max_pool2d_options", {kernel = 2, indices = "no"}, "OP: indices must be true or false (got string)"},
    {avgp, "avg_pool2d_options", {kernel = 2, count_include_pads = true}, "OP: unknown option 'count_include_pads' (did you mean 'count_include_pad'?"},
    {avgp, "avg_pool2d_options", {kernel = {2, 2, 2}}, "OP: kernel must be a number or a pair {h, w}"},
    {unpool, "max_unpool2d_options", {sise = {6, 6}}, "OP: unknown option 'sise' (did you mean 'size'?"},
    {unpool, "max_unpool2d_options", {stride = 2}, "OP: options need size={h, w} or kernel="},
    {up, "upsample_options", {scale = 2, mod = "bilinear"}, "OP: unknown option 'mod' (did you mean 'mode'?; known: align_corners, mode, scale, size)"},
    {up, "upsample_options", {scale = 2, mode = "bicubic"}, "OP: mode must be 'nearest' or 'bilinear' (got bicubic)"},
    {up, "upsample_options", {scale = 2, mode = 2}, "OP: mode must be 'nearest' or 'bilinear' (got number)"},
    {up, "upsample_options", {scale = 0}, "OP: scale must be positive"},
    {up, "upsample_options", {scale = 2, size = {3, 3}}, "OP: give exactly one of scale= and size="},
    {up, "upsample_options", {scale = 2, align_corners = true}, "OP: align_corners only applies to mode 'bilinear'"},
    {bn, "batch_norm_options", {trainig = true}, "OP: unknown option 'trainig' (did you mean 'training'?; known: eps, momentum, relu, training)"},
    {bn, "batch_norm_options", {train = true}, "OP: unknown option 'train' (known: eps, momentum, relu, training)"}, -- too far off
    {bn, "batch_norm_options", {eps = "small"}, "OP: eps must be a number (got string)"},
    {bn, "batch_norm_options", {relu = 1}, "OP: relu must be true or false (got number)"},
  }
  for _, c in ipairs(cases) do
    local call, ctor, o, want = c[1], c[2], c[3], c[4]
    local op = ctor:gsub("_options$", "")
    check.errors(function() call(o) end, (want:gsub("^OP", op)))
    check.errors(function() F[ctor](o) end, (want:gsub("^OP", ctor)))
  end
  -- nothing close: no suggestion; the first bad name in sorted order, whatever the table's order
  check.errors(function() F.conv2d(x, w, nil, {zzz = 1}) end, "conv2d: unknown option 'zzz' (known: dilation")
  check.errors(function() F.conv2d(x, w, nil, {yy = 1, xx = 2, [1] = 3}) end, "conv2d: unknown option 'xx' (known:")
  check.errors(function() F.conv2d(x, w, nil, {3}) end, "conv2d: unknown option [1] (known:")
  local long = string.rep("s", 100)
  check.errors(function() F.conv2d(x, w, nil, {[long] = 1}) end, "conv2d: unknown option '" .. long .. "' (known:")
  -- the eps tables of group and layer norm are checked too
  check.errors(function() F.group_norm(x, 1, nil, nil, {epss = 1e-3}) end, "group_norm: unknown option 'epss' (did you mean 'eps'?")
  check.errors(function() F.layer_norm(x, 6, nil, nil, {eps = 1e-3, e = 1}) end, "layer_norm: unknown option 'e'")
  -- a caller names itself in the messages
  check.errors(function() F.conv2d_options({strde = 1}, "nn.Conv2d") end, "nn.Conv2d: unknown option 'strde' (did you mean 'stride'?")
end)

test("layers validate their options when built, with suggestions", function()
  check.errors(function() nn.Conv2d(1, 2, 3, {paddding = 1}) end, "nn.Conv2d: unknown option 'paddding' (did you mean 'padding'?")
  check.errors(function() nn.Conv2d(1, 2, 3, {padding = "full"}) end, "nn.Conv2d: padding must be a number, {h, w}, 'same' or 'valid'")
  check.errors(function() nn.ConvTranspose2d(1, 2, 2, {strides = 2}) end, "nn.ConvTranspose2d: unknown option 'strides' (did you mean 'stride'?")
  check.errors(function() nn.MaxPool2d(2, {return_indice = true}) end, "nn.MaxPool2d: unknown option 'return_indice' (did you mean 'return_indices'?")
  check.errors(function() nn.AvgPool2d(2, {stride = "x"}) end, "nn.AvgPool2d: stride must be a number or a pair {h, w} (got string)")
  check.errors(function() nn.MaxUnpool2d(2, {paddin = 1}) end, "nn.MaxUnpool2d: unknown option 'paddin' (did you mean 'padding'?")
  check.errors(function() nn.Upsample{scale = 2, mode = "nearst"} end, "nn.Upsample: mode must be 'nearest' or 'bilinear' (got nearst)")
  check.errors(function() nn.Upsample{scale = 2, mod = "bilinear"} end, "nn.Upsample: unknown option 'mod' (did you mean 'mode'?")
  check.errors(function() nn.BatchNorm2d(4, {momentun = 0.2}) end, "nn.BatchNorm2d: unknown option 'momentun' (did you mean 'momentum'?")
  check.errors(function() nn.BatchNorm2d(4, {eps = "x"}) end, "nn.BatchNorm2d: eps must be a number (got string)")
  check.errors(function() nn.GroupNorm(2, 4, {epss = 1}) end, "nn.GroupNorm: unknown option 'epss' (did you mean 'eps'?")
  check.errors(function() nn.LayerNorm(4, {elementwise_afine = false}) end, "nn.LayerNorm: unknown option 'elementwise_afine'")
end)

test("a layer's forward parses no options table (counted in the binding)", function()
  sg.manual_seed(3)
  local layers = {
    {nn.Conv2d(2, 4, 3, {padding = 1}), {1, 2, 8, 8}},
    {nn.ConvTranspose2d(2, 3, 2, {stride = 2}), {1, 2, 4, 4}},
    {nn.MaxPool2d(2), {1, 2, 8, 8}},
    {nn.MaxPool2d(2, {return_indices = true}), {1, 2, 8, 8}},
    {nn.AvgPool2d(3, {stride = 1, padding = 1}), {1, 2, 8, 8}},
    {nn.Upsample{scale = 2, mode = "bilinear"}, {1, 2, 4, 4}},
    {nn.BatchNorm2d(2), {2, 2, 4, 4}},
  }
  local unpool = nn.MaxUnpool2d(2)
  local before = F._option_parses()
  sg.no_grad(function()
    for _ = 1, 20 do
      for _, l in ipairs(layers) do l[1](sg.randn(l[2])) end
      local v, i = layers[4][1](sg.randn{1, 2, 8, 8})
      unpool(v, i)
    end
  end)
  -- training and eval, with and without the fused relu, with autograd recording
  local bn = layers[7][1]
  for _, training in ipairs{true, false} do
    bn:train(training)
    bn(sg.randn{2, 2, 4, 4}:requires_grad()):sum():backward()
    bn(sg.randn{2, 2, 4, 4}, {relu = true})
  end
  check.eq(F._option_parses() - before, 0, "option tables parsed during forward")
  -- a whole model too
  local m = sg.models.unet{in_channels = 1, classes = 2, base = 4, depth = 2}
  m:eval()
  before = F._option_parses()
  sg.no_grad(function() for _ = 1, 3 do m(sg.randn{1, 1, 16, 16}) end end)
  check.eq(F._option_parses() - before, 0, "option tables parsed by unet's forward")
  -- the counter does count: a table passed to an op is parsed on each call
  before = F._option_parses()
  for _ = 1, 3 do F.max_pool2d(sg.randn{1, 1, 4, 4}, {kernel = 2}) end
  check.eq(F._option_parses() - before, 3)
end)

test("changing a layer's cfg rebuilds its prepared options; an invalid change is an error and changes nothing", function()
  sg.manual_seed(4)
  local conv = nn.Conv2d(2, 2, 3)
  local x = sg.randn{1, 2, 9, 9}
  check.eq(conv(x).shape, {1, 2, 7, 7})
  conv.cfg.padding = 1
  check.eq(conv(x).shape, {1, 2, 9, 9})
  conv.cfg.stride = 2
  check.eq(conv(x).shape, {1, 2, 5, 5})
  same(conv(x), F.conv2d(x, conv.weight, conv.bias, {stride = 2, padding = 1}))
  check.errors(function() conv.cfg.padding = "full" end, "nn.Conv2d: padding must be a number, {h, w}, 'same' or 'valid'")
  check.eq(conv.cfg.padding, 1, "the invalid value was not kept")
  check.eq(conv(x).shape, {1, 2, 5, 5})
  check.truthy(tostring(conv):find("stride 2x2, padding 1x1", 1, true), tostring(conv))
  local seen = {}
  for k in pairs(conv.cfg) do seen[#seen + 1] = k end
  table.sort(seen)
  check.eq(seen, {"dilation", "groups", "in_channels", "kernel", "out_channels", "padding", "stride"})

  local pool = nn.MaxPool2d(2)
  pool.cfg.stride = 1
  check.eq(pool(x).shape, {1, 2, 8, 8})
  local up = nn.Upsample{scale = 2}
  up.cfg.scale = 3
  check.eq(up(x).shape, {1, 2, 27, 27})
  check.errors(function() up.cfg.scale = nil end, "nn.Upsample: give exactly one of scale= and size=")
  check.eq(up(x).shape, {1, 2, 27, 27})
  local bn = nn.BatchNorm2d(2)
  bn.cfg.eps = 1e3 -- a huge eps scales the output down: the new value is in use
  bn:eval()
  check.truthy(bn(x):abs():amax():item() < 0.2)
  -- the caller's table is not the layer's
  local o = {scale = 2}
  local up2 = nn.Upsample(o)
  up2.cfg.scale = 4
  check.eq(o.scale, 2)
  -- the prepared options are neither parameters nor children
  check.eq(#conv:parameters(), 2)
  check.eq(#conv:children(), 0)
end)
