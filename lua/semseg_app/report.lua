-- sg.report: a self-contained HTML report (images embedded as base64 data URIs,
-- no scripts, no network, no neighbour files), written atomically.
--
--   sg.report.html{path = "run/report.html", title = "U-Net comparison", subtitle = "...",
--     sections = {{heading = "Metrics", text = "paragraphs\n\nseparated by blank lines",
--                  table = {header = {"model", "IoU"}, rows = {{"unet", 0.81}}, caption = "..."},
--                  pre = "preformatted text", images = {{src = "curves.png", caption = "loss"}}}}}
local core = require "semseg.core"

local M = {}

local function fail(fmt, ...) error("sg.report.html: " .. string.format(fmt, ...), 0) end

-- HTML-escapes text
function M.escape(s)
  s = tostring(s)
  return (s:gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}))
end
local esc = M.escape

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64C = {}
for i = 1, 64 do B64C[i - 1] = B64:sub(i, i) end

-- standard base64 with padding
function M.base64(s)
  local out, n = {}, #s
  local byte = string.byte
  for i = 1, n - 2, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = B64C[v >> 18] .. B64C[v >> 12 & 63] .. B64C[v >> 6 & 63] .. B64C[v & 63]
  end
  local rem = n % 3
  if rem == 1 then
    local v = byte(s, n) << 16
    out[#out + 1] = B64C[v >> 18] .. B64C[v >> 12 & 63] .. "=="
  elseif rem == 2 then
    local a, b = byte(s, n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = B64C[v >> 18] .. B64C[v >> 12 & 63] .. B64C[v >> 6 & 63] .. "="
  end
  return table.concat(out)
end

local MIME = {png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif", svg = "image/svg+xml",
  webp = "image/webp"}

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end

local function read_all(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- numbers in tables: integers as they are, others with 4 significant decimals
function M.cell(v)
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v then return "nan" end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    local a = math.abs(v)
    if a ~= 0 and (a < 1e-3 or a >= 1e6) then return string.format("%.3e", v) end
    return string.format("%.4f", v)
  end
  if v == nil then return "" end
  return tostring(v)
end

local CSS = [[
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;background:#fff;padding:0 1em;line-height:1.45}
h1{border-bottom:2px solid #1f77b4;padding-bottom:.2em}
h2{margin-top:1.6em;color:#1f4e79}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#eef3f8}
td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafafa}
caption{caption-side:bottom;font-size:.85em;color:#555;padding-top:.3em}
figure{display:inline-block;margin:.8em 1em .8em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
.sub{color:#666}
]]

local function image_html(img, base, si, ii)
  if type(img) == "string" then img = {src = img} end
  if type(img) ~= "table" or (img.src == nil and img.data == nil) then
    fail("section %d image %d needs src = \"file.png\" (or data = bytes)", si, ii)
  end
  local data, ext = img.data, img.mime
  if not data then
    data = read_all(img.src)
    if not data and img.src:sub(1, 1) ~= "/" then data = read_all(base .. "/" .. img.src) end
    if not data then fail("section %d: cannot read image %s", si, tostring(img.src)) end
  end
  if not ext then
    local e = img.src and img.src:match("%.([%w]+)$")
    ext = MIME[(e or "png"):lower()]
    if not ext then fail("section %d: unknown image type of %s", si, tostring(img.src)) end
  end
  local alt = img.alt or img.caption or img.src or "image"
  local parts = {"<figure><img alt=\"", esc(alt), "\" src=\"data:", ext, ";base64,", M.base64(data), "\"",
    img.width and (" width=\"" .. math.floor(img.width) .. "\"") or "", ">"}
  if img.caption then parts[#parts + 1] = "<figcaption>" .. esc(img.caption) .. "</figcaption>" end
  parts[#parts + 1] = "</figure>\n"
  return table.concat(parts)
end

local function table_html(t, si)
  if type(t) ~= "table" or type(t.rows) ~= "table" then fail("section %d: table needs rows = {{...}, ...}", si) end
  local out = {"<table>\n"}
  if t.caption then out[#out + 1] = "<caption>" .. esc(t.caption) .. "</caption>\n" end
  if t.header then
    out[#out + 1] = "<thead><tr>"
    for _, h in ipairs(t.header) do out[#out + 1] = "<th>" .. esc(h) .. "</th>" end
    out[#out + 1] = "</tr></thead>\n"
  end
  out[#out + 1] = "<tbody>\n"
  for ri, row in ipairs(t.rows) do
    if type(row) ~= "table" then fail("section %d: table row %d is not a list", si, ri) end
    out[#out + 1] = "<tr>"
    local n = t.header and #t.header or #row
    for c = 1, math.max(n, #row) do out[#out + 1] = "<td>" .. esc(M.cell(row[c])) .. "</td>" end
    out[#out + 1] = "</tr>\n"
  end
  out[#out + 1] = "</tbody></table>\n"
  return table.concat(out)
end

-- the HTML text of a report (see the header comment)
function M.render(o)
  if type(o) ~= "table" then fail("expected a table of options") end
  local base = o.base or (o.path and dirname(o.path)) or "."
  local title = o.title or "Report"
  local out = {"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<title>", esc(title), "</title>\n<style>\n", CSS, "</style>\n</head>\n<body>\n",
    "<h1>", esc(title), "</h1>\n"}
  if o.subtitle then out[#out + 1] = "<p class=\"sub\">" .. esc(o.subtitle) .. "</p>\n" end
  for si, s in ipairs(o.sections or {}) do
    if type(s) ~= "table" then fail("section %d is not a table", si) end
    out[#out + 1] = "<section>\n"
    if s.heading then out[#out + 1] = "<h2>" .. esc(s.heading) .. "</h2>\n" end
    if s.text then
      for para in (tostring(s.text) .. "\n\n"):gmatch("(.-)\n%s*\n") do
        if para:match("%S") then out[#out + 1] = "<p>" .. esc(para) .. "</p>\n" end
      end
    end
    if s.table then out[#out + 1] = table_html(s.table, si) end
    if s.tables then for _, t in ipairs(s.tables) do out[#out + 1] = table_html(t, si) end end
    if s.pre then out[#out + 1] = "<pre>" .. esc(s.pre) .. "</pre>\n" end
    if s.images then
      out[#out + 1] = "<div>\n"
      for ii, img in ipairs(s.images) do out[#out + 1] = image_html(img, base, si, ii) end
      out[#out + 1] = "</div>\n"
    end
    out[#out + 1] = "</section>\n"
  end
  out[#out + 1] = "<hr><p class=\"sub\">semseg " .. esc(o.version or (type(package.loaded.semseg) == "table" and package.loaded.semseg.version) or "") .. " &middot; " .. esc(os.date("%Y-%m-%d %H:%M"))
    .. "</p>\n</body>\n</html>\n"
  return table.concat(out)
end

-- sg.report.html{path =, ...}: writes the report; returns the path
function M.html(o)
  if type(o) ~= "table" then fail("expected a table of options") end
  if type(o.path) ~= "string" then fail("path must be the output file name") end
  local text = M.render(o)
  core.write_file_atomic(o.path, text)
  return o.path
end

return M
