/* Launchers of the CNN kernels (pooling, batch/group/layer norm, upsampling,
 * convolution bias): plain C, shared by the host glue
 * (engine/backend_cuda/conv.c, pool.c, norm.c, upsample.c) and kernels/pool.cu,
 * norm.cu, upsample.cu, conv.cu.
 *
 * Unless said otherwise every tensor argument is contiguous NCHW (or [N,C,L])
 * in the floating dtype `dt` (SG_F16, SG_BF16, SG_F32 or SG_F64); index
 * tensors are contiguous int64. Kernels accumulate in float for 16-bit and
 * f32 data where a single sum is short, and in double for the statistics of
 * the norms and the sums of the reductions, like the CPU code. Launchers
 * return the cudaError_t of the launch (0 = success). */
#ifndef SG_K_NN_H
#define SG_K_NN_H
#include "k_common.h"

/* A per-channel vector argument (weight, bias, running statistics): base
 * pointer (NULL = absent), its dtype and element stride. */
typedef struct {
  void *p;
  int dt;
  int64_t stride;
} sgk_vec;

/* ---- pooling (kernels/pool.cu) ----
 * A window geometry over planes of H x W (planes = N * C):
 * kh kw sh sw ph pw as the CPU op; cip = count_include_pad for average
 * pooling; adaptive: PyTorch's adaptive windows (kernel fields unused). */
typedef struct {
  int64_t planes, H, W, oh, ow;
  int64_t kh, kw, sh, sw, ph, pw;
  int cip, adaptive;
} sgk_pool;

/* y and idx [planes, oh, ow]: max over each window, the flat index of the
 * first maximum within its H*W plane (a NaN wins at once), as the CPU. */
SGK_API int sgk_max_pool2d(const void *x, int dt, void *y, int64_t *idx, const sgk_pool *p, sgk_stream s);
/* gx [planes, H, W] = sum of g over the outputs whose index points at the
 * input position (a gather over the windows that contain it: deterministic). */
SGK_API int sgk_max_pool2d_backward(const void *g, const int64_t *idx, int dt, void *gx, const sgk_pool *p,
                                    sgk_stream s);
/* *bad (device int, zeroed by the caller) set to 1 when any of the n indices is outside [0, limit). */
/* y [planes, os] (zeroed by the caller) <- x [planes, is] scattered by idx [planes, is]; where indices
 * repeat, the last input position wins as in the CPU loop. win: scratch of planes*os uint32 (zeroed by
 * the caller); only valid when is < 2^32 - 1 (NULL: plain scatter, repeats race). */
SGK_API int sgk_max_unpool2d(const void *x, const int64_t *idx, int dt, void *y, unsigned *win, int64_t planes,
                             int64_t is, int64_t os, sgk_stream s);
/* gx [planes, is] = g [planes, os] gathered at idx */
SGK_API int sgk_max_unpool2d_backward(const void *g, const int64_t *idx, int dt, void *gx, int64_t planes, int64_t is,
                                      int64_t os, sgk_stream s);
/* average (or adaptive average) pooling and its gather-style backward */
SGK_API int sgk_avg_pool2d(const void *x, int dt, void *y, const sgk_pool *p, sgk_stream s);
SGK_API int sgk_avg_pool2d_backward(const void *g, int dt, void *gx, const sgk_pool *p, sgk_stream s);

/* ---- per-channel reductions and batch norm (kernels/norm.cu) ----
 * x viewed as [N, C, L]. The channel reduction sums two quantities per
 * channel over N and L in double, in `splits` partial sums per channel
 * (partials: 2 * C * splits doubles) that a finalize step adds in order, so
 * results do not depend on timing. */
typedef enum {
  SGK_RED_SUM = 0,  /* a = g                                  (bias gradient) */
  SGK_RED_STATS,    /* a = x - K, b = (x - K)^2, K = x[0, c, 0] (shifted moments) */
  SGK_RED_BN_BWD,   /* a = g, b = g * (x - mean[c]) * invstd[c]  (stats: mean [C], invstd [C]) */
  SGK_RED_GN_BWD    /* a = g, b = g * (x - mean[r]) * invstd[r], r = n * G + c / (C / G) */
} sgk_red_mode;
typedef struct {
  int64_t N, C, L, G; /* G: groups (SGK_RED_GN_BWD only) */
  int splits;
} sgk_red;
/* how many partial sums per channel suit this shape */
SGK_API int sgk_red_splits(int64_t N, int64_t C, int64_t L);
/* stats: mean then invstd, each [C] (BN) or [N*G] (GN) doubles; g may be NULL for SGK_RED_STATS,
 * x may be NULL for SGK_RED_SUM */
SGK_API int sgk_channel_reduce(int mode, const void *x, const void *g, int dt, const double *stats, const sgk_red *r,
                               double *partials, sgk_stream s);
/* sums [2C] doubles: sums[c] = sum of a, sums[C + c] = sum of b */
SGK_API int sgk_channel_sums(const double *partials, const sgk_red *r, double *sums, sgk_stream s);
/* out[c] = src[c] for c < C, stored in out's dtype and stride */
SGK_API int sgk_store_vec(const double *src, int64_t C, sgk_vec out, sgk_stream s);

/* Batch norm statistics, stats [4C] doubles: mean, invstd, scale, shift
 * (y = x * scale + shift; scale = invstd * w, shift = b - mean * scale).
 * Training: from the SGK_RED_STATS partials of x (biased variance); the
 * running statistics (when rm.p) updated in place:
 * r = (1 - momentum) r + momentum * (mean | unbiased variance).
 * Evaluation (partials NULL): from rm, rv. w, b optional (ones, zeros). */
SGK_API int sgk_bn_stats(const double *partials, const void *x, int dt, const sgk_red *r, double eps, double momentum,
                         sgk_vec rm, sgk_vec rv, sgk_vec w, sgk_vec b, double *stats, sgk_stream s);
/* y = x * scale[c] + shift[c] */
SGK_API int sgk_bn_apply(const void *x, int dt, void *y, const double *stats, int64_t N, int64_t C, int64_t L,
                         sgk_stream s);
/* coef [4C] for the input gradient from the statistics and the sums [2C]
 * (sum g, sum g * xhat) of SGK_RED_BN_BWD (NULL in evaluation); M = N * L */
SGK_API int sgk_bn_backward_coef(const double *stats, const double *sums, sgk_vec w, int64_t C, double M, double *coef,
                                 sgk_stream s);
/* training: gx = w * invstd * (g - sum_g / M - xhat * sum_gxhat / M); evaluation: gx = w * invstd * g */
SGK_API int sgk_bn_backward_data(const void *x, const void *g, int dt, void *gx, const double *coef, int training,
                                 int64_t N, int64_t C, int64_t L, sgk_stream s);

/* ---- group and layer norm (kernels/norm.cu) ----
 * x [N, C, L] in G groups (layer norm: N = rows, C = D, G = 1, L = 1); one
 * block per (sample, group) row of M = C/G * L values. stats [2*N*G] doubles
 * (mean then invstd per row) written by the forward. */
SGK_API int sgk_group_norm(const void *x, int dt, void *y, sgk_vec w, sgk_vec b, int64_t N, int64_t C, int64_t G,
                           int64_t L, double eps, double *stats, sgk_stream s);
/* gx = invstd * (w g - mean(w g)) - invstd^3 (x - mean) mean(w g (x - mean)) per row */
SGK_API int sgk_group_norm_backward(const void *x, const void *g, int dt, void *gx, sgk_vec w, int64_t N, int64_t C,
                                    int64_t G, int64_t L, const double *stats, sgk_stream s);

/* ---- upsampling (kernels/upsample.cu) ----
 * The CPU's index rules (engine/ops/upsample.c) evaluated on the device with
 * the same IEEE operations (no contraction). The scale of each axis: nearest:
 * float sc (used unless out == in or out == 2 * in); bilinear: double sc. */
typedef struct {
  int64_t planes, H, W, oh, ow;
  int bilinear, align;
  float nsh, nsw;  /* nearest: (float) scales_value per axis */
  double bsh, bsw; /* bilinear: the source-coordinate scale per axis */
} sgk_upsample_geom;
/* taps: scratch of sgk_upsample_scratch_bytes(p) bytes */
SGK_API int64_t sgk_upsample_scratch_bytes(const sgk_upsample_geom *p);
SGK_API int sgk_upsample(const void *x, int dt, void *y, const sgk_upsample_geom *p, void *scratch, sgk_stream s);
/* gx [planes, H, W] = sum over the outputs that read each input pixel, weighted (gather: deterministic) */
SGK_API int sgk_upsample_backward(const void *g, int dt, void *gx, const sgk_upsample_geom *p, void *scratch,
                                  sgk_stream s);

/* ---- convolution helpers (kernels/conv.cu) ---- */
/* y [N, C, L] += b[c] */
SGK_API int sgk_bias_add(void *y, int dt, sgk_vec b, int64_t N, int64_t C, int64_t L, sgk_stream s);

#endif
