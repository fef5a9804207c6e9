-- A small test harness: test(name, fn), skip(reason), and assertions that
-- print what they compared when they fail.
local H = {passed = 0, failed = 0, skipped = 0, current_file = "?"}
local sg = require "semseg"

local function fmt(v)
  if type(v) == "userdata" then return tostring(v) end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = fmt(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

local SKIP = setmetatable({}, {__tostring = function() return "skip" end})

local check = {}
function check.eq(got, want, msg)
  if type(got) == "table" and type(want) == "table" then
    if fmt(got) ~= fmt(want) then error((msg or "eq") .. ": got " .. fmt(got) .. ", want " .. fmt(want), 2) end
  elseif got ~= want then
    error((msg or "eq") .. ": got " .. fmt(got) .. ", want " .. fmt(want), 2)
  end
end
function check.truthy(v, msg) if not v then error((msg or "expected a true value") .. ", got " .. fmt(v), 2) end end
-- near(a, b): numbers or tensors (or nested tables for tensors), max abs diff <= atol + rtol*|b|
function check.near(got, want, atol, rtol, msg)
  atol, rtol = atol or 1e-5, rtol or 1e-5
  if type(got) == "number" and type(want) == "number" then
    if not (math.abs(got - want) <= atol + rtol * math.abs(want)) then
      error(string.format("%snear: got %.9g, want %.9g", msg and (msg .. ": ") or "", got, want), 2)
    end
    return
  end
  local g = type(got) == "userdata" and got or sg.tensor(got, "f64")
  local w = type(want) == "userdata" and want or sg.tensor(want, "f64")
  if fmt(g.shape) ~= fmt(w.shape) then
    error(string.format("%snear: shape %s vs %s", msg and (msg .. ": ") or "", fmt(g.shape), fmt(w.shape)), 2)
  end
  if g:numel() == 0 then return end -- nothing to compare (and no maximum to take)
  local g64, w64 = g:to("f64"), w:to("f64")
  local bad = ((g64 - w64):abs() - (w64:abs() * rtol + atol)):amax():item()
  if not (bad <= 0) then
    error(string.format("%snear: differ by %.3g beyond tolerance\n got  %s\n want %s", msg and (msg .. ": ") or "",
      bad, tostring(g), tostring(w)), 2)
  end
end
-- errors(fn, pattern): fn must raise an error whose message contains pattern (plain text)
function check.errors(fn, pattern)
  local ok, err = pcall(fn)
  if ok then error("expected an error" .. (pattern and (" matching '" .. pattern .. "'") or ""), 2) end
  err = tostring(err)
  if pattern and not err:find(pattern, 1, true) then
    error("error message '" .. err .. "' does not contain '" .. pattern .. "'", 2)
  end
  return err
end
-- gradcheck wrapper that fails with sg.gradcheck's message
function check.grad(fn, inputs, opts)
  local ok, msg = sg.gradcheck(fn, inputs, opts)
  if not ok then error(msg, 2) end
end

H.check = check -- for helper modules of test files (tests/ops/backends.lua)

function H.skip(reason) error(setmetatable({reason = reason}, {__index = SKIP}), 0) end

local tests
function H.file(path)
  H.current_file = path
  tests = {}
  local env = setmetatable({test = function(name, fn) tests[#tests + 1] = {name, fn} end,
                            check = check, skip = H.skip, sg = sg}, {__index = _G})
  local chunk, err = loadfile(path, "t", env)
  if not chunk then
    H.failed = H.failed + 1
    print("FAIL " .. path .. ": " .. err)
    return
  end
  local ok, lerr = pcall(chunk)
  if not ok then
    H.failed = H.failed + 1
    print("FAIL " .. path .. " (loading): " .. tostring(lerr))
    return
  end
  for _, t in ipairs(tests) do
    local name, fn = t[1], t[2]
    local ok2, terr = xpcall(fn, function(e)
      if type(e) == "table" and e.reason then return e end
      return debug.traceback(tostring(e), 2)
    end)
    if ok2 then
      H.passed = H.passed + 1
    elseif type(terr) == "table" and terr.reason then
      H.skipped = H.skipped + 1
      print(string.format("SKIP %s: %s (%s)", path, name, terr.reason))
    else
      H.failed = H.failed + 1
      print(string.format("FAIL %s: %s\n  %s", path, name, tostring(terr):gsub("\n", "\n  ")))
    end
    collectgarbage()
  end
end

function H.summary()
  print(string.format("%d passed, %d failed, %d skipped", H.passed, H.failed, H.skipped))
  return H.failed == 0
end

return H
