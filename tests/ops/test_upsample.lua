-- upsample (nearest, bilinear, align_corners; size or scale factor): every
-- backend against the reference, forward and backward, and the reference's
-- gradient against finite differences.
local B = require "tests.ops.backends"
local F = sg.F

local cases = {
  {"nearest 2x", {2, 3, 5, 7}, {scale = 2, mode = "nearest"}},
  {"nearest to a size", {1, 2, 5, 6}, {size = {7, 13}, mode = "nearest"}},
  {"nearest down", {1, 2, 9, 8}, {size = {4, 3}, mode = "nearest"}},
  {"bilinear 2x", {2, 3, 5, 7}, {scale = 2, mode = "bilinear"}},
  {"bilinear align_corners", {1, 2, 4, 6}, {size = {9, 11}, mode = "bilinear", align_corners = true}},
  {"bilinear fractional scale", {1, 1, 6, 5}, {scale = 1.7, mode = "bilinear"}},
  {"bilinear to 1x1", {1, 2, 3, 3}, {size = {1, 1}, mode = "bilinear"}},
}

test("upsample: every backend matches the reference (f32 and f64, forward and backward)", function()
  sg.manual_seed(11)
  for _, c in ipairs(cases) do
    for _, dt in ipairs{"f32", "f64"} do
      local x = sg.randn(c[2], dt)
      B.compare(c[1] .. " " .. dt, function(t) return F.upsample(t, c[3]) end, {x})
    end
  end
end)

test("upsample: nearest copies exactly, also inf and NaN", function()
  local x = sg.tensor{{{{1, math.huge}, {0 / 0, -math.huge}}}}
  B.compare("nearest specials", function(t) return F.upsample(t, {scale = 2, mode = "nearest"}) end, {x},
    {exact = true})
end)

test("upsample: reference gradients against finite differences", function()
  sg.manual_seed(12)
  for _, c in ipairs(cases) do
    local x = sg.randn(c[2], "f64")
    B.gradcheck(c[1], function(t) return F.upsample(t, c[3]) end, {x})
  end
end)
