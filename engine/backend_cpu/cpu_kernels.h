/* Hand-written f32 CPU kernels for the hot non-convolution ops of a training
 * step (nearest up-sampling, batch norm with an optional fused ReLU, Adam,
 * BCE with logits). All buffers are contiguous f32 (NCHW where it matters);
 * outputs are overwritten. Work is spread over OpenMP threads so that every
 * output element, and every reduction, is computed by one thread in a fixed
 * order: results are bitwise the same for any thread count. */
#ifndef SG_CPU_KERNELS_H
#define SG_CPU_KERNELS_H
#include <stdbool.h>
#include <stdint.h>

/* ---- nearest up-sampling (ops/upsample.c)
 * iy [oh] and ix [ow]: the input row / column each output row / column reads,
 * non-decreasing (PyTorch's nearest rule always is). */
/* out[p, y, x] = in[p, iy[y], ix[x]] for every plane p < planes */
void sg_cpu_nearest_fwd(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *iy,
                        const int64_t *ix, const float *in, float *out);
/* gin[p, i, j] = sum of g[p, y, x] over iy[y] == i and ix[x] == j, added in
 * double in row-major (y, x) order, rounded once: the generic loops' result.
 * 0, or -1 (out of memory, with sg_error). */
int sg_cpu_nearest_backward(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *iy,
                        const int64_t *ix, const float *g, float *gin);

/* ---- batch norm over x [N, C, L] (ops/norm.c), optionally fused with a ReLU
 * on its output. Per channel: training computes the batch mean and biased
 * variance (double, two passes; each channel reduced by one thread, in a fixed
 * order) into mean/var; otherwise mean/var are read (running statistics).
 * y = (x - mean) / sqrt(var + eps) * w + b (w, b may be NULL: 1 and 0),
 * evaluated in f32 as x * scale + shift; relu: y = max(y, 0) (NaN stays NaN). */
void sg_cpu_bn_fwd(bool training, int64_t N, int64_t C, int64_t L, double eps, const float *x, float *y,
                   double *mean, double *var, const float *w, const float *b, bool relu);
/* The backward from dy with the forward's mean and var. relu: y is the fused
 * forward's output and dy counts only where y > 0. Writes dx (unless NULL;
 * training: the full batch-statistics gradient, else w * invstd * dy) and,
 * per channel, sum_dy = sum of dy and sum_dyxhat = sum of dy * (x - mean) *
 * invstd (the bias and weight gradients), in double. */
void sg_cpu_bn_backward(bool training, int64_t N, int64_t C, int64_t L, double eps, const float *x, const float *y,
                   const float *dy, const double *mean, const double *var, const float *w, float *dx,
                   double *sum_dy, double *sum_dyxhat);

/* ---- sum over the middle dim of x [A, R, B] (backend_cpu/reduce.c; e.g. a broadcast gradient summed over
 * channels): out[a, b] = sum over r of x[a, r, b], added in double in r order (the loops' order). */
void sg_cpu_sum_mid(int64_t A, int64_t R, int64_t B, const float *x, float *out);

/* ---- Adam / AdamW over n f32 elements (ops/optim.c), PyTorch's rule with the
 * constants computed by the caller: decoupled: p *= decay, else g += wd * p;
 * m = b1 * m + omb1 * g; v = b2 * v + omb2 * g * g; vmax = max(vmax, v) when
 * vmax != NULL (AMSGrad); p -= step_size * m / (sqrt(v or vmax) / sbc2 + eps). */
typedef struct {
  float decay, wd, b1, omb1, b2, omb2, sbc2, eps, step_size;
  bool decoupled;
} sg_cpu_adam_consts;
void sg_cpu_adam(int64_t n, float *p, const float *g, float *m, float *v, float *vmax, const sg_cpu_adam_consts *c);

#endif
