/* Autograd, grad mode, memory statistics and the random seed from Lua. */
#include "binding.h"
#include <string.h>

static int m_requires_grad(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "requires_grad");
  bool on = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
  if (on && !sg_dtype_is_float(t->dtype))
    return luaL_error(L, "requires_grad: only floating-point tensors can require grad, got %s", sg_dtype_name(t->dtype));
  if (!on && t->grad_fn)
    return luaL_error(L, "requires_grad: cannot turn it off on a non-leaf tensor (use detach)");
  t->requires_grad = on;
  lua_settop(L, 1);
  return 1;
}

static int m_needs_grad(lua_State *L) { lua_pushboolean(L, sgL_check(L, 1, "needs_grad")->requires_grad); return 1; }

/* loss:backward([grad]) */
static int m_backward(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "backward");
  sg_tensor *g = lua_isnoneornil(L, 2) ? NULL : sgL_check(L, 2, "backward");
  if (sg_backward(t, g)) return sgL_error(L);
  return 0;
}

static int l_no_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  bool prev = sg_set_grad_enabled(false);
  int n = lua_gettop(L);
  int rc = lua_pcall(L, n - 1, LUA_MULTRET, 0);
  sg_set_grad_enabled(prev);
  if (rc != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, sg_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}
static int l_is_grad_enabled(lua_State *L) { lua_pushboolean(L, sg_grad_enabled()); return 1; }


static int l_manual_seed(lua_State *L) {
  sg_manual_seed((uint64_t)sgL_int(L, 1, "manual_seed", "seed"));
  return 0;
}

/* rng state as a table {seed=, offset=} so checkpoints can store it */
static int l_rng_state(lua_State *L) {
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "seed"); lua_getfield(L, 1, "offset");
    sg_rng_state s = {(uint64_t)sgL_int(L, -2, "rng_state", "seed"), (uint64_t)sgL_int(L, -1, "rng_state", "offset")};
    sg_rng_set(s);
    return 0;
  }
  sg_rng_state s = sg_rng_get();
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)s.seed); lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)s.offset); lua_setfield(L, -2, "offset");
  return 1;
}

static const luaL_Reg METHODS[] = {
  {"requires_grad", m_requires_grad}, {"requires_grad_", m_requires_grad}, {"needs_grad", m_needs_grad},
  {"backward", m_backward}, {NULL, NULL}};
static const luaL_Reg FNS[] = {
  {"no_grad", l_no_grad}, {"set_grad_enabled", l_set_grad_enabled}, {"is_grad_enabled", l_is_grad_enabled},
  {"manual_seed", l_manual_seed}, {"rng_state", l_rng_state}, {NULL, NULL}};

void sgL_open_autograd(lua_State *L, int mod, int methods) {
  sgL_setfuncs(L, METHODS, 0, methods);
  sgL_setfuncs(L, FNS, mod, 0);
}
