-- Checkpoints: model weights + optimizer state + scheduler + epoch + RNG +
-- history in one safetensors file (tensors by name, the rest as JSON in the
-- metadata), written atomically (temp file, fsync, rename).
local core = require "semseg.core"
local json = require "semseg.json"
local st = require "semseg.safetensors"
local M = {}

local FORMAT = 1

-- save(path, {model=, optimizer=, scheduler=, epoch=, history=, config=, extra=})
function M.save(path, c)
  assert(c.model, "checkpoint.save: model is required")
  local tensors = {}
  local sd = c.model:state_dict()
  for name, t in pairs(sd) do tensors["model." .. name] = t end
  -- arch + config let `semseg predict` rebuild the model with sg.models.build
  local meta = {format = FORMAT, epoch = c.epoch or 0, rng = core.rng_state(), history = c.history or {},
                config = c.config or c.model.config, extra = c.extra, arch = c.model.arch or c.model.__name}
  if c.optimizer then
    local osd = c.optimizer:state_dict()
    local state = {}
    for key, s in pairs(osd.state) do
      local plain = {}
      for name, v in pairs(s) do
        if type(v) == "userdata" then tensors["optim." .. key .. "." .. name] = v else plain[name] = v end
      end
      state[key] = plain
    end
    meta.optimizer = {kind = osd.kind, groups = osd.groups, state = state}
  end
  if c.scheduler then meta.scheduler = c.scheduler:state_dict() end
  st.save(path, tensors, {semseg = json.encode(meta)})
end

-- load(path, {model=, optimizer=, scheduler=, strict=true}) -> metadata (epoch, history, config ...)
-- Restores what it is given; names, shapes and dtypes are checked, every mismatch reported.
function M.load(path, c)
  c = c or {}
  local tensors, md = st.load(path)
  if not md.semseg then error("checkpoint.load: " .. path .. " is a weights file, not a semseg checkpoint", 2) end
  local ok, meta = pcall(json.decode, md.semseg, path .. " metadata")
  if not ok then error("checkpoint.load: " .. meta, 2) end
  if meta.format ~= FORMAT then error("checkpoint.load: " .. path .. " has format " .. tostring(meta.format), 2) end
  if c.model then
    local sd = {}
    for name, t in pairs(tensors) do
      local m = name:match("^model%.(.*)$")
      if m then sd[m] = t end
    end
    local own = c.model:state_dict()
    local problems = {}
    for name, t in pairs(own) do
      if sd[name] and sd[name].dtype ~= t.dtype then
        problems[#problems + 1] = string.format("'%s': dtype %s in the checkpoint, %s in the model", name, sd[name].dtype, t.dtype)
      end
    end
    if #problems > 0 then table.sort(problems); error("checkpoint.load: " .. table.concat(problems, "; "), 2) end
    local lok, lerr = pcall(c.model.load_state_dict, c.model, sd, c.strict)
    if not lok then error("checkpoint.load: " .. path .. ": " .. tostring(lerr):gsub("^.-load_state_dict: ", ""), 2) end
  end
  if c.optimizer then
    if not meta.optimizer then error("checkpoint.load: " .. path .. " holds no optimizer state", 2) end
    local state = {}
    for key, plain in pairs(meta.optimizer.state) do
      local s = {}
      for k, v in pairs(plain) do s[k] = v end
      state[key] = s
    end
    for name, t in pairs(tensors) do
      local key, sname = name:match("^optim%.(%d+:%d+)%.(.+)$")
      if key then state[key] = state[key] or {}; state[key][sname] = t end
    end
    c.optimizer:load_state_dict({kind = meta.optimizer.kind, groups = meta.optimizer.groups, state = state})
  end
  if c.scheduler and meta.scheduler then c.scheduler:load_state_dict(meta.scheduler) end
  if c.restore_rng ~= false and meta.rng then core.rng_state(meta.rng) end
  return meta
end

return M
