/* Hand-written f32 CPU kernels (see cpu_kernels.h). */
#include "cpu_kernels.h"
#include "../core/tensor.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* OpenMP only pays off above this many elements of work */
#define PAR_MIN 32768

/* ---------------------------------------------------------------- nearest up-sampling */
void sg_cpu_nearest_fwd(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *iy,
                        const int64_t *ix, const float *in, float *out) {
  int64_t rows = planes * oh;
  bool twice = ow == 2 * W;
  for (int64_t x = 0; twice && x < ow; x++) twice = ix[x] == x / 2;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * ow >= PAR_MIN)
#endif
  for (int64_t r = 0; r < rows; r++) {
    int64_t p = r / oh, y = r % oh;
    float *o = out + r * ow;
    const float *src = in + (p * H + iy[y]) * W;
    if (twice)
      for (int64_t x = 0; x < W; x++) o[2 * x] = o[2 * x + 1] = src[x];
    else
      for (int64_t x = 0; x < ow; x++) o[x] = src[ix[x]];
  }
}

/* first[k] = first position d with idx[d] >= k, for k = 0..n (idx non-decreasing, length m) */
static void range_starts(const int64_t *idx, int64_t m, int64_t n, int64_t *first) {
  int64_t d = 0;
  for (int64_t k = 0; k <= n; k++) {
    while (d < m && idx[d] < k) d++;
    first[k] = d;
  }
}

int sg_cpu_nearest_bwd(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *iy,
                       const int64_t *ix, const float *g, float *gin) {
  bool twice = oh == 2 * H && ow == 2 * W;
  for (int64_t y = 0; twice && y < oh; y++) twice = iy[y] == y / 2;
  for (int64_t x = 0; twice && x < ow; x++) twice = ix[x] == x / 2;
  int64_t rows = planes * H;
  if (twice) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * W >= PAR_MIN)
#endif
    for (int64_t r = 0; r < rows; r++) {
      int64_t p = r / H, i = r % H;
      const float *g0 = g + (p * oh + 2 * i) * ow, *g1 = g0 + ow;
      float *o = gin + r * W;
      for (int64_t j = 0; j < W; j++) {
        double acc = 0.0;
        acc += g0[2 * j];
        acc += g0[2 * j + 1];
        acc += g1[2 * j];
        acc += g1[2 * j + 1];
        o[j] = (float)acc;
      }
    }
    return 0;
  }
  int64_t *ys = malloc(sizeof *ys * (size_t)(H + W + 2));
  if (!ys) {
    sg_error_set("upsample: out of memory");
    return -1;
  }
  int64_t *xs = ys + H + 1;
  range_starts(iy, oh, H, ys);
  range_starts(ix, ow, W, xs);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * W >= PAR_MIN)
#endif
  for (int64_t r = 0; r < rows; r++) {
    int64_t p = r / H, i = r % H;
    float *o = gin + r * W;
    for (int64_t j = 0; j < W; j++) {
      double acc = 0.0;
      for (int64_t y = ys[i]; y < ys[i + 1]; y++) {
        const float *gr = g + (p * oh + y) * ow;
        for (int64_t x = xs[j]; x < xs[j + 1]; x++) acc += gr[x];
      }
      o[j] = (float)acc;
    }
  }
  free(ys);
  return 0;
}

/* ---------------------------------------------------------------- Adam */
void sg_cpu_adam(int64_t n, float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                 float *restrict vmax, const sg_cpu_adam_consts *c) {
  const float decay = c->decay, wd = c->wd, b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2, sbc2 = c->sbc2,
              eps = c->eps, step = c->step_size;
  const bool decoupled = c->decoupled;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 4 * PAR_MIN)
#endif
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    if (decoupled) p[i] *= decay;
    else gi += wd * p[i];
    m[i] = b1 * m[i] + omb1 * gi;
    v[i] = b2 * v[i] + omb2 * gi * gi;
    float vhat = v[i];
    if (vmax) {
      if (vhat > vmax[i]) vmax[i] = vhat;
      vhat = vmax[i];
    }
    p[i] -= step * m[i] / (sqrtf(vhat) / sbc2 + eps);
  }
}
