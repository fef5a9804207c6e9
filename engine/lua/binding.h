/* Shared helpers of the Lua binding.
 *
 * Lua-side conventions: dims and positions count from 1 (negative from the
 * end, -1 = last); tensors of indices and class ids count from 0, as in
 * PyTorch, so argmax gives class ids directly. Every function checks its
 * arguments before it allocates; a C-side failure becomes a Lua error
 * carrying sg_error_get(). */
#ifndef SG_BINDING_H
#define SG_BINDING_H
#include "../core/tensor.h"
#include "../ops/ops.h"
#include "../autograd/autograd.h"
#include <lauxlib.h>
#include <lua.h>

#define SG_TENSOR_MT "semseg.Tensor"

/* A full userdata holding one reference; NULL once closed. */
typedef struct { sg_tensor *t; } sgL_box;

/* Pushes t as a Lua tensor, taking over the reference; raises the pending
 * sg error when t is NULL. Returns t. */
sg_tensor *sgL_push(lua_State *L, sg_tensor *t);
/* Tensor at idx, or an error "op: argument #n must be a tensor (got X)". */
sg_tensor *sgL_check(lua_State *L, int idx, const char *op);
sg_tensor *sgL_test(lua_State *L, int idx); /* NULL when not a live tensor */
/* Tensor, or a number/boolean/table converted (number -> dtype of `like`). */
sg_tensor *sgL_operand(lua_State *L, int idx, const char *op, const sg_tensor *like);
int sgL_error(lua_State *L); /* raises sg_error_get() as a Lua error */
/* A host copy of a device tensor (outside autograd), for the entry points that read bytes on the cpu. */
sg_tensor *sgL_host_copy(sg_tensor *t);
#define SGL_TRY(L, expr) do { if (!(expr)) sgL_error(L); } while (0)

/* Lua 1-based (or negative) dim -> 0-based, error naming op. */
int sgL_dim(lua_State *L, int idx, const char *op, int ndim);
/* Dims argument: nil (all), a number, or a table of numbers -> mask. Returns
 * false for "all". */
bool sgL_dims_mask(lua_State *L, int idx, const char *op, int ndim, bool *mask);
/* Shape from a table {2,3} or from numbers at idx..top; returns ndim. */
int sgL_shape(lua_State *L, int idx, const char *op, int64_t *size, int *next);
/* Options after a shape: a dtype string or {dtype=, device=, requires_grad=} */
typedef struct { sg_dtype dtype; sg_device device; bool requires_grad; } sgL_opts;
sgL_opts sgL_options(lua_State *L, int idx, const char *op, sg_dtype default_dtype);
sg_dtype sgL_dtype(lua_State *L, int idx, const char *op);
int64_t sgL_int(lua_State *L, int idx, const char *op, const char *what);

/* Registration: each file adds functions to the module table and methods to
 * the Tensor method table. */
void sgL_open_config(lua_State *L, int mod, int methods);
/* registers the cpu and reference device tables (engine/backend_cpu/backend.c) */
void sg_backend_cpu_init(void);
void sgL_open_tensor(lua_State *L, int mod, int methods);
void sgL_open_memory(lua_State *L, int mod, int methods);
/* After an op, with its result pushed: steps the Lua collector when tensor memory has grown enough (lua_memory.c). */
void sgL_memory_safe_point(lua_State *L);
/* A full collection, then dev's cached blocks go back to the system. */
int sgL_empty_cache(lua_State *L, sg_device dev);
void sgL_open_math(lua_State *L, int mod, int methods);
void sgL_open_shape(lua_State *L, int mod, int methods);
void sgL_open_autograd(lua_State *L, int mod, int methods);
void sgL_open_optim(lua_State *L, int mod, int methods);
void sgL_open_bytes(lua_State *L, int mod, int methods);
void sgL_open_nn(lua_State *L, int mod, int methods);
void sgL_open_data(lua_State *L, int mod, int methods);
void sgL_open_io(lua_State *L, int mod, int methods);
void sgL_open_loader(lua_State *L, int mod, int methods);
void sgL_open_metrics(lua_State *L, int mod, int methods);
void sgL_open_cuda(lua_State *L, int mod, int methods);
void sgL_open_amp(lua_State *L, int mod, int methods);
void sgL_open_device(lua_State *L, int mod, int methods);
void sgL_open_fs(lua_State *L, int mod, int methods);
/* Adds each function of `fns` under its name to both tables (0 = skip). */
void sgL_setfuncs(lua_State *L, const luaL_Reg *fns, int mod, int methods);

int luaopen_semseg_core(lua_State *L);
#endif
