/* semseg.core.amp_core: the C half of lua/semseg/amp.lua (sg.amp).
 *
 *   set_autocast(device, dtype) -> the previous type ("f32" = off); dtype "bf16" | "f16" turns autocast on
 *       for the device ("cpu" | "cuda"), anything else ("f32") turns it off
 *   get_autocast(device) -> "bf16" | "f16" | "f32" (off)
 *   unscale({grad, ...}, inv_scale, found_inf)   every grad *= inv_scale in place; found_inf (one-element
 *       f32 on the grads' device) set to 1 when a grad held inf or NaN (engine/ops/amp.h) */
#include "binding.h"
#include "../core/autocast.h"
#include "../ops/amp.h"
#include <stdlib.h>
#include <string.h>

static sg_device check_device(lua_State *L, int idx, const char *op) {
  const char *s = luaL_checkstring(L, idx);
  if (strcmp(s, "cpu") == 0) return SG_CPU;
  if (strncmp(s, "cuda", 4) == 0) return SG_CUDA;
  luaL_error(L, "%s: unknown device '%s' (use 'cpu' or 'cuda')", op, s);
  return SG_CPU;
}

static int l_set_autocast(lua_State *L) {
  sg_device dev = check_device(L, 1, "set_autocast");
  sg_dtype dt = lua_isnoneornil(L, 2) ? SG_F32 : sgL_dtype(L, 2, "set_autocast");
  if (dt != SG_F32 && dt != SG_BF16 && dt != SG_F16)
    return luaL_error(L, "set_autocast: the autocast type must be bf16 or f16 (or f32 for off), got %s", sg_dtype_name(dt));
  sg_dtype prev = sg_autocast_get(dev);
  sg_autocast_set(dev, dt);
  lua_pushstring(L, sg_dtype_name(prev));
  return 1;
}

static int l_get_autocast(lua_State *L) {
  lua_pushstring(L, sg_dtype_name(sg_autocast_get(check_device(L, 1, "get_autocast"))));
  return 1;
}

static int l_unscale(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  double inv = luaL_checknumber(L, 2);
  sg_tensor *found = sgL_check(L, 3, "unscale");
  lua_Integer n = luaL_len(L, 1);
  if (n < 0 || n > (1 << 24)) return luaL_error(L, "unscale: bad gradient list");
  /* scratch owned by Lua: freed by the GC even when an error is raised below */
  sg_tensor **g = lua_newuserdatauv(L, sizeof *g * (size_t)(n ? n : 1), 0);
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, 1, k);
    g[k - 1] = sgL_check(L, lua_gettop(L), "unscale"); /* borrowed: the list keeps it alive */
    lua_pop(L, 1);
  }
  if (sg_amp_unscale_(g, (int)n, inv, found)) return sgL_error(L);
  return 0;
}

void sgL_open_amp(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {
    {"set_autocast", l_set_autocast}, {"get_autocast", l_get_autocast}, {"unscale", l_unscale}, {NULL, NULL}};
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, mod, "amp_core");
}
