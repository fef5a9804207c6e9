/* View ops: new headers over the same storage, differentiable. */
#include "../core/tensor.h"
#include "../autograd/autograd.h"
#include "ops.h"
#include <string.h>


/* Strides for viewing t as `size` without copying, or false (PyTorch's rule:
 * each new dim must be a split or merge of contiguous old dims). */
static bool view_strides(const sg_tensor *t, int ndim, const int64_t *size, int64_t *stride) {
  if (sg_is_contiguous(t) || sg_numel(t) == 0) {
    int64_t st = 1;
    for (int d = ndim - 1; d >= 0; d--) { stride[d] = st; st *= size[d]; }
    return true;
  }
  int od = t->ndim - 1, nd = ndim - 1;
  while (nd >= 0 || od >= 0) {
    /* take one chunk of old dims whose elements are equally spaced */
    int64_t chunk = 1, base_stride;
    while (od >= 0 && t->size[od] == 1) od--;
    if (od < 0) break;
    base_stride = t->stride[od];
    chunk = t->size[od];
    int64_t cur = t->stride[od] * t->size[od];
    od--;
    while (od >= 0 && (t->size[od] == 1 || t->stride[od] == cur)) {
      if (t->size[od] != 1) { chunk *= t->size[od]; cur = t->stride[od] * t->size[od]; }
      od--;
    }
    /* new dims must cover exactly `chunk` elements */
    int64_t acc = 1, st = base_stride;
    while (nd >= 0 && acc < chunk) {
      stride[nd] = st;
      st *= size[nd];
      acc *= size[nd];
      nd--;
    }
    if (acc != chunk) return false;
  }
  while (nd >= 0) { if (size[nd] != 1) return false; stride[nd--] = 1; }
  return true;
}

static int resolve_shape(const char *op, const sg_tensor *t, int ndim, const int64_t *in, int64_t *out) {
  if (ndim < 0 || ndim > SG_MAX_DIMS) { sg_error_set("%s: %d dims (at most %d)", op, ndim, SG_MAX_DIMS); return -1; }
  int infer = -1;
  int64_t known = 1;
  for (int d = 0; d < ndim; d++) {
    out[d] = in[d];
    if (in[d] == -1) {
      if (infer >= 0) { sg_error_set("%s: only one dimension can be -1", op); return -1; }
      infer = d;
    } else if (in[d] < 0) {
      sg_error_set("%s: negative size %lld in dim %d", op, (long long)in[d], d + 1);
      return -1;
    } else if (in[d] && known > SG_MAX_NUMEL / in[d]) {
      sg_error_set("%s: shape %s is too large", op, sg_shape_str(ndim, in, (char[96]){0}, 96));
      return -1;
    } else known *= in[d];
  }
  int64_t n = sg_numel(t);
  if (infer >= 0) {
    if (known == 0 || n % known) goto bad;
    out[infer] = n / known;
  }
  if (sg_shape_numel(ndim, out) != n) goto bad;
  return 0;
bad:
  sg_error_set("%s: shape %s is invalid for a tensor of shape %s (%lld elements)", op,
               sg_shape_str(ndim, in, (char[96]){0}, 96), SG_SHAPE_STR(t), (long long)n);
  return -1;
}

static int reshape_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  gin[0] = sg_reshape(g, n->in_shape[0].ndim, n->in_shape[0].size);
  return gin[0] ? 0 : -1;
}

sg_tensor *sg_view(sg_tensor *t, int ndim, const int64_t *size) {
  int64_t sz[SG_MAX_DIMS], st[SG_MAX_DIMS];
  if (resolve_shape("view", t, ndim, size, sz)) return NULL;
  if (!view_strides(t, ndim, sz, st)) {
    sg_error_set("view: a tensor of shape %s with these strides cannot be viewed as %s (use reshape)",
                 SG_SHAPE_STR(t), sg_shape_str(ndim, sz, (char[96]){0}, 96));
    return NULL;
  }
  sg_tensor *v = sg_alias(t);
  if (!v) return NULL;
  v->ndim = ndim;
  memcpy(v->size, sz, sizeof(int64_t) * (size_t)ndim);
  memcpy(v->stride, st, sizeof(int64_t) * (size_t)ndim);
  sg_record("view", reshape_backward, v, 1, &t);
  return v;
}

sg_tensor *sg_reshape(sg_tensor *t, int ndim, const int64_t *size) {
  int64_t sz[SG_MAX_DIMS], st[SG_MAX_DIMS];
  if (resolve_shape("reshape", t, ndim, size, sz)) return NULL;
  if (view_strides(t, ndim, sz, st)) return sg_view(t, ndim, sz);
  sg_tensor *c = sg_clone(t);
  if (!c) return NULL;
  sg_tensor *v = sg_view(c, ndim, sz);
  sg_tensor_decref(c);
  return v;
}

static int permute_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  int inv[SG_MAX_DIMS];
  for (int d = 0; d < g->ndim; d++) inv[n->i[d]] = d;
  gin[0] = sg_permute(g, inv);
  return gin[0] ? 0 : -1;
}

sg_tensor *sg_permute(sg_tensor *t, const int *perm) {
  bool seen[SG_MAX_DIMS] = {0};
  for (int d = 0; d < t->ndim; d++) {
    if (perm[d] < 0 || perm[d] >= t->ndim || seen[perm[d]]) {
      sg_error_set("permute: the dims given are not a permutation of the %d dims of %s", t->ndim, SG_SHAPE_STR(t));
      return NULL;
    }
    seen[perm[d]] = true;
  }
  sg_tensor *v = sg_alias(t);
  if (!v) return NULL;
  for (int d = 0; d < t->ndim; d++) { v->size[d] = t->size[perm[d]]; v->stride[d] = t->stride[perm[d]]; }
  sg_node *n = sg_record("permute", permute_backward, v, 1, &t);
  if (n) for (int d = 0; d < t->ndim; d++) n->i[d] = perm[d];
  return v;
}

sg_tensor *sg_transpose(sg_tensor *t, int d0, int d1) {
  if ((d0 = sg_wrap_dim("transpose", d0, t->ndim)) < 0 || (d1 = sg_wrap_dim("transpose", d1, t->ndim)) < 0) return NULL;
  int perm[SG_MAX_DIMS]; /* a 0-dim tensor gets an empty permutation: a differentiable alias */
  for (int d = 0; d < t->ndim; d++) perm[d] = d;
  perm[d0] = d1; perm[d1] = d0;
  return sg_permute(t, perm);
}

/* grad of a strided slice: zeros of the input's shape with g copied in */
static int slice_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *z = sg_zeros(n->in_shape[0].ndim, n->in_shape[0].size, g->dtype, g->storage->device);
  if (!z) return -1;
  sg_tensor *v = n->i[3] ? sg_select(z, (int)n->i[0], n->i[1]) : sg_slice(z, (int)n->i[0], n->i[1], n->i[2], n->i[4]);
  if (!v || sg_copy_(v, g)) { sg_tensor_decref(v); sg_tensor_decref(z); return -1; }
  sg_tensor_decref(v);
  gin[0] = z;
  return 0;
}

sg_tensor *sg_slice(sg_tensor *t, int dim, int64_t start, int64_t stop, int64_t step) {
  if ((dim = sg_wrap_dim("slice", dim, t->ndim)) < 0) return NULL;
  if (t->ndim == 0) { sg_error_set("slice: cannot slice a 0-dim tensor"); return NULL; }
  if (step <= 0) { sg_error_set("slice: step must be positive, got %lld", (long long)step); return NULL; }
  int64_t n = t->size[dim];
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  if (start < 0) start = 0;
  if (stop > n) stop = n;
  if (start > n) start = n;
  if (stop < start) stop = start;
  sg_tensor *v = sg_alias(t);
  if (!v) return NULL;
  v->offset += start * t->stride[dim];
  v->size[dim] = (stop - start + step - 1) / step;
  v->stride[dim] = t->stride[dim] * step;
  sg_node *nd = sg_record("slice", slice_backward, v, 1, &t);
  if (nd) { nd->i[0] = dim; nd->i[1] = start; nd->i[2] = stop; nd->i[3] = 0; nd->i[4] = step; }
  return v;
}

sg_tensor *sg_narrow(sg_tensor *t, int dim, int64_t start, int64_t len) {
  if ((dim = sg_wrap_dim("narrow", dim, t->ndim)) < 0) return NULL;
  if (t->ndim == 0) { sg_error_set("narrow: cannot narrow a 0-dim tensor"); return NULL; }
  if (start < 0 || len < 0 || start + len > t->size[dim]) {
    sg_error_set("narrow: start %lld, length %lld is out of range for dim %d of size %lld", (long long)start + 1,
                 (long long)len, dim + 1, (long long)t->size[dim]);
    return NULL;
  }
  return sg_slice(t, dim, start, start + len, 1);
}

sg_tensor *sg_select(sg_tensor *t, int dim, int64_t index) {
  if ((dim = sg_wrap_dim("select", dim, t->ndim)) < 0) return NULL;
  if (t->ndim == 0) { sg_error_set("select: cannot index a 0-dim tensor"); return NULL; }
  int64_t n = t->size[dim];
  if (index < -n || index >= n) {
    sg_error_set("select: index %lld is out of range for dim %d of size %lld", (long long)(index >= 0 ? index + 1 : index),
                 dim + 1, (long long)n);
    return NULL;
  }
  if (index < 0) index += n;
  sg_tensor *v = sg_alias(t);
  if (!v) return NULL;
  v->offset += index * t->stride[dim];
  for (int d = dim; d < t->ndim - 1; d++) { v->size[d] = t->size[d + 1]; v->stride[d] = t->stride[d + 1]; }
  v->ndim--;
  sg_node *nd = sg_record("select", slice_backward, v, 1, &t);
  if (nd) { nd->i[0] = dim; nd->i[1] = index; nd->i[3] = 1; }
  return v;
}

static int expand_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  gin[0] = sg_sum_to(g, &n->in_shape[0]);
  return gin[0] ? 0 : -1;
}

sg_tensor *sg_expand(sg_tensor *t, int ndim, const int64_t *size) {
  if (ndim < t->ndim || ndim > SG_MAX_DIMS) {
    sg_error_set("expand: cannot expand %s to %d dims", SG_SHAPE_STR(t), ndim);
    return NULL;
  }
  int64_t sz[SG_MAX_DIMS], st[SG_MAX_DIMS];
  int off = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int td = d - off;
    int64_t have = td >= 0 ? t->size[td] : 1;
    int64_t want = size[d] == -1 && td >= 0 ? have : size[d];
    if (want < 0 || (have != want && have != 1)) {
      sg_error_set("expand: cannot expand %s to %s (dim %d: %lld to %lld)", SG_SHAPE_STR(t),
                   sg_shape_str(ndim, size, (char[96]){0}, 96), d + 1, (long long)have, (long long)want);
      return NULL;
    }
    sz[d] = want;
    st[d] = (td >= 0 && have == want) ? t->stride[td] : 0;
  }
  /* keep numel representable (it is computed in int64 everywhere) */
  bool empty = false;
  for (int d = 0; d < ndim; d++) empty = empty || sz[d] == 0;
  for (int64_t d = 0, n = 1; d < ndim && !empty; d++) {
    if (n > SG_MAX_NUMEL / sz[d]) {
      sg_error_set("expand: shape %s is too large", sg_shape_str(ndim, sz, (char[96]){0}, 96));
      return NULL;
    }
    n *= sz[d];
  }
  sg_tensor *v = sg_alias(t);
  if (!v) return NULL;
  v->ndim = ndim;
  memcpy(v->size, sz, sizeof sz);
  memcpy(v->stride, st, sizeof st);
  sg_record("expand", expand_backward, v, 1, &t);
  return v;
}

sg_tensor *sg_squeeze(sg_tensor *t, int dim) {
  int64_t sz[SG_MAX_DIMS];
  int n = 0;
  if (dim != SG_ALL_DIMS && (dim = sg_wrap_dim("squeeze", dim, t->ndim)) < 0) return NULL;
  for (int d = 0; d < t->ndim; d++)
    if (!(t->size[d] == 1 && (dim == SG_ALL_DIMS || dim == d))) sz[n++] = t->size[d];
  return sg_view(t, n, sz);
}

sg_tensor *sg_unsqueeze(sg_tensor *t, int dim) {
  if (t->ndim >= SG_MAX_DIMS) { sg_error_set("unsqueeze: tensor already has %d dims", SG_MAX_DIMS); return NULL; }
  if ((dim = sg_wrap_dim("unsqueeze", dim, t->ndim + 1)) < 0) return NULL;
  int64_t sz[SG_MAX_DIMS];
  for (int d = 0, k = 0; d <= t->ndim; d++) sz[d] = d == dim ? 1 : t->size[k++];
  return sg_view(t, t->ndim + 1, sz);
}
