/* Tensors: a refcounted storage plus a strided view of it.
 *
 * Conventions for the whole C engine:
 *  - functions returning sg_tensor* return a NEW reference (caller decrefs);
 *    tensor arguments are borrowed.
 *  - on failure a function returns NULL (or -1) after sg_error_set(); it checks
 *    its arguments before allocating anything, so nothing leaks.
 *  - dims and indices are 0-based here; the Lua binding converts. */
#ifndef SG_TENSOR_H
#define SG_TENSOR_H
#include "dtype.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SG_MAX_DIMS 8

typedef enum { SG_CPU = 0, SG_CUDA = 1, SG_NDEVICES } sg_device;
const char *sg_device_name(sg_device d);

/* ---- errors (thread-local message) ---- */
void sg_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *sg_error_get(void);

/* ---- storage ---- */
typedef struct sg_storage {
  atomic_int refcount;
  sg_device device;
  size_t nbytes;
  void *data;
  bool pinned; /* page-locked host memory (CUDA builds): host<->device copies run asynchronously */
  atomic_uint_fast64_t version; /* bumped by every in-place write (autograd checks it) */
} sg_storage;

sg_storage *sg_storage_new(sg_device dev, size_t nbytes);
/* Host memory that the GPU can copy from asynchronously; plain memory when
 * there is no CUDA device. */
sg_storage *sg_storage_new_pinned(size_t nbytes);
/* Devices this build can use: "cpu" or "cpu, cuda (<device name>)". */
bool sg_device_available(sg_device d);
void sg_storage_incref(sg_storage *s);
void sg_storage_decref(sg_storage *s);

/* Memory accounting, per device. */
typedef struct { int64_t live_tensors, live_storages, bytes, peak_bytes; } sg_memstats;
sg_memstats sg_memory_stats(sg_device dev);
/* A live tensor counted on dev (d = +1) or no longer (-1); a tensor's count follows its storage's device. */
void sg_memstats_tensor_delta(sg_device dev, int d);
/* ---- memory (memory.c): the one place of memory policy ---- */
/* Bytes for a storage on dev: the host allocator or the device's table; on failure the cached blocks are
 * given back, then the out-of-memory hook runs (the binding's full Lua collection) and it is tried once more.
 * NULL with an error naming the bytes asked and in use. */
void *sg_mem_alloc(sg_device dev, size_t nbytes);
void *sg_mem_alloc_pinned(size_t nbytes); /* NULL when no GPU backend can pin memory */
void sg_mem_free(sg_device dev, bool pinned, void *data, size_t nbytes);
void sg_mem_account(sg_device dev, long long bytes, int storages);
/* Gives dev's cached blocks back (cpu: and restarts its resident budget from what is in use). */
void sg_memory_empty_cache(sg_device dev);
/* Called after an allocation failed, before the last retry: it should free what it can (a full Lua GC). */
typedef void (*sg_oom_fn)(void *ud, size_t nbytes);
void sg_set_oom_hook(sg_oom_fn fn, void *ud);

/* ---- tensor ---- */
struct sg_node;
typedef struct sg_tensor {
  atomic_int refcount;
  sg_storage *storage;
  int64_t offset; /* in elements */
  int ndim;
  int64_t size[SG_MAX_DIMS];
  int64_t stride[SG_MAX_DIMS]; /* in elements, may be 0 (expanded) */
  sg_dtype dtype;
  bool requires_grad;
  bool is_view;              /* shares storage with the tensor it was made from */
  struct sg_tensor *grad;    /* accumulated gradient (leaves) */
  struct sg_node *grad_fn;   /* node that produced it (non-leaves) */
} sg_tensor;

typedef struct { int ndim; int64_t size[SG_MAX_DIMS]; } sg_shape;

sg_tensor *sg_tensor_incref(sg_tensor *t);
/* How a dying tensor's grad_fn is released (set by the autograd tape; core does not know nodes). */
void sg_set_grad_fn_release(void (*fn)(struct sg_node *));
/* A new tensor sharing t's storage and view, without history (views and autograd build on it). */
sg_tensor *sg_alias(sg_tensor *t);
void sg_tensor_decref(sg_tensor *t);
/* Replaces *slot with t (incref'd), releasing the old one. */
void sg_tensor_assign(sg_tensor **slot, sg_tensor *t);

int64_t sg_numel(const sg_tensor *t);
int64_t sg_shape_numel(int ndim, const int64_t *size);
bool sg_is_contiguous(const sg_tensor *t);
bool sg_same_shape(const sg_tensor *a, const sg_tensor *b);
void *sg_data_ptr(const sg_tensor *t); /* address of element 0 */
sg_shape sg_shape_of(const sg_tensor *t);
/* Writes "[2,3,4]" into buf. */
const char *sg_shape_str(int ndim, const int64_t *size, char *buf, size_t n);
#define SG_SHAPE_STR(t) sg_shape_str((t)->ndim, (t)->size, (char[96]){0}, 96)

/* ---- creation ---- */
sg_tensor *sg_empty(int ndim, const int64_t *size, sg_dtype dt, sg_device dev);
sg_tensor *sg_empty_pinned(int ndim, const int64_t *size, sg_dtype dt); /* cpu, page-locked when possible */
sg_tensor *sg_zeros(int ndim, const int64_t *size, sg_dtype dt, sg_device dev);
sg_tensor *sg_full(int ndim, const int64_t *size, double v, sg_dtype dt, sg_device dev);
sg_tensor *sg_scalar(double v, sg_dtype dt, sg_device dev); /* 0-dim */
sg_tensor *sg_empty_like(const sg_tensor *t);
sg_tensor *sg_zeros_like(const sg_tensor *t);
sg_tensor *sg_arange(double start, double end, double step, sg_dtype dt);
sg_tensor *sg_linspace(double start, double end, int64_t n, sg_dtype dt);
sg_tensor *sg_eye(int64_t n, int64_t m, sg_dtype dt);

/* ---- element access (any dtype, through double) ---- */
double sg_get_f64(const sg_tensor *t, const int64_t *idx);
void sg_set_f64(sg_tensor *t, const int64_t *idx, double v);
/* Element at flat position i in row-major logical order. */
double sg_get_flat(const sg_tensor *t, int64_t i);

/* ---- views (share storage; differentiable) ---- */
sg_tensor *sg_view(sg_tensor *t, int ndim, const int64_t *size); /* one -1 allowed */
sg_tensor *sg_reshape(sg_tensor *t, int ndim, const int64_t *size); /* copies when it must */
sg_tensor *sg_permute(sg_tensor *t, const int *perm);
sg_tensor *sg_transpose(sg_tensor *t, int d0, int d1);
sg_tensor *sg_narrow(sg_tensor *t, int dim, int64_t start, int64_t len);
sg_tensor *sg_slice(sg_tensor *t, int dim, int64_t start, int64_t stop, int64_t step);
sg_tensor *sg_select(sg_tensor *t, int dim, int64_t index);
sg_tensor *sg_expand(sg_tensor *t, int ndim, const int64_t *size); /* -1 keeps a size */
sg_tensor *sg_squeeze(sg_tensor *t, int dim); /* dim -1 .. : all size-1 dims when dim == SG_ALL_DIMS */
sg_tensor *sg_unsqueeze(sg_tensor *t, int dim);
sg_tensor *sg_contiguous(sg_tensor *t); /* returns t itself (incref'd) if already contiguous */
sg_tensor *sg_clone(sg_tensor *t);
sg_tensor *sg_detach(sg_tensor *t); /* shares storage, no history */
#define SG_ALL_DIMS (-1000)

/* ---- copy and cast ---- */
sg_tensor *sg_to_dtype(sg_tensor *t, sg_dtype dt); /* incref'd t when already dt */
/* t on another device (differentiable: the gradient goes back); incref'd t when already there */
sg_tensor *sg_to_device(sg_tensor *t, sg_device dev);
/* Error naming op and both devices when the tensors are not all on one device. */
bool sg_same_device(const char *op, int n, sg_tensor *const *ts);
/* dst <- src (broadcast src to dst's shape, any dtypes); in place, bumps version. */
int sg_copy_(sg_tensor *dst, sg_tensor *src);
int sg_fill_(sg_tensor *t, double v);

/* Normalises a possibly negative dim; -1 with an error when out of range. */
int sg_wrap_dim(const char *op, int dim, int ndim);
/* Broadcast two shapes; returns false (with error naming op) when incompatible. */
bool sg_broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b,
                         int *nout, int64_t *out);

/* ---- path notes (path.c): which implementation an op family's last call on this thread ran ---- */
typedef enum { SG_PATH_CONV, SG_PATH_POOL, SG_PATH_NORM, SG_PATH_ELTWISE, SG_NPATHS } sg_path_family;
void sg_path_note(sg_path_family f, const char *what);
const char *sg_path_last(sg_path_family f); /* "none" before the first call */

/* Allocation limits: reject absurd sizes before calling malloc. */
#define SG_MAX_NUMEL ((int64_t)1 << 40)

#endif
