-- amp: the GradScaler's unscale (gradients times 1/scale in place, found_inf set when a value was inf or
-- NaN) on every backend against the reference, in f32, f64, f16 and bf16.
local B = require "tests.ops.backends"

local function unscale(backend, specials)
  return B.on(backend, function(dev)
    sg.manual_seed(77)
    local gs = {}
    for i, dt in ipairs{"f32", "f64", "f16", "bf16"} do
      local g = (sg.randn({4, 6}) * 1000):to(dt)
      if specials and i == specials then g[{2, 3}] = specials == 1 and math.huge or 0 / 0 end
      gs[i] = g:to(dev)
    end
    local found = sg.zeros({1}, {device = dev})
    require("semseg.core").amp_core.unscale(gs, 1 / 512, found)
    local out = {found:cpu()}
    for i, g in ipairs(gs) do out[i + 1] = g:cpu():to("f64") end
    return out
  end)
end

test("amp: unscale on every backend matches the reference (finite, inf, NaN)", function()
  for _, specials in ipairs{false, 1, 2} do
    local want = unscale("reference", specials)
    check.eq(want[1]:item(), specials and 1 or 0, "reference found_inf")
    for _, backend in ipairs(B.list()) do
      local got = unscale(backend, specials)
      check.eq(got[1]:item(), want[1]:item(), "found_inf on " .. backend)
      for k = 2, #want do
        local same = got[k]:eq(want[k]):float() + got[k]:ne(got[k]):float() * want[k]:ne(want[k]):float()
        check.eq(same:gt(0):all():item(), true, "gradient " .. (k - 1) .. " on " .. backend)
      end
    end
  end
end)
