-- The safetensors format (readable and writable by PyTorch's safetensors):
-- 8-byte little-endian header length, a JSON header mapping names to
-- {dtype, shape, data_offsets}, optional "__metadata__" (string -> string),
-- then the raw little-endian data.
local core = require "semseg.core"
local json = require "semseg.json"
local M = {}

local TO_ST = {f32 = "F32", f64 = "F64", f16 = "F16", bf16 = "BF16", u8 = "U8", i32 = "I32", i64 = "I64", bool = "BOOL"}
local FROM_ST = {}
for k, v in pairs(TO_ST) do FROM_ST[v] = k end
local SIZE = {f32 = 4, f64 = 8, f16 = 2, bf16 = 2, u8 = 1, i32 = 4, i64 = 8, bool = 1}

-- save(path, {name = tensor, ...}, {key = "string value", ...}); the write is atomic
function M.save(path, tensors, metadata)
  local names = {}
  for name, t in pairs(tensors) do
    if type(name) ~= "string" then error("safetensors.save: tensor names must be strings", 2) end
    if type(t) ~= "userdata" then error("safetensors.save: '" .. name .. "' is not a tensor", 2) end
    names[#names + 1] = name
  end
  table.sort(names)
  local header, blobs, offset = {}, {}, 0
  for i, name in ipairs(names) do
    local t = tensors[name]
    local bytes = t:to_bytes()
    header[name] = {dtype = TO_ST[t.dtype], shape = t.shape, data_offsets = {offset, offset + #bytes}}
    blobs[i] = bytes
    offset = offset + #bytes
  end
  if metadata then
    local md = {__object = true}
    for k, v in pairs(metadata) do
      if type(k) ~= "string" or type(v) ~= "string" then
        error("safetensors.save: metadata must map strings to strings (key " .. tostring(k) .. ")", 2)
      end
      md[k] = v
    end
    md.__object = nil
    header.__metadata__ = next(md) and md or {__object = true}
  end
  local h = json.encode(header)
  h = h .. string.rep(" ", (8 - #h % 8) % 8) -- the format pads the header to 8 bytes
  core.write_file_atomic(path, string.pack("<I8", #h), h, table.unpack(blobs))
end

-- load(path) -> {name = tensor}, metadata, names (sorted)
function M.load(path)
  local f, err = io.open(path, "rb")
  if not f then error("safetensors.load: " .. tostring(err), 2) end
  local data = f:read("a")
  f:close()
  local function bad(msg) error(string.format("safetensors.load: %s: %s", path, msg), 3) end
  if #data < 8 then bad("file too short (" .. #data .. " bytes)") end
  local n = string.unpack("<I8", data)
  if n > #data - 8 or n > 100 * 1024 * 1024 then bad("header length " .. n .. " exceeds the file size") end
  local ok, header = pcall(json.decode, data:sub(9, 8 + n), "header")
  if not ok then bad(header) end
  if type(header) ~= "table" then bad("header is not a JSON object") end
  local base = 8 + n
  local out, names, meta = {}, {}, {}
  for name, info in pairs(header) do
    if name == "__metadata__" then
      for k, v in pairs(info) do meta[k] = v end
    else
      local dt = type(info) == "table" and FROM_ST[info.dtype]
      if not dt then bad("tensor '" .. name .. "' has unsupported dtype " .. tostring(info and info.dtype)) end
      local shape, offs = info.shape, info.data_offsets
      if type(shape) ~= "table" or type(offs) ~= "table" or #offs ~= 2 then bad("tensor '" .. name .. "' has a malformed entry") end
      local numel = 1
      for _, s in ipairs(shape) do
        if math.type(s) ~= "integer" or s < 0 then bad("tensor '" .. name .. "' has a bad shape") end
        numel = numel * s
      end
      if offs[2] - offs[1] ~= numel * SIZE[dt] or offs[1] < 0 or base + offs[2] > #data then
        bad(string.format("tensor '%s' [%s] %s: data offsets %d..%d do not fit (file truncated?)", name,
          table.concat(shape, ","), dt, offs[1], offs[2]))
      end
      out[name] = core.from_bytes(data, dt, shape, base + offs[1])
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return out, meta, names
end

return M
