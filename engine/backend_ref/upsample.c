/* Reference nearest and bilinear resizing of NCHW planes with PyTorch's
 * F.interpolate index rules: each output pixel reads at most two rows and two
 * columns, weighted; the backward adds each output gradient back to those four
 * inputs, in double. */
#include "ref.h"
#include <math.h>
#include <stdlib.h>

/* 1/scale when the user gave a scale factor, else in/out (PyTorch's compute_scales_value) */
static double scales_value(double scale, int64_t in, int64_t out) {
  return scale > 0 ? 1.0 / scale : (double)in / (double)out;
}

void sg_ref_upsample_taps(sg_upsample_tap *t, int64_t in, int64_t out, double scale, int mode, bool align) {
  for (int64_t d = 0; d < out; d++) {
    if (mode == 0) { /* nearest: PyTorch computes the source in float */
      int64_t s;
      if (out == in) s = d;
      else if (out == 2 * in) s = d >> 1;
      else {
        float sc = (float)scales_value(scale, in, out);
        s = (int64_t)floorf((float)d * sc);
        if (s > in - 1) s = in - 1;
      }
      t[d] = (sg_upsample_tap){s, s, 1.0, 0.0};
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
    t[d] = (sg_upsample_tap){i0, i0 + (i0 < in - 1 ? 1 : 0), 1.0 - l, l};
  }
}

/* rows then columns in one allocation */
static sg_upsample_tap *taps(const sg_tensor *small, const sg_tensor *big, double sh, double sw, int mode,
                             bool align) {
  int64_t H = small->size[2], W = small->size[3], oh = big->size[2], ow = big->size[3];
  sg_upsample_tap *t = malloc(sizeof *t * (size_t)(oh + ow));
  if (!t) { sg_error_set("upsample: out of memory"); return NULL; }
  sg_ref_upsample_taps(t, H, oh, sh, mode, align);
  sg_ref_upsample_taps(t + oh, W, ow, sw, mode, align);
  return t;
}

int sg_ref_upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align) {
  sg_upsample_tap *t = taps(x, out, scale_h, scale_w, mode, align);
  if (!t) return -1;
  bool f64 = x->dtype == SG_F64;
  int64_t H = x->size[2], W = x->size[3], oh = out->size[2], ow = out->size[3];
  const void *xp = sg_data_ptr(x);
  void *op = sg_data_ptr(out);
  for (int64_t pl = 0; pl < x->size[0] * x->size[1]; pl++) {
    int64_t base = pl * H * W;
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xo = 0; xo < ow; xo++) {
        const sg_upsample_tap *a = &t[y], *b = &t[oh + xo];
        double v;
        if (mode == 0) v = SG_REF_LD(xp, f64, base + a->i0 * W + b->i0); /* a copy, also of inf and NaN */
        else
          v = a->l0 * (b->l0 * SG_REF_LD(xp, f64, base + a->i0 * W + b->i0) +
                       b->l1 * SG_REF_LD(xp, f64, base + a->i0 * W + b->i1)) +
              a->l1 * (b->l0 * SG_REF_LD(xp, f64, base + a->i1 * W + b->i0) +
                       b->l1 * SG_REF_LD(xp, f64, base + a->i1 * W + b->i1));
        SG_REF_ST(op, f64, (pl * oh + y) * ow + xo, v);
      }
  }
  free(t);
  return 0;
}

int sg_ref_upsample_backward(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align) {
  sg_upsample_tap *t = taps(gx, g, scale_h, scale_w, mode, align);
  int64_t H = gx->size[2], W = gx->size[3], oh = g->size[2], ow = g->size[3];
  double *acc = t ? calloc((size_t)(H * W), sizeof *acc) : NULL;
  if (!acc) {
    free(t);
    if (t) sg_error_set("upsample: out of memory");
    return -1;
  }
  bool f64 = g->dtype == SG_F64;
  const void *gp = sg_data_ptr(g);
  for (int64_t pl = 0; pl < gx->size[0] * gx->size[1]; pl++) {
    for (int64_t k = 0; k < H * W; k++) acc[k] = 0;
    for (int64_t y = 0; y < oh; y++)
      for (int64_t x = 0; x < ow; x++) {
        double v = SG_REF_LD(gp, f64, (pl * oh + y) * ow + x);
        const sg_upsample_tap *a = &t[y], *b = &t[oh + x];
        acc[a->i0 * W + b->i0] += v * a->l0 * b->l0;
        acc[a->i0 * W + b->i1] += v * a->l0 * b->l1;
        acc[a->i1 * W + b->i0] += v * a->l1 * b->l0;
        acc[a->i1 * W + b->i1] += v * a->l1 * b->l1;
      }
    for (int64_t k = 0; k < H * W; k++) SG_REF_ST(sg_data_ptr(gx), f64, pl * H * W + k, acc[k]);
  }
  free(acc);
  free(t);
  return 0;
}

void sg_ref_fill_upsample(sg_backend *t);
void sg_ref_fill_upsample(sg_backend *t) {
  t->upsample.upsample = sg_ref_upsample;
  t->upsample.upsample_backward = sg_ref_upsample_backward;
}
