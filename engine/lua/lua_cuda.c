/* sg.cuda: the GPU as Lua sees it. Present in every build; without the CUDA
 * backend is_available() is false and the functions that need a device say
 * so. */
#include "binding.h"
#include "../backend.h"
#include "../core/config.h"

/* The backend is a module loaded on first use: asking whether it is built or
 * available loads it (and maps cuDNN/cuBLAS); nothing here runs at start-up. */
static const sg_backend *cuda(void) { return sg_device_available(SG_CUDA) ? sg_backend_loaded(SG_CUDA) : NULL; }

static int l_is_available(lua_State *L) { lua_pushboolean(L, sg_device_available(SG_CUDA)); return 1; }

static int l_built(lua_State *L) { lua_pushboolean(L, sg_backend_present(SG_CUDA)); return 1; }

static int l_device_count(lua_State *L) {
  const sg_backend *be = sg_backend_present(SG_CUDA) ? sg_backend_loaded(SG_CUDA) : NULL;
  lua_pushinteger(L, be ? be->device_count() : 0);
  return 1;
}

/* why no device is usable (nil when one is) */
static int l_why_unavailable(lua_State *L) {
  if (!sg_backend_present(SG_CUDA)) lua_pushstring(L, sg_backend_why_missing(SG_CUDA));
  else if (sg_device_available(SG_CUDA)) lua_pushnil(L);
  else lua_pushstring(L, sg_backend_loaded(SG_CUDA)->why_unavailable());
  return 1;
}

static const sg_backend *need_device(lua_State *L, const char *op) {
  const sg_backend *be = cuda();
  if (!be) {
    if (!sg_backend_present(SG_CUDA))
      luaL_error(L, "sg.cuda.%s: %s", op, sg_backend_why_missing(SG_CUDA));
    luaL_error(L, "sg.cuda.%s: no usable CUDA device (%s)", op, sg_backend_loaded(SG_CUDA)->why_unavailable());
  }
  return be;
}

static int l_device_name(lua_State *L) {
  lua_pushstring(L, need_device(L, "device_name")->device_name());
  return 1;
}

static int l_synchronize(lua_State *L) {
  if (need_device(L, "synchronize")->synchronize()) return sgL_error(L);
  return 0;
}

static int l_memory_stats(lua_State *L) {
  sg_alloc_stats s = need_device(L, "memory_stats")->alloc_stats();
  lua_createtable(L, 0, 11);
#define F(name) (lua_pushinteger(L, s.name), lua_setfield(L, -2, #name))
  F(allocated); F(peak_allocated); F(reserved); F(peak_reserved); F(allocations); F(cache_hits); F(segments);
  F(driver_allocs); F(ooms); F(pinned_bytes);
#undef F
  sg_memstats t = sg_memory_stats(SG_CUDA);
  lua_pushinteger(L, t.live_tensors); lua_setfield(L, -2, "tensors");
  return 1;
}

static int l_reset_peak(lua_State *L) {
  need_device(L, "reset_peak_memory_stats")->reset_peak_stats();
  return 0;
}

/* only a loaded backend can hold cached memory: nothing to do (and nothing to load) otherwise */
static int l_empty_cache(lua_State *L) {
  const sg_backend *be = sg_backend_loaded(SG_CUDA);
  return be && be->available() ? sgL_empty_cache(L, SG_CUDA) : 0;
}

/* benchmark(on) / benchmark(), deterministic(on) / deterministic(), allow_tf32(on) / allow_tf32(): the
 * runtime configuration's switches (sg.config) under their CUDA names; a getter without an argument */
static int config_flag(lua_State *L, bool *field) {
  if (!lua_isnoneornil(L, 1)) *field = lua_toboolean(L, 1);
  lua_pushboolean(L, *field);
  return 1;
}
static int l_benchmark(lua_State *L) { return config_flag(L, &sg_config.cuda_benchmark); }
static int l_deterministic(lua_State *L) { return config_flag(L, &sg_config.deterministic); }
static int l_allow_tf32(lua_State *L) { return config_flag(L, &sg_config.allow_tf32); }

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
