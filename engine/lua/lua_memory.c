/* When the Lua collector runs, and sg.memory_stats / sg.empty_cache.
 *
 * Lua cannot see tensor bytes, so dead tensors waiting for the collector can
 * hold far more memory than Lua thinks it uses. The collector takes a step
 * when the tensor memory in use on a device has grown by the configured step
 * (sg.config.gc_step_mb; a quarter of it on a GPU, whose memory is scarcer)
 * since the last step: checked at safe points only, when an op has finished
 * and its result is handed to Lua (sgL_push), never from inside an op; and
 * after an allocation fails, a full collection before the one retry
 * (memory.c's out-of-memory hook). */
#include "binding.h"
#include "../core/config.h"
#include <pthread.h>
#include <string.h>

static lua_State *main_state;
static pthread_t main_thread; /* worker threads never touch the Lua state */
static long long live_at_step[SG_NDEVICES];

static long long step_bytes(sg_device d) {
  long long b = (long long)(sg_config.gc_step_mb * 1048576.0);
  return d == SG_CPU ? b : b / 4;
}

void sgL_memory_safe_point(lua_State *L) {
  bool step = false;
  long long live[SG_NDEVICES];
  for (int d = 0; d < SG_NDEVICES; d++) {
    live[d] = sg_memory_stats((sg_device)d).bytes;
    if (live[d] < live_at_step[d]) live_at_step[d] = live[d]; /* memory was freed: count growth from here */
    if (live[d] - live_at_step[d] > step_bytes((sg_device)d)) step = true;
  }
  if (!step) return;
  lua_gc(L, LUA_GCSTEP, (int)(step_bytes(SG_CPU) >> 10));
  for (int d = 0; d < SG_NDEVICES; d++) live_at_step[d] = sg_memory_stats((sg_device)d).bytes;
}

/* an allocation failed: free every dead tensor before the last retry (only the thread owning the state may) */
static void oom(void *ud, size_t nbytes) {
  (void)ud; (void)nbytes;
  if (!main_state || !pthread_equal(pthread_self(), main_thread)) return;
  lua_gc(main_state, LUA_GCCOLLECT);
  lua_gc(main_state, LUA_GCCOLLECT); /* the first one's finalizers free tensors the second can collect */
  for (int d = 0; d < SG_NDEVICES; d++) live_at_step[d] = sg_memory_stats((sg_device)d).bytes;
}

/* memory_stats([device]) -> {tensors, storages, bytes, peak_bytes} of the cpu (or "cuda") */
static int l_memory_stats(lua_State *L) {
  sg_device dev = SG_CPU;
  if (lua_type(L, 1) == LUA_TSTRING && strncmp(lua_tostring(L, 1), "cuda", 4) == 0) dev = SG_CUDA;
  sg_memstats s = sg_memory_stats(dev);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, s.live_tensors); lua_setfield(L, -2, "tensors");
  lua_pushinteger(L, s.live_storages); lua_setfield(L, -2, "storages");
  lua_pushinteger(L, s.bytes); lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, s.peak_bytes); lua_setfield(L, -2, "peak_bytes");
  return 1;
}

/* a full collection (dead tensors give their blocks back), then dev's cached blocks go back to the system */
int sgL_empty_cache(lua_State *L, sg_device dev) {
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCCOLLECT);
  sg_memory_empty_cache(dev);
  return 0;
}

/* empty_cache(): the cpu's (sg.cuda.empty_cache() is the GPU's) */
static int l_empty_cache(lua_State *L) { return sgL_empty_cache(L, SG_CPU); }

void sgL_open_memory(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {{"memory_stats", l_memory_stats}, {"empty_cache", l_empty_cache}, {NULL, NULL}};
  lua_pushvalue(L, mod);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
  if (!main_state) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main_state = lua_tothread(L, -1);
    lua_pop(L, 1);
    main_thread = pthread_self();
    sg_set_oom_hook(oom, NULL);
  }
}
