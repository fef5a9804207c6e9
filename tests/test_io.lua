-- sg.io: PNG and TIFF round trips, the real data sets, and bad files.
local IO = sg.io

local tmpfiles = {}
local function tmp(ext)
  local n = os.tmpname()
  os.remove(n)
  n = n .. ext
  tmpfiles[#tmpfiles + 1] = n
  return n
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- same shape, same dtype, every value equal
local function same(got, want, msg)
  msg = msg or "values"
  check.eq(got.shape, want.shape, msg .. ": shape")
  check.eq(got.dtype, want.dtype, msg .. ": dtype")
  if got:numel() > 0 then
    check.eq((got:to("f64") - want:to("f64")):abs():max():item(), 0, msg .. ": max abs difference")
  end
end

local function data_dir()
  local d = os.getenv("SEMSEG_DATA") or "../shared/data"
  local f = io.open(d .. "/README.md", "r")
  if not f then return nil end
  f:close()
  return d
end

local function have_tool(name)
  local p = io.popen("command -v " .. name .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out ~= ""
end

local H, W = 37, 53 -- odd sizes: partial strips and tiles

---------------------------------------------------------------- PNG
test("png: 8-bit gray, gray+alpha, RGB, RGBA round trip exactly", function()
  for c = 1, 4 do
    local t = sg.randint(0, 256, {c, H, W}, "u8")
    local p = tmp(".png")
    IO.write_png(p, t)
    same(IO.read_png(p), t, "C=" .. c)
    local info = IO.info(p)
    check.eq({info.format, info.width, info.height, info.channels, info.bits, info.pages},
             {"png", W, H, c, 8, 1}, "info C=" .. c)
    check.eq(info.color, ({"gray", "gray+alpha", "rgb", "rgba"})[c])
  end
end)

test("png: a 2-D tensor writes gray and reads back as 1 x H x W", function()
  local t = sg.randint(0, 256, {H, W}, "u8")
  local p = tmp(".png")
  IO.write_png(p, t)
  same(IO.read_png(p), t:reshape{1, H, W})
end)

test("png: 16-bit for 1 to 4 channels reads as i32, exactly", function()
  for c = 1, 4 do
    local t = sg.randint(0, 65536, {c, H, W}, "i32")
    t:select(1, 1):select(1, 1):fill_(65535)
    local p = tmp(".png")
    IO.write_png(p, t, {bits = 16})
    local r = IO.read_png(p)
    same(r, t, "C=" .. c)
    check.eq(IO.info(p).bits, 16)
  end
end)

test("png: 16-bit samples are big-endian on disk", function()
  local p = tmp(".png")
  IO.write_png(p, sg.tensor({{0x0102}}, "i32"), {bits = 16, level = 0}) -- stored, not deflated
  local s = slurp(p)
  local idat = s:find("IDAT", 1, true)
  check.truthy(idat, "an IDAT chunk")
  check.truthy(s:find("\1\2", idat, true), "bytes 01 02 in the stored data")
  check.eq(IO.read_png(p):item(), 0x0102)
end)

test("png: layout hwc on read and on write", function()
  local t = sg.randint(0, 256, {3, H, W}, "u8")
  local p = tmp(".png")
  IO.write_png(p, t)
  local hwc = IO.read_png(p, {layout = "hwc"})
  check.eq(hwc.shape, {H, W, 3})
  same(hwc, t:permute(2, 3, 1):contiguous())
  local p2 = tmp(".png")
  IO.write_png(p2, hwc, {layout = "hwc"})
  same(IO.read_png(p2), t)
end)

test("png: dtype and scale on read", function()
  local t = sg.tensor({{{0, 1, 128, 255}}}, "u8")
  local p = tmp(".png")
  IO.write_png(p, t)
  same(IO.read_png(p, {dtype = "f32"}), sg.tensor({{{0, 1, 128, 255}}}, "f32"))
  local s = IO.read_png(p, {scale = true})
  check.eq(s.dtype, "f32")
  check.near(s, sg.tensor({{{0, 1 / 255, 128 / 255, 1}}}), 1e-7)
  check.eq(s:max():item(), 1)
  local p16 = tmp(".png")
  IO.write_png(p16, sg.tensor({{0, 65535, 32768}}, "i32"), {bits = 16})
  check.near(IO.read_png(p16, {scale = true, dtype = "f64"}), sg.tensor({{{0, 1, 32768 / 65535}}}, "f64"), 1e-12)
  check.errors(function() IO.read_png(p, {scale = true, dtype = "i32"}) end, "scale=true needs a float dtype")
end)

test("png: floats are clamped and rounded, or scaled from [0,1]", function()
  local f = sg.tensor({{-3, 0.4, 0.5, 1.5, 254.6, 300}}, "f32")
  local p = tmp(".png")
  IO.write_png(p, f)
  same(IO.read_png(p), sg.tensor({{{0, 0, 1, 2, 255, 255}}}, "u8"))
  IO.write_png(p, sg.tensor({{0, 0.5, 1, 2, -1}}, "f32"), {scale = true})
  same(IO.read_png(p), sg.tensor({{{0, 128, 255, 255, 0}}}, "u8"))
  IO.write_png(p, sg.tensor({{0, 0.5, 1}}, "f64"), {scale = true, bits = 16})
  same(IO.read_png(p), sg.tensor({{{0, 32768, 65535}}}, "i32"))
end)

test("png: integer values that do not fit are an error, not a wrap", function()
  local p = tmp(".png")
  check.errors(function() IO.write_png(p, sg.tensor({{0, 300}}, "i32")) end,
               "value 300 does not fit u8 samples")
  check.errors(function() IO.write_png(p, sg.tensor({{-1}}, "i64"), {bits = 16}) end, "does not fit u16")
  check.eq(io.open(p, "rb"), nil, "no file left behind")
end)

test("png: palette images expand to RGB / RGBA, or give the indices", function()
  local pal = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}}
  local idx = sg.randint(0, 4, {H, W}, "u8")
  local p = tmp(".png")
  IO.write_png(p, idx, {palette = pal})
  local info = IO.info(p)
  check.eq({info.color, info.channels}, {"palette", 3})
  local rgb = IO.read_png(p)
  check.eq(rgb.shape, {3, H, W})
  check.eq(rgb.dtype, "u8")
  local it = idx:totable()
  local rt = rgb:totable()
  for y = 1, H, 7 do
    for x = 1, W, 5 do
      local e = pal[it[y][x] + 1]
      check.eq({rt[1][y][x], rt[2][y][x], rt[3][y][x]}, e, "pixel " .. y .. "," .. x)
    end
  end
  same(IO.read_png(p, {palette = "index"}), idx:reshape{1, H, W})
  -- with transparency: RGBA
  local pa = tmp(".png")
  IO.write_png(pa, idx, {palette = {{1, 2, 3, 0}, {4, 5, 6, 128}, {7, 8, 9, 255}, {0, 0, 0}}})
  local rgba = IO.read_png(pa)
  check.eq(rgba.shape, {4, H, W})
  local at = rgba:select(1, 4):totable()
  for y = 1, H, 5 do
    for x = 1, W, 3 do check.eq(at[y][x], ({0, 128, 255, 255})[it[y][x] + 1]) end
  end
  check.errors(function() IO.write_png(p, sg.tensor({{0, 4}}, "u8"), {palette = pal}) end,
               "index 4 is past the end of the 4-color palette")
end)

test("png: the input may be any numeric dtype and a strided view", function()
  local t = sg.randint(0, 256, {W, H}, "i64"):transpose(1, 2) -- H x W, not contiguous
  local p = tmp(".png")
  IO.write_png(p, t)
  same(IO.read_png(p), t:to("u8"):reshape{1, H, W})
end)

test("png: read_image dispatches on the magic bytes", function()
  local t = sg.randint(0, 256, {1, 5, 7}, "u8")
  local p = tmp(".dat") -- the extension does not matter
  IO.write_png(p, t)
  same(IO.read_image(p), t)
  local q = tmp(".dat")
  IO.write_tiff(q, t)
  same(IO.read_image(q), t)
end)

---------------------------------------------------------------- TIFF
local SAMPLES = {
  {"u8", "u8", 0, 256},
  {"u16", "i32", 0, 65536},
  {"i16", "i32", -32768, 32768},
  {"i32", "i32", -2147483648, 2147483647},
  {"u32", "i64", 0, 4294967296},
  {"i8", "i32", -128, 128},
}

test("tiff: integer samples 8/16/32 bit, signed and unsigned, round trip exactly", function()
  for _, s in ipairs(SAMPLES) do
    local name, dtype, lo, hi = s[1], s[2], s[3], s[4]
    for _, c in ipairs{1, 3} do
      local t = sg.randint(lo, hi, {c, H, W}, dtype)
      t:select(1, 1):select(1, 1):select(1, 1):fill_(hi - 1) -- the extremes
      t:select(1, 1):select(1, 1):select(1, 2):fill_(lo)
      local p = tmp(".tif")
      IO.write_tiff(p, t, {sample = name})
      local info = IO.info(p)
      check.eq({info.format, info.width, info.height, info.channels, info.sample, info.dtype},
               {"tiff", W, H, c, name, dtype}, name)
      same(IO.read_tiff(p), t, name .. " C=" .. c)
    end
  end
end)

test("tiff: float samples (f32, f64) and the default sample per dtype", function()
  local f = sg.randn({2, H, W}, "f32") * 1e3
  local p = tmp(".tif")
  IO.write_tiff(p, f)
  check.eq(IO.info(p).sample, "f32")
  same(IO.read_tiff(p), f)
  local d = sg.randn({1, H, W}, "f64") / 7
  IO.write_tiff(p, d)
  check.eq(IO.info(p).bits, 64)
  same(IO.read_tiff(p), d)
  local i = sg.randint(-100, 100, {H, W}, "i64")
  IO.write_tiff(p, i)
  check.eq(IO.info(p).sample, "i64")
  same(IO.read_tiff(p), i:reshape{1, H, W})
  IO.write_tiff(p, sg.tensor({{1, 2}}, "i32"), {bits = 16})
  check.eq(IO.info(p).sample, "u16")
  IO.write_tiff(p, sg.tensor({{0.5, 0.25}}, "f64"), {bits = 32})
  check.eq(IO.info(p).sample, "f32")
  same(IO.read_tiff(p), sg.tensor({{{0.5, 0.25}}}, "f32"))
end)

test("tiff: every compression x strips/tiles x byte order x planar config", function()
  local t16 = sg.randint(0, 65536, {3, H, W}, "i32")
  local t8 = sg.randint(0, 4, {1, H, W}, "u8") * 60 -- compressible
  local tf = sg.rand({1, H, W}, "f32")
  for _, comp in ipairs{"none", "lzw", "deflate", "packbits"} do
    for _, tile in ipairs{false, 16} do
      for _, bo in ipairs{"big", "little"} do
        for _, planar in ipairs{"contig", "separate"} do
          local what = table.concat({comp, tostring(tile), bo, planar}, " ")
          local p = tmp(".tif")
          for _, t in ipairs{t16, t8, tf} do
            local opts = {compression = comp, tile = tile or nil, byteorder = bo, planar = planar}
            if t.dtype == "i32" then opts.sample = "u16" end
            IO.write_tiff(p, t, opts)
            local info = IO.info(p)
            check.eq({info.compression, info.tiled, info.byteorder}, {comp, tile and true or false, bo}, what)
            same(IO.read_tiff(p), t, what)
          end
        end
      end
    end
  end
end)

test("tiff: predictors with lzw and deflate", function()
  local t = sg.randint(0, 65536, {3, H, W}, "i32")
  local f = sg.randn({1, H, W}, "f32")
  for _, comp in ipairs{"lzw", "deflate"} do
    local p = tmp(".tif")
    IO.write_tiff(p, t, {compression = comp, predictor = true, sample = "u16"})
    same(IO.read_tiff(p), t, comp)
    IO.write_tiff(p, f, {compression = comp, predictor = true, tile = 32})
    same(IO.read_tiff(p), f, comp .. " float")
  end
end)

test("tiff: 2 and 4 channels, hwc layout on read and write", function()
  for _, c in ipairs{2, 4} do
    local t = sg.randint(0, 256, {c, H, W}, "u8")
    local p = tmp(".tif")
    IO.write_tiff(p, t)
    same(IO.read_tiff(p), t)
    local hwc = IO.read_tiff(p, {layout = "hwc"})
    same(hwc, t:permute(2, 3, 1):contiguous())
    IO.write_tiff(p, hwc, {layout = "hwc", planar = "separate"})
    same(IO.read_tiff(p), t)
  end
end)

test("tiff: D x H x W probability maps as a multi-page float stack", function()
  local D = 5
  local prob = sg.rand({D, H, W}, "f32")
  local p = tmp(".tif")
  IO.write_tiff(p, prob, {stack = true, compression = "deflate"})
  local info = IO.info(p)
  check.eq({info.pages, info.channels, info.sample}, {D, 1, "f32"})
  same(IO.read_tiff(p, {stack = true}), prob)
  same(IO.read_tiff(p, {page = 3}), prob:narrow(1, 3, 1))
  same(IO.read_tiff(p), prob:narrow(1, 1, 1), "the first page by default")
  same(IO.read_image(p, {stack = true, layout = "hwc"}), prob)
  check.errors(function() IO.read_tiff(p, {page = 6}) end, "page 6 is out of range (the file has 5 pages)")
  check.errors(function() IO.read_tiff(p, {page = 0}) end, "pages count from 1")
  -- D x C x H x W, big-endian, tiled
  local rgb = sg.randint(0, 256, {3, 3, H, W}, "u8")
  IO.write_tiff(p, rgb, {tile = 32, byteorder = "big", compression = "lzw"})
  same(IO.read_tiff(p, {stack = true}), rgb)
  same(IO.read_tiff(p, {stack = true, layout = "hwc"}), rgb:permute(1, 3, 4, 2):contiguous())
  same(IO.read_tiff(p, {page = 2}), rgb:select(1, 2))
end)

test("tiff: scale and dtype on read", function()
  local p = tmp(".tif")
  IO.write_tiff(p, sg.tensor({{0, 65535, 1}}, "i32"), {sample = "u16"})
  check.near(IO.read_tiff(p, {scale = true}), sg.tensor({{{0, 1, 1 / 65535}}}), 1e-9)
  same(IO.read_tiff(p, {dtype = "f32"}), sg.tensor({{{0, 65535, 1}}}, "f32"))
  IO.write_tiff(p, sg.tensor({{0.25, 0.5, 1.0}}, "f32"), {sample = "u8", scale = true})
  same(IO.read_tiff(p), sg.tensor({{{64, 128, 255}}}, "u8"))
end)

test("tiff: files rewritten by tiffcp (other software) read the same", function()
  if not have_tool("tiffcp") then skip("tiffcp not installed (Debian package libtiff-tools)") end
  local t16 = sg.randint(0, 65536, {3, H, W}, "i32")
  local t8 = sg.randint(0, 256, {3, H, W}, "u8")
  local src16, src8 = tmp(".tif"), tmp(".tif")
  IO.write_tiff(src16, t16, {sample = "u16"})
  IO.write_tiff(src8, t8)
  for _, flags in ipairs{"-c lzw", "-c zip", "-c packbits", "-t -w 16 -l 16", "-B", "-L -c lzw:2",
                         "-p separate", "-s -r 5"} do
    for _, case in ipairs{{src8, t8}, {src16, t16}} do
      if not (flags == "-p separate" and case[2].dtype == "i32") then -- tiffcp: 8-bit only
        local dst = tmp(".tif")
        check.eq(os.execute("tiffcp " .. flags .. " " .. case[1] .. " " .. dst .. " 2>/dev/null"), true, flags)
        same(IO.read_tiff(dst), case[2], "tiffcp " .. flags)
      end
    end
  end
  -- pages of different sizes: a stack is refused with a clear message, pages read one by one
  local a, b, ab = tmp(".tif"), tmp(".tif"), tmp(".tif")
  local ta, tb = sg.randint(0, 256, {1, 4, 6}, "u8"), sg.randint(0, 256, {1, 5, 3}, "u8")
  IO.write_tiff(a, ta)
  IO.write_tiff(b, tb)
  check.eq(os.execute("tiffcp " .. a .. " " .. b .. " " .. ab .. " 2>/dev/null"), true)
  check.eq(IO.info(ab).pages, 2)
  same(IO.read_tiff(ab, {page = 2}), tb)
  check.errors(function() IO.read_tiff(ab, {stack = true}) end, "page 2 is 3x5 with 1 u8 channels but page 1 is 6x4")
end)

---------------------------------------------------------------- real data
test("data: ISBI 2012 images and labels", function()
  local d = data_dir()
  if not d then skip("no data directory (set SEMSEG_DATA or provide ../shared/data)") end
  local img = IO.read_png(d .. "/isbi2012/train/images/00.png")
  check.eq(img.shape, {1, 512, 512})
  check.eq(img.dtype, "u8")
  check.truthy(img:to("f32"):std():item() > 10, "an image, not a constant")
  local lab = IO.read_png(d .. "/isbi2012/train/labels/00.png")
  check.eq(lab.shape, {1, 512, 512})
  check.eq(lab.dtype, "u8")
  local n0 = lab:eq(0):count_nonzero():item()
  local n255 = lab:eq(255):count_nonzero():item()
  check.eq(n0 + n255, 512 * 512, "labels only 0 and 255")
  check.truthy(n0 > 0 and n255 > 0, "both classes present")
  local s = IO.read_image(d .. "/isbi2012/train/images/00.png", {scale = true})
  check.truthy(s:max():item() <= 1 and s:min():item() >= 0)
  -- a round trip through our writer is lossless
  local p = tmp(".png")
  IO.write_png(p, img)
  same(IO.read_png(p), img)
end)

test("data: Drosophila VNC big-endian ImageJ TIFF and label PNG", function()
  local d = data_dir()
  if not d then skip("no data directory (set SEMSEG_DATA or provide ../shared/data)") end
  local path = d .. "/drosophila-vnc/stack1/raw/00.tif"
  local info = IO.info(path)
  check.eq({info.format, info.width, info.height, info.channels, info.bits, info.pages, info.byteorder},
           {"tiff", 1024, 1024, 1, 8, 1, "big"})
  local raw = IO.read_tiff(path)
  check.eq(raw.shape, {1, 1024, 1024})
  check.eq(raw.dtype, "u8")
  check.truthy(raw:to("f32"):std():item() > 10, "an image, not a constant")
  same(IO.read_image(path), raw)
  local lab = IO.read_png(d .. "/drosophila-vnc/stack1/labels/00.png")
  check.eq(lab.shape, {1, 1024, 1024})
  local n = 0
  for _, v in ipairs{0, 32, 64, 96, 128, 159, 191, 223, 255} do n = n + lab:eq(v):count_nonzero():item() end
  check.eq(n, 1024 * 1024, "only the documented label values")
  -- our writer, little-endian and compressed, gives the same pixels back
  local p = tmp(".tif")
  IO.write_tiff(p, raw, {byteorder = "little", compression = "lzw", tile = 256})
  same(IO.read_tiff(p), raw)
  if have_tool("tiffcp") then
    local q = tmp(".tif")
    os.execute("tiffcp -L -c zip -t " .. path .. " " .. q .. " 2>/dev/null")
    same(IO.read_tiff(q), raw, "tiffcp copy")
  end
end)

---------------------------------------------------------------- bad files
-- A hand-made little-endian TIFF: one 2x2 strip; bits and the strip's byte
-- count are parameters, so it can be unsupported or point past the end.
local function handmade_tiff(bits, bytecount, packbits, size)
  size = size or 2
  local entries = {
    {256, 4, 1, size}, {257, 4, 1, size}, {258, 3, 1, bits}, {259, 3, 1, packbits and 32773 or 1}, {262, 3, 1, 1},
    {273, 4, 1, 0}, {277, 3, 1, 1}, {278, 4, 1, size}, {279, 4, 1, bytecount},
  }
  local ifd_size = 2 + #entries * 12 + 4
  local data_off = 8 + ifd_size
  local parts = {"II", string.pack("<I2I4", 42, 8), string.pack("<I2", #entries)}
  for _, e in ipairs(entries) do
    local v = e[1] == 273 and data_off or e[4]
    if e[2] == 3 then parts[#parts + 1] = string.pack("<I2I2I4I2I2", e[1], e[2], e[3], v, 0)
    else parts[#parts + 1] = string.pack("<I2I2I4I4", e[1], e[2], e[3], v) end
  end
  parts[#parts + 1] = string.pack("<I4", 0)
  parts[#parts + 1] = packbits and "\3ZZZZ" or "ZZZZ" -- PackBits: a literal run of 4
  return table.concat(parts)
end

local function bad_files()
  local good_png, good_tif = tmp(".png"), tmp(".tif")
  IO.write_png(good_png, sg.randint(0, 256, {3, 64, 64}, "u8"))
  IO.write_tiff(good_tif, sg.randint(0, 256, {2, 64, 64}, "u8"), {stack = true, compression = "lzw"})
  local f = {}
  f.missing = "/nonexistent-dir/x.png"
  f.empty = tmp(".png"); spit(f.empty, "")
  local s = slurp(good_png)
  f.trunc_png = tmp(".png"); spit(f.trunc_png, s:sub(1, #s // 2))
  f.trunc_png_end = tmp(".png"); spit(f.trunc_png_end, s:sub(1, #s - 6)) -- IEND cut
  local t = slurp(good_tif)
  f.trunc_tif = tmp(".tif"); spit(f.trunc_tif, t:sub(1, #t // 2))
  f.garbage_png = tmp(".png"); spit(f.garbage_png, "\137PNG\r\n\26\n" .. string.rep("garbage!", 40))
  f.garbage_tif = tmp(".tif"); spit(f.garbage_tif, "II*\0" .. string.rep("\255\1\7", 40))
  f.text_png = tmp(".png"); spit(f.text_png, "this is not an image\n")
  f.bits4_tif = tmp(".tif"); spit(f.bits4_tif, handmade_tiff(4, 2))
  f.past_end_tif = tmp(".tif"); spit(f.past_end_tif, handmade_tiff(8, 4000, true))
  f.ok_tif = tmp(".tif"); spit(f.ok_tif, handmade_tiff(8, 4))
  f.ok_packbits_tif = tmp(".tif"); spit(f.ok_packbits_tif, handmade_tiff(8, 5, true))
  f.huge_tif = tmp(".tif"); spit(f.huge_tif, handmade_tiff(8, 5, true, 100000)) -- claims 10^10 pixels
  return f
end

test("errors: missing, empty, truncated, corrupt, unsupported files name the file and the reason", function()
  local f = bad_files()
  same(IO.read_tiff(f.ok_tif), sg.full(0x5a, {1, 2, 2}, "u8"), "the hand-made TIFF itself is fine")
  same(IO.read_tiff(f.ok_packbits_tif), sg.full(0x5a, {1, 2, 2}, "u8"), "so is its PackBits twin")
  check.errors(function() IO.read_png(f.missing) end, "read_png: /nonexistent-dir/x.png: No such file or directory")
  check.errors(function() IO.read_tiff(f.missing) end, "read_tiff: /nonexistent-dir/x.png: No such file")
  check.errors(function() IO.info(f.missing) end, "info: /nonexistent-dir/x.png: No such file")
  check.errors(function() IO.read_png(f.empty) end, "read_png: " .. f.empty .. ": empty file")
  check.errors(function() IO.read_image(f.empty) end, "read_image: " .. f.empty .. ": empty file")
  check.errors(function() IO.read_png(f.trunc_png) end, "read_png: " .. f.trunc_png .. ": truncated file")
  check.errors(function() IO.read_png(f.trunc_png_end) end, "read_png: " .. f.trunc_png_end .. ": truncated file")
  check.errors(function() IO.read_tiff(f.trunc_tif, {stack = true}) end, "read_tiff: " .. f.trunc_tif .. ": truncated")
  check.errors(function() IO.read_png(f.garbage_png) end, "read_png: " .. f.garbage_png .. ": ")
  check.errors(function() IO.read_tiff(f.garbage_tif) end, "read_tiff: " .. f.garbage_tif .. ": ")
  check.errors(function() IO.read_png(f.text_png) end, "read_png: " .. f.text_png .. ": not a PNG file")
  check.errors(function() IO.read_tiff(f.text_png) end, "read_tiff: " .. f.text_png .. ": not a TIFF file")
  check.errors(function() IO.read_image(f.text_png) end, "unknown image format (neither PNG nor TIFF)")
  check.errors(function() IO.info(f.text_png) end, "unknown image format")
  check.errors(function() IO.read_tiff(f.bits4_tif) end, "read_tiff: " .. f.bits4_tif .. ": unsupported bit depth 4")
  check.errors(function() IO.read_tiff(f.past_end_tif) end, "read_tiff: " .. f.past_end_tif .. ": truncated file")
  check.errors(function() IO.read_tiff(f.huge_tif) end,
               "read_tiff: " .. f.huge_tif .. ": truncated or corrupt file: 1 page of 100000x100000x1 u8 samples cannot come from 127 bytes")
  check.errors(function() IO.read_png("/tmp") end, "read_png: /tmp: is a directory")
end)

test("errors: damaged copies of good files read or fail cleanly, never crash", function()
  math.randomseed(12345)
  local srcs = {}
  local function add(write, ext, t, opts)
    local p = tmp(ext)
    write(p, t, opts)
    srcs[#srcs + 1] = {ext, slurp(p)}
  end
  add(IO.write_png, ".png", sg.randint(0, 256, {3, 24, 30}, "u8"))
  add(IO.write_png, ".png", sg.randint(0, 65536, {1, 24, 30}, "i32"), {bits = 16})
  add(IO.write_tiff, ".tif", sg.randint(0, 65536, {3, 24, 30}, "i32"), {sample = "u16", compression = "lzw", tile = 16})
  add(IO.write_tiff, ".tif", sg.rand({3, 24, 30}), {stack = true, compression = "deflate"})
  add(IO.write_tiff, ".tif", sg.randint(0, 256, {3, 24, 30}, "u8"), {compression = "packbits", planar = "separate"})
  local p = {[".png"] = tmp(".png"), [".tif"] = tmp(".tif")}
  local failed = 0
  for _ = 1, 300 do
    local src = srcs[math.random(#srcs)]
    local s = src[2]
    if math.random(2) == 1 then
      s = s:sub(1, math.random(1, #s - 1))
    else
      for _ = 1, math.random(1, 6) do
        local i = math.random(9, #s)
        s = s:sub(1, i - 1) .. string.char(math.random(0, 255)) .. s:sub(i + 1)
      end
    end
    spit(p[src[1]], s)
    local ok, err = pcall(IO.read_image, p[src[1]], {stack = src[1] == ".tif"})
    if not ok then
      failed = failed + 1
      check.truthy(tostring(err):find(p[src[1]], 1, true), "the error names the file: " .. tostring(err))
    end
    pcall(IO.info, p[src[1]])
  end
  check.truthy(failed > 100, "most damaged files are refused")
end)

test("errors: unsupported tensors and options for writing", function()
  local p = tmp(".png")
  check.errors(function() IO.write_png(p, sg.zeros({4, 4}, "bool")) end, "write_png: " .. p .. ": unsupported dtype bool")
  check.errors(function() IO.write_tiff(p, sg.zeros({4, 4}, "bool")) end, "write_tiff: " .. p .. ": unsupported dtype bool")
  check.errors(function() IO.write_png(p, sg.zeros({5, 4, 4}, "u8")) end, "5 channels (a PNG has 1 to 4)")
  check.errors(function() IO.write_png(p, sg.zeros({4}, "u8")) end, "expected a H x W or C x H x W tensor")
  check.errors(function() IO.write_png(p, sg.zeros({4, 4}, "u8"), {bits = 12}) end, "bits must be 8 or 16")
  check.errors(function() IO.write_tiff(p, sg.zeros({6, 4, 4}, "f32")) end, "write a D x H x W stack with {stack=true}")
  check.errors(function() IO.write_tiff(p, sg.zeros({4, 4}, "u8"), {tile = 20}) end, "multiples of 16")
  check.errors(function() IO.write_tiff(p, sg.zeros({4, 4}, "u8"), {compression = "jpeg2000"}) end,
               "compression must be none, lzw, deflate or packbits")
  check.errors(function() IO.write_tiff(p, sg.zeros({4, 4}, "u8"), {sample = "u12"}) end, "unknown sample type 'u12'")
  check.errors(function() IO.write_png(p, "not a tensor") end, "argument #2 must be a tensor")
  check.errors(function() IO.read_png(p, {layout = "whc"}) end, "layout must be 'chw' or 'hwc'")
  check.eq(io.open(p, "rb"), nil, "no file was created")
end)

test("errors: no library message reaches stderr, only the Lua error", function()
  local exe = require("tests.proc").bin() -- the binary running the tests (build/semseg by default)
  local fh = io.open(exe, "rb")
  if not fh then skip(exe .. " not found (run from the repository root)") end
  fh:close()
  local f = bad_files()
  local calls = {
    {"read_png", f.trunc_png}, {"read_png", f.trunc_png_end}, {"read_png", f.garbage_png},
    {"read_png", f.text_png}, {"read_png", f.empty}, {"read_tiff", f.trunc_tif, "{stack=true}"},
    {"read_tiff", f.garbage_tif},
    {"read_tiff", f.bits4_tif}, {"read_tiff", f.past_end_tif}, {"read_image", f.garbage_tif},
    {"info", f.garbage_png}, {"read_image", f.trunc_tif, "{page=2}"}, {"read_tiff", f.missing},
  }
  local code = {}
  for _, c in ipairs(calls) do
    code[#code + 1] = string.format('print(select(2, pcall(sg.io.%s, %q, %s)))', c[1], c[2], c[3] or "nil")
  end
  local p = io.popen(exe .. " -e '" .. table.concat(code, " ") .. "' 2>&1")
  local out = p:read("a")
  p:close()
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  check.eq(#lines, #calls, "one line per call, nothing else:\n" .. out)
  for i, c in ipairs(calls) do
    local op = c[1] == "read_image" and (c[2]:match("%.png$") and "read_png" or "read_tiff") or c[1]
    local prefix = op .. ": " .. c[2] .. ": "
    check.eq(lines[i]:sub(1, #prefix), prefix, "line " .. i)
  end
end)

test("atomic writes: a failing write leaves the existing file and no temporary behind", function()
  local p = tmp(".tif")
  local old = sg.randint(0, 256, {1, 8, 8}, "u8")
  IO.write_tiff(p, old)
  local before = slurp(p)
  -- page 2 does not fit u8: the failure comes after page 1 went to the temporary file
  local bad = sg.zeros({2, 8, 8}, "i32")
  bad:select(1, 2):fill_(1000)
  check.errors(function() IO.write_tiff(p, bad, {stack = true, sample = "u8"}) end, "value 1000 does not fit u8")
  check.eq(slurp(p) == before, true, "the old file is untouched")
  local ls = io.popen("ls " .. p .. ".tmp-* 2>/dev/null")
  check.eq(ls:read("a"), "", "no temporary file left")
  ls:close()
  -- renaming over a directory fails: the temporary file goes away
  local dir = tmp(".d")
  os.execute("mkdir " .. dir)
  check.errors(function() IO.write_png(dir, old) end, "write_png: " .. dir .. ": ")
  ls = io.popen("ls " .. dir .. ".tmp-* 2>/dev/null")
  check.eq(ls:read("a"), "", "no temporary file left")
  ls:close()
  os.execute("rmdir " .. dir)
  -- a missing directory
  check.errors(function() IO.write_png("/nonexistent-dir/y.png", old) end,
               "write_png: /nonexistent-dir/y.png: cannot create a temporary file: No such file or directory")
  -- a successful write replaces the file
  local new = sg.randint(0, 256, {1, 8, 8}, "u8")
  IO.write_tiff(p, new)
  same(IO.read_tiff(p), new)
end)

test("cleanup of temporary files", function()
  for _, n in ipairs(tmpfiles) do os.remove(n) end
end)
