/* Tensor lifecycle, creation and element access. */
#include "tensor.h"
#include "../backend.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tape owns the nodes; core only hands a dying tensor's node back to it (autograd sets this before it
 * attaches the first node, so a tensor with a node always finds it set). */
static void (*grad_fn_release)(struct sg_node *);
void sg_set_grad_fn_release(void (*fn)(struct sg_node *)) { grad_fn_release = fn; }

sg_tensor *sg_tensor_incref(sg_tensor *t) { if (t) atomic_fetch_add(&t->refcount, 1); return t; }

void sg_tensor_decref(sg_tensor *t) {
  if (!t || atomic_fetch_sub(&t->refcount, 1) != 1) return;
  sg_memstats_tensor_delta(t->storage->device, -1);
  sg_storage_decref(t->storage);
  sg_tensor_decref(t->grad);
  if (t->grad_fn) grad_fn_release(t->grad_fn);
  free(t);
}

void sg_tensor_assign(sg_tensor **slot, sg_tensor *t) {
  sg_tensor_incref(t);
  sg_tensor_decref(*slot);
  *slot = t;
}

int64_t sg_shape_numel(int ndim, const int64_t *size) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= size[d];
  return n;
}
int64_t sg_numel(const sg_tensor *t) { return sg_shape_numel(t->ndim, t->size); }

bool sg_is_contiguous(const sg_tensor *t) {
  int64_t expect = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->size[d] != 1 && t->stride[d] != expect) return false;
    expect *= t->size[d];
  }
  return true;
}

bool sg_same_shape(const sg_tensor *a, const sg_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++) if (a->size[d] != b->size[d]) return false;
  return true;
}

void *sg_data_ptr(const sg_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)sg_dtype_size(t->dtype);
}

sg_shape sg_shape_of(const sg_tensor *t) {
  sg_shape s = {t->ndim, {0}};
  memcpy(s.size, t->size, sizeof(int64_t) * (size_t)t->ndim);
  return s;
}

const char *sg_shape_str(int ndim, const int64_t *size, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int d = 0; d < ndim && k < n; d++)
    k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)size[d]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* Wraps an existing storage; takes over the caller's storage reference. */
static sg_tensor *wrap(sg_storage *s, int ndim, const int64_t *size, sg_dtype dt) {
  sg_tensor *t = calloc(1, sizeof *t);
  if (!t) { sg_storage_decref(s); sg_error_set("out of memory"); return NULL; }
  atomic_init(&t->refcount, 1);
  t->storage = s;
  t->ndim = ndim;
  t->dtype = dt;
  int64_t st = 1;
  for (int d = ndim - 1; d >= 0; d--) { t->size[d] = size[d]; t->stride[d] = st; st *= size[d]; }
  sg_memstats_tensor_delta(s->device, 1);
  return t;
}

sg_tensor *sg_empty(int ndim, const int64_t *size, sg_dtype dt, sg_device dev) {
  if (ndim < 0 || ndim > SG_MAX_DIMS) { sg_error_set("tensor: %d dims (at most %d)", ndim, SG_MAX_DIMS); return NULL; }
  if ((unsigned)dt >= SG_NDTYPES) { sg_error_set("tensor: bad dtype %d", (int)dt); return NULL; }
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (size[d] < 0) {
      sg_error_set("tensor: negative size %lld in dim %d of %s", (long long)size[d], d + 1,
                   sg_shape_str(ndim, size, (char[96]){0}, 96));
      return NULL;
    }
    if (size[d] && n > SG_MAX_NUMEL / size[d]) {
      sg_error_set("tensor: shape %s is too large", sg_shape_str(ndim, size, (char[96]){0}, 96));
      return NULL;
    }
    n *= size[d];
  }
  sg_storage *s = sg_storage_new(dev, (size_t)n * sg_dtype_size(dt));
  return s ? wrap(s, ndim, size, dt) : NULL;
}

sg_tensor *sg_empty_pinned(int ndim, const int64_t *size, sg_dtype dt) {
  sg_tensor *t = sg_empty(ndim, size, dt, SG_CPU); /* checks the shape */
  if (!t) return NULL;
  sg_storage *s = sg_storage_new_pinned(t->storage->nbytes);
  if (!s) { sg_tensor_decref(t); return NULL; }
  sg_storage_decref(t->storage);
  t->storage = s;
  return t;
}

sg_tensor *sg_zeros(int ndim, const int64_t *size, sg_dtype dt, sg_device dev) {
  sg_tensor *t = sg_empty(ndim, size, dt, dev);
  if (!t) return NULL;
  if (dev != SG_CPU) {
    const sg_backend *be = sg_backend_get(dev);
    if (!be || !be->zero_ || be->zero_(t)) {
      if (be && !be->zero_) sg_backend_missing("zeros", dev);
      sg_tensor_decref(t);
      return NULL;
    }
    return t;
  }
  memset(t->storage->data, 0, t->storage->nbytes);
  return t;
}

sg_tensor *sg_full(int ndim, const int64_t *size, double v, sg_dtype dt, sg_device dev) {
  sg_tensor *t = sg_empty(ndim, size, dt, dev);
  if (t) sg_fill_(t, v);
  return t;
}

sg_tensor *sg_scalar(double v, sg_dtype dt, sg_device dev) { return sg_full(0, NULL, v, dt, dev); }
sg_tensor *sg_empty_like(const sg_tensor *t) { return sg_empty(t->ndim, t->size, t->dtype, t->storage->device); }
sg_tensor *sg_zeros_like(const sg_tensor *t) { return sg_zeros(t->ndim, t->size, t->dtype, t->storage->device); }

sg_tensor *sg_arange(double start, double end, double step, sg_dtype dt) {
  if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
    sg_error_set("arange: bad range (start %g, end %g, step %g)", start, end, step);
    return NULL;
  }
  double cnt = ceil((end - start) / step);
  if (cnt < 0) cnt = 0;
  if (cnt > (double)SG_MAX_NUMEL) { sg_error_set("arange: %g elements is too many", cnt); return NULL; }
  int64_t n = (int64_t)cnt;
  sg_tensor *t = sg_empty(1, &n, dt, SG_CPU);
  if (!t) return NULL;
  size_t es = sg_dtype_size(dt);
  for (int64_t i = 0; i < n; i++) sg_store_f64((char *)t->storage->data + i * (int64_t)es, dt, start + (double)i * step);
  return t;
}

sg_tensor *sg_linspace(double start, double end, int64_t n, sg_dtype dt) {
  if (n < 0) { sg_error_set("linspace: negative number of steps %lld", (long long)n); return NULL; }
  sg_tensor *t = sg_empty(1, &n, dt, SG_CPU);
  if (!t) return NULL;
  size_t es = sg_dtype_size(dt);
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  /* fill from both ends like PyTorch so the last value is exactly `end` */
  for (int64_t i = 0; i < n; i++) {
    double v = n == 1 ? start : i < n / 2 ? start + step * (double)i : end - step * (double)(n - 1 - i);
    sg_store_f64((char *)t->storage->data + i * (int64_t)es, dt, v);
  }
  return t;
}

sg_tensor *sg_eye(int64_t n, int64_t m, sg_dtype dt) {
  int64_t sz[2] = {n, m};
  sg_tensor *t = sg_zeros(2, sz, dt, SG_CPU);
  if (!t) return NULL;
  size_t es = sg_dtype_size(dt);
  for (int64_t i = 0; i < n && i < m; i++) sg_store_f64((char *)t->storage->data + (i * m + i) * (int64_t)es, dt, 1);
  return t;
}

static int64_t elem_offset(const sg_tensor *t, const int64_t *idx) {
  int64_t off = t->offset;
  for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
  return off;
}
static char *elem_ptr(const sg_tensor *t, const int64_t *idx) {
  return (char *)t->storage->data + elem_offset(t, idx) * (int64_t)sg_dtype_size(t->dtype);
}

/* On the GPU each access is a synchronous copy of one element: for item(),
 * indexing and printing, not for loops (a failed copy reads as NaN). */
double sg_get_f64(const sg_tensor *t, const int64_t *idx) {
  if (t->storage->device != SG_CPU) {
    const sg_backend *be = sg_backend_get(t->storage->device);
    uint64_t bits = 0;
    if (!be || be->get_bytes(t, elem_offset(t, idx), &bits)) return NAN;
    return sg_load_f64(&bits, t->dtype);
  }
  return sg_load_f64(elem_ptr(t, idx), t->dtype);
}
void sg_set_f64(sg_tensor *t, const int64_t *idx, double v) {
  if (t->storage->device != SG_CPU) {
    const sg_backend *be = sg_backend_get(t->storage->device);
    uint64_t bits = 0;
    sg_store_f64(&bits, t->dtype, v);
    if (be) be->set_bytes(t, elem_offset(t, idx), &bits);
    return;
  }
  sg_store_f64(elem_ptr(t, idx), t->dtype, v);
}

double sg_get_flat(const sg_tensor *t, int64_t i) {
  int64_t idx[SG_MAX_DIMS];
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->size[d]; i /= t->size[d]; }
  return sg_get_f64(t, idx);
}

int sg_wrap_dim(const char *op, int dim, int ndim) {
  int n = ndim > 0 ? ndim : 1;
  int d = dim < 0 ? dim + n : dim;
  if (d < 0 || d >= n) {
    sg_error_set("%s: dim %d out of range for a tensor of %d dims", op, dim + (dim >= 0), ndim);
    return -1;
  }
  return d;
}

bool sg_broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                         int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      sg_error_set("%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)", op,
                   sg_shape_str(na, a, (char[96]){0}, 96), sg_shape_str(nb, b, (char[96]){0}, 96), i + 1,
                   (long long)sa, (long long)sb);
      return false;
    }
    out[i] = sa == 1 ? sb : sa;
  }
  *nout = n;
  return true;
}

/* A new tensor header on t's storage (used by the view ops). */
sg_tensor *sg_alias(sg_tensor *t) {
  sg_tensor *v = calloc(1, sizeof *v);
  if (!v) { sg_error_set("out of memory"); return NULL; }
  atomic_init(&v->refcount, 1);
  sg_storage_incref(t->storage);
  v->storage = t->storage;
  v->offset = t->offset;
  v->ndim = t->ndim;
  v->dtype = t->dtype;
  v->is_view = true;
  memcpy(v->size, t->size, sizeof v->size);
  memcpy(v->stride, t->stride, sizeof v->stride);
  sg_memstats_tensor_delta(t->storage->device, 1);
  return v;
}
