/* The reference backend: plain, obviously correct loops on host memory for
 * every entry of the device table (backend.h), written for reading, not speed.
 * Every other backend is tested against it (tests/ops/). Its files are named
 * after the op families; each fills its entries in sg_ref_fill_<family>.
 * The fast cpu paths may call these functions for the cases they do not
 * speed up. Floating tensors are f32 or f64 here, contiguous (c). */
#ifndef SG_BACKEND_REF_H
#define SG_BACKEND_REF_H
#include "../backend.h"

/* element i of a contiguous f32 or f64 buffer, through double */
#define SG_REF_LD(p, f64, i) ((f64) ? ((const double *)(p))[i] : (double)((const float *)(p))[i])
#define SG_REF_ST(p, f64, i, v)                                                                        \
  do {                                                                                                 \
    if (f64) ((double *)(p))[i] = (v);                                                                 \
    else ((float *)(p))[i] = (float)(v);                                                               \
  } while (0)

/* ---- upsample.c ---- */
/* PyTorch's F.interpolate source rows (or columns) for each output row: d reads i0 with weight l0 and i1 with
 * weight l1 (nearest: i0 == i1, l1 == 0); scale > 0 when the caller gave a scale factor; mode: 0 nearest,
 * 1 bilinear. */
typedef struct { int64_t i0, i1; double l0, l1; } sg_upsample_tap;
void sg_ref_upsample_taps(sg_upsample_tap *t, int64_t in, int64_t out, double scale, int mode, bool align);
int sg_ref_upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align);
int sg_ref_upsample_backward(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align);

/* ---- conv.c ---- */
/* the conv entries of backend.h (any N, C, H, W including empty batches) */
int sg_ref_conv(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big, sg_tensor *w, sg_tensor *small,
                sg_tensor *bias);
int sg_ref_conv_bias_add_(sg_tensor *out, sg_tensor *bias);
int sg_ref_conv_bias_backward(sg_tensor *gout, sg_tensor *gb);

#endif
