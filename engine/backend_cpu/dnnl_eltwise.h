/* oneDNN fast path for f32 elementwise activations (used by ops/elementwise.c).
 *
 * Buffers are contiguous f32 of n elements, treated as one flat vector; the
 * output is overwritten and may be the input itself (in place). Every entry
 * point answers 1 (oneDNN computed it), 0 (not handled: oneDNN absent or
 * switched off (sg_dnnl_enabled(), the conv path's switch: SEMSEG_DNNL=0 or
 * F._dnnl(false)), fewer than SG_DNNL_ELTWISE_MIN elements, or no
 * implementation; the caller runs its loops) or -1 (failure, with sg_error
 * naming the oneDNN call and its status). */
#ifndef SG_DNNL_ELTWISE_H
#define SG_DNNL_ELTWISE_H
#include <stdint.h>

/* below this many elements the engine's own loops are at least as fast */
#define SG_DNNL_ELTWISE_MIN 32768

typedef enum {
  SG_DNNL_ELT_RELU, SG_DNNL_ELT_SIGMOID, SG_DNNL_ELT_TANH, SG_DNNL_ELT_EXP, SG_DNNL_ELT_SQRT, SG_DNNL_ELT_ABS,
  SG_DNNL_ELT_SQUARE, SG_DNNL_ELT_GELU_ERF, SG_DNNL_ELT_GELU_TANH, SG_DNNL_ELT_COUNT
} sg_dnnl_elt;

/* y = f(x) */
int sg_dnnl_eltwise_fwd(sg_dnnl_elt alg, int64_t n, const float *x, float *y);
/* dx = f'(x) * dy. relu, sigmoid, tanh, exp and sqrt read the forward's
 * output y (x may be NULL); abs, square and gelu read the input x (y may be NULL). */
int sg_dnnl_eltwise_backward(sg_dnnl_elt alg, int64_t n, const float *dy, const float *x, const float *y, float *dx);
/* true when the derivative of alg is computed from the forward's output */
int sg_dnnl_eltwise_uses_dst(sg_dnnl_elt alg);

/* Number of cached eltwise primitives (for tests). */
int sg_dnnl_eltwise_cache_size(void);

/* Which implementation ran the last unary elementwise computation on this
 * thread (forward or backward): "dnnl", "loops", "cuda" or "none". */

#endif
