/* Lua entry points of the fused optimizer kernels (sg.optim_core). */
#include "binding.h"
#include "../ops/optim.h"

static double num_field(lua_State *L, int idx, const char *k, double def) {
  lua_getfield(L, idx, k);
  double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}
static bool bool_field(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}
static sg_tensor *opt_tensor(lua_State *L, int idx, const char *op) {
  return lua_isnoneornil(L, idx) ? NULL : sgL_check(L, idx, op);
}

/* sgd_step(p, grad, buf|nil, hyper, first) */
static int l_sgd_step(lua_State *L) {
  sg_tensor *p = sgL_check(L, 1, "sgd"), *g = sgL_check(L, 2, "sgd"), *b = opt_tensor(L, 3, "sgd");
  luaL_checktype(L, 4, LUA_TTABLE);
  sg_sgd_hyper h = {num_field(L, 4, "lr", 0.01), num_field(L, 4, "momentum", 0), num_field(L, 4, "dampening", 0),
                    num_field(L, 4, "weight_decay", 0), bool_field(L, 4, "nesterov")};
  if (sg_sgd_step(p, g, b, &h, lua_toboolean(L, 5))) return sgL_error(L);
  return 0;
}

/* adam_step(p, grad, m, v, vmax|nil, hyper, step) */
static int l_adam_step(lua_State *L) {
  sg_tensor *p = sgL_check(L, 1, "adam"), *g = sgL_check(L, 2, "adam"), *m = sgL_check(L, 3, "adam"),
            *v = sgL_check(L, 4, "adam"), *vmax = opt_tensor(L, 5, "adam");
  luaL_checktype(L, 6, LUA_TTABLE);
  sg_adam_hyper h = {num_field(L, 6, "lr", 1e-3), num_field(L, 6, "beta1", 0.9), num_field(L, 6, "beta2", 0.999),
                     num_field(L, 6, "eps", 1e-8), num_field(L, 6, "weight_decay", 0), bool_field(L, 6, "decoupled")};
  if (sg_adam_step(p, g, m, v, vmax, &h, sgL_int(L, 7, "adam", "step"))) return sgL_error(L);
  return 0;
}

/* rmsprop_step(p, grad, square_avg, buf|nil, grad_avg|nil, hyper) */
static int l_rmsprop_step(lua_State *L) {
  sg_tensor *p = sgL_check(L, 1, "rmsprop"), *g = sgL_check(L, 2, "rmsprop"), *sq = sgL_check(L, 3, "rmsprop");
  sg_tensor *b = opt_tensor(L, 4, "rmsprop"), *ga = opt_tensor(L, 5, "rmsprop");
  luaL_checktype(L, 6, LUA_TTABLE);
  sg_rmsprop_hyper h = {num_field(L, 6, "lr", 0.01), num_field(L, 6, "alpha", 0.99), num_field(L, 6, "eps", 1e-8),
                        num_field(L, 6, "weight_decay", 0), num_field(L, 6, "momentum", 0)};
  if (sg_rmsprop_step(p, g, sq, b, ga, &h)) return sgL_error(L);
  return 0;
}

/* grad_norm({tensors}, norm_type = 2) -> the norm of all of them as one vector (math.huge: max |x|);
 * one fused pass per tensor on its device and a single read */
static int l_grad_norm(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double p = luaL_optnumber(L, 2, 2);
  lua_Integer n = luaL_len(L, 1);
  if (n > 1 << 24) return luaL_error(L, "grad_norm: too many tensors (%I)", n);
  sg_tensor **ts = lua_newuserdatauv(L, sizeof(sg_tensor *) * (size_t)(n > 0 ? n : 1), 0);
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, 1, k);
    ts[k - 1] = sgL_check(L, -1, "grad_norm");
    lua_pop(L, 1); /* the table keeps it alive */
  }
  double total;
  if (sg_grad_norm((int)n, ts, p, &total)) return sgL_error(L);
  lua_pushnumber(L, total);
  return 1;
}

static const luaL_Reg FNS[] = {
  {"sgd_step", l_sgd_step}, {"adam_step", l_adam_step}, {"rmsprop_step", l_rmsprop_step},
  {"grad_norm", l_grad_norm}, {NULL, NULL}};

void sgL_open_optim(lua_State *L, int mod, int methods) {
  (void)methods;
  lua_newtable(L);
  luaL_setfuncs(L, FNS, 0);
  lua_setfield(L, mod, "optim_core");
}
