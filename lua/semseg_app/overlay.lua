-- Overlays of a prediction on its image, for looking at results.
--
--   compose(image, pred, truth_or_nil [, opts]) -> 3 x H x W u8
--   write(image, pred, truth_or_nil, path [, opts])  writes it as an RGB PNG
--
-- image: H x W, 1 x H x W or 3 x H x W of any dtype (shown in gray, stretched to its own min..max);
-- pred and truth: H x W class ids. Class 0 is left untinted; classes 1, 2, ... are tinted green, blue,
-- yellow, cyan, orange, violet, ... With a truth mask, wrong pixels are painted over: red where the
-- truth is class 0 (a false detection), magenta elsewhere (a missed or confused class).
-- opts: alpha = 0.35 (class tint), error_alpha = 0.7, colors = {{r, g, b}, ...} (class 1 first).
local core = require "semseg.core"
local util = require "semseg.util"

local M = {}

M.colors = {
  {0, 200, 0}, {30, 110, 255}, {255, 210, 0}, {0, 220, 220}, {255, 140, 0}, {150, 80, 255},
  {140, 255, 120}, {120, 200, 255}, {200, 160, 90}, {255, 255, 160},
}
M.false_positive = {255, 0, 0}
M.wrong = {255, 0, 255}

local is_tensor = util.is_tensor

local function fail(fmt, ...) error("overlay: " .. string.format(fmt, ...), 3) end

local function shape_str(t) return "[" .. table.concat(t.shape, ",") .. "]" end

local function as_mask(t, what, H, W)
  if not is_tensor(t) then fail("%s must be a tensor of class ids (got %s)", what, type(t)) end
  if t:dim() == 3 and t.shape[1] == 1 then t = t[1] end
  if t:dim() ~= 2 then fail("%s must be H x W class ids (got shape %s)", what, shape_str(t)) end
  if H and (t.shape[1] ~= H or t.shape[2] ~= W) then
    fail("%s is %dx%d but the image is %dx%d", what, t.shape[1], t.shape[2], H, W)
  end
  return t:to("i64")
end

-- the image as f32 gray 1 x H x W in 0..255
local function gray(image)
  if not is_tensor(image) then fail("image must be a tensor (got %s)", type(image)) end
  local g = image:to("f32")
  if g:dim() == 2 then g = g:unsqueeze(1) end
  if g:dim() ~= 3 or (g.shape[1] ~= 1 and g.shape[1] ~= 3 and g.shape[1] ~= 4) then
    fail("image must be H x W or C x H x W with 1, 3 or 4 channels (got shape %s)", shape_str(image))
  end
  if g.shape[1] > 1 then g = g:narrow(1, 1, 3):mean(1, true) end
  local lo, hi = g:amin():item(), g:amax():item()
  if hi > lo then g = (g - lo) * (255 / (hi - lo)) else g = g * 0 + (lo > 0 and 255 or 0) end
  return g
end

-- a (n+1) x 3 f32 table: row c+1 is class c's colour (class 0 black; unused)
local function palette(n, colors)
  local rows = {{0, 0, 0}}
  for c = 1, n do rows[c + 1] = colors[(c - 1) % #colors + 1] end
  return core.tensor(rows, "f32")
end

function M.compose(image, pred, truth, opts)
  opts = util.check_options(opts or {}, {"alpha", "error_alpha", "colors"}, "overlay.compose")
  local g = gray(image)
  local H, W = g.shape[2], g.shape[3]
  pred = as_mask(pred, "pred", H, W)
  if truth ~= nil then truth = as_mask(truth, "truth", H, W) end
  if pred:numel() > 0 and pred:amin():item() < 0 then fail("pred holds negative class ids") end
  local alpha, ealpha = opts.alpha or 0.35, opts.error_alpha or 0.7
  local colors = opts.colors or M.colors
  local n = pred:numel() > 0 and pred:amax():item() or 0
  -- colour per pixel (3 x H x W) and its weight (1 x H x W)
  local col = palette(n, colors):index_select(1, pred:flatten()):reshape{H, W, 3}:permute{3, 1, 2}
  local a = pred:gt(0):to("f32"):unsqueeze(1) * alpha
  if truth then
    local wrong = pred:ne(truth)
    local fp = wrong * truth:eq(0)
    local function paint(mask, rgb)
      local m = mask:unsqueeze(1)
      col = core.where(m, core.tensor(rgb, "f32"):reshape{3, 1, 1}, col)
      a = core.where(m, core.tensor(ealpha, "f32"), a)
    end
    paint(wrong, M.wrong)
    paint(fp, M.false_positive)
  end
  local rgb = g * (1 - a) + col * a
  return (rgb:clamp(0, 255) + 0.5):to("u8"):contiguous()
end

function M.write(image, pred, truth, path, opts)
  if type(path) ~= "string" then fail("path must be a string (got %s)", type(path)) end
  local rgb = M.compose(image, pred, truth, opts)
  core.io.write_png(path, rgb)
  return rgb
end

return M
