-- sg.plot: line plots and image panels drawn into RGB u8 tensors (3 x H x W),
-- with a tiny built-in 5x7 bitmap font, written with sg.io.write_png.
--
--   sg.plot.lines{path = "curves.png", title = "loss", x = {1, 2, 3},
--                 series = {{name = "train", y = {...}}, {name = "val", y = {...}, x = {...}}},
--                 xlabel = "epoch", ylabel = "loss", width = 800, height = 480, ylim = {0, 1}}
--   sg.plot.grid{path = "panels.png", rows = {{img, truth, pred}, ...}, titles = {"image", ...}}
--   sg.plot.colorize(mask, nclasses) -> 3 x H x W u8 (class colours)
local core = require "semseg.core"
local util = require "semseg.util"

local M = {}

local function fail(op, fmt, ...) error("sg.plot." .. op .. ": " .. string.format(fmt, ...), 0) end

---------------------------------------------------------------- the font
-- 5x7 glyphs, one string of 7 rows of 5 cells each ('#' = ink); lower case draws as upper case.
local GLYPHS = {
  ["0"] = ".###. #...# #..## #.#.# ##..# #...# .###.", ["1"] = "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  ["2"] = ".###. #...# ....# ...#. ..#.. .#... #####", ["3"] = "####. ....# ....# .###. ....# ....# ####.",
  ["4"] = "...#. ..##. .#.#. #..#. ##### ...#. ...#.", ["5"] = "##### #.... ####. ....# ....# #...# .###.",
  ["6"] = "..##. .#... #.... ####. #...# #...# .###.", ["7"] = "##### ....# ...#. ..#.. .#... .#... .#...",
  ["8"] = ".###. #...# #...# .###. #...# #...# .###.", ["9"] = ".###. #...# #...# .#### ....# ...#. .##..",
  A = ".###. #...# #...# ##### #...# #...# #...#", B = "####. #...# #...# ####. #...# #...# ####.",
  C = ".###. #...# #.... #.... #.... #...# .###.", D = "####. #...# #...# #...# #...# #...# ####.",
  E = "##### #.... #.... ####. #.... #.... #####", F = "##### #.... #.... ####. #.... #.... #....",
  G = ".###. #...# #.... #.### #...# #...# .####", H = "#...# #...# #...# ##### #...# #...# #...#",
  I = ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", J = "..### ...#. ...#. ...#. ...#. #..#. .##..",
  K = "#...# #..#. #.#.. ##... #.#.. #..#. #...#", L = "#.... #.... #.... #.... #.... #.... #####",
  M = "#...# ##.## #.#.# #.#.# #...# #...# #...#", N = "#...# #...# ##..# #.#.# #..## #...# #...#",
  O = ".###. #...# #...# #...# #...# #...# .###.", P = "####. #...# #...# ####. #.... #.... #....",
  Q = ".###. #...# #...# #...# #.#.# #..#. .##.#", R = "####. #...# #...# ####. #.#.. #..#. #...#",
  S = ".#### #.... #.... .###. ....# ....# ####.", T = "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  U = "#...# #...# #...# #...# #...# #...# .###.", V = "#...# #...# #...# #...# #...# .#.#. ..#..",
  W = "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.", X = "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  Y = "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..", Z = "##### ....# ...#. ..#.. .#... #.... #####",
  ["."] = "..... ..... ..... ..... ..... .##.. .##..", [","] = "..... ..... ..... ..... .##.. ..#.. .#...",
  ["-"] = "..... ..... ..... .###. ..... ..... .....", ["+"] = "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  ["_"] = "..... ..... ..... ..... ..... ..... #####", [":"] = "..... .##.. .##.. ..... .##.. .##.. .....",
  ["/"] = "....# ....# ...#. ..#.. .#... #.... #....", ["("] = "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  [")"] = ".#... ..#.. ...#. ...#. ...#. ..#.. .#...", ["%"] = "##..# ##..# ...#. ..#.. .#... #..## #..##",
  ["="] = "..... ..... ##### ..... ##### ..... .....", ["?"] = ".###. #...# ....# ...#. ..#.. ..... ..#..",
  ["["] = ".###. .#... .#... .#... .#... .#... .###.", ["]"] = ".###. ...#. ...#. ...#. ...#. ...#. .###.",
  ["'"] = "..#.. ..#.. ..... ..... ..... ..... .....", ["*"] = "..... #.#.# .###. ##### .###. #.#.# .....",
  ["<"] = "...#. ..#.. .#... #.... .#... ..#.. ...#.", [">"] = ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
  ["!"] = "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..", ["#"] = ".#.#. ##### .#.#. .#.#. .#.#. ##### .#.#.",
  [" "] = "..... ..... ..... ..... ..... ..... .....",
}
-- decoded: GLYPH[ch] = list of {col, row} ink cells (0-based)
local GLYPH = {}
for ch, rows in pairs(GLYPHS) do
  local cells, r = {}, 0
  for row in rows:gmatch("%S+") do
    assert(#row == 5, "plot font: glyph " .. ch .. " has a row of " .. #row .. " cells")
    for c = 1, 5 do if row:sub(c, c) == "#" then cells[#cells + 1] = {c - 1, r} end end
    r = r + 1
  end
  assert(r == 7, "plot font: glyph " .. ch .. " has " .. r .. " rows")
  GLYPH[ch] = cells
end
M.GLYPHS = GLYPHS

---------------------------------------------------------------- the canvas
local Canvas = {}
Canvas.__index = Canvas
M.Canvas = Canvas

local function rgb(c) return c[1], c[2], c[3] end

-- M.canvas(w, h, bg) -> a blank canvas (three planes of bytes, row-major)
function M.canvas(w, h, bg)
  if math.type(w) ~= "integer" or math.type(h) ~= "integer" or w < 1 or h < 1 then
    fail("canvas", "width and height must be positive integers (got %s, %s)", tostring(w), tostring(h))
  end
  bg = bg or {255, 255, 255}
  local r, g, b = {}, {}, {}
  local br, bgc, bb = rgb(bg)
  for i = 1, w * h do r[i], g[i], b[i] = br, bgc, bb end
  return setmetatable({w = w, h = h, r = r, g = g, b = b}, Canvas)
end

-- pixel (x, y), 0-based; outside the canvas is ignored
function Canvas:set(x, y, c)
  x, y = math.floor(x), math.floor(y)
  if x < 0 or y < 0 or x >= self.w or y >= self.h then return end
  local i = y * self.w + x + 1
  self.r[i], self.g[i], self.b[i] = c[1], c[2], c[3]
end

function Canvas:get(x, y)
  local i = y * self.w + x + 1
  return {self.r[i], self.g[i], self.b[i]}
end

function Canvas:rect(x0, y0, x1, y1, c)
  x0, y0 = math.max(0, math.floor(x0)), math.max(0, math.floor(y0))
  x1, y1 = math.min(self.w - 1, math.floor(x1)), math.min(self.h - 1, math.floor(y1))
  local R, G, B = self.r, self.g, self.b
  for y = y0, y1 do
    local base = y * self.w + 1
    for x = x0, x1 do
      local i = base + x
      R[i], G[i], B[i] = c[1], c[2], c[3]
    end
  end
end

function Canvas:frame(x0, y0, x1, y1, c)
  self:rect(x0, y0, x1, y0, c); self:rect(x0, y1, x1, y1, c)
  self:rect(x0, y0, x0, y1, c); self:rect(x1, y0, x1, y1, c)
end

-- a straight line of the given thickness (Bresenham, square pen)
function Canvas:line(x0, y0, x1, y1, c, thick)
  thick = thick or 1
  x0, y0, x1, y1 = math.floor(x0 + 0.5), math.floor(y0 + 0.5), math.floor(x1 + 0.5), math.floor(y1 + 0.5)
  local dx, dy = math.abs(x1 - x0), -math.abs(y1 - y0)
  local sx, sy = x0 < x1 and 1 or -1, y0 < y1 and 1 or -1
  local err = dx + dy
  local lo = -((thick - 1) // 2)
  local hi = lo + thick - 1
  local guard = 0
  while true do
    if thick == 1 then self:set(x0, y0, c) else self:rect(x0 + lo, y0 + lo, x0 + hi, y0 + hi, c) end
    if x0 == x1 and y0 == y1 then break end
    local e2 = 2 * err
    if e2 >= dy then err = err + dy; x0 = x0 + sx end
    if e2 <= dx then err = err + dx; y0 = y0 + sy end
    guard = guard + 1
    if guard > 100000 then break end
  end
end

-- width in pixels of text at this scale
function M.text_width(s, scale)
  scale = scale or 1
  local n = utf8.len(s) or #s
  return n == 0 and 0 or (n * 6 - 1) * scale
end
local TEXT_H = 7

-- text with its top-left corner at (x, y); vertical = true writes bottom to top
function Canvas:text(x, y, s, c, scale, vertical)
  scale = scale or 1
  c = c or {0, 0, 0}
  local k = 0
  for _, code in utf8.codes(tostring(s)) do
    local ch = code < 128 and string.char(code):upper() or "?"
    local cells = GLYPH[ch] or GLYPH["?"]
    for _, cell in ipairs(cells) do
      local cx, cy = k * 6 + cell[1], cell[2]
      if vertical then
        -- rotated 90 degrees counter-clockwise: text runs upwards from (x, y)
        local px, py = x + cy * scale, y - (cx + 1) * scale + 1
        self:rect(px, py, px + scale - 1, py + scale - 1, c)
      else
        local px, py = x + cx * scale, y + cy * scale
        self:rect(px, py, px + scale - 1, py + scale - 1, c)
      end
    end
    k = k + 1
  end
end

-- copies a 3 x h x w (or 1 x h x w, or h x w) u8 tensor with its top-left corner at (x, y)
function Canvas:blit(t, x, y)
  local rgbT = M.to_rgb(t)
  local h, w = rgbT.shape[2], rgbT.shape[3]
  local bytes = rgbT:contiguous():to_bytes()
  local plane = h * w
  local R, G, B = self.r, self.g, self.b
  local byte = string.byte
  for yy = 0, h - 1 do
    local ty = y + yy
    if ty >= 0 and ty < self.h then
      local src = yy * w
      local dst = ty * self.w + x + 1
      for xx = 0, w - 1 do
        local tx = x + xx
        if tx >= 0 and tx < self.w then
          local s = src + xx + 1
          R[dst + xx], G[dst + xx], B[dst + xx] = byte(bytes, s), byte(bytes, plane + s), byte(bytes, 2 * plane + s)
        end
      end
    end
  end
end

-- the canvas as a 3 x H x W u8 tensor
function Canvas:tensor()
  local parts, char, unpack = {}, string.char, table.unpack
  for _, plane in ipairs{self.r, self.g, self.b} do
    local n = #plane
    for i = 1, n, 4000 do parts[#parts + 1] = char(unpack(plane, i, math.min(n, i + 3999))) end
  end
  return core.from_bytes(table.concat(parts), "u8", {3, self.h, self.w})
end

function Canvas:write(path)
  local t = self:tensor()
  core.io.write_png(path, t)
  return t
end

---------------------------------------------------------------- colours and images
M.palette = {
  {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
  {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
}
-- class colours for masks: background black, then distinct colours
M.class_colors = {
  {0, 0, 0}, {255, 255, 255}, {230, 25, 75}, {60, 180, 75}, {255, 225, 25}, {0, 130, 200},
  {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, {240, 50, 230},
}

-- any image-like tensor -> 3 x H x W u8: u8 as is; floats in [0, 1] scaled by 255; H x W allowed
function M.to_rgb(t)
  if type(t) ~= "userdata" then fail("to_rgb", "expected a tensor (got %s)", type(t)) end
  if t.ndim == 2 then t = t:unsqueeze(1) end
  if t.ndim ~= 3 or (t.shape[1] ~= 1 and t.shape[1] ~= 3) then
    fail("to_rgb", "expected an image 1xHxW, 3xHxW or HxW (got shape [%s])", table.concat(t.shape, ","))
  end
  if t.dtype ~= "u8" then
    if t.dtype == "f32" or t.dtype == "f64" or t.dtype == "f16" or t.dtype == "bf16" then
      t = (t:to("f32") * 255 + 0.5):clamp(0, 255):to("u8")
    else
      t = t:clamp(0, 255):to("u8")
    end
  end
  if t.shape[1] == 1 then t = t:repeat_tensor({3, 1, 1}) end
  return t:contiguous()
end

-- class ids (H x W or 1 x H x W, integer) -> 3 x H x W u8 in the class colours
function M.colorize(mask, nclasses, colors)
  colors = colors or M.class_colors
  if mask.ndim == 3 then mask = mask[1] end
  if mask.ndim ~= 2 then fail("colorize", "expected an H x W mask (got %d dims)", mask.ndim) end
  nclasses = nclasses or (mask:max():item() + 1)
  local h, w = mask.shape[1], mask.shape[2]
  local out = core.zeros({3, h, w}, "f32")
  local m = mask:to("i64")
  for c = 0, nclasses - 1 do
    local col = colors[c % #colors + 1]
    local sel = m:eq(c):to("f32"):unsqueeze(1)
    out = out + sel * core.tensor({col[1], col[2], col[3]}):reshape({3, 1, 1})
  end
  return out:clamp(0, 255):to("u8")
end

---------------------------------------------------------------- ticks and numbers
-- "nice" step near span / n: 1, 2 or 5 times a power of ten
local function nice_step(span, n)
  local raw = span / n
  local p = 10 ^ math.floor(math.log(raw, 10))
  local f = raw / p
  local m = f < 1.5 and 1 or f < 3.5 and 2 or f < 7.5 and 5 or 10
  return m * p
end
M.nice_step = nice_step

-- tick values covering [lo, hi]
function M.ticks(lo, hi, n)
  n = n or 5
  if hi <= lo then hi = lo + 1 end
  local step = nice_step(hi - lo, n)
  local t = {}
  local first = math.ceil(lo / step - 1e-9)
  local last = math.floor(hi / step + 1e-9)
  for k = first, last do t[#t + 1] = k * step end
  return t, step
end

-- a tick label with as many decimals as the step needs
function M.format_tick(v, step)
  if v ~= v then return "nan" end
  local a = math.abs(v)
  if a ~= 0 and (a >= 1e6 or a < 1e-4) or (step and step < 1e-4) then
    local s = string.format("%.2g", v)
    return (s:gsub("e%+?(%-?)0*(%d)", "e%1%2"))
  end
  local dec = 0
  if step and step < 1 then dec = math.max(0, math.ceil(-math.log(step, 10) - 1e-9)) end
  local s = string.format("%." .. dec .. "f", v)
  if s:match("^%-0%.?0*$") then s = s:sub(2) end
  return s
end

---------------------------------------------------------------- line plots
local function numbers(op, what, t)
  if type(t) ~= "table" then fail(op, "%s must be a list of numbers", what) end
  local n = 0
  for k in pairs(t) do if math.type(k) == "integer" and k > n then n = k end end
  return n
end

local function is_num(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

-- sg.plot.lines{...} -> the image as a 3 x H x W u8 tensor (written to path when given)
function M.lines(o)
  local op = "lines"
  util.check_options(o, {"path", "title", "x", "series", "xlabel", "ylabel", "width", "height", "ylim", "xlim",
    "legend"}, "sg.plot." .. op)
  local series = o.series
  if type(series) ~= "table" or #series == 0 then fail(op, "series must be a non-empty list of {name =, y =}") end
  local W, H = o.width or 800, o.height or 480
  -- data range
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  local prepared = {}
  for i, s in ipairs(series) do
    if type(s) ~= "table" or type(s.y) ~= "table" then fail(op, "series %d needs y = {numbers}", i) end
    local ny = numbers(op, "series " .. i .. " y", s.y)
    local xs = s.x or o.x
    local pts = {}
    for k = 1, ny do
      local xv = k
      if xs then xv = xs[k] end
      if xs and xv == nil then fail(op, "series %d has %d y values but only %d x values", i, ny, #xs) end
      local yv = s.y[k]
      if is_num(yv) and is_num(xv) then
        pts[#pts + 1] = {xv, yv}
        xmin, xmax = math.min(xmin, xv), math.max(xmax, xv)
        ymin, ymax = math.min(ymin, yv), math.max(ymax, yv)
      else
        pts[#pts + 1] = false -- a gap
      end
    end
    prepared[i] = {name = s.name or ("series " .. i), color = s.color or M.palette[(i - 1) % #M.palette + 1],
      pts = pts}
  end
  if xmin == math.huge then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
  if o.xlim then xmin, xmax = o.xlim[1], o.xlim[2] end
  if o.ylim then
    ymin, ymax = o.ylim[1], o.ylim[2]
  else
    local pad = (ymax - ymin) * 0.05
    if pad == 0 then pad = math.max(math.abs(ymax) * 0.1, 0.5) end
    ymin, ymax = ymin - pad, ymax + pad
  end
  if xmax <= xmin then xmin, xmax = xmin - 0.5, xmax + 0.5 end
  local yt, ystep = M.ticks(ymin, ymax, math.max(3, H // 90))
  local xt, xstep = M.ticks(xmin, xmax, math.max(3, W // 110))
  if not o.ylim then ymin, ymax = math.min(ymin, yt[1]), math.max(ymax, yt[#yt]) end
  -- layout
  local ylabels = {}
  local lw = 0
  for k, v in ipairs(yt) do
    ylabels[k] = M.format_tick(v, ystep)
    lw = math.max(lw, M.text_width(ylabels[k], 2))
  end
  local left = 16 + lw + 10 + (o.ylabel and 22 or 0)
  local top = o.title and 44 or 16
  local right, bottom = 24, 40 + (o.xlabel and 26 or 0)
  local px0, py0, px1, py1 = left, top, W - right, H - bottom
  if px1 - px0 < 40 or py1 - py0 < 40 then fail(op, "the image (%dx%d) is too small for the plot", W, H) end
  local cv = M.canvas(W, H)
  local function X(v) return px0 + (v - xmin) / (xmax - xmin) * (px1 - px0) end
  local function Y(v) return py1 - (v - ymin) / (ymax - ymin) * (py1 - py0) end
  local grid, ink = {225, 225, 225}, {0, 0, 0}
  -- grid and ticks
  for k, v in ipairs(yt) do
    local y = math.floor(Y(v) + 0.5)
    if y >= py0 and y <= py1 then
      cv:rect(px0, y, px1, y, grid)
      cv:rect(px0 - 6, y, px0, y, ink)
      local s = ylabels[k]
      cv:text(px0 - 10 - M.text_width(s, 2), y - TEXT_H, s, ink, 2)
    end
  end
  for _, v in ipairs(xt) do
    local x = math.floor(X(v) + 0.5)
    if x >= px0 and x <= px1 then
      cv:rect(x, py0, x, py1, grid)
      cv:rect(x, py1, x, py1 + 6, ink)
      local s = M.format_tick(v, xstep)
      cv:text(x - M.text_width(s, 2) // 2, py1 + 12, s, ink, 2)
    end
  end
  -- series, clipped to the plot area
  for _, s in ipairs(prepared) do
    local prev
    local single = 0
    for _, p in ipairs(s.pts) do if p then single = single + 1 end end
    for _, p in ipairs(s.pts) do
      if p then
        local x, y = X(p[1]), Y(p[2])
        local inside = x >= px0 and x <= px1 and y >= py0 and y <= py1
        if prev and inside and prev.inside then cv:line(prev.x, prev.y, x, y, s.color, 3) end
        if inside and (single <= 40) then cv:rect(x - 2, y - 2, x + 2, y + 2, s.color) end
        prev = {x = x, y = y, inside = inside}
      else
        prev = nil
      end
    end
  end
  -- axes
  cv:frame(px0, py0, px1, py1, ink)
  -- title and labels
  if o.title then cv:text((W - M.text_width(o.title, 3)) // 2, 12, o.title, ink, 3) end
  if o.xlabel then
    cv:text((px0 + px1 - M.text_width(o.xlabel, 2)) // 2, H - 24, o.xlabel, ink, 2)
  end
  if o.ylabel then
    cv:text(10, (py0 + py1 + M.text_width(o.ylabel, 2)) // 2, o.ylabel, ink, 2, true)
  end
  -- legend (top right inside the plot)
  if o.legend ~= false then
    local lwid = 0
    for _, s in ipairs(prepared) do lwid = math.max(lwid, M.text_width(s.name, 2)) end
    local bw, bh = lwid + 52, #prepared * 22 + 10
    local bx1, by0 = px1 - 8, py0 + 8
    local bx0 = bx1 - bw
    cv:rect(bx0, by0, bx1, by0 + bh, {255, 255, 255})
    cv:frame(bx0, by0, bx1, by0 + bh, {160, 160, 160})
    for i, s in ipairs(prepared) do
      local y = by0 + 6 + (i - 1) * 22
      cv:rect(bx0 + 8, y + 6, bx0 + 36, y + 8, s.color)
      cv:text(bx0 + 44, y, s.name, ink, 2)
    end
  end
  if o.path then return cv:write(o.path) end
  return cv:tensor()
end

---------------------------------------------------------------- image grids
-- sg.plot.grid{path =, rows = {{tensor, ...}, ...}, titles = {"column", ...}, row_titles = {...}, gap = 6}
-- every cell an image tensor (see to_rgb) of the same height and width
function M.grid(o)
  local op = "grid"
  if type(o) ~= "table" or type(o.rows) ~= "table" or #o.rows == 0 then fail(op, "rows must be a list of lists of images") end
  local gap = o.gap or 6
  local ch, cw
  local ncols = 0
  for r, row in ipairs(o.rows) do
    if type(row) ~= "table" or #row == 0 then fail(op, "row %d must be a non-empty list of images", r) end
    ncols = math.max(ncols, #row)
    for c, t in ipairs(row) do
      local img = M.to_rgb(t)
      row[c] = img
      local h, w = img.shape[2], img.shape[3]
      if not ch then ch, cw = h, w
      elseif h ~= ch or w ~= cw then
        fail(op, "cell %d,%d is %dx%d but the first cell is %dx%d (cells must be the same size)", r, c, h, w, ch, cw)
      end
    end
  end
  local scale = (cw >= 200) and 2 or 1
  local head = o.titles and (TEXT_H * scale + 12) or 0
  local rlw = 0
  if o.row_titles then
    for _, s in ipairs(o.row_titles) do rlw = math.max(rlw, M.text_width(s, scale)) end
    rlw = rlw + 12
  end
  local W = rlw + ncols * cw + (ncols + 1) * gap
  local H = head + #o.rows * ch + (#o.rows + 1) * gap
  local cv = M.canvas(W, H)
  if o.titles then
    for c, s in ipairs(o.titles) do
      local s2 = tostring(s)
      local tw = M.text_width(s2, scale)
      local x0 = rlw + gap + (c - 1) * (cw + gap)
      cv:text(x0 + math.max(0, (cw - tw) // 2), 6 + gap // 2, s2, {0, 0, 0}, scale)
    end
  end
  for r, row in ipairs(o.rows) do
    local y0 = head + gap + (r - 1) * (ch + gap)
    if o.row_titles and o.row_titles[r] then
      cv:text(6, y0 + ch // 2 - TEXT_H * scale // 2, tostring(o.row_titles[r]), {0, 0, 0}, scale)
    end
    for c, img in ipairs(row) do cv:blit(img, rlw + gap + (c - 1) * (cw + gap), y0) end
  end
  if o.path then return cv:write(o.path) end
  return cv:tensor()
end

return M
