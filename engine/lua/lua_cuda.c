/* sg.cuda: the GPU as Lua sees it. Present in every build; without the CUDA
 * backend is_available() is false and the functions that need a device say
 * so. */
#include "binding.h"
#ifdef SG_HAVE_CUDA
#include "../backend_cuda/cuda_backend.h"
#include "../backend_cuda/cuda_matmul.h"
#endif

static int l_is_available(lua_State *L) { lua_pushboolean(L, sg_device_available(SG_CUDA)); return 1; }

static int l_built(lua_State *L) {
#ifdef SG_HAVE_CUDA
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  return 1;
}

static int l_device_count(lua_State *L) {
#ifdef SG_HAVE_CUDA
  lua_pushinteger(L, sg_cuda_device_count());
#else
  lua_pushinteger(L, 0);
#endif
  return 1;
}

/* why no device is usable (nil when one is) */
static int l_why_unavailable(lua_State *L) {
#ifdef SG_HAVE_CUDA
  if (sg_cuda_available()) lua_pushnil(L);
  else lua_pushstring(L, sg_cuda_why_unavailable());
#else
  lua_pushliteral(L, "this semseg was built without the CUDA backend (no nvcc/cuDNN found by make)");
#endif
  return 1;
}

#ifdef SG_HAVE_CUDA
static void need_device(lua_State *L, const char *op) {
  if (!sg_cuda_available()) luaL_error(L, "sg.cuda.%s: no usable CUDA device (%s)", op, sg_cuda_why_unavailable());
}
#define NEED_DEVICE(L, op) need_device(L, op)
#else
#define NEED_DEVICE(L, op) luaL_error(L, "sg.cuda.%s: this semseg was built without the CUDA backend", op)
#endif

static int l_device_name(lua_State *L) {
  NEED_DEVICE(L, "device_name");
#ifdef SG_HAVE_CUDA
  lua_pushstring(L, sg_cuda_device_name());
#endif
  return 1;
}

static int l_synchronize(lua_State *L) {
  NEED_DEVICE(L, "synchronize");
#ifdef SG_HAVE_CUDA
  if (sg_cuda_synchronize()) return sgL_error(L);
#endif
  return 0;
}

static int l_memory_stats(lua_State *L) {
  NEED_DEVICE(L, "memory_stats");
#ifdef SG_HAVE_CUDA
  sg_cuda_memstats s = sg_cuda_memory_stats();
  lua_createtable(L, 0, 10);
#define F(name) (lua_pushinteger(L, s.name), lua_setfield(L, -2, #name))
  F(allocated); F(peak_allocated); F(reserved); F(peak_reserved); F(allocations); F(cache_hits); F(segments);
  F(driver_allocs); F(ooms); F(pinned_bytes);
#undef F
  sg_memstats t = sg_memory_stats(SG_CUDA);
  lua_pushinteger(L, t.live_tensors); lua_setfield(L, -2, "tensors");
#endif
  return 1;
}

static int l_reset_peak(lua_State *L) {
  NEED_DEVICE(L, "reset_peak_memory_stats");
#ifdef SG_HAVE_CUDA
  sg_cuda_reset_peak_stats();
#endif
  return 0;
}

static int l_empty_cache(lua_State *L) {
#ifdef SG_HAVE_CUDA
  lua_gc(L, LUA_GCCOLLECT); /* tensors only Lua still holds go first */
  sg_cuda_empty_cache();
#else
  (void)L;
#endif
  return 0;
}

/* benchmark(on) / benchmark() and deterministic(on) / deterministic(): the
 * cuDNN algorithm policy (a getter without an argument). */
static int l_benchmark(lua_State *L) {
#ifdef SG_HAVE_CUDA
  if (!lua_isnoneornil(L, 1)) sg_cuda_set_benchmark(lua_toboolean(L, 1));
  lua_pushboolean(L, sg_cuda_benchmark());
#else
  lua_pushboolean(L, 0);
#endif
  return 1;
}
static int l_deterministic(lua_State *L) {
#ifdef SG_HAVE_CUDA
  if (!lua_isnoneornil(L, 1)) sg_cuda_set_deterministic(lua_toboolean(L, 1));
  lua_pushboolean(L, sg_cuda_deterministic());
#else
  lua_pushboolean(L, 0);
#endif
  return 1;
}

/* allow_tf32(on) / allow_tf32(): f32 matrix products on TF32 tensor cores (off by default) */
static int l_allow_tf32(lua_State *L) {
#ifdef SG_HAVE_CUDA
  if (!lua_isnoneornil(L, 1)) sg_cuda_set_allow_tf32(lua_toboolean(L, 1));
  lua_pushboolean(L, sg_cuda_allow_tf32());
#else
  lua_pushboolean(L, 0);
#endif
  return 1;
}

/* t:pin_memory(): a page-locked host copy, so t:cuda() runs asynchronously */
static int m_pin_memory(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "pin_memory");
  if (t->storage->device != SG_CPU) return luaL_error(L, "pin_memory: the tensor must be on the cpu, not %s",
                                                      sg_device_name(t->storage->device));
  if (t->storage->pinned) { lua_settop(L, 1); return 1; }
  sg_tensor *p = sgL_push(L, sg_empty_pinned(t->ndim, t->size, t->dtype));
  SGL_TRY(L, sg_copy_(p, t) == 0);
  return 1;
}

void sgL_open_cuda(lua_State *L, int mod, int methods) {
  static const luaL_Reg fns[] = {
    {"is_available", l_is_available}, {"is_built", l_built}, {"device_count", l_device_count},
    {"why_unavailable", l_why_unavailable}, {"device_name", l_device_name}, {"synchronize", l_synchronize},
    {"memory_stats", l_memory_stats}, {"reset_peak_memory_stats", l_reset_peak}, {"empty_cache", l_empty_cache},
    {"benchmark", l_benchmark}, {"deterministic", l_deterministic}, {"allow_tf32", l_allow_tf32}, {NULL, NULL}};
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, mod, "cuda");
  lua_pushcfunction(L, m_pin_memory);
  lua_setfield(L, methods, "pin_memory");
}
