-- random: rand, randn, randint on every backend draw bit for bit the reference's numbers for the same seed
-- (counter-based Philox: the numbers depend on neither threads nor device), in every dtype they accept,
-- and advance the generator the same way.
local B = require "tests.ops.backends"

local function draws(backend)
  return B.on(backend, function(dev)
    sg.manual_seed(1234)
    local out = {}
    for _, dt in ipairs{"f32", "f64", "f16", "bf16"} do
      out[#out + 1] = sg.rand({5, 7}, {dtype = dt, device = dev}):cpu():to("f64")
      out[#out + 1] = sg.randn({9}, {dtype = dt, device = dev}):cpu():to("f64")
    end
    for _, dt in ipairs{"i64", "i32", "u8"} do
      out[#out + 1] = sg.randint(-3 * (dt == "u8" and 0 or 1), 200, {6, 5}, {dtype = dt, device = dev}):cpu():to("f64")
    end
    out[#out + 1] = sg.rand({3}, {device = dev}):cpu():to("f64") -- after the others: the offsets advanced alike
    return out
  end)
end

test("random: every backend draws the reference's numbers, bit for bit", function()
  local want = draws("reference")
  for _, backend in ipairs(B.list()) do
    local got = draws(backend)
    for k = 1, #want do
      check.eq(got[k]:eq(want[k]):all():item(), true, "draw " .. k .. " on " .. backend)
    end
  end
end)

test("random: the reference's numbers are in range and look uniform / normal", function()
  local r = B.on("reference", function()
    sg.manual_seed(9)
    return {sg.rand{20000}, sg.randn{20000}, sg.randint(0, 10, {20000})}
  end)
  check.truthy(r[1]:min():item() >= 0 and r[1]:max():item() < 1, "rand in [0, 1)")
  check.near(r[1]:mean():item(), 0.5, 0.01, 0)
  check.near(r[2]:mean():item(), 0, 0.03, 0)
  check.near(r[2]:std():item(), 1, 0.03, 0)
  check.eq(r[3]:min():item(), 0)
  check.eq(r[3]:max():item(), 9)
end)
