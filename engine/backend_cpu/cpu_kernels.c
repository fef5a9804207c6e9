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

int sg_cpu_nearest_backward(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *iy,
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

/* ---------------------------------------------------------------- batch norm */
/* 8-lane vectors (GCC/Clang vector extensions: whatever the target has, SSE2 at least); the
 * reductions keep 8 partial sums in double, combined in a fixed order: the result does not depend
 * on the thread count. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors passed between static functions only: no ABI to keep */
#endif
/* x86-64: an AVX2 build of the leaf loops besides the baseline one, picked at load time (AVX2
 * without FMA: no contraction, so both builds give bitwise the same results) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) && !defined(SG_NO_CLONES)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

static inline v8f ld8(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline void st8(float *p, v8f v) { memcpy(p, &v, sizeof v); }
/* 4 floats from p as doubles */
static inline v4d ld4d(const float *p) { v4f v; memcpy(&v, p, sizeof v); return __builtin_convertvector(v, v4d); }
/* v where keep is true (all ones), else +0 */
static inline v8f select0(v8i keep, v8f v) { return (v8f)((v8i)v & keep); }
/* the 8 partial sums a[0..3], b[0..3] of elements i = 0..7 mod 8, combined in a fixed order */
static inline double hsum(v4d a, v4d b) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((b[0] + b[1]) + (b[2] + b[3])); }

CLONES static double sum_f32(const float *x, int64_t n) {
  v4d a = {0}, b = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a += ld4d(x + i);
    b += ld4d(x + i + 4);
  }
  for (int j = 0; i < n; i++, j++)
    if (j < 4) a[j] += x[i]; else b[j - 4] += x[i];
  return hsum(a, b);
}

CLONES static double sqdev_f32(const float *x, int64_t n, double m) {
  v4d a = {0}, b = {0}, mv = {m, m, m, m};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    v4d d = ld4d(x + i) - mv, e = ld4d(x + i + 4) - mv;
    a += d * d;
    b += e * e;
  }
  for (int j = 0; i < n; i++, j++) {
    double d = (double)x[i] - m;
    if (j < 4) a[j] += d * d; else b[j - 4] += d * d;
  }
  return hsum(a, b);
}

/* y = x * sc + sh, then max(y, 0) (NaN kept) with relu */
CLONES static void affine_f32(const float *x, float *y, int64_t n, float sc, float sh, bool relu) {
  int64_t i = 0;
  if (relu) {
    for (; i + 8 <= n; i += 8) {
      v8f v = ld8(x + i) * sc + sh;
      st8(y + i, select0((v > 0) | (v != v), v));
    }
    for (; i < n; i++) {
      float v = x[i] * sc + sh;
      y[i] = v > 0 ? v : (v != v ? v : 0.0f);
    }
  } else {
    for (; i + 8 <= n; i += 8) st8(y + i, ld8(x + i) * sc + sh);
    for (; i < n; i++) y[i] = x[i] * sc + sh;
  }
}

void sg_cpu_bn_fwd(bool training, int64_t N, int64_t C, int64_t L, double eps, const float *x, float *y,
                   double *mean, double *var, const float *w, const float *b, bool relu) {
  int64_t total = N * C * L;
  double M = (double)(N * L);
  if (training) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
#endif
    for (int64_t c = 0; c < C; c++) {
      double s = 0, q = 0;
      for (int64_t n = 0; n < N; n++) s += sum_f32(x + (n * C + c) * L, L);
      double m = s / M;
      for (int64_t n = 0; n < N; n++) q += sqdev_f32(x + (n * C + c) * L, L, m);
      mean[c] = m;
      var[c] = q / M;
      double sc = (w ? w[c] : 1.0) / sqrt(var[c] + eps), sh = (b ? b[c] : 0.0) - m * sc;
      for (int64_t n = 0; n < N; n++)
        affine_f32(x + (n * C + c) * L, y + (n * C + c) * L, L, (float)sc, (float)sh, relu);
    }
    return;
  }
  (void)total;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
#endif
  for (int64_t p = 0; p < N * C; p++) {
    int64_t c = p % C;
    double sc = (w ? w[c] : 1.0) / sqrt(var[c] + eps), sh = (b ? b[c] : 0.0) - mean[c] * sc;
    affine_f32(x + p * L, y + p * L, L, (float)sc, (float)sh, relu);
  }
}

/* sums of g and g * (x - m) over n elements, g = dy masked by y > 0 when y != NULL */
CLONES static void bwd_sums(const float *x, const float *y, const float *dy, int64_t n, double m, double *sg,
                            double *sgx) {
  v4d a = {0}, b = {0}, c = {0}, d = {0}, mv = {m, m, m, m};
  int64_t i = 0;
  float gm[8];
  for (; i + 8 <= n; i += 8) {
    const float *g = dy + i;
    if (y) {
      st8(gm, select0(ld8(y + i) > 0, ld8(dy + i)));
      g = gm;
    }
    v4d g0 = ld4d(g), g1 = ld4d(g + 4);
    a += g0;
    b += g1;
    c += g0 * (ld4d(x + i) - mv);
    d += g1 * (ld4d(x + i + 4) - mv);
  }
  for (int j = 0; i < n; i++, j++) {
    float g = y && !(y[i] > 0) ? 0.0f : dy[i];
    double gx = (double)g * ((double)x[i] - m);
    if (j < 4) { a[j] += g; c[j] += gx; } else { b[j - 4] += g; d[j - 4] += gx; }
  }
  *sg += hsum(a, b);
  *sgx += hsum(c, d);
}

/* dx = c1 * g - ck * (x - m) - c0 (training) or c1 * g, g = dy masked by y > 0 when y != NULL */
CLONES static void bwd_dx(bool training, const float *x, const float *y, const float *dy, float *dx, int64_t n, float c1,
                   float ck, float m, float c0) {
  int64_t i = 0;
  if (training) {
    if (y)
      for (; i + 8 <= n; i += 8)
        st8(dx + i, c1 * select0(ld8(y + i) > 0, ld8(dy + i)) - ck * (ld8(x + i) - m) - c0);
    else
      for (; i + 8 <= n; i += 8) st8(dx + i, c1 * ld8(dy + i) - ck * (ld8(x + i) - m) - c0);
    for (; i < n; i++) {
      float g = y && !(y[i] > 0) ? 0.0f : dy[i];
      dx[i] = c1 * g - ck * (x[i] - m) - c0;
    }
  } else {
    if (y)
      for (; i + 8 <= n; i += 8) st8(dx + i, select0(ld8(y + i) > 0, c1 * ld8(dy + i)));
    else
      for (; i + 8 <= n; i += 8) st8(dx + i, c1 * ld8(dy + i));
    for (; i < n; i++) dx[i] = y && !(y[i] > 0) ? 0.0f : c1 * dy[i];
  }
}

void sg_cpu_bn_backward(bool training, int64_t N, int64_t C, int64_t L, double eps, const float *x, const float *y,
                   const float *dy, const double *mean, const double *var, const float *w, float *dx,
                   double *sum_dy, double *sum_dyxhat) {
  int64_t total = N * C * L;
  double M = (double)(N * L);
  (void)total;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (total >= PAR_MIN)
#endif
  for (int64_t c = 0; c < C; c++) {
    double m = mean[c], is = 1.0 / sqrt(var[c] + eps), sg = 0, sgx = 0;
    for (int64_t n = 0; n < N; n++)
      bwd_sums(x + (n * C + c) * L, y ? y + (n * C + c) * L : NULL, dy + (n * C + c) * L, L, m, &sg, &sgx);
    sum_dy[c] = sg;
    sum_dyxhat[c] = sgx * is;
    if (!dx) continue;
    /* dx = c1 * (g - sg / M - (x - m) * is^2 * sgx / M) with the mean split into its f32 rounding mf and
     * the rest, which joins the constant term: c1 * g - ck * (x - mf) - c0 */
    double c1 = (w ? w[c] : 1.0) * is, ck = training ? c1 * is * is * sgx / M : 0.0;
    float mf = (float)m;
    double c0 = training ? c1 * sg / M + ck * ((double)mf - m) : 0.0;
    for (int64_t n = 0; n < N; n++) {
      int64_t o = (n * C + c) * L;
      bwd_dx(training, x + o, y ? y + o : NULL, dy + o, dx + o, L, (float)c1, (float)ck, mf, (float)c0);
    }
  }
}

/* ---------------------------------------------------------------- sums over a middle dim */
#define SUM_BLOCK 512
void sg_cpu_sum_mid(int64_t A, int64_t R, int64_t B, const float *restrict x, float *restrict out) {
  int64_t nb = (B + SUM_BLOCK - 1) / SUM_BLOCK;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (A * R * B >= PAR_MIN)
#endif
  for (int64_t t = 0; t < A * nb; t++) {
    int64_t a = t / nb, b0 = (t % nb) * SUM_BLOCK, n = B - b0 < SUM_BLOCK ? B - b0 : SUM_BLOCK;
    double acc[SUM_BLOCK];
    for (int64_t j = 0; j < n; j++) acc[j] = 0.0;
    for (int64_t r = 0; r < R; r++) {
      const float *row = x + (a * R + r) * B + b0;
      for (int64_t j = 0; j < n; j++) acc[j] += row[j];
    }
    for (int64_t j = 0; j < n; j++) out[a * B + b0 + j] = (float)acc[j];
  }
}
