-- sg.util: is_tensor, edit_distance and check_options (the one validator of option tables).
local util = sg.util

test("is_tensor: tensors of any dtype, not tables or other userdata", function()
  check.eq(util.is_tensor(sg.zeros{2}), true)
  check.eq(util.is_tensor(sg.zeros({2}, "i64")), true)
  check.eq(util.is_tensor(sg.zeros{2}:transpose(1, 1)), true)
  check.eq(util.is_tensor({shape = {2}}), false) -- a table that looks like one
  check.eq(util.is_tensor(io.stdout), false)
  check.eq(util.is_tensor(nil), false)
  check.eq(util.is_tensor(3), false)
end)

test("edit_distance", function()
  check.eq(util.edit_distance("", ""), 0)
  check.eq(util.edit_distance("abc", ""), 3)
  check.eq(util.edit_distance("", "ab"), 2)
  check.eq(util.edit_distance("epoch", "epochs"), 1)
  check.eq(util.edit_distance("kitten", "sitting"), 3)
  check.eq(util.edit_distance("treshold", "threshold"), 1)
end)

test("check_options: known keys pass, the table comes back", function()
  local o = {a = 1, b = 2}
  check.eq(util.check_options(o, {a = true, b = true, c = true}, "f"), o)
  check.eq(util.check_options({}, {"a"}, "f"), {})
  check.eq(util.check_options({0.8, 0.2, seed = 1}, {"seed"}, "f", true)[1], 0.8)
end)

test("check_options: an unknown key names the function, the key, a close match and the known names", function()
  check.errors(function() util.check_options({epoch = 3}, {"epochs", "lr"}, "sg.train.fit") end,
    "sg.train.fit: unknown option 'epoch' (did you mean 'epochs'?; known: epochs, lr)")
  check.errors(function() util.check_options({colour = 1}, {path = true, title = true}, "sg.plot.lines") end,
    "sg.plot.lines: unknown option 'colour' (known: path, title)") -- nothing close: no suggestion
  check.errors(function() util.check_options({x = 1}, {"y", "z"}, "g") end,
    "g: unknown option 'x' (known: y, z)") -- one letter is no typo of another
  check.errors(function() util.check_options({LR = 1}, {"lr"}, "g") end, "(did you mean 'lr'?;")
  -- several bad keys: always the same one is reported
  for _ = 1, 5 do
    check.errors(function() util.check_options({zz = 1, bb = 2, yy = 3}, {"a"}, "g") end, "unknown option 'bb'")
  end
end)

test("check_options: positional entries, non-tables", function()
  check.errors(function() util.check_options({1, 2}, {"seed"}, "h") end, "h: unknown option [1]")
  check.errors(function() util.check_options({0.5, [5] = 1}, {"seed"}, "h", true) end, "h: unknown option [5]")
  check.errors(function() util.check_options(3, {"seed"}, "h") end, "h: expected a table of options (got number)")
  check.errors(function() util.check_options(nil, {"seed"}, "h") end, "h: expected a table of options (got nil)")
end)
