-- Losses against PyTorch 1.13 (golden values from torch.nn.functional in f64;
-- the generator is scripts/golden_losses.py).
local G = {}
G.LOGITS = {{{{-2.310411800234176, -0.3732508612577643}, {-1.0608166785462863, 0.99950935478117608}}, {{-0.88402500458326527, -1.2755469302148053}, {-0.62322457986607904, -0.86644160191257724}}, {{0.23871805816817063, 0.73352836852728409}, {-1.3218818291421377, 1.3148113651971234}}}, {{{-1.4874956356507338, -0.71357533964685771}, {0.51999866317893795, -0.95288563970328422}}, {{0.67485754359400385, 1.0468653769814655}, {0.15429517864658948, -0.74989152283919414}}, {{-0.72338970049778817, 0.086369892382349975}, {-1.7464049037282421, 1.0410124570335091}}}}
G.TARGET = {{{0, 2}, {1, 1}}, {{2, 0}, {1, 2}}}
G.ce_mean = 1.4937435111778838
G.ce_w = 1.046647934613073
G.ce_ign = 1.9192725130245534
G.ce_ls = 1.4868879058257267
G.ce_w_ls_ign = 0.86058200648039374
G.ce_none = {{{2.888124377645449, 0.38167415944115313}, {0.76213280229156899, 2.7923592079597275}}, {{1.7072628498244977, 2.2017054830933409}, {0.95204069413268133, 0.26464851503465192}}}
G.ce_sum_w = 11.408462487282495
G.X = {{{{0.79701001692502971, 0.21166418145300325, -0.074419447330933503}, {0.86538970786487779, 0.99455292511187521, 0.11494420795897257}, {0.1446690147604332, 1.0741717182580683, -1.1287986397999445}}}, {{{-0.093768581383132182, 0.05837477053151257, -1.0016690028342379}, {0.83514757270423645, -0.29286146627375376, -0.5787436085078369}, {-3.4796352415709877, 0.7494883300195011, -0.560555214098722}}}}
G.T = {{{{0, 0, 0}, {0, 0, 1}, {1, 0, 1}}}, {{{0, 0, 0}, {0, 0, 0}, {0, 0, 1}}}}
G.bce = 0.84744153575122871
G.bce_pw = 1.2565493330646089
G.bce_sum = 15.253947643522118
G.bfocal = 0.21402090423842729
G.cfocal = 1.0687860645605112
G.mse = 1.4923774646178034
G.l1 = 0.91870206677490251
G.smoothl1 = 0.70576981855246379
G.dice_mc = 0.49358377351863575
G.tversky_mc_batch = 0.49304465869147479
G.jaccard_nobg = 0.51811820337296854
local L = sg.loss
local logits = sg.tensor(G.LOGITS, "f64")
local target = sg.tensor(G.TARGET, "i64")
local x, t = sg.tensor(G.X, "f64"), sg.tensor(G.T, "f64")
local w = sg.tensor({0.2, 1.0, 2.5}, "f64")

test("cross_entropy: mean, weights, ignore_index, label smoothing, reductions", function()
  check.near(L.cross_entropy(logits, target):item(), G.ce_mean, 1e-12)
  check.near(L.cross_entropy(logits, target, {weight = w}):item(), G.ce_w, 1e-12)
  check.near(L.cross_entropy(logits, target, {ignore_index = 2}):item(), G.ce_ign, 1e-12)
  check.near(L.cross_entropy(logits, target, {label_smoothing = 0.1}):item(), G.ce_ls, 1e-12)
  check.near(L.cross_entropy(logits, target, {weight = w, label_smoothing = 0.2, ignore_index = 1}):item(),
             G.ce_w_ls_ign, 1e-12)
  check.near(L.cross_entropy(logits, target, {reduction = "none"}), G.ce_none, 1e-12)
  check.near(L.cross_entropy(logits, target, {weight = w, reduction = "sum"}):item(), G.ce_sum_w, 1e-12)
end)

test("binary losses: bce (pos_weight), focal, mse, l1, smooth_l1", function()
  check.near(L.bce_with_logits(x, t):item(), G.bce, 1e-12)
  check.near(L.bce_with_logits(x, t, {pos_weight = 3.0}):item(), G.bce_pw, 1e-12)
  check.near(L.bce_with_logits(x, t, {reduction = "sum"}):item(), G.bce_sum, 1e-12)
  check.near(L.binary_focal(x, t):item(), G.bfocal, 1e-12)
  check.near(L.focal(logits, target):item(), G.cfocal, 1e-12)
  check.near(L.mse(x, t):item(), G.mse, 1e-12)
  check.near(L.l1(x, t):item(), G.l1, 1e-12)
  check.near(L.smooth_l1(x, t, {beta = 0.5}):item(), G.smoothl1, 1e-12)
end)

test("overlap losses: multi-class dice, batch tversky, jaccard without background", function()
  check.near(L.dice(logits, target):item(), G.dice_mc, 1e-12)
  check.near(L.tversky(logits, target, {alpha = 0.3, beta = 0.7, batch = true}):item(), G.tversky_mc_batch, 1e-12)
  check.near(L.jaccard(logits, target, {include_background = false}):item(), G.jaccard_nobg, 1e-12)
end)

test("a Tversky loss written by the user in Lua equals the built-in one, value and gradient", function()
  local function my_tversky(lg, tg, a, b)
    local p = lg:sigmoid()
    local tp = (p * tg):sum()
    local fp = (p * (1 - tg)):sum()
    local fn = ((1 - p) * tg):sum()
    return 1 - (tp + 1) / (tp + a * fp + b * fn + 1)
  end
  local x1 = x:clone():requires_grad()
  local x2 = x:clone():requires_grad()
  local mine = my_tversky(x1, t, 0.3, 0.7)
  local builtin = L.tversky(x2, t, {alpha = 0.3, beta = 0.7, batch = true})
  check.near(mine:item(), builtin:item(), 1e-12)
  mine:backward(); builtin:backward()
  check.near(x1.grad, x2.grad, 1e-12)
end)

test("every loss has gradients that match finite differences", function()
  local small = logits:narrow(3, 1, 1):contiguous()
  local st = target:narrow(2, 1, 1):contiguous()
  local cases = {
    function(l) return L.cross_entropy(l, st, {weight = w, label_smoothing = 0.1}) end,
    function(l) return L.focal(l, st, {alpha = {0.2, 0.3, 0.5}}) end,
    function(l) return L.dice(l, st) end,
    function(l) return L.tversky(l, st, {alpha = 0.3, beta = 0.7}) end,
    function(l) return L.jaccard(l, st, {include_background = false}) end,
    function(l) return L.dice_ce(l, st) end,
  }
  for _, f in ipairs(cases) do check.grad(f, {small:clone():requires_grad()}) end
  local xs = x:narrow(3, 1, 2):contiguous()
  local ts = t:narrow(3, 1, 2):contiguous()
  for _, f in ipairs{L.bce_with_logits, L.binary_focal, L.mse, L.l1, L.smooth_l1, L.dice} do
    check.grad(function(v) return f(v, ts) end, {xs:clone():requires_grad()})
  end
end)

test("bad targets are clear errors naming the value or the shapes", function()
  check.errors(function() L.cross_entropy(logits, target + 1) end, "target contains class 3 but the logits have 3 classes")
  check.errors(function() L.cross_entropy(logits, target:float()) end, "target must hold class ids (i64), got f32")
  check.errors(function() L.cross_entropy(logits, target:narrow(1, 1, 1)) end, "need a target of shape [2,2,2], got [1,2,2]")
  check.errors(function() L.bce_with_logits(x, target) end, "logits of shape [2,1,3,3] and target of shape [2,2,2] differ")
  check.errors(function() L.bce_with_logits(x, t:long()) end, "target must be a float tensor")
  check.errors(function() L.mse(x, t, {reduction = "avg"}) end, "reduction must be 'mean', 'sum' or 'none'")
  -- the ignore class may lie outside the class range
  check.near(L.cross_entropy(logits, sg.where(target:eq(2), 255, target), {ignore_index = 255}):item(), G.ce_ign, 1e-12)
end)

test("categorical focal with a single alpha scales the loss", function()
  check.near(L.focal(logits, target, {alpha = 0.25}):item(), 0.25 * G.cfocal, 1e-12)
end)
