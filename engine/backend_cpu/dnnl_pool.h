/* oneDNN fast path for f32 average pooling, used by the cpu table's pool
 * entries (backend_cpu/pool.c; max pooling runs its own kernels there). All
 * buffers are contiguous f32 in plain NCHW order; outputs are overwritten.
 * Every entry point answers 1 (oneDNN computed it), 0 (not handled: oneDNN
 * absent or switched off (the same switch as the conv path,
 * sg_dnnl_enabled()), empty tensors, or no implementation; the caller runs
 * the reference loops, which overwrite anything already written) or -1
 * (failure, with sg_error naming the oneDNN call and its status). */
#ifndef SG_DNNL_POOL_H
#define SG_DNNL_POOL_H
#include <stdbool.h>
#include <stdint.h>

typedef enum { SG_DNNL_POOL_AVG_INCL = 1, SG_DNNL_POOL_AVG_EXCL = 2 } sg_dnnl_pool_alg;

/* input [N, C, H, W], output [N, C, oh, ow]; oh = (H + 2 ph - kh) / sh + 1
 * (floor mode, padding at most half the kernel, as ops/pool.c checks). */
typedef struct {
  int64_t N, C, H, W, oh, ow, kh, kw, sh, sw, ph, pw;
} sg_dnnl_pool_geom;

/* dst = pool(src) */
int sg_dnnl_pool_fwd(sg_dnnl_pool_alg alg, const sg_dnnl_pool_geom *g, const float *src, float *dst);
/* diff_src = d pool / d src applied to diff_dst */
int sg_dnnl_pool_backward(sg_dnnl_pool_alg alg, const sg_dnnl_pool_geom *g, const float *diff_dst, float *diff_src);

/* Number of cached pooling primitives (for tests). */
int sg_dnnl_pool_cache_size(void);

#endif
