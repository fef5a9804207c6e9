-- Helpers for the tests that run build/semseg as a process (test_cli.lua,
-- test_repl.lua): quoting, running with captured output and exit status,
-- temporary directories, and driving the REPL through tests/pty_run.
local P = {}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end
P.exists = exists

-- The binary under test: the one running the tests (arg[-1]) when it is a
-- path, else build/semseg.
function P.bin()
  local b = arg and arg[-1]
  if type(b) == "string" and b:find("/", 1, true) and exists(b) then return b end
  return "build/semseg"
end

function P.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function P.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function P.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A fresh directory; P.cleanup() removes all made so far.
local made = {}
function P.tmpdir()
  local p = io.popen("mktemp -d 2>/dev/null")
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  made[#made + 1] = dir
  return dir
end
function P.cleanup()
  for _, d in ipairs(made) do os.execute("rm -rf " .. P.q(d)) end
  made = {}
end

-- Runs a shell command line; returns stdout, stderr, exit code.
function P.run(cmdline, stdin_text)
  local dir = P.tmpdir()
  local errf = dir .. "/stderr"
  local input = ""
  if stdin_text then
    P.write(dir .. "/stdin", stdin_text)
    input = " < " .. P.q(dir .. "/stdin")
  end
  local p = io.popen("(" .. cmdline .. ")" .. input .. " 2>" .. P.q(errf))
  local out = p:read("a")
  local _, how, code = p:close()
  local err = P.read(errf) or ""
  if how == "signal" then code = 128 + code end
  return out, err, code
end

-- The semseg command line with these arguments (already split).
function P.semseg(...)
  local parts = {P.q(P.bin())}
  for _, a in ipairs({...}) do parts[#parts + 1] = P.q(a) end
  return table.concat(parts, " ")
end

-- The pty driver: next to the binary, in build/, or compiled on demand.
local pty_path
function P.pty_run()
  if pty_path ~= nil then return pty_path or nil end
  local dir = P.bin():match("^(.*)/[^/]*$") or "."
  for _, c in ipairs({dir .. "/pty_run", "build/pty_run"}) do
    if exists(c) then pty_path = c return c end
  end
  local out = os.tmpname()
  os.remove(out)
  local ok = os.execute("cc -std=gnu11 -O1 -o " .. P.q(out) .. " tests/pty_run.c -lutil >/dev/null 2>&1")
  pty_path = ok and exists(out) and out or false
  return pty_path or nil
end

-- Drives `semseg` (plus args) through a pseudo-terminal with the script lines
-- of tests/pty_run.c; HOME is `home`. Returns the transcript (carriage
-- returns and terminal escapes removed), the raw transcript, the exit code
-- and pty_run's stderr.
function P.pty(script, home, args)
  local driver = assert(P.pty_run(), "no pty driver")
  local dir = P.tmpdir()
  P.write(dir .. "/script", table.concat(script, "\n") .. "\n")
  local cmd = "env -u SEMSEG_HISTORY HOME=" .. P.q(home) .. " TERM=xterm NO_COLOR=1 LC_ALL=C " .. P.q(driver) ..
              " -t 15 " .. P.semseg(table.unpack(args or {}))
  local raw, err, code = P.run(cmd, P.read(dir .. "/script"))
  local clean = raw:gsub("\27%[[%d;?]*[%a@]", ""):gsub("\27[%(%)][%w]", ""):gsub("\r", ""):gsub("\7", "")
  return clean, raw, code, err
end

return P
