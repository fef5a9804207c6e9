-- The command line of build/semseg: run, -e, --version, help, exit codes,
-- error reports, and the REPL reading piped (non-terminal) input.
local P = require "tests.proc"
local S = P.semseg

local function script(text)
  local path = P.tmpdir() .. "/script.lua"
  P.write(path, text)
  return path
end

test("--version prints the version and the backends", function()
  local out, _, code = P.run(S("--version"))
  check.eq(code, 0, "exit code")
  check.truthy(out:find("^semseg " .. sg.version:gsub("%.", "%%.")), "version line: " .. out)
  check.truthy(out:find("\nbackends: cpu"), "backends line: " .. out)
  P.cleanup()
end)

test("help prints the usage on stdout and exits 0", function()
  for _, a in ipairs({"help", "--help", "-h"}) do
    local out, err, code = P.run(S(a))
    check.eq(code, 0, a)
    check.truthy(out:find("usage: semseg", 1, true), a .. ": " .. out)
    check.eq(err, "", a .. " stderr")
  end
  P.cleanup()
end)

test("-e runs code; several -e share one state, in order", function()
  local out, err, code = P.run(S("-e", "print(1 + 2)"))
  check.eq(code, 0)
  check.eq(out, "3\n")
  check.eq(err, "")
  out, _, code = P.run(S("-e", "x = 6", "-e", "print(x * 7, type(sg), sg.version)"))
  check.eq(code, 0)
  check.eq(out, "42\ttable\t" .. sg.version .. "\n")
  P.cleanup()
end)

test("-e with a tensor expression prints through tostring", function()
  local out, _, code = P.run(S("-e", "print(sg.zeros{2})"))
  check.eq(code, 0)
  check.truthy(out:find("tensor(", 1, true) and out:find("shape=[2]", 1, true), out)
  P.cleanup()
end)

test("run passes arg and ... like lua", function()
  local path = script([[
print(arg[0], arg[1], arg[2], #arg, select("#", ...), ...)
print(arg[-1] ~= nil)
]])
  local out, err, code = P.run(S("run", path, "a b", "c"))
  check.eq(err, "")
  check.eq(code, 0)
  check.eq(out, path .. "\ta b\tc\t2\t2\ta b\tc\ntrue\n")
  -- the short form: a path ending in .lua
  out, _, code = P.run(S(path, "x"))
  check.eq(code, 0)
  check.eq(out, path .. "\tx\tnil\t1\t1\tx\ntrue\n")
  P.cleanup()
end)

test("-e then a script: the chunks run first", function()
  local path = script("print(pre, ...)\n")
  local out, _, code = P.run(S("-e", "pre = 'set'", path, "z"))
  check.eq(code, 0)
  check.eq(out, "set\tz\n")
  P.cleanup()
end)

test("run - reads the script from stdin", function()
  local out, _, code = P.run(S("run", "-", "q"), "print('from stdin', ...)\n")
  check.eq(code, 0)
  check.eq(out, "from stdin\tq\n")
  P.cleanup()
end)

test("os.exit sets the exit code", function()
  local _, _, code = P.run(S("-e", "os.exit(3)"))
  check.eq(code, 3)
  _, _, code = P.run(S("-e", "os.exit(true)"))
  check.eq(code, 0)
  _, _, code = P.run(S("-e", "os.exit(false)"))
  check.eq(code, 1)
  local out
  out, _, code = P.run(S("run", script("io.write('before ') print('exit') os.exit(5)\nprint('never')\n")))
  check.eq(code, 5)
  check.eq(out, "before exit\n")
  P.cleanup()
end)

test("a runtime error exits 1 with the message and a traceback on stderr", function()
  local path = script([[
print("started")
local function inner() error("boom in inner") end
local function outer() inner() end
outer()
]])
  local out, err, code = P.run(S("run", path))
  check.eq(code, 1)
  check.eq(out, "started\n")
  check.truthy(err:find("boom in inner", 1, true), err)
  check.truthy(err:find("stack traceback:", 1, true), err)
  check.truthy(err:find("inner", 1, true) and err:find("outer", 1, true), err)
  check.truthy(err:find(path .. ":2:", 1, true), err)
  -- the same from -e
  out, err, code = P.run(S("-e", "error('from e')"))
  check.eq(code, 1)
  check.eq(out, "")
  check.truthy(err:find("from e", 1, true) and err:find("stack traceback:", 1, true), err)
  -- an error object with __tostring
  _, err, code = P.run(S("-e", "error(setmetatable({}, {__tostring = function() return 'custom obj' end}))"))
  check.eq(code, 1)
  check.truthy(err:find("custom obj", 1, true), err)
  -- a later -e does not run after a failure
  out, _, code = P.run(S("-e", "error('x')", "-e", "print('not reached')"))
  check.eq(code, 1)
  check.eq(out, "")
  -- an engine error (bad shapes) is a Lua error too
  _, err, code = P.run(S("-e", "local a = sg.zeros{2,3} + sg.zeros{4,5}"))
  check.eq(code, 1)
  check.truthy(err:find("stack traceback:", 1, true), err)
  P.cleanup()
end)

test("a syntax error names the file and line, exit 1", function()
  local path = script("local x = 1\nlocal y = = 2\n")
  local out, err, code = P.run(S("run", path))
  check.eq(code, 1)
  check.eq(out, "")
  check.truthy(err:find(path .. ":2:", 1, true), err)
  check.truthy(err:find("near", 1, true), err)
  _, err, code = P.run(S("-e", "x = = 1"))
  check.eq(code, 1)
  check.truthy(err:find("near", 1, true), err)
  P.cleanup()
end)

test("a missing script is named in the message, exit 1", function()
  local missing = P.tmpdir() .. "/no_such_script.lua"
  local out, err, code = P.run(S("run", missing))
  check.eq(code, 1)
  check.eq(out, "")
  check.truthy(err:find(missing, 1, true), err)
  check.truthy(err:find("No such file", 1, true), err)
  _, err, code = P.run(S(missing))
  check.eq(code, 1)
  check.truthy(err:find(missing, 1, true), err)
  P.cleanup()
end)

test("usage errors exit 2", function()
  local cases = {
    {{"frobnicate"}, "unknown command 'frobnicate'"},
    {{"run"}, "missing script file name"},
    {{"-e"}, "-e needs an argument"},
    {{"-x"}, "unknown option '-x'"},
    {{"repl", "extra"}, "repl takes no arguments"},
  }
  for _, c in ipairs(cases) do
    local out, err, code = P.run(S(table.unpack(c[1])))
    check.eq(code, 2, table.concat(c[1], " "))
    check.eq(out, "", table.concat(c[1], " ") .. " stdout")
    check.truthy(err:find(c[2], 1, true), err)
  end
  P.cleanup()
end)

test("piped input runs as a REPL without prompts", function()
  local out, err, code = P.run(S(), "1+1\nprint('hi')\nx = 5\nx * 2, 'two'\n")
  check.eq(err, "")
  check.eq(code, 0)
  check.eq(out, "2\nhi\n10\ttwo\n")
  out, _, code = P.run(S("repl"), "{1, 2, n = 'v'}\nsg.ones{2}.shape\n")
  check.eq(code, 0)
  check.eq(out, '{1, 2, n = "v"}\n{2}\n')
  P.cleanup()
end)

test("piped input: multi-line chunks, tensors, errors do not stop it", function()
  local input = table.concat({
    "function f(a)",
    "  return a * 3",
    "end",
    "error('oops')",
    "f(4)",
    "t = {",
    "  1,",
    "  2}",
    "#t",
    "sg.ones{2,2}",
  }, "\n") .. "\n"
  local out, err, code = P.run(S(), input)
  check.eq(code, 1, "exit code after an error in piped input")
  check.truthy(err:find("oops", 1, true) and err:find("stack traceback:", 1, true), err)
  check.truthy(out:find("^12\n2\ntensor%(%[%[1"), out)
  check.truthy(out:find("shape=[2,2]", 1, true), out)
  P.cleanup()
end)

test("piped input ending inside a chunk reports the syntax error", function()
  local out, err, code = P.run(S(), "print('a')\nfunction g()\n")
  check.eq(code, 1)
  check.eq(out, "a\n")
  check.truthy(err:find("<eof>", 1, true), err)
  P.cleanup()
end)
