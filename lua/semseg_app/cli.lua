-- Command-line parsing for the driver scripts (experiments/*.lua):
--
--   local args = cli.parse_args(arg, {full = true})   -- flags that never take a value
--   -- {"data/x", "--full", "--epochs", "3", "--lr=0.01"} -> {[1] = "data/x", full = true, epochs = 3, lr = 0.01}
--
-- Also sg.experiment.parse_args. `semseg predict` has its own, stricter parser (semseg_app.predict).
local M = {}

-- --key value / --flag command-line options (numbers converted); positional arguments in [1], [2] ...
function M.parse_args(argv, flags)
  flags = flags or {}
  local o, pos = {}, {}
  local i = 1
  while argv and i <= #argv do
    local a = argv[i]
    local k, v = a:match("^%-%-([%w_%-]+)=(.*)$")
    if k then
      o[k:gsub("%-", "_")] = tonumber(v) or v
    elseif a:match("^%-%-") then
      k = a:sub(3):gsub("%-", "_")
      if flags[k] or i == #argv or argv[i + 1]:match("^%-%-") then
        o[k] = true
      else
        o[k] = tonumber(argv[i + 1]) or argv[i + 1]
        i = i + 1
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  for j, p in ipairs(pos) do o[j] = p end
  return o
end

return M
