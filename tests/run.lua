-- The test runner: semseg run tests/run.lua [pattern]
-- Runs every tests/test_*.lua and tests/ops/test_*.lua (or those whose name contains `pattern`; other
-- subfolders such as tests/cuda_emu, the CUDA emulation build, hold no tests and are not searched) and
-- ends with the line "N passed, N failed". Exit code 1 when anything failed.
local T = require "tests.harness"
local pattern = arg and arg[1]
local files = {}
local p = io.popen("ls tests/test_*.lua tests/ops/test_*.lua 2>/dev/null")
for f in p:lines() do
  if not pattern or f:find(pattern, 1, true) then files[#files + 1] = f end
end
p:close()
for _, f in ipairs(files) do
  T.file(f)
end
os.exit(T.summary() and 0 or 1, true) -- close the state: finalizers run, ASan sees no leak
