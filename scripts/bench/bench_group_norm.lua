-- Forward + backward time of the fused group_norm / layer_norm C ops against
-- the composed versions (F.group_norm_reference / F.layer_norm_reference).
--   build/semseg run scripts/bench/bench_group_norm.lua [N C H W [groups [iters [dtype]]]]
-- defaults: x [8,64,128,128] f32, 32 groups, 5 timed iterations after one warm-up.
local sg = require "semseg"
local F = sg.F

local a = {}
for k = 1, 6 do a[k] = arg and tonumber(arg[k]) end
local N, C, H, W = a[1] or 8, a[2] or 64, a[3] or 128, a[4] or 128
local G, iters = a[5] or 32, a[6] or 5
local dt = arg and arg[7] or "f32"
local now = sg.clock

sg.manual_seed(1)
local x = (sg.randn({N, C, H, W}, dt) * 2 + 0.5):requires_grad()
local wt, bs = sg.randn({C}, dt):requires_grad(), sg.randn({C}, dt):requires_grad()
local lw, lb = sg.randn({W}, dt):requires_grad(), sg.randn({W}, dt):requires_grad()

local cases = {
  {"group_norm " .. G .. " groups", function() return F.group_norm(x, G, wt, bs) end,
    function() return F.group_norm_reference(x, G, wt, bs) end},
  {"instance norm (" .. C .. ")", function() return F.group_norm(x, C, wt, bs) end,
    function() return F.group_norm_reference(x, C, wt, bs) end},
  {"layer_norm last dim", function() return F.layer_norm(x, {W}, lw, lb) end,
    function() return F.layer_norm_reference(x, {W}, lw, lb) end},
}

local function time(fn)
  local tf, tb = 0, 0
  for it = 0, iters do
    x.grad, wt.grad, bs.grad, lw.grad, lb.grad = nil, nil, nil, nil, nil
    collectgarbage()
    local t0 = now()
    local y = fn()
    local t1 = now()
    local gy = sg.ones(y.shape, dt)
    local t2 = now()
    y:backward(gy)
    local t3 = now()
    if it > 0 then tf, tb = tf + (t1 - t0), tb + (t3 - t2) end
  end
  return tf / iters, tb / iters
end

print(string.format("x [%d,%d,%d,%d] %s, %d iterations (mean ms)", N, C, H, W, dt, iters))
print(string.format("%-24s %-8s %9s %9s %9s", "op", "path", "forward", "backward", "total"))
for _, c in ipairs(cases) do
  local ff, fb = time(c[2])
  local rf, rb = time(c[3])
  print(string.format("%-24s %-8s %9.2f %9.2f %9.2f", c[1], "fused", ff * 1e3, fb * 1e3, (ff + fb) * 1e3))
  print(string.format("%-24s %-8s %9.2f %9.2f %9.2f", "", "composed", rf * 1e3, rb * 1e3, (rf + rb) * 1e3))
  print(string.format("%-24s speedup  %8.1fx %8.1fx %8.1fx", "", rf / ff, rb / fb, (rf + rb) / (ff + fb)))
end
