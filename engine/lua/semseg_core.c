/* luaopen_semseg_core: the C half of `require "semseg"`. */
#include "binding.h"
#include <pthread.h>
#include <time.h>

/* Lua cannot see tensor bytes: step the collector when the tensor memory in
 * use on a device has grown by its STEP_BYTES since the last step (tensors that are freed
 * as they die, closed ones and autograd's, do not call for a collection; dead
 * ones waiting for the collector do), and run a full collection when an
 * allocation fails, before retrying it. */
static lua_State *main_state;
static pthread_t main_thread; /* worker threads never touch the Lua state */
/* Per device: bytes in use after the last step, and the growth that calls for
 * the next one. Device memory is scarcer and every dead GPU tensor waiting for
 * the collector holds it, so the GPU steps sooner. */
static long long live_at_step[SG_NDEVICES];
static const long long STEP_BYTES[SG_NDEVICES] = {(long long)64 << 20, (long long)16 << 20};

static void pressure(void *ud, size_t nbytes, bool urgent) {
  (void)ud;
  if (!main_state || !pthread_equal(pthread_self(), main_thread)) return;
  if (urgent) {
    lua_gc(main_state, LUA_GCCOLLECT);
    lua_gc(main_state, LUA_GCCOLLECT);
    for (int d = 0; d < SG_NDEVICES; d++) live_at_step[d] = sg_memory_stats((sg_device)d).bytes;
    return;
  }
  bool step = false;
  long long live[SG_NDEVICES];
  for (int d = 0; d < SG_NDEVICES; d++) {
    live[d] = sg_memory_stats((sg_device)d).bytes + (long long)nbytes; /* the request may be on either */
    if (live[d] < live_at_step[d]) live_at_step[d] = live[d]; /* memory was freed: count growth from here */
    if (live[d] - live_at_step[d] > STEP_BYTES[d]) step = true;
  }
  if (step) {
    lua_gc(main_state, LUA_GCSTEP, (int)(STEP_BYTES[SG_CPU] >> 10));
    for (int d = 0; d < SG_NDEVICES; d++) live_at_step[d] = sg_memory_stats((sg_device)d).bytes + (long long)nbytes;
  }
}


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
  if (!main_state) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main_state = lua_tothread(L, -1);
    lua_pop(L, 1);
    main_thread = pthread_self();
    sg_set_pressure_hook(pressure, NULL);
  }
  return 1;
}
