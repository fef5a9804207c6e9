-- sg.util: small helpers the library's modules share.
--
--   util.is_tensor(v)                            true for a semseg tensor (any device, any dtype)
--   util.check_options(opts, allowed, where [, positional])
--       opts must be a table whose keys are all in `allowed` (a table keyed by the names, e.g. {name = true}
--       or the defaults, or a list {"name", ...});
--       otherwise an error "where: unknown option 'key' (did you mean 'name'?; known: a, b, c)". The
--       suggestion appears when a known name is a small edit away (a typo). With positional = true,
--       the integer keys 1..#opts pass too (options after a list, like ds:split{0.8, 0.2, seed = 1}).
--   util.edit_distance(a, b)                     Levenshtein distance of two strings
local core = require "semseg.core"

local M = {}

local TENSOR_MT = getmetatable(core.zeros{1})

function M.is_tensor(v) return type(v) == "userdata" and getmetatable(v) == TENSOR_MT end

function M.edit_distance(a, b)
  local la, lb = #a, #b
  if la == 0 then return lb end
  if lb == 0 then return la end
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = ca == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

-- the known name closest to key, when it is close enough to be a typo of it (ties: the first in order)
local function suggestion(key, names)
  if type(key) ~= "string" then return nil end
  local best, bd = nil, math.huge
  for _, n in ipairs(names) do
    local d = M.edit_distance(key:lower(), n:lower())
    if d < bd then best, bd = n, d end
  end
  -- up to a third of the word's letters wrong (at least one, at most three); never a rewrite of a short word
  local limit = math.min(3, math.max(1, #key // 3))
  if best and bd <= limit and bd < #key then return best end
  return nil
end

local function show(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  return "[" .. tostring(k) .. "]"
end

function M.check_options(opts, allowed, where, positional)
  if type(opts) ~= "table" then
    error(string.format("%s: expected a table of options (got %s)", where, type(opts)), 0)
  end
  local set = allowed
  if allowed[1] ~= nil then
    set = {}
    for _, n in ipairs(allowed) do set[n] = true end
  end
  local bad = {}
  local n = positional and #opts or 0
  for k in pairs(opts) do
    if set[k] == nil and not (math.type(k) == "integer" and k >= 1 and k <= n) then bad[#bad + 1] = k end
  end
  if #bad == 0 then return opts end
  -- the first bad key in a fixed order, so the message does not depend on table iteration
  table.sort(bad, function(x, y) return show(x) < show(y) end)
  local names = {}
  for name in pairs(set) do if type(name) == "string" then names[#names + 1] = name end end
  table.sort(names)
  local s = suggestion(bad[1], names)
  error(string.format("%s: unknown option %s (%sknown: %s)", where, show(bad[1]),
    s and ("did you mean '" .. s .. "'?; ") or "", table.concat(names, ", ")), 0)
end

return M
