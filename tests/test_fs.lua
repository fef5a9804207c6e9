-- sg.fs: mkdir_p, list_dir and stat (engine/lua/lua_fs.c), and their errors on bad input.
local fs = sg.fs

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  fs.mkdir_p(d)
  return d
end
local function touch(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text or "")
  f:close()
end

test("mkdir_p creates parents, accepts an existing folder and trailing or doubled slashes", function()
  local d = tmpdir()
  check.eq(fs.mkdir_p(d .. "/a/b/c"), true)
  check.eq(fs.stat(d .. "/a").type, "dir")
  check.eq(fs.stat(d .. "/a/b/c").type, "dir")
  check.eq(fs.mkdir_p(d .. "/a/b/c"), true) -- already there: fine
  fs.mkdir_p(d .. "//x//y/")
  check.eq(fs.stat(d .. "/x/y").type, "dir")
  local here = "build/fs_test_" .. tostring(os.time()) .. "/rel" -- a relative path
  fs.mkdir_p(here)
  check.eq(fs.stat(here).type, "dir")
  os.execute("rm -rf " .. here:match("^[^/]+/[^/]+") .. " " .. d)
end)

test("list_dir returns the sorted names without . and .., hidden files included", function()
  local d = tmpdir()
  for _, n in ipairs{"b.png", "a.png", "B.png", "10.png", "9.png", ".hidden"} do touch(d .. "/" .. n) end
  fs.mkdir_p(d .. "/sub")
  check.eq(fs.list_dir(d), {".hidden", "10.png", "9.png", "B.png", "a.png", "b.png", "sub"})
  fs.mkdir_p(d .. "/empty")
  check.eq(fs.list_dir(d .. "/empty"), {})
  os.execute("rm -rf " .. d)
end)

test("stat: nil when missing, type, size and mtime otherwise", function()
  local d = tmpdir()
  touch(d .. "/f.txt", "hello")
  local s = fs.stat(d .. "/f.txt")
  check.eq(s.type, "file")
  check.eq(s.size, 5)
  check.truthy(math.abs(s.mtime - os.time()) < 600, "mtime is now-ish: " .. tostring(s.mtime))
  check.eq(fs.stat(d).type, "dir")
  check.eq(fs.stat("/dev/null").type, "other")
  check.eq(fs.stat(d .. "/missing"), nil)
  check.eq(fs.stat(d .. "/f.txt/below"), nil) -- under a regular file: nothing there either
  os.execute("rm -rf " .. d)
end)

test("bad input: a path under a regular file, a file as folder, empty, too long and non-string paths, a link loop", function()
  local d = tmpdir()
  touch(d .. "/f.txt", "x")
  local e = check.errors(function() fs.mkdir_p(d .. "/f.txt/sub/deeper") end, "sg.fs.mkdir_p: '" .. d .. "/f.txt/sub/deeper'")
  check.truthy(e:find("Not a directory", 1, true), e)
  check.errors(function() fs.mkdir_p(d .. "/f.txt") end, "Not a directory") -- exists, but as a file
  check.errors(function() fs.list_dir(d .. "/f.txt") end, "sg.fs.list_dir: '" .. d .. "/f.txt': Not a directory")
  check.errors(function() fs.list_dir(d .. "/missing") end, "sg.fs.list_dir: '" .. d .. "/missing': No such file")
  for _, fn in ipairs{"mkdir_p", "list_dir", "stat"} do
    check.errors(function() fs[fn]("") end, "sg.fs." .. fn .. ": path is empty")
    check.errors(function() fs[fn]() end, "sg.fs." .. fn .. ": path must be a string (got no value)")
    check.errors(function() fs[fn]({}) end, "sg.fs." .. fn .. ": path must be a string (got table)")
    check.errors(function() fs[fn]("a\0b") end, "sg.fs." .. fn .. ": path contains a NUL byte")
    check.errors(function() fs[fn](string.rep("n", 5000)) end, "File name too long") -- opened by nobody, root included
  end
  os.execute("ln -s loop " .. d .. "/loop") -- a link to itself cannot be opened either
  check.errors(function() fs.list_dir(d .. "/loop") end, "sg.fs.list_dir: '" .. d .. "/loop': Too many levels")
  check.errors(function() fs.stat(d .. "/loop") end, "sg.fs.stat: '" .. d .. "/loop': Too many levels")
  os.execute("rm -rf " .. d)
end)

test("list_dir and mkdir_p on a folder without permissions name the path", function()
  local d = tmpdir()
  fs.mkdir_p(d .. "/locked")
  os.execute("chmod 000 " .. d .. "/locked")
  local ok = pcall(fs.list_dir, d .. "/locked")
  if ok then -- root reads anything
    os.execute("rm -rf " .. d)
    skip("running with permission to read a mode-000 folder (root)")
  end
  check.errors(function() fs.list_dir(d .. "/locked") end, "sg.fs.list_dir: '" .. d .. "/locked': Permission denied")
  check.errors(function() fs.mkdir_p(d .. "/locked/sub") end, "sg.fs.mkdir_p: '" .. d .. "/locked/sub': Permission denied")
  os.execute("chmod 700 " .. d .. "/locked; rm -rf " .. d)
end)

test("list_dir of a large folder", function()
  local d = tmpdir()
  for i = 1, 300 do touch(string.format("%s/%04d", d, 301 - i)) end
  local names = fs.list_dir(d)
  check.eq(#names, 300)
  for i = 1, 300 do check.eq(names[i], string.format("%04d", i)) end
  os.execute("rm -rf " .. d)
end)
