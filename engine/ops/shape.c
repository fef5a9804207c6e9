/* Joining and rearranging ops: cat, stack, index_select, flip, roll, pad, repeat.
 *
 * Everything but cat is one "index map" kernel: output element (j0..jn-1)
 * reads input element (map0[j0], .., mapn-1[jn-1]), where a missing map is the
 * identity and a map entry -1 means "the fill value" (constant padding). Its
 * adjoint (accumulate the output gradient back through the same maps) is the
 * one backward of all of them, so repeated or reflected elements sum their
 * gradients. Both go through the device table (index.index_map,
 * index.index_map_backward) with the maps built here on the host; cat copies
 * into views of the result on any device. */
#include "ops.h"
#include "../autograd/autograd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../backend.h"


/* Output shapes are checked before any map or tensor is allocated. */
static bool check_out_shape(const char *op, int ndim, const int64_t *size) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (size[d] < 0) {
      sg_error_set("%s: the result would have negative size %lld in dim %d", op, (long long)size[d], d + 1);
      return false;
    }
    if (size[d] && n > SG_MAX_NUMEL / size[d]) {
      sg_error_set("%s: the result of shape %s is too large", op, sg_shape_str(ndim, size, (char[96]){0}, 96));
      return false;
    }
    n *= size[d];
  }
  return true;
}

/* ------------------------------------------------------------------ index maps */
typedef struct {
  int ndim;                    /* output dims; the input is right-aligned to them */
  int64_t out_size[SG_MAX_DIMS];
  int64_t *map[SG_MAX_DIMS];   /* NULL: identity */
  double fill;
  int64_t data[];              /* storage of the maps */
} idxmap;

/* Allocates a map with room for the output dims flagged in `want`. */
static idxmap *map_new(int ndim, const int64_t *out_size, const bool *want) {
  size_t total = 0;
  bool empty = sg_shape_numel(ndim, out_size) == 0;
  for (int d = 0; d < ndim; d++) if (want[d] && !empty) total += (size_t)out_size[d];
  idxmap *m = calloc(1, sizeof *m + total * sizeof(int64_t));
  if (!m) { sg_error_set("out of memory"); return NULL; }
  m->ndim = ndim;
  memcpy(m->out_size, out_size, sizeof(int64_t) * (size_t)ndim);
  int64_t *p = m->data;
  for (int d = 0; d < ndim; d++)
    if (want[d] && !empty) { m->map[d] = p; p += out_size[d]; }
  return m;
}

/* strides of an input of (ndim, size, stride) right-aligned to m's dims */
static void aligned_strides(const idxmap *m, int ndim, const int64_t *stride, int64_t *out) {
  int off = m->ndim - ndim;
  for (int d = 0; d < m->ndim; d++) out[d] = d < off ? 0 : stride[d - off];
}

static int map_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  idxmap *m = n->ctx;
  sg_dtype at = g->dtype == SG_F64 ? SG_F64 : SG_F32; /* f16/bf16 accumulate in f32 */
  sg_tensor *gc = sg_to_dtype(g, at), *gcc = gc ? sg_contiguous(gc) : NULL;
  sg_tensor *z = gcc ? sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, at, SG_DEVICE_OF(gcc)) : NULL;
  if (z && SG_BACKEND_CALL(SG_DEVICE_OF(z), index.index_map_backward, n->op, z, gcc, m->ndim, m->out_size,
                           m->map)) {
    sg_tensor_decref(z);
    z = NULL;
  }
  sg_tensor_decref(gc); sg_tensor_decref(gcc);
  if (!z) return -1;
  gin[0] = sg_to_dtype(z, n->in_dtype[0]);
  sg_tensor_decref(z);
  return gin[0] ? 0 : -1;
}

/* Runs the map and records it; takes over m. */
static sg_tensor *map_apply(const char *op, sg_tensor *a, idxmap *m) {
  sg_tensor *out = sg_empty(m->ndim, m->out_size, a->dtype, a->storage->device);
  if (!out) { free(m); return NULL; }
  int64_t st[SG_MAX_DIMS], len = 0;
  aligned_strides(m, a->ndim, a->stride, st);
  bool empty = sg_shape_numel(m->ndim, m->out_size) == 0;
  for (int d = 0; d < m->ndim; d++) if (m->map[d] && !empty) len += m->out_size[d];
  if (SG_BACKEND_CALL(SG_DEVICE_OF(out), index.index_map, op, out, a, m->ndim, m->out_size, st, m->map, m->data, len,
                      m->fill)) {
    sg_tensor_decref(out);
    free(m);
    return NULL;
  }
  sg_node *n = sg_dtype_is_float(a->dtype) ? sg_record(op, map_backward, out, 1, &a) : NULL;
  if (n) { n->ctx = m; n->free_ctx = free; }
  else free(m);
  return out;
}

/* ------------------------------------------------------------------ flip */
sg_tensor *sg_flip(sg_tensor *a, int ndims, const int *dims) {
  bool want[SG_MAX_DIMS] = {0};
  if (ndims < 0 || ndims > SG_MAX_DIMS) { sg_error_set("flip: %d dims given", ndims); return NULL; }
  for (int k = 0; k < ndims; k++) {
    int d = sg_wrap_dim("flip", dims[k], a->ndim);
    if (d < 0) return NULL;
    if (want[d]) { sg_error_set("flip: dim %d is given twice", d + 1); return NULL; }
    want[d] = a->ndim > 0;
  }
  idxmap *m = map_new(a->ndim, a->size, want);
  if (!m) return NULL;
  for (int d = 0; d < a->ndim; d++)
    if (m->map[d]) for (int64_t j = 0; j < a->size[d]; j++) m->map[d][j] = a->size[d] - 1 - j;
  return map_apply("flip", a, m);
}

/* ------------------------------------------------------------------ roll */
sg_tensor *sg_roll(sg_tensor *a, int ndims, const int64_t *shifts, const int *dims) {
  if (ndims < 0 || ndims > SG_MAX_DIMS) { sg_error_set("roll: %d dims given", ndims); return NULL; }
  if (ndims == 0) { /* roll the flattened tensor, then restore the shape */
    if (!shifts) { sg_error_set("roll: missing shift"); return NULL; }
    int64_t n = sg_numel(a);
    sg_tensor *flat = sg_reshape(a, 1, &n);
    if (!flat) return NULL;
    int d0 = 0;
    sg_tensor *r = sg_roll(flat, 1, shifts, &d0);
    sg_tensor_decref(flat);
    if (!r) return NULL;
    sg_tensor *out = sg_reshape(r, a->ndim, a->size);
    sg_tensor_decref(r);
    return out;
  }
  if (a->ndim == 0) { sg_error_set("roll: cannot roll a 0-dim tensor along a dim"); return NULL; }
  bool want[SG_MAX_DIMS] = {0};
  int64_t total[SG_MAX_DIMS] = {0};
  for (int k = 0; k < ndims; k++) {
    int d = sg_wrap_dim("roll", dims[k], a->ndim);
    if (d < 0) return NULL;
    int64_t n = a->size[d];
    if (n == 0) continue;
    total[d] = ((total[d] + shifts[k] % n) % n + n) % n; /* repeated dims add up */
    want[d] = true;
  }
  for (int d = 0; d < a->ndim; d++) if (total[d] == 0) want[d] = false;
  idxmap *m = map_new(a->ndim, a->size, want);
  if (!m) return NULL;
  for (int d = 0; d < a->ndim; d++)
    if (m->map[d]) {
      int64_t n = a->size[d], s = total[d];
      for (int64_t j = 0; j < n; j++) m->map[d][j] = j >= s ? j - s : j - s + n;
    }
  return map_apply("roll", a, m);
}

/* ------------------------------------------------------------------ pad */
sg_tensor *sg_pad(sg_tensor *a, int npairs, const int64_t *pads, sg_pad_mode mode, double value) {
  if ((unsigned)mode > SG_PAD_REPLICATE) { sg_error_set("pad: unknown mode %d", (int)mode); return NULL; }
  if (npairs < 0 || npairs > a->ndim) {
    sg_error_set("pad: %d (before, after) pairs given for a tensor of shape %s (at most one pair per dim)", npairs,
                 SG_SHAPE_STR(a));
    return NULL;
  }
  int64_t before[SG_MAX_DIMS] = {0}, after[SG_MAX_DIMS] = {0}, osz[SG_MAX_DIMS];
  bool want[SG_MAX_DIMS] = {0};
  for (int k = 0; k < npairs; k++) {
    int d = a->ndim - 1 - k;
    before[d] = pads[2 * k];
    after[d] = pads[2 * k + 1];
  }
  for (int d = 0; d < a->ndim; d++) {
    int64_t n = a->size[d], b = before[d], e = after[d];
    if ((b > 0 && n > SG_MAX_NUMEL - b) || (e > 0 && n + b > SG_MAX_NUMEL - e) || b < -SG_MAX_NUMEL ||
        e < -SG_MAX_NUMEL) {
      sg_error_set("pad: padding (%lld, %lld) of dim %d is too large", (long long)b, (long long)e, d + 1);
      return NULL;
    }
    osz[d] = n + b + e;
    if (osz[d] < 0) {
      sg_error_set("pad: padding (%lld, %lld) of dim %d of size %lld gives a negative size", (long long)b,
                   (long long)e, d + 1, (long long)n);
      return NULL;
    }
    want[d] = b != 0 || e != 0;
    if (!want[d] || osz[d] == 0) continue;
    if (mode == SG_PAD_REFLECT && (b >= n || e >= n)) {
      sg_error_set("pad: reflect padding (%lld, %lld) must be less than the size %lld of dim %d of input %s",
                   (long long)b, (long long)e, (long long)n, d + 1, SG_SHAPE_STR(a));
      return NULL;
    }
    if (mode == SG_PAD_REPLICATE && n == 0) {
      sg_error_set("pad: replicate padding of the empty dim %d of input %s", d + 1, SG_SHAPE_STR(a));
      return NULL;
    }
  }
  if (!check_out_shape("pad", a->ndim, osz)) return NULL;
  idxmap *m = map_new(a->ndim, osz, want);
  if (!m) return NULL;
  m->fill = value;
  for (int d = 0; d < a->ndim; d++) {
    if (!m->map[d]) continue;
    int64_t n = a->size[d];
    for (int64_t j = 0; j < osz[d]; j++) {
      int64_t p = j - before[d];
      if (p < 0 || p >= n) {
        if (mode == SG_PAD_CONSTANT) p = -1;
        else if (mode == SG_PAD_REFLECT) p = p < 0 ? -p : 2 * (n - 1) - p;
        else p = p < 0 ? 0 : n - 1;
      }
      m->map[d][j] = p;
    }
  }
  return map_apply("pad", a, m);
}

/* ------------------------------------------------------------------ repeat */
sg_tensor *sg_repeat(sg_tensor *a, int ndim, const int64_t *reps) {
  if (ndim < a->ndim || ndim > SG_MAX_DIMS) {
    sg_error_set("repeat: %d repeat counts for a tensor of %d dims (give at least one per dim, at most %d)", ndim,
                 a->ndim, SG_MAX_DIMS);
    return NULL;
  }
  int64_t osz[SG_MAX_DIMS];
  bool want[SG_MAX_DIMS] = {0};
  int off = ndim - a->ndim;
  for (int d = 0; d < ndim; d++) {
    if (reps[d] < 0) {
      sg_error_set("repeat: negative repeat count %lld for dim %d", (long long)reps[d], d + 1);
      return NULL;
    }
    int64_t s = d < off ? 1 : a->size[d - off];
    if (s && reps[d] > SG_MAX_NUMEL / s) {
      sg_error_set("repeat: repeating %s by %lld in dim %d is too large", SG_SHAPE_STR(a), (long long)reps[d], d + 1);
      return NULL;
    }
    osz[d] = s * reps[d];
    want[d] = d >= off && reps[d] != 1;
  }
  if (!check_out_shape("repeat", ndim, osz)) return NULL;
  idxmap *m = map_new(ndim, osz, want);
  if (!m) return NULL;
  for (int d = 0; d < ndim; d++)
    if (m->map[d]) {
      int64_t s = a->size[d - off];
      for (int64_t j = 0; j < osz[d]; j++) m->map[d][j] = j % s;
    }
  return map_apply("repeat", a, m);
}

/* ------------------------------------------------------------------ index_select */
/* index as contiguous int64 values checked against [0, n); a new reference */
sg_tensor *sg_index_values(const char *op, sg_tensor *index, int64_t n, const char *what);
sg_tensor *sg_index_values(const char *op, sg_tensor *index, int64_t n, const char *what) {
  if (!sg_dtype_is_int(index->dtype)) {
    sg_error_set("%s: index must be an integer tensor (u8, i32 or i64), got %s", op, sg_dtype_name(index->dtype));
    return NULL;
  }
  sg_tensor *i64 = sg_to_dtype(index, SG_I64), *c = i64 ? sg_contiguous(i64) : NULL;
  sg_tensor_decref(i64);
  if (!c) return NULL;
  int64_t pos = 0, bad = 0; /* checked on the index's device: on a GPU one wait, the first bad value read back */
  int r = SG_BACKEND_CALL(SG_DEVICE_OF(c), index.index_check, op, c, n, &pos, &bad);
  if (r == 1)
    sg_error_set("%s: index %lld is out of range for %s of size %lld (indices count from 0)", op, (long long)bad, what,
                 (long long)n);
  if (r) { sg_tensor_decref(c); return NULL; }
  return c;
}

sg_tensor *sg_index_select(sg_tensor *a, int dim, sg_tensor *index) {
  sg_tensor *ai[2] = {a, index};
  if (!sg_same_device("index_select", 2, ai)) return NULL;
  if (a->ndim == 0) { sg_error_set("index_select: cannot index a 0-dim tensor"); return NULL; }
  if ((dim = sg_wrap_dim("index_select", dim, a->ndim)) < 0) return NULL;
  if (index->ndim > 1) {
    sg_error_set("index_select: index must be 1-D, got shape %s", SG_SHAPE_STR(index));
    return NULL;
  }
  char what[48];
  snprintf(what, sizeof what, "dim %d", dim + 1);
  /* the map is built on the host: a GPU index comes over once (a 1-D list, usually short) */
  sg_tensor *hix = sg_to_device(index, SG_CPU);
  sg_tensor *iv = hix ? sg_index_values("index_select", hix, a->size[dim], what) : NULL;
  sg_tensor_decref(hix);
  if (!iv) return NULL;
  int64_t osz[SG_MAX_DIMS];
  bool want[SG_MAX_DIMS] = {0};
  memcpy(osz, a->size, sizeof osz);
  osz[dim] = sg_numel(iv);
  want[dim] = true;
  idxmap *m = map_new(a->ndim, osz, want);
  if (m && m->map[dim]) memcpy(m->map[dim], sg_data_ptr(iv), sizeof(int64_t) * (size_t)osz[dim]);
  sg_tensor_decref(iv);
  return m ? map_apply("index_select", a, m) : NULL;
}

/* ------------------------------------------------------------------ cat, stack */
static int cat_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  int dim = (int)n->i[0];
  for (int k = 0; k < n->nin; k++) {
    if (!n->needs[k]) continue;
    if (!(gin[k] = sg_narrow(g, dim, n->i[1 + k], n->i[1 + SG_NODE_MAX_IN + k]))) return -1;
  }
  return 0;
}

static const char *expected_shape(const sg_tensor *t, int dim, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < t->ndim && k < n; d++) {
    if (d == dim) k += (size_t)snprintf(buf + k, n - k, d ? ",*" : "*");
    else k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)t->size[d]);
  }
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

sg_tensor *sg_cat(int n, sg_tensor **ts, int dim) {
  if (n < 1 || !ts) { sg_error_set("cat: expected at least one tensor"); return NULL; }
  for (int k = 0; k < n; k++)
    if (!ts[k]) { sg_error_set("cat: tensor %d is missing", k + 1); return NULL; }
  sg_tensor *r = ts[0];
  if (r->ndim == 0) { sg_error_set("cat: tensor 1 is 0-dim and cannot be concatenated (use stack)"); return NULL; }
  if ((dim = sg_wrap_dim("cat", dim, r->ndim)) < 0) return NULL;
  sg_dtype dt = r->dtype;
  int64_t total = 0;
  for (int k = 0; k < n; k++) {
    sg_tensor *t = ts[k];
    if (t->storage->device != r->storage->device) {
      sg_error_set("cat: expected all tensors on one device, got %s (tensor 1) and %s (tensor %d)",
                   sg_device_name(r->storage->device), sg_device_name(t->storage->device), k + 1);
      return NULL;
    }
    bool ok = t->ndim == r->ndim;
    for (int d = 0; ok && d < r->ndim; d++) ok = d == dim || t->size[d] == r->size[d];
    if (!ok) {
      sg_error_set("cat: tensor %d has shape %s, expected %s (all dims but dim %d must match)", k + 1,
                   SG_SHAPE_STR(t), expected_shape(r, dim, (char[96]){0}, 96), dim + 1);
      return NULL;
    }
    if (t->size[dim] > SG_MAX_NUMEL - total) { sg_error_set("cat: the result is too large"); return NULL; }
    total += t->size[dim];
    dt = sg_promote(dt, t->dtype);
  }
  int64_t osz[SG_MAX_DIMS];
  memcpy(osz, r->size, sizeof osz);
  osz[dim] = total;
  if (!check_out_shape("cat", r->ndim, osz)) return NULL;
  bool track = sg_dtype_is_float(dt) && sg_needs_grad(n, ts);
  if (track && n > SG_NODE_MAX_IN) { /* a node holds at most 4 inputs: concatenate groups, then the groups */
    int ng = (n + SG_NODE_MAX_IN - 1) / SG_NODE_MAX_IN;
    sg_tensor **parts = calloc((size_t)ng, sizeof *parts);
    if (!parts) { sg_error_set("out of memory"); return NULL; }
    sg_tensor *out = NULL;
    int k = 0;
    for (; k < ng; k++) {
      int cnt = n - k * SG_NODE_MAX_IN < SG_NODE_MAX_IN ? n - k * SG_NODE_MAX_IN : SG_NODE_MAX_IN;
      if (!(parts[k] = sg_cat(cnt, ts + k * SG_NODE_MAX_IN, dim))) break;
      if (parts[k]->dtype != dt) { /* keep the promoted type of the whole list */
        sg_tensor *c = sg_to_dtype(parts[k], dt);
        sg_tensor_decref(parts[k]);
        if (!(parts[k] = c)) break;
      }
    }
    if (k == ng) out = sg_cat(ng, parts, dim);
    for (int j = 0; j < ng; j++) sg_tensor_decref(parts[j]);
    free(parts);
    return out;
  }
  sg_tensor *out = sg_empty(r->ndim, osz, dt, r->storage->device);
  if (!out) return NULL;
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    sg_tensor *v = sg_alias(out);
    if (!v) { sg_tensor_decref(out); return NULL; }
    v->offset += off * out->stride[dim];
    v->size[dim] = ts[k]->size[dim];
    int rc = sg_copy_(v, ts[k]);
    sg_tensor_decref(v);
    if (rc) { sg_tensor_decref(out); return NULL; }
    off += ts[k]->size[dim];
  }
  atomic_store(&out->storage->version, 0);
  if (track) {
    sg_node *nd = sg_record("cat", cat_backward, out, n, ts);
    if (nd) {
      nd->i[0] = dim;
      int64_t o = 0;
      for (int k = 0; k < n; k++) {
        nd->i[1 + k] = o;
        nd->i[1 + SG_NODE_MAX_IN + k] = ts[k]->size[dim];
        o += ts[k]->size[dim];
      }
    }
  }
  return out;
}

sg_tensor *sg_stack(int n, sg_tensor **ts, int dim) {
  if (n < 1 || !ts) { sg_error_set("stack: expected at least one tensor"); return NULL; }
  for (int k = 0; k < n; k++) {
    if (!ts[k]) { sg_error_set("stack: tensor %d is missing", k + 1); return NULL; }
    if (!sg_same_shape(ts[k], ts[0])) {
      sg_error_set("stack: tensor %d has shape %s, expected %s like tensor 1 (all must have the same shape)", k + 1,
                   SG_SHAPE_STR(ts[k]), SG_SHAPE_STR(ts[0]));
      return NULL;
    }
  }
  if (ts[0]->ndim >= SG_MAX_DIMS) { sg_error_set("stack: the result would have more than %d dims", SG_MAX_DIMS); return NULL; }
  if ((dim = sg_wrap_dim("stack", dim, ts[0]->ndim + 1)) < 0) return NULL;
  sg_tensor **us = calloc((size_t)n, sizeof *us);
  if (!us) { sg_error_set("out of memory"); return NULL; }
  sg_tensor *out = NULL;
  int k = 0;
  for (; k < n; k++) if (!(us[k] = sg_unsqueeze(ts[k], dim))) break;
  if (k == n) out = sg_cat(n, us, dim);
  for (int j = 0; j < n; j++) sg_tensor_decref(us[j]);
  free(us);
  return out;
}
