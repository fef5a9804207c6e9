-- Confusion counting (the metrics family of the device table): the cpu table (with its binary 2x2 case) against
-- the reference on random class ids, with and without an ignore index, whole and per image; out-of-range
-- classes give the same error on both and add nothing; empty inputs.
local B = require "tests.ops.backends"
local metrics = sg.metrics or require "semseg.metrics"

local function confusion(classes, opts)
  return function(p, t) return metrics.confusion(p, t, classes, opts) end
end

test("confusion: the cpu table matches the reference, ignore index and per image", function()
  sg.manual_seed(51)
  math.randomseed(51)
  local r = math.random
  for k = 1, 20 do
    local classes = k <= 6 and 2 or r(1, 9)
    local shape = {r(1, 4), r(1, 9), r(1, 9)}
    local p, t = sg.randint(0, classes, shape), sg.randint(0, classes, shape)
    local ignored = t + sg.rand(shape):lt(0.3):to("i64") * (255 - t) -- about 30% of the targets ignored
    for _, dt in ipairs{"i64", "i32", "u8"} do
      local what = string.format("#%d %d classes {%s} %s", k, classes, table.concat(shape, ","), dt)
      B.compare("confusion " .. what, confusion(classes), {p:to(dt), t:to(dt)}, {exact = true})
      B.compare("confusion per image " .. what, confusion(classes, {per_image = true}), {p:to(dt), t:to(dt)},
        {exact = true})
      B.compare("confusion ignored " .. what, confusion(classes, {ignore_index = 255}), {p:to(dt), ignored:to(dt)},
        {exact = true})
      B.compare("confusion ignored per image " .. what, confusion(classes, {ignore_index = 255, per_image = true}),
        {p:to(dt), ignored:to(dt)}, {exact = true})
    end
    check.eq(B.on("cpu", function() return confusion(classes)(p, t) end):sum():item(), p:numel(), "count #" .. k)
  end
end)

test("confusion: empty inputs count nothing", function()
  for _, be in ipairs{"reference", "cpu"} do
    local e = sg.zeros({0, 3}, "i64")
    check.eq(B.on(be, function() return metrics.confusion(e, e, 3) end):sum():item(), 0, be)
    check.eq(B.on(be, function() return metrics.confusion(e, e, 2, {per_image = true}) end).shape, {1, 2, 2}, be)
  end
end)

test("confusion: a class out of range is the same error on every backend", function()
  local cases = {
    {{0, 1, 3}, {0, 1, 1}, 3, nil, "confusion: predicted class 3 at position 2 is outside 0..2"},
    {{0, 1, 1}, {0, -1, 1}, 3, nil, "confusion: target class -1 at position 1 is outside 0..2"},
    {{0, 5, 1}, {0, 1, 255}, 2, 255, "confusion: predicted class 5 at position 1 is outside 0..1 (and is not"},
    {{0, 1, 2}, {0, 1, 0}, 2, nil, "confusion: predicted class 2 at position 2 is outside 0..1"},
  }
  for _, c in ipairs(cases) do
    local first
    for _, be in ipairs{"reference", "cpu"} do
      local ok, err = pcall(B.on, be, function()
        return metrics.confusion(sg.tensor(c[1], "i64"), sg.tensor(c[2], "i64"), c[3], {ignore_index = c[4]})
      end)
      check.eq(ok, false, be)
      err = tostring(err):gsub("^[^:]*:%d+: ", "")
      check.truthy(err:find(c[5], 1, true), be .. ": " .. err)
      first = first or err
      check.eq(err, first, be .. " gives another message")
    end
  end
  -- the ignored target's prediction is not checked
  local cm = metrics.confusion(sg.tensor({0, 7}, "i64"), sg.tensor({1, 255}, "i64"), 2, {ignore_index = 255})
  check.eq(cm:totable(), {{0, 0}, {1, 0}})
end)
