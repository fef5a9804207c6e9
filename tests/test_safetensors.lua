local st = sg.safetensors
local tmp = os.tmpname()

test("round trip of every dtype with metadata", function()
  local ts = {}
  for _, dt in ipairs{"f32", "f64", "f16", "bf16", "u8", "i32", "i64", "bool"} do
    ts["t_" .. dt] = sg.tensor({{1, 0}, {3, 1}}, dt)
  end
  ts.scalar = sg.tensor(2.5)
  ts.empty = sg.zeros{0, 3}
  ts.strided = sg.arange(12, "f32"):view(3, 4):transpose(1, 2)
  st.save(tmp, ts, {arch = "unet", config = sg.json.encode{base = 64}})
  local back, meta, names = st.load(tmp)
  check.eq(#names, 11)
  for name, t in pairs(ts) do
    check.eq(back[name].dtype, t.dtype, name)
    check.eq(back[name].shape, t.shape, name)
    if t:numel() > 0 then check.near(back[name]:to("f64"), t:to("f64"), 0, 0, name) end
  end
  check.eq(meta.arch, "unet")
  check.eq(sg.json.decode(meta.config).base, 64)
end)

test("bad files are errors naming the file and the problem", function()
  st.save(tmp, {w = sg.ones{100}})
  local data = assert(io.open(tmp, "rb")):read("a")
  local bad = tmp .. ".bad"
  local function write(s) local f = assert(io.open(bad, "wb")); f:write(s); f:close() end
  write(data:sub(1, #data - 10))
  check.errors(function() st.load(bad) end, "do not fit (file truncated?)")
  write(data:sub(1, 5))
  check.errors(function() st.load(bad) end, "file too short")
  write(string.pack("<I8", 1e9) .. "{}")
  check.errors(function() st.load(bad) end, "exceeds the file size")
  write(string.pack("<I8", 7) .. "{\"a\":1" .. "xx")
  check.errors(function() st.load(bad) end, "header: expected ',' or '}'")
  local h = '{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}'
  write(string.pack("<I8", #h) .. h .. "xxxx")
  check.errors(function() st.load(bad) end, "unsupported dtype F99")
  check.errors(function() st.load("/nonexistent/x.safetensors") end, "/nonexistent/x.safetensors")
  os.remove(bad)
end)

test("a failed save leaves the previous file intact", function()
  st.save(tmp, {w = sg.ones{3}})
  check.errors(function() st.save(tmp, {w = "not a tensor"}) end, "'w' is not a tensor")
  check.errors(function() sg.write_file_atomic("/nonexistent-dir/file", "x") end, "cannot write '/nonexistent-dir/file'")
  local back = st.load(tmp)
  check.near(back.w, {1, 1, 1}, 0)
end)

local function have_torch()
  local p = io.popen("/usr/bin/python3 -c 'import torch' 2>/dev/null && echo yes")
  local r = p and p:read("a") or ""
  if p then p:close() end
  return r:find("yes") ~= nil
end

test("files move both ways between semseg and PyTorch", function()
  if not have_torch() then skip("Debian's python3-torch is not installed") end
  local from_torch = tmp .. ".torch"
  assert(os.execute("/usr/bin/python3 scripts/safetensors_torch.py write " .. from_torch))
  local t, meta = st.load(from_torch)
  check.near(t.w, {{0, 0.25, 0.5}, {0.75, 1, 1.25}}, 0)
  check.eq(t.h.dtype, "f16"); check.near(t.h, {1.5, -2.25}, 0)
  check.eq(t.b.dtype, "bf16"); check.near(t.b, {1, 3}, 0)
  check.eq(t.i:totable(), {{7, -9}})
  check.eq(t.m:totable(), {true, false, true})
  check.eq(meta.arch, "unet")
  st.save(tmp, {a = sg.tensor({{1, 2}, {3, 4}}, "f64"), c = sg.tensor({0.5, 0.25}, "bf16")}, {who = "semseg"})
  local p = io.popen("/usr/bin/python3 scripts/safetensors_torch.py check " .. tmp)
  local out = p:read("a"); p:close()
  check.eq(out, "a F64 [2, 2] 10.000000\nc BF16 [2] 0.750000\nmeta {\"who\": \"semseg\"}\n")
  os.remove(from_torch)
end)

test("json encodes and decodes strictly", function()
  local v = {a = {1, 2.5, "x\n\"y\""}, b = true, c = sg.json.null}
  local back = sg.json.decode(sg.json.encode(v))
  check.eq(back.a[2], 2.5); check.eq(back.a[3], "x\n\"y\""); check.eq(back.b, true)
  check.errors(function() sg.json.decode("[1, 2") end, "expected ',' or ']'")
  check.errors(function() sg.json.decode("{} x") end, "trailing characters")
  check.errors(function() sg.json.encode{f = function() end} end, "cannot encode a function")
end)

os.remove(tmp)
