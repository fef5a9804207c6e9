-- Devices as the library sees them (sg.device).
--
--   sg.device.resolve(spec [, op])  "cpu" -> "cpu"; "cuda" (or "cuda:0") -> "cuda", an error naming op and
--                                   the reason when no GPU is usable; "auto" -> "cuda" when a GPU is usable,
--                                   else "cpu"; nil -> nil
--   sg.device.available(name)      whether tensors can live there ("cpu" always)
--   sg.device.of(x)                the device of a tensor, of a module's first parameter (else its first
--                                   buffer), or "cpu" for a module without tensors
--   sg.device.move(t, dev)         t itself when already on dev, else a copy there (nil passes through)
local core = require "semseg.core"
local M = {}

local function cuda_usable() return core.cuda.is_available() end

function M.available(name)
  if name == "cpu" then return true end
  if type(name) == "string" and name:sub(1, 4) == "cuda" then return cuda_usable() end
  return false
end

function M.resolve(spec, op)
  op = op or "device"
  if spec == nil then return nil end
  if spec == "cpu" then return "cpu" end
  if spec == "auto" then return cuda_usable() and "cuda" or "cpu" end
  if type(spec) == "string" and (spec == "cuda" or spec:match("^cuda:%d+$")) then
    if spec ~= "cuda" and spec ~= "cuda:0" then error(op .. ": only one GPU (cuda:0) is supported, got '" .. spec .. "'", 0) end
    if not cuda_usable() then
      error(string.format("%s: device 'cuda' is not available: %s", op, tostring(core.cuda.why_unavailable())), 0)
    end
    return "cuda"
  end
  error(string.format("%s: device must be \"cpu\", \"cuda\" or \"auto\" (got %s)", op, tostring(spec)), 0)
end

local is_tensor = require("semseg.util").is_tensor

function M.of(x)
  if is_tensor(x) then return x.device end
  if type(x) == "table" then
    if type(x.parameters) == "function" then
      local p = x:parameters()[1]
      if p then return p.device end
    end
    if type(x.buffers) == "function" then
      local b = x:buffers()[1]
      if b then return b.device end
    end
  end
  return "cpu"
end

function M.move(t, dev)
  if t == nil or dev == nil or t.device == dev then return t end
  return t:to(dev)
end

return M
