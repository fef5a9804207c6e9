/* oneDNN fast path for f32 2-d convolution (used by backend_cpu/conv.c).
 *
 * The geometry is backend.h's sg_conv_geom: a "big" image [N, Cb, Hb, Wb] (conv2d input,
 * conv_transpose2d output), a "small" grid [N, Cs, Hs, Ws] (conv2d output,
 * conv_transpose2d input) and a weight [Cs, Cb/G, kh, kw]. Three oneDNN
 * convolution primitives cover forward and backward of both ops:
 *   SG_DNNL_FWD:         small = conv(big, w) (+ bias[Cs] when bias != NULL)
 *   SG_DNNL_BWD_DATA:    big   = adjoint conv(small, w)
 *   SG_DNNL_BWD_WEIGHTS: w     = dL/dw (big, small); bias = sum of small over
 *                        N, H, W when bias != NULL
 * All buffers are contiguous f32 (plain NCHW / OIHW); outputs are overwritten.
 *
 * Built without oneDNN (SG_HAVE_DNNL undefined), sg_dnnl_conv() always
 * answers "not handled" and the caller takes its BLAS path. */
#ifndef SG_DNNL_CONV_H
#define SG_DNNL_CONV_H
#include <stdbool.h>
#include <stdint.h>

typedef enum { SG_DNNL_FWD = 0, SG_DNNL_BWD_DATA = 1, SG_DNNL_BWD_WEIGHTS = 2 } sg_dnnl_kind;

typedef struct {
  int64_t N, G, Cb, Hb, Wb, Cs, Hs, Ws, kh, kw, sh, sw, ph, pw, dh, dw;
} sg_dnnl_geom;

/* 1: oneDNN computed it; 0: not handled (oneDNN absent or disabled, or it has
 * no implementation for this geometry; nothing written); -1: failure, with
 * sg_error naming the oneDNN call and its status. */
int sg_dnnl_conv(sg_dnnl_kind kind, const sg_dnnl_geom *g, float *big, float *w, float *small, float *bias);

/* Between begin and end (on this thread), inputs reordered to a blocked layout
 * are reordered once: a later call reading the same buffer in the same layout
 * reuses the copy. The caller guarantees the buffers do not change in between
 * (conv backward: the output gradient, for the data and weight gradients). */
void sg_dnnl_conv_share_begin(void);
void sg_dnnl_conv_share_end(void);

/* True when the library was built with oneDNN. */
bool sg_dnnl_compiled(void);
/* True when conv ops should try oneDNN: compiled in, and not switched off by
 * sg_dnnl_set_enabled(0) or (by default) the environment SEMSEG_DNNL=0. */
bool sg_dnnl_enabled(void);
/* 1 on, 0 off, -1 back to the environment's choice. */
void sg_dnnl_set_enabled(int on);
/* Deterministic mode (SEMSEG_DETERMINISTIC=1, or 1 on / 0 off / -1 back to the
 * environment): convolutions give bitwise the same results for any number of
 * OpenMP threads. oneDNN's weight gradient splits its reduction by thread
 * count and winograd tiles by it, so in this mode convolutions use the direct
 * algorithm and the weight gradient runs on one thread (slower). */
void sg_conv_set_deterministic(int on);
bool sg_conv_deterministic(void);
/* whether the last oneDNN convolution on this thread ran the Winograd algorithm */
bool sg_conv_last_winograd(void);

/* Number of cached oneDNN primitives (for tests). */
int sg_dnnl_cache_size(void);

#endif
