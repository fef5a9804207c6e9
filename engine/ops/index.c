/* Indexing by tensors of 0-based indices: gather, scatter, scatter_add, one_hot.
 *
 * With index of the same rank as the input, for every position j of index:
 *   gather:      out[j]                 = a[j with dim := index[j]]
 *   scatter:     out[j with dim := index[j]] = src[j]   (out starts as a copy of a)
 *   scatter_add: out[j with dim := index[j]] += src[j]
 * gather's gradient is a scatter_add and scatter_add's gradient a gather, so
 * both directions share one table entry (index.gather_scatter); every
 * backend scatters in index order, so repeated indices give the same bits
 * everywhere. Index values are checked on their device (index.index_check). */
#include "ops.h"
#include "../autograd/autograd.h"
#include <stdio.h>
#include <string.h>
#include "../backend.h"

sg_tensor *sg_index_values(const char *op, sg_tensor *index, int64_t n, const char *what);

static bool same_device(const char *op, sg_tensor *a, sg_tensor *b) {
  sg_tensor *ts[2] = {a, b};
  return sg_same_device(op, 2, ts);
}

static int gs_dispatch(sg_gs_mode mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix) {
  static const char *const names[] = {"gather", "scatter", "scatter_add"};
  return SG_BACKEND_CALL(SG_DEVICE_OF(dst), index.gather_scatter, names[mode], (int)mode, dst, src, dim, ix);
}

/* Shape rules shared by gather and scatter (PyTorch's): same rank; index no
 * larger than `a` in every dim but `dim`, and no larger than src anywhere. */
static int check_index_shape(const char *op, sg_tensor *a, int *dim, sg_tensor *index, sg_tensor *src) {
  if ((*dim = sg_wrap_dim(op, *dim, a->ndim)) < 0) return -1;
  if (index->ndim != a->ndim) {
    sg_error_set("%s: index of shape %s has %d dims but the input of shape %s has %d (they must match)", op,
                 SG_SHAPE_STR(index), index->ndim, SG_SHAPE_STR(a), a->ndim);
    return -1;
  }
  for (int d = 0; d < a->ndim; d++)
    if (d != *dim && index->size[d] > a->size[d]) {
      sg_error_set("%s: index of shape %s is larger than the input of shape %s in dim %d", op, SG_SHAPE_STR(index),
                   SG_SHAPE_STR(a), d + 1);
      return -1;
    }
  if (src) {
    if (src->ndim != index->ndim) {
      sg_error_set("%s: src of shape %s and index of shape %s must have the same number of dims", op,
                   SG_SHAPE_STR(src), SG_SHAPE_STR(index));
      return -1;
    }
    for (int d = 0; d < src->ndim; d++)
      if (index->size[d] > src->size[d]) {
        sg_error_set("%s: index of shape %s is larger than src of shape %s in dim %d", op, SG_SHAPE_STR(index),
                     SG_SHAPE_STR(src), d + 1);
        return -1;
      }
  }
  return 0;
}

static sg_tensor *checked_index(const char *op, sg_tensor *a, int dim, sg_tensor *index) {
  char what[64];
  snprintf(what, sizeof what, "dim %d", dim + 1);
  return sg_index_values(op, index, a->ndim ? a->size[dim] : 1, what);
}

/* ------------------------------------------------------------------ gather */
static int gather_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *ix = sg_node_saved(n, 0);
  if (!ix) return -1;
  sg_tensor *z = sg_zeros(n->in_shape[0].ndim, n->in_shape[0].size, g->dtype, g->storage->device);
  gin[0] = z ? sg_scatter_add(z, (int)n->i[0], ix, g) : NULL;
  sg_tensor_decref(z);
  return gin[0] ? 0 : -1;
}

sg_tensor *sg_gather(sg_tensor *a, int dim, sg_tensor *index) {
  if (!same_device("gather", a, index) || check_index_shape("gather", a, &dim, index, NULL)) return NULL;
  sg_tensor *ix = checked_index("gather", a, dim, index);
  if (!ix) return NULL;
  sg_tensor *out = sg_empty(index->ndim, index->size, a->dtype, a->storage->device);
  if (out && gs_dispatch(SG_GS_GATHER, out, a, dim, ix)) { sg_tensor_decref(out); out = NULL; }
  if (out) {
    sg_node *n = sg_dtype_is_float(a->dtype) ? sg_record("gather", gather_backward, out, 1, &a) : NULL;
    if (n) { n->i[0] = dim; sg_node_save(n, ix); }
  }
  sg_tensor_decref(ix);
  return out;
}

/* ------------------------------------------------------------------ scatter, scatter_add */
/* gradient of src: g gathered at the index, zero-padded up to src's shape */
static sg_tensor *src_grad(sg_node *n, sg_tensor *g, sg_tensor *ix) {
  int dim = (int)n->i[0];
  sg_tensor *gs = sg_gather(g, dim, ix);
  if (!gs) return NULL;
  const sg_shape *s = &n->in_shape[1];
  if (s->ndim == gs->ndim && memcmp(s->size, gs->size, sizeof(int64_t) * (size_t)s->ndim) == 0) return gs;
  int64_t pads[2 * SG_MAX_DIMS];
  for (int k = 0; k < s->ndim; k++) {
    int d = s->ndim - 1 - k;
    pads[2 * k] = 0;
    pads[2 * k + 1] = s->size[d] - gs->size[d];
  }
  sg_tensor *p = sg_pad(gs, s->ndim, pads, SG_PAD_CONSTANT, 0);
  sg_tensor_decref(gs);
  return p;
}

static int scatter_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *ix = sg_node_saved(n, 0);
  if (!ix) return -1;
  if (n->needs[0]) {
    if (n->i[1]) gin[0] = sg_tensor_incref(g); /* scatter_add passes g through */
    else { /* overwritten positions get no gradient */
      sg_tensor *z = sg_zeros(ix->ndim, ix->size, g->dtype, g->storage->device);
      gin[0] = z ? sg_scatter(g, (int)n->i[0], ix, z) : NULL;
      sg_tensor_decref(z);
    }
    if (!gin[0]) return -1;
  }
  if (n->needs[1] && !(gin[1] = src_grad(n, g, ix))) return -1;
  return 0;
}

static sg_tensor *scatter_impl(const char *op, bool add, sg_tensor *a, int dim, sg_tensor *index, sg_tensor *src) {
  if (!same_device(op, a, index) || !same_device(op, a, src) || check_index_shape(op, a, &dim, index, src)) return NULL;
  if (sg_dtype_is_float(src->dtype) && !sg_dtype_is_float(a->dtype)) {
    sg_error_set("%s: cannot write a %s src into a %s tensor", op, sg_dtype_name(src->dtype), sg_dtype_name(a->dtype));
    return NULL;
  }
  sg_tensor *ix = checked_index(op, a, dim, index);
  if (!ix) return NULL;
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *sc = sg_to_dtype(src, a->dtype);
  sg_set_grad_enabled(prev);
  sg_tensor *out = sc ? sg_empty(a->ndim, a->size, a->dtype, a->storage->device) : NULL;
  if (out && (sg_copy_(out, a) || gs_dispatch(add ? SG_GS_SCATTER_ADD : SG_GS_SCATTER, out, sc, dim, ix))) {
    sg_tensor_decref(out);
    out = NULL;
  }
  if (out) {
    atomic_store(&out->storage->version, 0);
    sg_tensor *in[2] = {a, src};
    sg_node *n = sg_dtype_is_float(a->dtype) ? sg_record(op, scatter_backward, out, 2, in) : NULL;
    if (n) { n->i[0] = dim; n->i[1] = add; sg_node_save(n, ix); }
  }
  sg_tensor_decref(sc);
  sg_tensor_decref(ix);
  return out;
}

sg_tensor *sg_scatter(sg_tensor *a, int dim, sg_tensor *index, sg_tensor *src) {
  return scatter_impl("scatter", false, a, dim, index, src);
}
sg_tensor *sg_scatter_add(sg_tensor *a, int dim, sg_tensor *index, sg_tensor *src) {
  return scatter_impl("scatter_add", true, a, dim, index, src);
}

/* ------------------------------------------------------------------ one_hot */
sg_tensor *sg_one_hot(sg_tensor *labels, int64_t classes) {
  if (!sg_dtype_is_int(labels->dtype)) {
    sg_error_set("one_hot: labels must be an integer tensor (u8, i32 or i64), got %s", sg_dtype_name(labels->dtype));
    return NULL;
  }
  if (labels->ndim >= SG_MAX_DIMS) {
    sg_error_set("one_hot: labels of shape %s already have %d dims (the result needs one more)", SG_SHAPE_STR(labels),
                 SG_MAX_DIMS);
    return NULL;
  }
  if (classes < -1) { sg_error_set("one_hot: number of classes must be positive (or -1 to infer), got %lld", (long long)classes); return NULL; }
  sg_tensor *i64 = sg_to_dtype(labels, SG_I64), *c = i64 ? sg_contiguous(i64) : NULL;
  sg_tensor_decref(i64);
  if (!c) return NULL;
  sg_device dev = SG_DEVICE_OF(c);
  int64_t pos = 0, bad = 0;
  sg_tensor *out = NULL;
  if (classes == -1) {
    if (sg_numel(c) == 0) {
      sg_error_set("one_hot: cannot infer the number of classes from empty labels (give it)");
      goto done;
    }
    int64_t mx = 0;
    if (SG_BACKEND_CALL(dev, index.index_max, "one_hot", c, &mx)) goto done;
    classes = mx >= 0 ? mx + 1 : 0;
  }
  int r = SG_BACKEND_CALL(dev, index.index_check, "one_hot", c, classes, &pos, &bad);
  if (r == 1)
    sg_error_set("one_hot: label %lld is out of range for %lld classes (labels count from 0)", (long long)bad,
                 (long long)classes);
  if (r) goto done;
  int64_t sz[SG_MAX_DIMS];
  memcpy(sz, labels->size, sizeof(int64_t) * (size_t)labels->ndim);
  sz[labels->ndim] = classes;
  out = sg_empty(labels->ndim + 1, sz, SG_I64, dev);
  if (out && SG_BACKEND_CALL(dev, index.one_hot, "one_hot", out, c, classes)) { sg_tensor_decref(out); out = NULL; }
done:
  sg_tensor_decref(c);
  return out;
}
