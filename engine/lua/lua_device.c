/* Moving module state between devices (lua/semseg/nn.lua, Module:to).
 *
 *   t:set_data_(src)  t takes src's data (storage, offset, shape, strides, dtype) and keeps its identity,
 *       its requires_grad flag and its place in optimizers: PyTorch's `param.data = src`. Only leaves
 *       (tensors without history); a gradient that no longer fits (shape, dtype or device) is dropped. */
#include "binding.h"
#include <string.h>

static int m_set_data_(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "set_data_"), *src = sgL_check(L, 2, "set_data_");
  if (t->grad_fn) return luaL_error(L, "set_data_: only a leaf tensor's data can be replaced (this one has history)");
  if (t->requires_grad && !sg_dtype_is_float(src->dtype))
    return luaL_error(L, "set_data_: a tensor that requires grad needs floating-point data, got %s",
                      sg_dtype_name(src->dtype));
  if (t != src) {
    if (src->storage->device != t->storage->device) { /* the live-tensor count follows the data's device */
      sg_memstats_tensor_delta(t->storage->device, -1);
      sg_memstats_tensor_delta(src->storage->device, 1);
    }
    sg_storage_incref(src->storage);
    sg_storage_decref(t->storage);
    t->storage = src->storage;
    t->offset = src->offset;
    t->ndim = src->ndim;
    memcpy(t->size, src->size, sizeof t->size);
    memcpy(t->stride, src->stride, sizeof t->stride);
    t->dtype = src->dtype;
    t->is_view = src->is_view;
    sg_tensor *g = t->grad;
    if (g && (!sg_same_shape(g, t) || g->dtype != t->dtype || g->storage->device != t->storage->device)) {
      t->grad = NULL;
      sg_tensor_decref(g);
    }
  }
  lua_settop(L, 1);
  return 1;
}

void sgL_open_device(lua_State *L, int mod, int methods) {
  (void)mod;
  static const luaL_Reg meths[] = {{"set_data_", m_set_data_}, {NULL, NULL}};
  sgL_setfuncs(L, meths, 0, methods);
}
