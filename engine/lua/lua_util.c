/* Argument checking and conversion helpers shared by the binding files. */
#include "binding.h"
#include <math.h>
#include <string.h>

int sgL_error(lua_State *L) { return luaL_error(L, "%s", sg_error_get()); }

sg_tensor *sgL_host_copy(sg_tensor *t) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *h = sg_to_device(t, SG_CPU);
  sg_set_grad_enabled(prev);
  return h;
}

sg_tensor *sgL_push(lua_State *L, sg_tensor *t) {
  if (!t) sgL_error(L);
  sgL_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  luaL_setmetatable(L, SG_TENSOR_MT);
  b->t = t; /* owned from here: __gc releases it */
  sgL_memory_safe_point(L); /* the op is done and its result anchored: a safe point for the collector */
  return t;
}

sg_tensor *sgL_test(lua_State *L, int idx) {
  sgL_box *b = luaL_testudata(L, idx, SG_TENSOR_MT);
  return b ? b->t : NULL;
}

sg_tensor *sgL_check(lua_State *L, int idx, const char *op) {
  sgL_box *b = luaL_testudata(L, idx, SG_TENSOR_MT);
  if (!b) luaL_error(L, "%s: argument #%d must be a tensor (got %s)", op, idx, luaL_typename(L, idx));
  if (!b->t) luaL_error(L, "%s: argument #%d is a tensor that was already closed", op, idx);
  return b->t;
}

int64_t sgL_int(lua_State *L, int idx, const char *op, const char *what) {
  int isnum = 0;
  lua_Integer v = lua_tointegerx(L, idx, &isnum);
  if (!isnum) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      luaL_error(L, "%s: %s must be an integer (got %s)", op, what, lua_tostring(L, idx));
    luaL_error(L, "%s: %s must be an integer (got %s)", op, what, luaL_typename(L, idx));
  }
  return (int64_t)v;
}

sg_dtype sgL_dtype(lua_State *L, int idx, const char *op) {
  const char *s = lua_tostring(L, idx);
  int dt = s ? sg_dtype_from_name(s) : -1;
  if (dt < 0)
    luaL_error(L, "%s: unknown dtype '%s' (use f32, f64, f16, bf16, u8, i32, i64 or bool)", op,
               s ? s : luaL_typename(L, idx));
  return (sg_dtype)dt;
}

sg_tensor *sgL_operand(lua_State *L, int idx, const char *op, const sg_tensor *like) {
  sg_tensor *t = sgL_test(L, idx);
  if (t) return sg_tensor_incref(t);
  if (luaL_testudata(L, idx, SG_TENSOR_MT)) sgL_check(L, idx, op); /* a closed tensor: raises */
  if (lua_isboolean(L, idx)) return sg_scalar(lua_toboolean(L, idx), like ? like->dtype : SG_BOOL, SG_CPU);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    bool isint = lua_isinteger(L, idx);
    if (like) return sg_scalar_like(v, isint, like);
    return sg_scalar(v, isint ? SG_I64 : SG_F32, SG_CPU);
  }
  luaL_error(L, "%s: argument #%d must be a tensor or a number (got %s)", op, idx, luaL_typename(L, idx));
  return NULL;
}

int sgL_dim(lua_State *L, int idx, const char *op, int ndim) {
  int64_t d = sgL_int(L, idx, op, "dim");
  int n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    luaL_error(L, "%s: dim %d is out of range for a tensor of %d dims (dims count from 1; -1 is the last)", op, (int)d,
               ndim);
  return d > 0 ? (int)d - 1 : (int)d + n;
}

bool sgL_dims_mask(lua_State *L, int idx, const char *op, int ndim, bool *mask) {
  for (int d = 0; d < SG_MAX_DIMS; d++) mask[d] = false;
  if (lua_isnoneornil(L, idx)) return false;
  if (lua_istable(L, idx)) {
    lua_Integer n = luaL_len(L, idx);
    if (n == 0) return false;
    for (lua_Integer k = 1; k <= n; k++) {
      lua_geti(L, idx, k);
      int d = sgL_dim(L, lua_gettop(L), op, ndim);
      if (mask[d]) luaL_error(L, "%s: dim %d is given twice", op, d + 1);
      mask[d] = true;
      lua_pop(L, 1);
    }
    return true;
  }
  mask[sgL_dim(L, idx, op, ndim)] = true;
  return true;
}

int sgL_shape(lua_State *L, int idx, const char *op, int64_t *size, int *next) {
  int n = 0;
  if (lua_istable(L, idx)) {
    lua_Integer len = luaL_len(L, idx);
    if (len > SG_MAX_DIMS) luaL_error(L, "%s: %d dims (at most %d)", op, (int)len, SG_MAX_DIMS);
    for (lua_Integer k = 1; k <= len; k++) {
      lua_geti(L, idx, k);
      size[n] = sgL_int(L, -1, op, "size");
      if (size[n] < 0) luaL_error(L, "%s: negative size %I in dim %d", op, (lua_Integer)size[n], n + 1);
      n++;
      lua_pop(L, 1);
    }
    *next = idx + 1;
    return n;
  }
  while (lua_type(L, idx + n) == LUA_TNUMBER) {
    if (n >= SG_MAX_DIMS) luaL_error(L, "%s: more than %d dims", op, SG_MAX_DIMS);
    size[n] = sgL_int(L, idx + n, op, "size");
    if (size[n] < 0) luaL_error(L, "%s: negative size %I in dim %d", op, (lua_Integer)size[n], n + 1);
    n++;
  }
  if (n == 0 && !lua_isnoneornil(L, idx) && !lua_isstring(L, idx))
    luaL_error(L, "%s: expected a shape (a table of sizes or sizes as numbers), got %s", op, luaL_typename(L, idx));
  *next = idx + n;
  return n;
}

static sg_device parse_device(lua_State *L, int idx, const char *op) {
  const char *s = luaL_checkstring(L, idx);
  if (strcmp(s, "cpu") == 0) return SG_CPU;
  if (strncmp(s, "cuda", 4) == 0) return SG_CUDA;
  luaL_error(L, "%s: unknown device '%s' (use 'cpu' or 'cuda')", op, s);
  return SG_CPU;
}

sgL_opts sgL_options(lua_State *L, int idx, const char *op, sg_dtype def) {
  sgL_opts o = {def, SG_CPU, false};
  if (lua_isnoneornil(L, idx)) return o;
  if (lua_type(L, idx) == LUA_TSTRING) { o.dtype = sgL_dtype(L, idx, op); return o; }
  if (!lua_istable(L, idx)) luaL_error(L, "%s: options must be a dtype name or a table, got %s", op, luaL_typename(L, idx));
  if (lua_getfield(L, idx, "dtype") != LUA_TNIL) o.dtype = sgL_dtype(L, -1, op);
  if (lua_getfield(L, idx, "device") != LUA_TNIL) o.device = parse_device(L, lua_gettop(L), op);
  if (lua_getfield(L, idx, "requires_grad") != LUA_TNIL) o.requires_grad = lua_toboolean(L, -1);
  lua_pop(L, 3);
  if (o.requires_grad && !sg_dtype_is_float(o.dtype))
    luaL_error(L, "%s: only floating-point tensors can require grad, got %s", op, sg_dtype_name(o.dtype));
  return o;
}

void sgL_setfuncs(lua_State *L, const luaL_Reg *fns, int mod, int methods) {
  for (; fns->name; fns++) {
    if (mod) { lua_pushcfunction(L, fns->func); lua_setfield(L, mod, fns->name); }
    if (methods) { lua_pushcfunction(L, fns->func); lua_setfield(L, methods, fns->name); }
  }
}
