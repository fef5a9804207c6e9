-- tostring of tensors.

test("small float tensors", function()
  check.eq(tostring(sg.tensor({1.5, -2.25, 3})), "tensor([ 1.5000, -2.2500,  3.0000], shape=[3], dtype=f32, device=cpu)")
  check.eq(tostring(sg.tensor({{1, 2}, {3, 4}})),
           "tensor([[1.0, 2.0],\n        [3.0, 4.0]], shape=[2,2], dtype=f32, device=cpu)")
  check.eq(tostring(sg.zeros(2, 2, 2, "f64")),
           "tensor([[[0.0, 0.0],\n         [0.0, 0.0]],\n\n        [[0.0, 0.0],\n         [0.0, 0.0]]], " ..
           "shape=[2,2,2], dtype=f64, device=cpu)")
  check.eq(tostring(sg.tensor({1e-5, 1})), "tensor([1.0000e-05, 1.0000e+00], shape=[2], dtype=f32, device=cpu)")
  check.eq(tostring(sg.tensor({0 / 0, math.huge, -math.huge, 1.5})),
           "tensor([   nan,    inf,   -inf, 1.5000], shape=[4], dtype=f32, device=cpu)")
  check.eq(tostring(sg.tensor({0.5}, "f16")), "tensor([0.5000], shape=[1], dtype=f16, device=cpu)")
end)

test("int and bool tensors", function()
  check.eq(tostring(sg.tensor({1, -20, 300}, "i64")), "tensor([  1, -20, 300], shape=[3], dtype=i64, device=cpu)")
  check.eq(tostring(sg.tensor({9007199254740993}, "i64")), "tensor([9007199254740993], shape=[1], dtype=i64, device=cpu)")
  check.eq(tostring(sg.tensor({{1, 2}}, "u8")), "tensor([[1, 2]], shape=[1,2], dtype=u8, device=cpu)")
  check.eq(tostring(sg.tensor({true, false}, "bool")), "tensor([ true, false], shape=[2], dtype=bool, device=cpu)")
end)

test("0-dim and empty tensors", function()
  check.eq(tostring(sg.tensor(3.5)), "tensor(3.5000, shape=[], dtype=f32, device=cpu)")
  check.eq(tostring(sg.tensor(7, "i32")), "tensor(7, shape=[], dtype=i32, device=cpu)")
  check.eq(tostring(sg.tensor(true, "bool")), "tensor(true, shape=[], dtype=bool, device=cpu)")
  check.eq(tostring(sg.zeros(0)), "tensor([], shape=[0], dtype=f32, device=cpu)")
  check.eq(tostring(sg.zeros(2, 0)), "tensor([[],\n        []], shape=[2,0], dtype=f32, device=cpu)")
end)

test("large tensors are summarised with ...", function()
  check.eq(tostring(sg.arange(3000)), "tensor([   0,    1,    2, ..., 2997, 2998, 2999], shape=[3000], dtype=i64, device=cpu)")
  local s = tostring(sg.arange(2000):view(40, 50):float())
  check.truthy(s:find("[   0.0,    1.0,    2.0, ...,   47.0,   48.0,   49.0],", 1, true), s)
  check.truthy(s:find("\n        ...,\n", 1, true), s)
  check.truthy(s:find("shape=[40,50], dtype=f32, device=cpu)", 1, true), s)
  local _, lines = s:gsub("\n", "")
  check.eq(lines, 6) -- 7 lines: 3 rows, "...", 3 rows
  -- not summarised up to 1000 elements
  check.truthy(not tostring(sg.zeros(1000)):find("...", 1, true))
end)

test("requires_grad, views and non-contiguous tensors", function()
  local x = sg.tensor({1.5}):requires_grad()
  check.eq(tostring(x), "tensor([1.5000], shape=[1], dtype=f32, device=cpu, requires_grad=true)")
  check.eq(tostring(x * 2), "tensor([3.0], shape=[1], dtype=f32, device=cpu, requires_grad=true)")
  check.eq(tostring(sg.arange(6):view(2, 3):t()), "tensor([[0, 3],\n        [1, 4],\n        [2, 5]], shape=[3,2], dtype=i64, device=cpu)")
  check.eq(tostring(sg.arange(6):slice(1, 2, 6, 2)), "tensor([1, 3, 5], shape=[3], dtype=i64, device=cpu)")
  check.eq(tostring(sg.tensor({{7}}):expand(2, 2)), "tensor([[7.0, 7.0],\n        [7.0, 7.0]], shape=[2,2], dtype=f32, device=cpu)")
end)
