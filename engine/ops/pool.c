/* Pooling over the H, W planes of NCHW tensors: max pooling (with the flat
 * position of each maximum) and its unpooling, average and adaptive average
 * pooling. Checks, output shapes and autograd here; the computation in the
 * device table's pool entries (backend_ref/pool.c is the reference). */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend.h"
#include <string.h>

static bool check_input(const char *op, const sg_tensor *x) {
  if (!sg_nn_check_float_dev(op, "input", x)) return false;
  if (x->ndim != 4) {
    sg_error_set("%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    return false;
  }
  return true;
}

/* kernel/stride/padding checks and the output size; false with an error */
static bool window_plan(const char *op, const sg_tensor *x, const int64_t *k, const int64_t *s, const int64_t *p,
                        int64_t *oh, int64_t *ow) {
  if (!check_input(op, x)) return false;
  if (k[0] < 1 || k[1] < 1) {
    sg_error_set("%s: kernel must be positive (got {%lld, %lld})", op, (long long)k[0], (long long)k[1]);
    return false;
  }
  if (s[0] < 1 || s[1] < 1) {
    sg_error_set("%s: stride must be positive (got {%lld, %lld})", op, (long long)s[0], (long long)s[1]);
    return false;
  }
  if (p[0] < 0 || p[1] < 0 || p[0] > k[0] / 2 || p[1] > k[1] / 2) {
    sg_error_set("%s: padding must be between 0 and half the kernel (got padding {%lld, %lld}, kernel {%lld, %lld})",
                 op, (long long)p[0], (long long)p[1], (long long)k[0], (long long)k[1]);
    return false;
  }
  int64_t eh = x->size[2] + 2 * p[0] - k[0], ew = x->size[3] + 2 * p[1] - k[1];
  if (eh < 0 || ew < 0 || x->size[2] < 1 || x->size[3] < 1) {
    sg_error_set("%s: input %s (padded %lldx%lld) is smaller than the kernel %lldx%lld", op, SG_SHAPE_STR(x),
                 (long long)(x->size[2] + 2 * p[0]), (long long)(x->size[3] + 2 * p[1]), (long long)k[0],
                 (long long)k[1]);
    return false;
  }
  *oh = eh / s[0] + 1;
  *ow = ew / s[1] + 1;
  return true;
}

/* gin[0] = the gradient of the node's input: g made contiguous, gx of the input's shape filled by `call` */
typedef int (*bw_call)(sg_node *n, sg_tensor *g, sg_tensor *gx);
static int backward_with(sg_node *n, sg_tensor *g, sg_tensor **gin, bw_call call) {
  sg_dtype dt = n->in_dtype[0];
  sg_tensor *gc = sg_nn_contig(g, dt), *gx = gc ? sg_empty(4, n->in_shape[0].size, dt, n->in_device[0]) : NULL;
  if (gx && call(n, gc, gx)) {
    sg_tensor_decref(gx);
    gx = NULL;
  }
  sg_tensor_decref(gc);
  gin[0] = gx;
  return gx ? 0 : -1;
}

/* ---------------------------------------------------------------- max pool */
/* n->i: kh kw sh sw ph pw; saved: the indices */
static int maxpool_call(sg_node *n, sg_tensor *g, sg_tensor *gx) {
  sg_tensor *idx = sg_node_saved(n, 0);
  return idx ? SG_BACKEND_CALL(n->in_device[0], pool.max_pool2d_backward, "max_pool2d", g, idx, n->i, gx) : -1;
}
static int maxpool_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) { return backward_with(n, g, gin, maxpool_call); }

int sg_max_pool2d(sg_tensor *x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                  sg_tensor **values, sg_tensor **indices) {
  const char *op = "max_pool2d";
  int64_t oh, ow;
  if (!window_plan(op, x, kernel, stride, padding, &oh, &ow)) return -1;
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  int64_t par[6] = {kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
  sg_device dev = SG_DEVICE_OF(x);
  /* the positions only when the caller or autograd wants them (inference skips them) */
  bool positions = indices || sg_needs_grad(1, &x);
  sg_tensor *xc = sg_nn_contig(x, x->dtype);
  sg_tensor *v = xc ? sg_empty(4, osz, x->dtype, dev) : NULL;
  sg_tensor *ix = v && positions ? sg_empty(4, osz, SG_I64, dev) : NULL;
  int rc = v && (ix || !positions) ? SG_BACKEND_CALL(dev, pool.max_pool2d, op, xc, par, v, ix) : -1;
  sg_tensor_decref(xc);
  if (rc) {
    sg_tensor_decref(v);
    sg_tensor_decref(ix);
    return -1;
  }
  sg_node *n = sg_record(op, maxpool_backward, v, 1, &x);
  if (n) {
    sg_node_save(n, ix);
    memcpy(n->i, par, sizeof par);
  }
  *values = v;
  if (indices) *indices = ix;
  else sg_tensor_decref(ix);
  return 0;
}

/* ---------------------------------------------------------------- max unpool */
/* saved: the indices */
static int unpool_call(sg_node *n, sg_tensor *g, sg_tensor *gx) {
  sg_tensor *idx = sg_node_saved(n, 0);
  return idx ? SG_BACKEND_CALL(n->in_device[0], pool.max_unpool2d_backward, "max_unpool2d", g, idx, gx) : -1;
}
static int unpool_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) { return backward_with(n, g, gin, unpool_call); }

sg_tensor *sg_max_unpool2d(sg_tensor *x, sg_tensor *indices, int64_t oh, int64_t ow) {
  const char *op = "max_unpool2d";
  if (!check_input(op, x)) return NULL;
  sg_device dev = SG_DEVICE_OF(x);
  if (indices->dtype != SG_I64 || SG_DEVICE_OF(indices) != dev) {
    sg_error_set("%s: indices must be a %s i64 tensor like the input (got %s on %s)", op, sg_device_name(dev),
                 sg_dtype_name(indices->dtype), sg_device_name(SG_DEVICE_OF(indices)));
    return NULL;
  }
  if (!sg_same_shape(x, indices)) {
    sg_error_set("%s: indices must have the input's shape (input %s, indices %s)", op, SG_SHAPE_STR(x),
                 SG_SHAPE_STR(indices));
    return NULL;
  }
  if (oh < 1 || ow < 1) {
    sg_error_set("%s: output size must be positive (got {%lld, %lld})", op, (long long)oh, (long long)ow);
    return NULL;
  }
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL) { sg_error_set("%s: output is too large", op); return NULL; }
  /* the backend checks that every index lies in the output plane (on its device) */
  sg_tensor *ic = sg_nn_contig(indices, SG_I64), *xc = ic ? sg_nn_contig(x, x->dtype) : NULL;
  sg_tensor *out = xc ? sg_empty(4, osz, x->dtype, dev) : NULL;
  if (out && SG_BACKEND_CALL(dev, pool.max_unpool2d, op, xc, ic, out)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  sg_tensor_decref(xc);
  if (out) {
    sg_node *n = sg_record(op, unpool_backward, out, 1, &x);
    if (n) sg_node_save(n, ic);
  }
  sg_tensor_decref(ic);
  return out;
}

/* ---------------------------------------------------------------- average pools */
/* n->i: kh kw sh sw ph pw count_include_pad (zeros when adaptive), adaptive */
static int avg_call(sg_node *n, sg_tensor *g, sg_tensor *gx) {
  bool adaptive = n->i[7] != 0;
  return SG_BACKEND_CALL(n->in_device[0], pool.avg_pool2d_backward, adaptive ? "adaptive_avg_pool2d" : "avg_pool2d",
                         g, n->i, adaptive, gx);
}
static int avg_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) { return backward_with(n, g, gin, avg_call); }

static sg_tensor *avg_common(const char *op, sg_tensor *x, const int64_t par[7], bool adaptive, int64_t oh,
                             int64_t ow) {
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  sg_device dev = SG_DEVICE_OF(x);
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *out = xc ? sg_empty(4, osz, x->dtype, dev) : NULL;
  if (out && SG_BACKEND_CALL(dev, pool.avg_pool2d, op, xc, par, adaptive, out)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  sg_tensor_decref(xc);
  if (!out) return NULL;
  sg_node *n = sg_record(op, avg_backward, out, 1, &x);
  if (n) {
    memcpy(n->i, par, sizeof(int64_t) * 7);
    n->i[7] = adaptive;
  }
  return out;
}

sg_tensor *sg_avg_pool2d(sg_tensor *x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                         bool count_include_pad) {
  int64_t oh, ow;
  if (!window_plan("avg_pool2d", x, kernel, stride, padding, &oh, &ow)) return NULL;
  int64_t par[7] = {kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], count_include_pad};
  return avg_common("avg_pool2d", x, par, false, oh, ow);
}

sg_tensor *sg_adaptive_avg_pool2d(sg_tensor *x, int64_t oh, int64_t ow) {
  const char *op = "adaptive_avg_pool2d";
  if (!check_input(op, x)) return NULL;
  if (oh < 1 || ow < 1) {
    sg_error_set("%s: output size must be positive (got {%lld, %lld})", op, (long long)oh, (long long)ow);
    return NULL;
  }
  if (x->size[2] < 1 || x->size[3] < 1) {
    sg_error_set("%s: input %s has an empty plane", op, SG_SHAPE_STR(x));
    return NULL;
  }
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL) { sg_error_set("%s: output is too large", op); return NULL; }
  int64_t par[7] = {0};
  return avg_common(op, x, par, true, oh, ow);
}
