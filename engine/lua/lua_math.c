/* Elementwise ops, their metamethods, and reductions. */
#include "binding.h"
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- binary */
static int binary(lua_State *L, sg_binop op, bool inplace) {
  const char *name = sg_binop_name(op);
  sg_tensor *ta = sgL_test(L, 1), *tb = sgL_test(L, 2);
  if (!ta && !tb) {
    if (lua_type(L, 1) == LUA_TUSERDATA || lua_type(L, 2) == LUA_TUSERDATA)
      sgL_check(L, lua_type(L, 1) == LUA_TUSERDATA ? 1 : 2, name); /* a closed tensor: raises */
    return luaL_error(L, "%s: at least one argument must be a tensor (got %s and %s)", name, luaL_typename(L, 1),
                      luaL_typename(L, 2));
  }
  if (inplace && !ta) sgL_check(L, 1, name);
  sg_tensor *a = ta ? sg_tensor_incref(ta) : sgL_operand(L, 1, name, tb);
  sgL_push(L, a); /* anchored on the stack so an error below frees it */
  sg_tensor *b = tb ? sg_tensor_incref(tb) : sgL_operand(L, 2, name, ta);
  sgL_push(L, b);
  if (inplace) {
    sg_tensor *r = sg_binary_(op, a, b); /* a new reference to a */
    if (!r) return sgL_error(L);
    sg_tensor_decref(r);
    lua_settop(L, 1);
    return 1;
  }
  sgL_push(L, sg_binary(op, a, b));
  return 1;
}

#define BIN(fn, op) \
  static int l_##fn(lua_State *L) { return binary(L, op, false); } \
  static int l_##fn##_(lua_State *L) { return binary(L, op, true); }
BIN(add, SG_ADD) BIN(sub, SG_SUB) BIN(mul, SG_MUL) BIN(div, SG_DIV) BIN(pow, SG_POW)
BIN(minimum, SG_MINIMUM) BIN(maximum, SG_MAXIMUM) BIN(eq, SG_EQ) BIN(ne, SG_NE) BIN(lt, SG_LT)
BIN(le, SG_LE) BIN(gt, SG_GT) BIN(ge, SG_GE) BIN(logical_and, SG_AND) BIN(logical_or, SG_OR)

/* ---------------------------------------------------------------- unary */
static int unary(lua_State *L, sg_unop op, bool inplace) {
  sg_tensor *a = sgL_check(L, 1, sg_unop_name(op));
  if (inplace) {
    sg_tensor *r = sg_unary_(op, a);
    if (!r) return sgL_error(L);
    sg_tensor_decref(r);
    lua_settop(L, 1);
    return 1;
  }
  sgL_push(L, sg_unary(op, a));
  return 1;
}
#define UN(fn, op) \
  static int l_##fn(lua_State *L) { return unary(L, op, false); } \
  static int l_##fn##_(lua_State *L) { return unary(L, op, true); }
UN(neg, SG_NEG) UN(abs, SG_ABS) UN(exp, SG_EXP) UN(log, SG_LOG) UN(log1p, SG_LOG1P) UN(sqrt, SG_SQRT)
UN(rsqrt, SG_RSQRT) UN(sigmoid, SG_SIGMOID) UN(tanh, SG_TANH) UN(relu, SG_RELU) UN(logical_not, SG_NOT)
UN(sign, SG_SIGN) UN(square, SG_SQUARE)

/* gelu(t [, {approximate = "none" | "tanh"}]) as in PyTorch: the exact x * Phi(x) or its tanh approximation */
static sg_unop gelu_form(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return SG_GELU;
  luaL_checktype(L, idx, LUA_TTABLE);
  sg_unop op = SG_GELU;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!key || strcmp(key, "approximate") != 0)
      return luaL_error(L, "gelu: unknown option '%s' (expected approximate)", key ? key : luaL_typename(L, -2));
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (v && strcmp(v, "tanh") == 0) op = SG_GELU_TANH;
    else if (!v || strcmp(v, "none") != 0)
      return luaL_error(L, "gelu: approximate must be \"none\" or \"tanh\" (got %s)",
                        v ? v : luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return op;
}
static int l_gelu(lua_State *L) {
  sgL_check(L, 1, "gelu");
  return unary(L, gelu_form(L, 2), false);
}
static int l_gelu_(lua_State *L) {
  sgL_check(L, 1, "gelu");
  return unary(L, gelu_form(L, 2), true);
}

static double opt_bound(lua_State *L, int idx, double def) {
  if (lua_isnoneornil(L, idx)) return def;
  return luaL_checknumber(L, idx);
}
static int clamp(lua_State *L, bool inplace) {
  sg_tensor *a = sgL_check(L, 1, "clamp");
  double lo = opt_bound(L, 2, -INFINITY), hi = opt_bound(L, 3, INFINITY);
  if (inplace) {
    sg_tensor *r = sg_clamp_(a, lo, hi);
    if (!r) return sgL_error(L);
    sg_tensor_decref(r);
    lua_settop(L, 1);
    return 1;
  }
  sgL_push(L, sg_clamp(a, lo, hi));
  return 1;
}
static int l_clamp(lua_State *L) { return clamp(L, false); }
static int l_clamp_(lua_State *L) { return clamp(L, true); }

/* sg.where(cond, a, b): a and b may be numbers */
static int l_where(lua_State *L) {
  sg_tensor *c = sgL_check(L, 1, "where");
  sg_tensor *ta = sgL_test(L, 2), *tb = sgL_test(L, 3);
  const sg_tensor *like = ta ? ta : tb;
  sg_tensor *a = ta ? sg_tensor_incref(ta) : sgL_operand(L, 2, "where", like);
  sgL_push(L, a);
  sg_tensor *b = tb ? sg_tensor_incref(tb) : sgL_operand(L, 3, "where", like ? like : a);
  sgL_push(L, b);
  sgL_push(L, sg_where(c, a, b));
  return 1;
}

static int l_masked_fill(lua_State *L) {
  sg_tensor *a = sgL_check(L, 1, "masked_fill"), *m = sgL_check(L, 2, "masked_fill");
  sgL_push(L, sg_masked_fill(a, m, luaL_checknumber(L, 3)));
  return 1;
}

/* ---------------------------------------------------------------- reductions */
typedef sg_tensor *(*reduce_fn)(sg_tensor *, const bool *, bool);

static int reduction(lua_State *L, const char *name, reduce_fn fn) {
  sg_tensor *a = sgL_check(L, 1, name);
  bool mask[SG_MAX_DIMS];
  bool some = sgL_dims_mask(L, 2, name, a->ndim, mask);
  sgL_push(L, fn(a, some ? mask : NULL, lua_toboolean(L, 3)));
  return 1;
}
#define RED(fn) static int l_##fn(lua_State *L) { return reduction(L, #fn, sg_##fn); }
RED(sum) RED(mean) RED(prod) RED(amax) RED(amin) RED(all) RED(any) RED(count_nonzero)

/* var/std(dims, keepdim, correction = 1 (unbiased)) */
static int var_std(lua_State *L, bool is_std) {
  const char *name = is_std ? "std" : "var";
  sg_tensor *a = sgL_check(L, 1, name);
  bool mask[SG_MAX_DIMS];
  bool some = sgL_dims_mask(L, 2, name, a->ndim, mask);
  double corr = lua_isnoneornil(L, 4) ? 1 : luaL_checknumber(L, 4);
  sgL_push(L, (is_std ? sg_std : sg_var)(a, some ? mask : NULL, lua_toboolean(L, 3), corr));
  return 1;
}
static int l_var(lua_State *L) { return var_std(L, false); }
static int l_std(lua_State *L) { return var_std(L, true); }

/* norm(p = 2, dims, keepdim); p may be math.huge or "inf" */
static int l_norm(lua_State *L) {
  sg_tensor *a = sgL_check(L, 1, "norm");
  double p = 2;
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "inf") == 0) p = INFINITY;
  else if (!lua_isnoneornil(L, 2)) p = luaL_checknumber(L, 2);
  bool mask[SG_MAX_DIMS];
  bool some = sgL_dims_mask(L, 3, "norm", a->ndim, mask);
  sgL_push(L, sg_norm(a, p, some ? mask : NULL, lua_toboolean(L, 4)));
  return 1;
}

/* max()           -> the largest value (0-dim)
 * max(dim [,keep])-> values, indices (0-based, i64)
 * max(tensor)     -> elementwise maximum */
static int extreme(lua_State *L, bool is_max) {
  const char *name = is_max ? "max" : "min";
  sg_tensor *a = sgL_check(L, 1, name);
  if (sgL_test(L, 2) || (lua_type(L, 2) == LUA_TNUMBER && !lua_isinteger(L, 2)))
    return binary(L, is_max ? SG_MAXIMUM : SG_MINIMUM, false);
  if (lua_isnoneornil(L, 2)) { sgL_push(L, (is_max ? sg_amax : sg_amin)(a, NULL, false)); return 1; }
  int d = sgL_dim(L, 2, name, a->ndim);
  sg_tensor *v = NULL, *i = NULL;
  if ((is_max ? sg_max_dim : sg_min_dim)(a, d, lua_toboolean(L, 3), &v, &i)) return sgL_error(L);
  sgL_push(L, v);
  sgL_push(L, i);
  return 2;
}
static int l_max(lua_State *L) { return extreme(L, true); }
static int l_min(lua_State *L) { return extreme(L, false); }

static int arg_extreme(lua_State *L, bool is_max) {
  const char *name = is_max ? "argmax" : "argmin";
  sg_tensor *a = sgL_check(L, 1, name);
  int d = lua_isnoneornil(L, 2) ? SG_ALL_DIMS : sgL_dim(L, 2, name, a->ndim);
  sgL_push(L, (is_max ? sg_argmax : sg_argmin)(a, d, lua_toboolean(L, 3)));
  return 1;
}
static int l_argmax(lua_State *L) { return arg_extreme(L, true); }
static int l_argmin(lua_State *L) { return arg_extreme(L, false); }

/* ---------------------------------------------------------------- matmul */
static int l_matmul(lua_State *L) {
  sgL_push(L, sg_matmul(sgL_check(L, 1, "matmul"), sgL_check(L, 2, "matmul")));
  return 1;
}
static int l_bmm(lua_State *L) {
  sgL_push(L, sg_bmm(sgL_check(L, 1, "bmm"), sgL_check(L, 2, "bmm")));
  return 1;
}

static int l_matmul_reference(lua_State *L) {
  sgL_push(L, sg_matmul_reference(sgL_check(L, 1, "matmul"), sgL_check(L, 2, "matmul")));
  return 1;
}

static const luaL_Reg FNS[] = {
#define E(n) {#n, l_##n}, {#n "_", l_##n##_},
  E(add) E(sub) E(mul) E(div) E(pow) E(minimum) E(maximum) E(eq) E(ne) E(lt) E(le) E(gt) E(ge)
  E(logical_and) E(logical_or) E(neg) E(abs) E(exp) E(log) E(log1p) E(sqrt) E(rsqrt) E(sigmoid) E(tanh)
  E(relu) E(logical_not) E(sign) E(square) E(gelu) E(clamp)
#undef E
  {"where", l_where}, {"masked_fill", l_masked_fill},
  {"sum", l_sum}, {"mean", l_mean}, {"prod", l_prod}, {"amax", l_amax}, {"amin", l_amin}, {"all", l_all},
  {"any", l_any}, {"count_nonzero", l_count_nonzero}, {"var", l_var}, {"std", l_std}, {"norm", l_norm},
  {"max", l_max}, {"min", l_min}, {"argmax", l_argmax}, {"argmin", l_argmin},
  {"matmul", l_matmul}, {"bmm", l_bmm}, {"_matmul_reference", l_matmul_reference}, {NULL, NULL}};

static const luaL_Reg META[] = {
  {"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul}, {"__div", l_div}, {"__pow", l_pow},
  {"__unm", l_neg}, {NULL, NULL}};

void sgL_open_math(lua_State *L, int mod, int methods) {
  sgL_setfuncs(L, FNS, mod, methods);
  luaL_getmetatable(L, SG_TENSOR_MT);
  luaL_setfuncs(L, META, 0);
  lua_pop(L, 1);
}
