-- optim: the fused update steps (sgd with momentum/nesterov/dampening/weight decay, adam and adamw with
-- amsgrad, rmsprop centered and with momentum) and the gradient norm, on every backend against the
-- reference: the same parameters after several steps from the same gradients, f32 and f64, and a
-- gradient in another float type (mixed precision).
local B = require "tests.ops.backends"

local function steps(backend, make, dtype, gdtype, nsteps)
  return B.on(backend, function(dev)
    sg.manual_seed(31)
    local p = sg.randn({3, 17}, dtype):to(dev):requires_grad()
    local q = sg.randn({5}, dtype):to(dev):requires_grad()
    local opt = make({p, q})
    for s = 1, nsteps do
      sg.manual_seed(100 + s)
      p.grad = sg.randn({3, 17}, gdtype):to(dev)
      q.grad = sg.randn({5}, gdtype):to(dev)
      opt:step()
    end
    return p:detach():cpu(), q:detach():cpu()
  end)
end

local optimizers = {
  {"sgd", function(ps) return sg.optim.sgd(ps, {lr = 0.1}) end},
  {"sgd momentum nesterov wd", function(ps)
    return sg.optim.sgd(ps, {lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 1e-2}) end},
  {"sgd dampening", function(ps) return sg.optim.sgd(ps, {lr = 0.05, momentum = 0.8, dampening = 0.3}) end},
  {"adam", function(ps) return sg.optim.adam(ps, {lr = 1e-2}) end},
  {"adam amsgrad wd", function(ps) return sg.optim.adam(ps, {lr = 1e-2, amsgrad = true, weight_decay = 0.1}) end},
  {"adamw", function(ps) return sg.optim.adamw(ps, {lr = 1e-2, weight_decay = 0.05}) end},
  {"rmsprop", function(ps) return sg.optim.rmsprop(ps, {lr = 1e-2}) end},
  {"rmsprop centered momentum", function(ps)
    return sg.optim.rmsprop(ps, {lr = 1e-2, centered = true, momentum = 0.9, weight_decay = 1e-3}) end},
}

test("optim: every backend's steps match the reference's (f32, f64, bf16 gradients)", function()
  for _, o in ipairs(optimizers) do
    for _, c in ipairs{{"f32", "f32"}, {"f64", "f64"}, {"f32", "bf16"}} do
      local wp, wq = steps("reference", o[2], c[1], c[2], 4)
      for _, backend in ipairs(B.list()) do
        local gp, gq = steps(backend, o[2], c[1], c[2], 4)
        local tol = c[1] == "f64" and 1e-12 or 2e-6
        local what = string.format("%s %s (grad %s) on %s", o[1], c[1], c[2], backend)
        check.near(gp, wp, tol, tol, what .. ": first parameter")
        check.near(gq, wq, tol, tol, what .. ": second parameter")
      end
    end
  end
end)

test("optim: the reference step is the textbook rule (one adam step by hand)", function()
  local p, q = steps("reference", function(ps) return sg.optim.adam(ps, {lr = 0.1}) end, "f64", "f64", 1)
  sg.manual_seed(31)
  local p0 = sg.randn({3, 17}, "f64")
  sg.manual_seed(101)
  local g = sg.randn({3, 17}, "f64")
  -- first step: m = 0.1 g, v = 0.001 g^2, corrected m/(sqrt(v)+eps) = g / (|g| + eps)
  local want = p0 - 0.1 * g / (g:abs() + 1e-8)
  check.near(p, want, 1e-12, 1e-12, "adam step 1")
  check.eq(q.shape, {5})
end)

test("optim: the gradient norm on every backend matches the reference (p = 1, 2, 3, inf)", function()
  for _, np in ipairs{1, 2, 3, math.huge} do
    local function norm(backend)
      return B.on(backend, function(dev)
        sg.manual_seed(41)
        local a = sg.randn({7, 9}):to(dev):requires_grad()
        local b = sg.randn({4}, "f64"):to(dev):requires_grad()
        a.grad, b.grad = sg.randn({7, 9}):to(dev), sg.randn({4}, "f64"):to(dev)
        return sg.optim.clip_grad_norm({a, b}, 1e9, np)
      end)
    end
    local want = norm("reference")
    for _, backend in ipairs(B.list()) do check.near(norm(backend), want, 1e-5, 1e-5, "norm " .. np .. " on " .. backend) end
  end
end)

-- ---------------------------------------------------------------- on the GPU (was tests/test_cuda_optim.lua)
do
  -- Optimizers on the GPU against the CPU: several steps of SGD (momentum,
  -- dampening, nesterov, weight decay), Adam, AdamW, AMSGrad and RMSprop
  -- (momentum, centered) on f32 and f64 parameters, f32/bf16/f16 gradients, and
  -- clip_grad_norm. The GPU kernels do the CPU's arithmetic operation for
  -- operation, so the results agree to the last bit in practice; the tests allow
  -- a few ulps. GPU tests skip without a usable device; grad_norm and the
  -- gradient-dtype path are also tested on the CPU.

  local CC = require("tests.cuda_compare")(check, skip)
  local need_cuda, host, dev = CC.need_cuda, CC.host, CC.dev
  local function near(got, want, tol, msg)
    local g, w = host(got), host(want)
    check.eq(g.dtype, w.dtype, msg .. " dtype")
    check.near(g, w, tol, tol, msg)
  end
  local optim = sg.optim

  -- params: CPU tensors; returns the CPU and GPU parameter lists (leaves) and both optimizers
  local function pair(kind, params, opts)
    local pc, pd = {}, {}
    for i, p in ipairs(params) do
      pc[i] = p:clone():requires_grad()
      pd[i] = dev(p):requires_grad()
    end
    return pc, pd, optim[kind](pc, opts), optim[kind](pd, opts)
  end

  -- steps with the same gradients on both devices; compares parameters and state after every step
  local function run(kind, opts, dt, gdt, steps, tol)
    sg.manual_seed(300)
    local shapes = {{7, 5}, {13}, {2, 3, 4}, {1}}
    local params = {}
    for i, s in ipairs(shapes) do params[i] = sg.randn(s, dt) end
    local pc, pd, oc, od = pair(kind, params, opts)
    local msg = string.format("%s %s (grad %s)", kind, sg.json and sg.json.encode(opts) or "", gdt)
    for step = 1, steps do
      for i, p in ipairs(pc) do
        local g = sg.randn(p.shape, dt):to(gdt)
        if i == 2 and step == 2 then g = g * 0 end -- a zero gradient (sqrt(0) paths)
        p.grad = g
        pd[i].grad = dev(g)
      end
      oc:step()
      od:step()
      for i = 1, #pc do
        check.eq(pd[i].device, "cuda")
        near(pd[i], pc[i], tol, msg .. " step " .. step .. " param " .. i)
        local sc, sd = oc.state["1:" .. i], od.state["1:" .. i]
        check.eq(sd.step, sc.step)
        for name, v in pairs(sc) do
          if type(v) == "userdata" then near(sd[name], v, tol, msg .. " state " .. name .. " of param " .. i) end
        end
      end
    end
  end

  local CONFIGS = {
    {"sgd", {lr = 0.1}},
    {"sgd", {lr = 0.05, momentum = 0.9}},
    {"sgd", {lr = 0.05, momentum = 0.9, dampening = 0.3, weight_decay = 1e-2}},
    {"sgd", {lr = 0.05, momentum = 0.8, nesterov = true, weight_decay = 1e-3}},
    {"adam", {lr = 1e-2}},
    {"adam", {lr = 3e-3, betas = {0.8, 0.99}, eps = 1e-6, weight_decay = 1e-2}},
    {"adam", {lr = 1e-2, amsgrad = true}},
    {"adamw", {lr = 1e-2}},
    {"adamw", {lr = 1e-2, weight_decay = 0.1, amsgrad = true}},
    {"rmsprop", {lr = 1e-2}},
    {"rmsprop", {lr = 1e-2, momentum = 0.9, weight_decay = 1e-2}},
    {"rmsprop", {lr = 1e-2, centered = true, alpha = 0.9}},
    {"rmsprop", {lr = 1e-2, centered = true, momentum = 0.5, eps = 1e-4}},
  }

  test("every optimizer: f32 parameters, several steps, CPU and GPU agree", function()
    need_cuda()
    for _, c in ipairs(CONFIGS) do run(c[1], c[2], "f32", "f32", 5, 1e-6) end
  end)

  test("every optimizer: f64 parameters", function()
    need_cuda()
    for _, c in ipairs(CONFIGS) do run(c[1], c[2], "f64", "f64", 4, 1e-14) end
  end)

  test("bf16 and f16 gradients for f32 parameters (mixed precision)", function()
    need_cuda()
    for _, gdt in ipairs{"bf16", "f16"} do
      for _, c in ipairs{CONFIGS[2], CONFIGS[6], CONFIGS[9], CONFIGS[13]} do run(c[1], c[2], "f32", gdt, 3, 1e-6) end
    end
  end)

  test("a non-contiguous gradient and a state dict round trip on the GPU", function()
    need_cuda()
    sg.manual_seed(301)
    local p = sg.randn(6, 4)
    local pc, pd, oc, od = pair("adam", {p}, {lr = 1e-2})
    local g = sg.randn(4, 6)
    pc[1].grad = g:transpose(1, 2)
    pd[1].grad = dev(g):transpose(1, 2)
    oc:step()
    od:step()
    near(pd[1], pc[1], 1e-6, "transposed grad")
    local sd = od:state_dict()
    local od2 = optim.adam(pd, {lr = 1e-2})
    od2:load_state_dict(sd)
    check.eq(od2.state["1:1"].exp_avg.device, "cuda")
    pc[1].grad, pd[1].grad = g:transpose(1, 2), dev(g):transpose(1, 2)
    oc:step()
    od2:step()
    near(pd[1], pc[1], 1e-6, "after reload")
  end)

  test("clip_grad_norm on the GPU: one fused pass, the CPU's total and scaling", function()
    need_cuda()
    sg.manual_seed(302)
    for _, norm_type in ipairs{2, 1, 3, math.huge} do
      local shapes = {{30, 20}, {7}, {3, 4, 5}, {1}}
      local pc, pd = {}, {}
      for i, s in ipairs(shapes) do
        local p, g = sg.randn(s), sg.randn(s) * 3
        pc[i] = p:clone():requires_grad(); pc[i].grad = g:clone()
        pd[i] = dev(p):requires_grad(); pd[i].grad = dev(g)
      end
      local tc = optim.clip_grad_norm(pc, 1.0, norm_type)
      local td = optim.clip_grad_norm(pd, 1.0, norm_type)
      check.near(td, tc, 0, 1e-12, "total norm " .. norm_type)
      for i = 1, #pc do near(pd[i].grad, pc[i].grad, 1e-6, "clipped grad " .. i .. " norm " .. norm_type) end
      -- below the limit nothing changes
      local before = host(pd[1].grad)
      optim.clip_grad_norm(pd, 1e9, norm_type)
      near(pd[1].grad, before, 0, "unclipped")
    end
    -- bf16 gradients are summed in double too
    local g = sg.randn({1000}):to("bf16")
    check.near(sg.optim_core.grad_norm({dev(g)}, 2), sg.optim_core.grad_norm({g}, 2), 0, 1e-12, "bf16 grad_norm")
    check.errors(function() return sg.optim_core.grad_norm({dev(g), g}) end, "grad_norm: expected all tensors on one device")
  end)

  test("optimizer steps refuse parameters and state on different devices", function()
    need_cuda()
    local p = dev(sg.randn(3)):requires_grad()
    check.errors(function() sg.optim_core.sgd_step(p, sg.ones(3), nil, {lr = 0.1}, false) end,
      "sgd: expected all tensors on one device")
    check.errors(function() sg.optim_core.adam_step(p, dev(sg.ones(3)), sg.zeros(3), dev(sg.zeros(3)), nil, {}, 1) end,
      "adam: expected all tensors on one device")
  end)

  -- ------------------------------------------------------------------ CPU
  test("grad_norm on the CPU: p = 1, 2, 3 and max over several tensors, any float type", function()
    local a, b = sg.tensor{3.0, -4.0}, sg.tensor({{1.0, 2.0}, {-2.0, 0.5}}, "f64")
    local K = sg.optim_core
    check.near(K.grad_norm({a}), 5, 0, 1e-15)
    check.near(K.grad_norm({a, b:transpose(1, 2)}, 2), math.sqrt(25 + 1 + 4 + 4 + 0.25), 0, 1e-15)
    check.near(K.grad_norm({a, b}, 1), 7 + 5.5, 0, 1e-15)
    check.near(K.grad_norm({a, b}, 3), (27 + 64 + 1 + 8 + 8 + 0.125) ^ (1 / 3), 0, 1e-14)
    check.eq(K.grad_norm({a, b}, math.huge), 4)
    check.near(K.grad_norm({a:to("bf16"), b:to("f16")}), math.sqrt(25 + 1 + 4 + 4 + 0.25), 0, 1e-15)
    check.eq(K.grad_norm({}), 0)
    check.truthy(K.grad_norm({sg.tensor{1, 0 / 0}}) ~= K.grad_norm({sg.tensor{1, 0 / 0}}), "NaN propagates")
    check.errors(function() return K.grad_norm({a}, 0) end, "grad_norm: the norm type must be positive")
    check.errors(function() return K.grad_norm({sg.tensor({1}, "i64")}) end, "grad_norm: gradient 1 is i64")
  end)

  test("a bf16 or f16 gradient for an f32 parameter steps like its f32 value (CPU)", function()
    sg.manual_seed(303)
    for _, kind in ipairs{"sgd", "adam", "rmsprop"} do
      for _, gdt in ipairs{"bf16", "f16"} do
        local p = sg.randn(5, 4)
        local a, b = p:clone():requires_grad(), p:clone():requires_grad()
        local oa, ob = optim[kind]({a}, {lr = 0.01, momentum = kind ~= "adam" and 0.9 or nil}),
          optim[kind]({b}, {lr = 0.01, momentum = kind ~= "adam" and 0.9 or nil})
        for _ = 1, 3 do
          local g = sg.randn(5, 4):to(gdt)
          a.grad, b.grad = g, g:to("f32")
          oa:step()
          ob:step()
        end
        check.eq(a.dtype, "f32")
        check.near(a, b, 0, 0, kind .. " " .. gdt)
      end
    end
  end)
end

-- ---------------------------------------------------------------- the f32 cpu kernels against the f64 loops (was tests/test_cpu_kernels.lua)
do
  local C = require "tests.ops.cpu_fast"
  local F, same, both, on_threads, close = C.F, C.same, C.both, C.on_threads, C.close
  test("Adam, AdamW and AMSGrad on f32 (threaded kernel) follow the f64 update and do not depend on threads", function()
    local n = 300007 -- above the threading threshold, and not a multiple of any vector width
    local variants = {{sg.optim.adam, {lr = 1e-2, weight_decay = 0.1}}, {sg.optim.adamw, {lr = 1e-2}},
                      {sg.optim.adam, {lr = 1e-2, amsgrad = true, betas = {0.8, 0.9}}}}
    for vi, v in ipairs(variants) do
      local function run(dt, threads)
        F._threads(threads)
        sg.manual_seed(50 + vi)
        local p = sg.randn({n}, dt):requires_grad()
        local opt = v[1]({p}, v[2])
        for _ = 1, 4 do
          opt:zero_grad()
          local loss = (p * p):sum() * 0.5 + p:sum()
          loss:backward()
          opt:step()
        end
        return p:detach()
      end
      local t0 = F._threads()
      local a, b, c = run("f32", 1), run("f32", 3), run("f64", 1)
      F._threads(t0)
      same(a, b, "variant " .. vi .. " on 1 and 3 threads")
      check.near(a, c, 1e-6, 1e-5, "variant " .. vi .. " f32 against f64")
    end
  end)
end
