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

/* ---- elementwise.c ----
 * Unlike the other families these take any dtype and any strides (broadcast operands have zero strides):
 * the loops run through sg_iter (core/iter.h). The scalar functions are the definition every backend's
 * fast loops must agree with; op is an sg_unop (ops/ops.h), -1 for clamp. */
double sg_ref_unary_f(int op, double x);                       /* float compute types, in double */
int64_t sg_ref_unary_i(int op, int64_t x);                     /* integer compute types, wrapping */
double sg_ref_unary_grad(int op, double g, double x, double y); /* d op(x)/dx * g from input x, output y */
double sg_ref_binary_f(int op, double a, double b);           /* op an sg_binop */
int64_t sg_ref_binary_i(int op, int64_t a, int64_t b);
/* an element of dtype t as a cast to the compute type ct gives it (float ct: as double; else as int64) */
double sg_ref_load_ct_f(const void *p, sg_dtype t, sg_dtype ct);
int64_t sg_ref_load_ct_i(const void *p, sg_dtype t, sg_dtype ct);
int sg_ref_binary(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct);
int sg_ref_where(sg_tensor *out, sg_tensor *cond, sg_tensor *a, sg_tensor *b);
int sg_ref_unary(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi);
int sg_ref_unary_backward(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y);

#endif
