-- The HTML report renders in a real browser: headless Chromium takes a screenshot of a
-- report written by sg.report.html, and the screenshot must show the page (not a blank one).
-- Skips when no chromium is installed (Debian: apt-get install chromium).
local plot = sg.plot or require "semseg_app.plot"
local report = sg.report or require "semseg_app.report"

local function find_chromium()
  for _, name in ipairs{"chromium", "chromium-browser", "google-chrome", "chrome"} do
    local p = io.popen("command -v " .. name .. " 2>/dev/null")
    local out = p:read("a")
    p:close()
    if out:match("%S") then return (out:gsub("%s+$", "")) end
  end
end

local function non_white(img)
  local c = img.shape[1]
  local w = img[1]:ge(250)
  for k = 2, math.min(c, 3) do w = w:logical_and(img[k]:ge(250)) end
  return img.shape[2] * img.shape[3] - w:count_nonzero():item()
end

test("report renders in headless chromium (not blank, image and table drawn)", function()
  local chromium = find_chromium()
  if not chromium then skip("chromium is not installed") end
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "/profile'"))
  local ok, err = pcall(function()
    local x, a, b = {}, {}, {}
    for i = 1, 15 do x[i], a[i], b[i] = i, 1 / i, 0.8 / i + 0.1 end
    plot.lines{path = dir .. "/curves.png", title = "loss", x = x, xlabel = "epoch", ylabel = "loss",
      series = {{name = "train", y = a}, {name = "val", y = b}}, width = 600, height = 360}
    local html = dir .. "/report.html"
    report.html{path = html, title = "Render test", sections = {
      {heading = "Metrics", text = "A table and a plot.",
       table = {header = {"model", "IoU"}, rows = {{"unet", 0.8}, {"attention_unet", 0.79}}}},
      {heading = "Curves", images = {{src = "curves.png", caption = "loss"}}}}}
    os.remove(dir .. "/curves.png") -- the report must not need it
    local shot = dir .. "/shot.png"
    local cmd = string.format("timeout 60 '%s' --headless --no-sandbox --disable-gpu --disable-background-networking "
      .. "--disable-component-update --disable-sync --no-first-run --user-data-dir='%s/profile' "
      .. "--screenshot='%s' --window-size=1200,900 'file://%s' >'%s/log.txt' 2>&1",
      chromium, dir, shot, html, dir)
    os.execute(cmd)
    local f = io.open(shot, "rb")
    if not f then
      local lf = io.open(dir .. "/log.txt")
      local log = lf and lf:read("a") or ""
      if lf then lf:close() end
      error("chromium wrote no screenshot; its output:\n" .. log:sub(-2000))
    end
    f:close()
    local img = sg.io.read_png(shot)
    check.eq(img.shape[2], 900, "screenshot height")
    check.eq(img.shape[3], 1200, "screenshot width")
    local n = non_white(img)
    -- text, table borders and the embedded plot: well beyond a few stray pixels
    check.truthy(n > 5000, "the screenshot has " .. n .. " non-white pixels")
    -- the plot's series colours appear (the embedded image was decoded and drawn)
    local c = plot.palette[1]
    local m = img[1]:eq(c[1]):logical_and(img[2]:eq(c[2])):logical_and(img[3]:eq(c[3])):count_nonzero():item()
    check.truthy(m > 200, "the embedded plot's first series shows (" .. m .. " pixels)")
  end)
  os.execute("rm -rf '" .. dir .. "'")
  if not ok then error(err, 0) end
end)
