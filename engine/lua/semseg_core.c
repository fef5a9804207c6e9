/* luaopen_semseg_core: the C half of `require "semseg"`. */
#include "binding.h"
#include <time.h>

/* sg.clock(): monotonic wall-clock seconds, for timing (os.clock is CPU time) */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
  return 1;
}

int luaopen_semseg_core(lua_State *L) {
  lua_newtable(L);
  int mod = lua_gettop(L);
  lua_newtable(L);
  int methods = lua_gettop(L);
  sgL_open_config(L, mod, methods); /* first: the switches steer what the rest sets up */
  sg_backend_cpu_init();
  sgL_open_tensor(L, mod, methods);
  sgL_open_memory(L, mod, methods);
  sgL_open_math(L, mod, methods);
  sgL_open_shape(L, mod, methods);
  sgL_open_autograd(L, mod, methods);
  sgL_open_optim(L, mod, methods);
  sgL_open_bytes(L, mod, methods);
  sgL_open_nn(L, mod, methods);
  sgL_open_data(L, mod, methods);
  sgL_open_io(L, mod, methods);
  sgL_open_loader(L, mod, methods);
  sgL_open_metrics(L, mod, methods);
  sgL_open_cuda(L, mod, methods);
  sgL_open_amp(L, mod, methods);
  sgL_open_device(L, mod, methods);
  sgL_open_fs(L, mod, methods);
  lua_pushcfunction(L, l_clock);
  lua_setfield(L, mod, "clock");
  lua_pushvalue(L, methods);
  lua_setfield(L, mod, "Tensor"); /* the method table: users may add methods */
  lua_pop(L, 1);
  return 1;
}
