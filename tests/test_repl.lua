-- The interactive REPL, driven through a pseudo-terminal by tests/pty_run
-- (built by `make test`, or compiled here with cc when missing).
local P = require "tests.proc"

local PROMPT = "\\nsg> " -- a fresh prompt on its own line (pty_run escapes)

local function need_pty()
  if not P.pty_run() then skip("no pty driver: build/pty_run is missing and cc could not build tests/pty_run.c") end
end

-- A script that types each command and waits for the next prompt.
local function session(commands)
  local s = {"expect sg> "}
  for _, c in ipairs(commands) do
    if type(c) == "table" then
      for _, raw in ipairs(c) do s[#s + 1] = raw end
    else
      s[#s + 1] = "send " .. c .. "\\r"
      s[#s + 1] = "expect " .. PROMPT
    end
  end
  s[#s + 1] = "send \\x04" -- Ctrl-D
  return s
end

local function has(text, pattern, what)
  check.truthy(text:find(pattern, 1, true), (what or "transcript") .. " lacks " .. pattern .. ":\n" .. text)
end

test("banner, auto-print, tensors, multi-line input, errors, timing, Ctrl-D", function()
  need_pty()
  local home = P.tmpdir()
  local out, _, code, err = P.pty(session({
    "1+1",
    "'a', 2, nil, true",
    "t = sg.ones{2,3}",
    "t",
    {"send function twice(x)\\r", "expect ..> ", "send   return x * 2\\r", "expect ..> ", "send end\\r",
     "expect " .. PROMPT},
    "twice(21)",
    "error('first failure')",
    "undefined_fn()",
    "t:sum():item()",
    "local big = 0; for i = 1, 3e5 do big = big + i end; return big",
    "#'h\u{e9}llo w\u{f6}rld'", -- UTF-8 typed at the terminal keeps its bytes
  }), home)
  check.eq(code, 0, "exit code after Ctrl-D (" .. err .. ")\n" .. out)
  has(out, "semseg " .. sg.version)
  has(out, "Ctrl-D")
  has(out, "sg> 1+1\n2\n")
  has(out, "a\t2\tnil\ttrue\n")
  has(out, "tensor([[1.0, 1.0, 1.0],")
  has(out, "shape=[2,3], dtype=f32, device=cpu)")
  has(out, "..> end\n")
  has(out, "\n42\n")
  has(out, "first failure")
  has(out, "stack traceback:")
  has(out, "attempt to call a nil value (global 'undefined_fn')")
  has(out, "\n6\n")             -- the session goes on after the errors
  has(out, "\n45000150000\n")
  has(out, "\n13\n")
  -- every successful command reports its time, e.g. "(0.12 ms)"
  local n = 0
  for _ in out:gmatch("\n%(%d+%.%d+ m?s%)\n") do n = n + 1 end
  check.truthy(n >= 7, "timings shown: " .. n .. "\n" .. out)
  P.cleanup()
end)

test("Tab completes globals, library functions, tensor methods and fields", function()
  need_pty()
  local home = P.tmpdir()
  local out, _, code, err = P.pty(session({
    "t = sg.ones{2,2}",
    -- sg.ze -> sg.zeros (the common prefix of zeros and zeros_like), then run it
    {"send sg.ze\\t", "expect ros", "send {3}\\r", "expect " .. PROMPT},
    -- a second Tab on sg.zeros lists both candidates
    {"send sg.zeros\\t", "expect zeros_like", "send \\x15", "send 1\\r", "expect " .. PROMPT},
    -- t: lists the tensor methods
    {"send t:\\t", "expect unsqueeze", "send \\x15", "send 2\\r", "expect " .. PROMPT},
    -- t:resh -> t:reshape, t.sha -> t.shape (a field), colle -> collectgarbage (a global)
    {"send t:resh\\t", "expect ape", "send {4}\\r", "expect " .. PROMPT},
    {"send t.sha\\t", "expect pe", "send \\r", "expect " .. PROMPT},
    {"send colle\\t", "expect garbage", "send ('count') > 0\\r", "expect " .. PROMPT},
    -- string methods through the string metatable
    {"send s = 'abc'\\r", "expect " .. PROMPT, "send s:upp\\t", "expect er", "send ()\\r", "expect " .. PROMPT},
  }), home)
  check.eq(code, 0, "exit code (" .. err .. ")\n" .. out)
  has(out, "tensor([0.0, 0.0, 0.0], shape=[3]")
  has(out, "zeros_like")
  for _, m in ipairs({"reshape", "unsqueeze", "sum", "backward"}) do has(out, m, "t: listing") end
  has(out, "tensor([1.0, 1.0, 1.0, 1.0], shape=[4]")
  has(out, "\n{2, 2}\n")
  has(out, "\ntrue\n")
  has(out, "\nABC\n")
  P.cleanup()
end)

test("history is saved in ~/.semseg_history and recalled in the next session", function()
  need_pty()
  local home = P.tmpdir()
  local out, _, code = P.pty(session({
    "40 + 2",
    {"send function h()\\r", "expect ..> ", "send   return 'multi'\\r", "expect ..> ", "send end\\r",
     "expect " .. PROMPT},
    "h()",
  }), home)
  check.eq(code, 0, out)
  local hist = P.read(home .. "/.semseg_history")
  check.truthy(hist, "no history file in HOME")
  check.truthy(hist:find("40", 1, true), "history lacks the command:\n" .. hist)
  check.truthy(hist:find("return", 1, true), "history lacks the multi-line chunk:\n" .. hist)
  -- a new session: Up x3 recalls `40 + 2` from the file; then (history now
  -- 40 + 2, function h..end, h(), 40 + 2) Up x3 recalls the multi-line definition
  out, _, code = P.pty({"expect sg> ", "send \\e[A\\e[A\\e[A\\r", "expect 42", "expect " .. PROMPT,
                        "send \\e[A\\e[A\\e[A\\r", "expect " .. PROMPT,
                        "send h()\\r", "expect multi", "expect " .. PROMPT, "send \\x04"}, home)
  check.eq(code, 0, out)
  has(out, "\nmulti\n")
  has(out, "\n42\n")
  P.cleanup()
end)

test("Ctrl-C abandons a chunk or interrupts a running command", function()
  need_pty()
  local home = P.tmpdir()
  local out, _, code, err = P.pty({
    "expect sg> ",
    "send x = 1 +\\r", "expect ..> ", "send \\x03", "expect " .. PROMPT,
    "send while true do end\\r", "sleep 300", "send \\x03", "expect interrupted", "expect " .. PROMPT,
    "send 6*7\\r", "expect 42", "expect " .. PROMPT,
    "send \\x04",
  }, home)
  check.eq(code, 0, "exit code (" .. err .. ")\n" .. out)
  has(out, "interrupted!")
  has(out, "\n42\n")
  P.cleanup()
end)
