/* Nearest and bilinear resizing of NCHW tensors, with PyTorch's
 * F.interpolate index rules. Each output row/column reads at most two input
 * rows/columns; the tables of indices and weights are built per axis.
 * GPU tensors go to backend_cuda/cuda_nn (the same rules; a gather backward). */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend_cpu/cpu_kernels.h"
#include "../backend.h"
#include <math.h>
#include <stdlib.h>

typedef struct { int64_t i0, i1; double l0, l1; } tap;

/* 1/scale when the user gave a scale factor, else in/out (PyTorch's compute_scales_value) */
static double scales_value(double scale, int64_t in, int64_t out) {
  return scale > 0 ? 1.0 / scale : (double)in / (double)out;
}

static void build_taps(tap *t, int64_t in, int64_t out, double scale, sg_upsample_mode mode, bool align) {
  for (int64_t d = 0; d < out; d++) {
    if (mode == SG_UPSAMPLE_NEAREST) {
      int64_t s;
      if (out == in) s = d;
      else if (out == 2 * in) s = d >> 1;
      else {
        float sc = (float)scales_value(scale, in, out);
        s = (int64_t)floorf((float)d * sc);
        if (s > in - 1) s = in - 1;
      }
      t[d] = (tap){s, s, 1.0, 0.0};
      continue;
    }
    double sc = align ? (out > 1 ? (double)(in - 1) / (double)(out - 1) : 0.0) : scales_value(scale, in, out);
    double src = align ? sc * (double)d : sc * ((double)d + 0.5) - 0.5;
    if (src < 0) src = 0;
    int64_t i0 = (int64_t)floor(src);
    if (i0 > in - 1) i0 = in - 1;
    double l = src - (double)i0;
    if (l < 0) l = 0;
    if (l > 1) l = 1;
    t[d] = (tap){i0, i0 + (i0 < in - 1 ? 1 : 0), 1.0 - l, l};
  }
}

/* taps for both axes in one allocation: rows then columns */
static tap *make_taps(int64_t H, int64_t W, int64_t oh, int64_t ow, double sh, double sw, sg_upsample_mode mode,
                      bool align) {
  tap *t = malloc(sizeof *t * (size_t)(oh + ow));
  if (!t) { sg_error_set("upsample: out of memory"); return NULL; }
  build_taps(t, H, oh, sh, mode, align);
  build_taps(t + oh, W, ow, sw, mode, align);
  return t;
}

/* nearest f32: the threaded kernels of backend_cpu/cpu_kernels.c read the taps' source indices */
static int64_t *nearest_index(const tap *t, int64_t oh, int64_t ow) {
  int64_t *idx = malloc(sizeof *idx * (size_t)(oh + ow));
  if (!idx) { sg_error_set("upsample: out of memory"); return NULL; }
  for (int64_t d = 0; d < oh + ow; d++) idx[d] = t[d].i0;
  return idx;
}

static int upsample_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_dtype dt = n->in_dtype[0];
  bool f64 = dt == SG_F64;
  const sg_shape *in = &n->in_shape[0];
  if (n->in_device[0] != SG_CPU) {
    sg_tensor *gcu = sg_nn_contig(g, dt), *gxu = gcu ? sg_empty(4, in->size, dt, SG_CUDA) : NULL;
    if (gxu && SG_BACKEND_CALL(SG_DEVICE_OF(gcu), upsample.upsample_backward, "upsample", gcu, gxu, n->f[0], n->f[1], (int)n->i[2], n->i[3] != 0)) {
      sg_tensor_decref(gxu);
      gxu = NULL;
    }
    sg_tensor_decref(gcu);
    gin[0] = gxu;
    return gxu ? 0 : -1;
  }
  int64_t H = in->size[2], W = in->size[3], oh = n->i[0], ow = n->i[1];
  tap *t = make_taps(H, W, oh, ow, n->f[0], n->f[1], (sg_upsample_mode)n->i[2], n->i[3]);
  sg_tensor *gc = t ? sg_nn_contig(g, dt) : NULL, *gx = NULL;
  if (gc && dt == SG_F32 && n->i[2] == SG_UPSAMPLE_NEAREST) {
    int64_t *idx = nearest_index(t, oh, ow);
    gx = idx ? sg_empty(4, in->size, dt, SG_CPU) : NULL;
    if (gx && sg_cpu_nearest_bwd(in->size[0] * in->size[1], H, W, oh, ow, idx, idx + oh, sg_data_ptr(gc),
                                 sg_data_ptr(gx))) {
      sg_tensor_decref(gx);
      gx = NULL;
    }
    free(idx);
    free(t);
    sg_tensor_decref(gc);
    gin[0] = gx;
    return gx ? 0 : -1;
  }
  gx = gc ? sg_zeros(4, in->size, dt, SG_CPU) : NULL;
  if (gx) {
    const tap *ty = t, *tx = t + oh;
    int64_t planes = in->size[0] * in->size[1];
    double *acc = calloc((size_t)(H * W > 0 ? H * W : 1), sizeof *acc);
    if (!acc) {
      sg_error_set("upsample: out of memory");
      sg_tensor_decref(gx);
      gx = NULL;
    }
    for (int64_t pl = 0; acc && pl < planes; pl++) {
      const void *gp = sg_data_ptr(gc);
      for (int64_t k = 0; k < H * W; k++) acc[k] = 0;
      for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
          double v = SG_NN_LD(gp, f64, (pl * oh + y) * ow + x);
          const tap *a = &ty[y], *b = &tx[x];
          acc[a->i0 * W + b->i0] += v * a->l0 * b->l0;
          acc[a->i0 * W + b->i1] += v * a->l0 * b->l1;
          acc[a->i1 * W + b->i0] += v * a->l1 * b->l0;
          acc[a->i1 * W + b->i1] += v * a->l1 * b->l1;
        }
      for (int64_t k = 0; k < H * W; k++) SG_NN_ST(sg_data_ptr(gx), f64, pl * H * W + k, acc[k]);
    }
    free(acc);
  }
  free(t);
  sg_tensor_decref(gc);
  gin[0] = gx;
  return gx ? 0 : -1;
}

sg_tensor *sg_upsample(sg_tensor *x, int64_t oh, int64_t ow, double scale_h, double scale_w, sg_upsample_mode mode,
                       bool align_corners) {
  const char *op = "upsample";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  if (x->ndim != 4) {
    sg_error_set("%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  if (mode != SG_UPSAMPLE_NEAREST && mode != SG_UPSAMPLE_BILINEAR) {
    sg_error_set("%s: unknown mode %d", op, (int)mode);
    return NULL;
  }
  if (oh < 1 || ow < 1 || x->size[2] < 1 || x->size[3] < 1) {
    sg_error_set("%s: input %s and output size %lldx%lld must be non-empty", op, SG_SHAPE_STR(x), (long long)oh,
                 (long long)ow);
    return NULL;
  }
  if (!(scale_h >= 0) || !(scale_w >= 0) || isinf(scale_h) || isinf(scale_w)) {
    sg_error_set("%s: scale factors must be positive (got %g, %g)", op, scale_h, scale_w);
    return NULL;
  }
  int64_t H = x->size[2], W = x->size[3], osz[4] = {x->size[0], x->size[1], oh, ow};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL) { sg_error_set("%s: output is too large", op); return NULL; }
  bool f64 = x->dtype == SG_F64;
  bool cuda = x->storage->device != SG_CPU;
  tap *t = cuda ? NULL : make_taps(H, W, oh, ow, scale_h, scale_w, mode, align_corners);
  sg_tensor *xc = t || cuda ? sg_nn_contig(x, x->dtype) : NULL;
  sg_tensor *out = xc ? sg_empty(4, osz, x->dtype, x->storage->device) : NULL;
  if (out && cuda && SG_BACKEND_CALL(SG_DEVICE_OF(xc), upsample.upsample, "upsample", xc, out, scale_h, scale_w, (int)mode, align_corners)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  bool nearest32 = !cuda && !f64 && mode == SG_UPSAMPLE_NEAREST; /* f32 nearest: the threaded cpu kernels */
  int64_t *idx = out && nearest32 ? nearest_index(t, oh, ow) : NULL;
  if (idx) {
    sg_cpu_nearest_fwd(osz[0] * osz[1], H, W, oh, ow, idx, idx + oh, sg_data_ptr(xc), sg_data_ptr(out));
    free(idx);
  } else if (out && nearest32) {
    sg_tensor_decref(out); /* out of memory for the index table */
    out = NULL;
  } else if (out && !cuda) {
    const tap *ty = t, *tx = t + oh;
    const void *xp = sg_data_ptr(xc);
    void *op_ = sg_data_ptr(out);
    int64_t planes = osz[0] * osz[1];
    for (int64_t pl = 0; pl < planes; pl++) {
      int64_t base = pl * H * W;
      for (int64_t y = 0; y < oh; y++)
        for (int64_t xo = 0; xo < ow; xo++) {
          const tap *a = &ty[y], *b = &tx[xo];
          double v;
          if (mode == SG_UPSAMPLE_NEAREST) v = SG_NN_LD(xp, f64, base + a->i0 * W + b->i0);
          else
            v = a->l0 * (b->l0 * SG_NN_LD(xp, f64, base + a->i0 * W + b->i0) +
                         b->l1 * SG_NN_LD(xp, f64, base + a->i0 * W + b->i1)) +
                a->l1 * (b->l0 * SG_NN_LD(xp, f64, base + a->i1 * W + b->i0) +
                         b->l1 * SG_NN_LD(xp, f64, base + a->i1 * W + b->i1));
          SG_NN_ST(op_, f64, (pl * oh + y) * ow + xo, v);
        }
    }
  }
  free(t);
  sg_tensor_decref(xc);
  if (!out) return NULL;
  sg_node *n = sg_record(op, upsample_bw, out, 1, &x);
  if (n) {
    n->i[0] = oh; n->i[1] = ow; n->i[2] = mode; n->i[3] = align_corners;
    n->f[0] = scale_h; n->f[1] = scale_w;
  }
  return out;
}
