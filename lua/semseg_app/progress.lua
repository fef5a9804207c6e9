-- Progress display for training loops.
--
--   local progress = require "semseg_app.progress"
--   local bar = progress.new{title = "epoch 3/20", total = 40}       -- total steps (nil when unknown)
--   for step = 1, 40 do ...; bar:update(step, {samples = 8, values = {loss = l}}) end
--   bar:finish{loss = 0.31, val_loss = 0.35, val_iou = 0.71}         -- the epoch's summary line
--
-- On a terminal the bar redraws one line in place (\r) at most every 0.1 s:
--   epoch 3/20 [=========>          ] 19/40  0:12<0:13  52.1 samples/s  loss 0.4123
-- (elapsed<remaining, the running mean of each value). Anywhere else (a file, a pipe, a CI log) it prints
-- plain lines: one per `every` steps when every > 0, and the summary line at the end.
-- The terminal test is isatty() on the stream's descriptor (stdout 1, stderr 2); SEMSEG_PROGRESS=plain or
-- =tty overrides it, and without the C helper the output is plain.
local core = require "semseg.core"
local M = {}

local Bar = {}
Bar.__index = Bar
M.Bar = Bar

local function clock() return core.clock and core.clock() or os.clock() end

-- hh:mm:ss or m:ss
function M.format_time(s)
  if s == nil or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local h, m, sec = s // 3600, (s % 3600) // 60, s % 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, sec) end
  return string.format("%d:%02d", m, sec)
end

-- a number as a short string: 4 significant digits, lr-like values in e-notation
function M.format_value(v)
  if type(v) ~= "number" then return tostring(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v then return "nan" end
  local a = math.abs(v)
  if a ~= 0 and (a < 1e-3 or a >= 1e5) then return string.format("%.3e", v) end
  return string.format("%.4f", v)
end

-- whether `stream` (io.stdout / io.stderr) is a terminal
function M.is_tty(stream)
  local force = os.getenv("SEMSEG_PROGRESS")
  if force == "plain" then return false end
  if force == "tty" then return true end
  local mc = core.metrics_core
  if not (mc and mc.isatty) then return false end
  local fd = (stream == nil or stream == io.stdout) and 1 or (stream == io.stderr and 2 or nil)
  if not fd then return false end
  local term = os.getenv("TERM")
  if term == "dumb" then return false end
  return mc.isatty(fd)
end

-- new{title =, total =, stream = io.stdout, tty = auto, every = 0, width = terminal width or 100}
function M.new(o)
  o = o or {}
  local stream = o.stream or io.stdout
  local tty = o.tty
  if tty == nil then tty = M.is_tty(stream) end
  local width = o.width
  if not width and tty and core.metrics_core and core.metrics_core.term_width then
    width = core.metrics_core.term_width(stream == io.stderr and 2 or 1)
  end
  return setmetatable({title = o.title or "", total = o.total, stream = stream, tty = tty, every = o.every or 0,
    width = width or 100, start = clock(), last_draw = -1, samples = 0, step = 0, sums = {}, counts = {}, order = {},
    drawn = false}, Bar)
end

-- "name value  name value" in the order the names first came
local function values_text(order, get)
  local parts = {}
  for _, k in ipairs(order) do
    local v = get(k)
    if v ~= nil then parts[#parts + 1] = k .. " " .. M.format_value(v) end
  end
  return table.concat(parts, "  ")
end

function Bar:_line()
  local elapsed = clock() - self.start
  local rate = elapsed > 0 and self.samples / elapsed or 0
  local steps_rate = elapsed > 0 and self.step / elapsed or 0
  local head = self.title ~= "" and (self.title .. " ") or ""
  local count, eta
  if self.total then
    count = string.format("%d/%d", self.step, self.total)
    eta = steps_rate > 0 and (self.total - self.step) / steps_rate or nil
  else
    count = tostring(self.step)
  end
  local vals = values_text(self.order, function(k) return self.sums[k] / self.counts[k] end)
  local tail = string.format(" %s  %s<%s  %.1f samples/s%s", count, M.format_time(elapsed), M.format_time(eta), rate,
    vals ~= "" and ("  " .. vals) or "")
  if self.tty and self.total then
    local room = self.width - #head - #tail - 3
    if room >= 10 then
      local bar_w = math.min(room, 30)
      local filled = math.floor(bar_w * math.min(self.step / math.max(self.total, 1), 1))
      local bar = string.rep("=", filled) .. (filled < bar_w and ">" or "") .. string.rep(" ", bar_w - filled - 1)
      if filled >= bar_w then bar = string.rep("=", bar_w) end
      return head .. "[" .. bar .. "]" .. tail
    end
  end
  return head .. "step" .. tail
end

-- update(step, {samples = batch size, values = {name = number}}): values are averaged over the epoch
function Bar:update(step, o)
  o = o or {}
  self.step = step
  self.samples = self.samples + (o.samples or 0)
  for k, v in pairs(o.values or {}) do
    if type(v) == "number" and v == v then
      if not self.sums[k] then self.order[#self.order + 1] = k; self.sums[k], self.counts[k] = 0, 0 end
      self.sums[k], self.counts[k] = self.sums[k] + v, self.counts[k] + 1
    end
  end
  table.sort(self.order, function(a, b) if a == "loss" then return b ~= "loss" end; return b ~= "loss" and a < b end)
  if self.tty then
    local now = clock()
    if now - self.last_draw >= 0.1 or (self.total and step >= self.total) then
      self.last_draw = now
      local line = self:_line()
      if #line > self.width - 1 then line = line:sub(1, self.width - 1) end
      self.stream:write("\r", line, "\27[K")
      self.stream:flush()
      self.drawn = true
    end
  elseif self.every > 0 and step % self.every == 0 then
    self.stream:write(self:_line(), "\n")
    self.stream:flush()
  end
end

-- finish(summary values, keys in order): the closing line (replaces the bar on a terminal)
function Bar:finish(summary, keys)
  local elapsed = clock() - self.start
  local head = self.title ~= "" and (self.title .. "  ") or ""
  local parts = {}
  if summary then
    local order = keys
    if not order then
      order = {}
      for k, v in pairs(summary) do if type(v) == "number" then order[#order + 1] = k end end
      table.sort(order)
    end
    for _, k in ipairs(order) do
      if summary[k] ~= nil then parts[#parts + 1] = k .. " " .. M.format_value(summary[k]) end
    end
  end
  local rate = elapsed > 0 and self.samples / elapsed or 0
  local line = string.format("%s%s  %s  %.1f samples/s", head, table.concat(parts, "  "), M.format_time(elapsed), rate)
  if self.tty and self.drawn then self.stream:write("\r", line, "\27[K\n") else self.stream:write(line, "\n") end
  self.stream:flush()
end

return M
