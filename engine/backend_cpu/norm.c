/* Normalisation on the cpu. Batch norm on f32 runs the threaded kernels of
 * kernels below (sg_cpu_bn_fwd / sg_cpu_bn_backward, the ReLU fused), f64 the
 * reference loops. Group and layer norm, f32 and f64, run the kernels below:
 * the reference's maths with the reductions in four independent accumulators
 * and the streaming loops left for the vectoriser. Statistics tensors have
 * the reference's layout (backend_ref/ref.h), so either side's backward reads
 * the other's forward. */
/* GCC's -O2 vectoriser ("very cheap" model) leaves loops of unknown trip
 * count scalar: let it vectorise this file's streaming loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=cheap")
#endif
#include "../backend_ref/ref.h"
#include <math.h>
#include <string.h>
#include <stdlib.h>

/* OpenMP only pays off above this many elements of work */
#define PAR_MIN 32768
#ifdef _OPENMP
#include <omp.h>
#endif

/* Batch norm over x [N, C, L], f32, threaded, optionally fused with a ReLU on its output. Per channel:
 * training computes the batch mean and biased variance (double, two passes; each channel reduced by one
 * thread, in a fixed order) into mean/var; otherwise mean/var are read (running statistics).
 * y = (x - mean) / sqrt(var + eps) * w + b (w, b may be NULL: 1 and 0), evaluated in f32 as x * scale + shift;
 * relu: y = max(y, 0) (NaN stays NaN). The backward from dy with the forward's mean and var (relu: dy counts
 * only where y > 0) writes dx (unless NULL) and, per channel, sum_dy and sum_dyxhat in double. */
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

static void sg_cpu_bn_fwd(bool training, int64_t N, int64_t C, int64_t L, double eps, const float *x, float *y,
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

static void sg_cpu_bn_backward(bool training, int64_t N, int64_t C, int64_t L, double eps, const float *x, const float *y,
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


#define GN_INLINE static inline __attribute__((always_inline))

/* the view of the rows and their statistics (ref.h's layout) */
typedef struct {
  int64_t N, C, G, L;
  double *mean, *invstd; /* [N*G] each */
} gn_ctx;

/* ---- reductions with four independent accumulators (latency, not order) ---- */

GN_INLINE double k_sum(const void *p, bool f64, int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += SG_REF_LD(p, f64, i); a1 += SG_REF_LD(p, f64, i + 1);
    a2 += SG_REF_LD(p, f64, i + 2); a3 += SG_REF_LD(p, f64, i + 3);
  }
  for (; i < n; i++) a0 += SG_REF_LD(p, f64, i);
  return (a0 + a1) + (a2 + a3);
}

GN_INLINE double k_sqdev(const void *p, bool f64, int64_t n, double m) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    double d0 = SG_REF_LD(p, f64, i) - m, d1 = SG_REF_LD(p, f64, i + 1) - m;
    double d2 = SG_REF_LD(p, f64, i + 2) - m, d3 = SG_REF_LD(p, f64, i + 3) - m;
    a0 += d0 * d0; a1 += d1 * d1; a2 += d2 * d2; a3 += d3 * d3;
  }
  for (; i < n; i++) { double d = SG_REF_LD(p, f64, i) - m; a0 += d * d; }
  return (a0 + a1) + (a2 + a3);
}

/* s1 = sum g, s2 = sum g * (x - m) */
GN_INLINE void k_gsums(const void *g, const void *x, bool f64, int64_t n, double m, double *s1, double *s2) {
  double a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    double g0 = SG_REF_LD(g, f64, i), g1 = SG_REF_LD(g, f64, i + 1);
    a0 += g0; a1 += g1;
    b0 += g0 * (SG_REF_LD(x, f64, i) - m); b1 += g1 * (SG_REF_LD(x, f64, i + 1) - m);
  }
  for (; i < n; i++) {
    double gv = SG_REF_LD(g, f64, i);
    a0 += gv; b0 += gv * (SG_REF_LD(x, f64, i) - m);
  }
  *s1 = a0 + a1;
  *s2 = b0 + b1;
}

/* ---- forward ---- */

GN_INLINE void k_forward(const gn_ctx *c, double eps, const void *xp, void *yp, const double *w, const double *b,
                         bool f64) {
  int64_t Cg = c->C / c->G, L = c->L, M = Cg * L;
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t gi = 0; gi < c->G; gi++) {
      int64_t row = n * c->G + gi, base = row * M;
      const char *xr = (const char *)xp + (size_t)base * (f64 ? sizeof(double) : sizeof(float));
      char *yr = (char *)yp + (size_t)base * (f64 ? sizeof(double) : sizeof(float));
      double m = M ? k_sum(xr, f64, M) / (double)M : 0.0;
      double var = M ? k_sqdev(xr, f64, M, m) / (double)M : 0.0;
      double is = 1.0 / sqrt(var + eps);
      c->mean[row] = m;
      c->invstd[row] = is;
      if (L == 1) { /* layer norm: one weight per element, a loop the compiler can vectorise */
        const double *wr = w ? w + gi * Cg : NULL, *br = b ? b + gi * Cg : NULL;
        for (int64_t j = 0; j < Cg; j++)
          SG_REF_ST(yr, f64, j, (SG_REF_LD(xr, f64, j) - m) * is * (wr ? wr[j] : 1.0) + (br ? br[j] : 0.0));
        continue;
      }
      for (int64_t j = 0; j < Cg; j++) {
        int64_t ch = gi * Cg + j;
        double sc = is * (w ? w[ch] : 1.0), sh = (b ? b[ch] : 0.0) - m * sc;
        for (int64_t l = j * L; l < (j + 1) * L; l++) SG_REF_ST(yr, f64, l, SG_REF_LD(xr, f64, l) * sc + sh);
      }
    }
}
static void forward_f32(const gn_ctx *c, double eps, const void *x, void *y, const double *w, const double *b) {
  k_forward(c, eps, x, y, w, b, false);
}
static void forward_f64(const gn_ctx *c, double eps, const void *x, void *y, const double *w, const double *b) {
  k_forward(c, eps, x, y, w, b, true);
}

/* ---- backward ----
 * With xh = (x - m) * is and gw = g * w[c], per row of M values:
 *   dx = is * (gw - mean(gw) - xh * mean(gw * xh)),
 *   dweight[c] = sum g * xh,  dbias[c] = sum g  (over samples and L).
 * dw, db: [C] accumulators (zeroed, or NULL when not wanted); gx NULL when not wanted. */
GN_INLINE void k_backward(const gn_ctx *c, const void *xp, const void *gp, const double *w, void *gx, double *dw,
                          double *db, bool f64) {
  int64_t Cg = c->C / c->G, L = c->L, M = Cg * L;
  size_t es = f64 ? sizeof(double) : sizeof(float);
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t gi = 0; gi < c->G; gi++) {
      int64_t row = n * c->G + gi, base = row * M;
      const char *xr = (const char *)xp + (size_t)base * es, *gr = (const char *)gp + (size_t)base * es;
      double m = c->mean[row], is = c->invstd[row];
      double A = 0, B = 0; /* sum gw, sum gw * (x - m) */
      for (int64_t j = 0; j < Cg; j++) {
        int64_t ch = gi * Cg + j;
        double s1, s2;
        if (L == 1) {
          s1 = SG_REF_LD(gr, f64, j);
          s2 = s1 * (SG_REF_LD(xr, f64, j) - m);
        } else {
          k_gsums(gr + (size_t)(j * L) * es, xr + (size_t)(j * L) * es, f64, L, m, &s1, &s2);
        }
        if (db) db[ch] += s1;
        if (dw) dw[ch] += s2 * is;
        double wc = w ? w[ch] : 1.0;
        A += wc * s1;
        B += wc * s2;
      }
      if (!gx || !M) continue;
      char *or_ = (char *)gx + (size_t)base * es;
      /* is * (gw - A/M) first: exactly 0 for a one-value row, as the gradient is */
      double a = A / (double)M, c1 = -is * is * is * B / (double)M;
      if (L == 1) {
        const double *wr = w ? w + gi * Cg : NULL;
        for (int64_t j = 0; j < Cg; j++)
          SG_REF_ST(or_, f64, j, is * ((wr ? wr[j] : 1.0) * SG_REF_LD(gr, f64, j) - a) + c1 * (SG_REF_LD(xr, f64, j) - m));
        continue;
      }
      for (int64_t j = 0; j < Cg; j++) {
        int64_t ch = gi * Cg + j;
        double wc = w ? w[ch] : 1.0;
        for (int64_t l = j * L; l < (j + 1) * L; l++)
          SG_REF_ST(or_, f64, l, is * (wc * SG_REF_LD(gr, f64, l) - a) + c1 * (SG_REF_LD(xr, f64, l) - m));
      }
    }
}
static void backward_f32(const gn_ctx *c, const void *x, const void *g, const double *w, void *gx, double *dw,
                         double *db) {
  k_backward(c, x, g, w, gx, dw, db, false);
}
static void backward_f64(const gn_ctx *c, const void *x, const void *g, const double *w, void *gx, double *dw,
                         double *db) {
  k_backward(c, x, g, w, gx, dw, db, true);
}

/* ---- the table entries ---- */

/* n doubles of a per-channel tensor (any float dtype and stride), or NULL with *ok when t is NULL */
static double *vec_f64(const sg_tensor *t, int64_t n, const char *op, bool *ok) {
  *ok = true;
  if (!t) return NULL;
  double *v = malloc(sizeof *v * (size_t)(n + 1));
  if (!v) { sg_error_set("%s: out of memory", op); *ok = false; return NULL; }
  for (int64_t i = 0; i < n; i++) v[i] = sg_get_flat(t, i);
  return v;
}

/* the same rounded to f32 (the batch-norm kernels' weight and bias) */
static float *vec_f32(const sg_tensor *t, int64_t n, bool *ok) {
  *ok = true;
  if (!t) return NULL;
  float *v = malloc(sizeof *v * (size_t)(n + 1));
  if (!v) { sg_error_set("batch_norm: out of memory"); *ok = false; return NULL; }
  for (int64_t i = 0; i < n; i++) v[i] = (float)sg_get_flat(t, i);
  return v;
}

static void store_vec(sg_tensor *t, const double *v, int64_t n) {
  if (!t) return;
  bool f64 = t->dtype == SG_F64;
  for (int64_t i = 0; i < n; i++) SG_REF_ST(sg_data_ptr(t), f64, i, v[i]);
}

static void ncl(const sg_tensor *x, int64_t *N, int64_t *C, int64_t *L) {
  *N = x->size[0];
  *C = x->size[1];
  *L = 1;
  for (int d = 2; d < x->ndim; d++) *L *= x->size[d];
}

static int bn_forward(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                      double momentum, double eps, bool relu, sg_tensor *out, sg_tensor **stats) {
  if (x->dtype != SG_F32) {
    sg_path_note(SG_PATH_NORM, "loops");
    return (relu ? sg_ref_batch_norm_relu : sg_ref_batch_norm)(x, rm, rv, w, b, training, momentum, eps, out, stats);
  }
  *stats = NULL;
  int64_t N, C, L;
  ncl(x, &N, &C, &L);
  int64_t sn = 2 * C + 1;
  bool okw, okb;
  float *wf = vec_f32(w, C, &okw), *bf = vec_f32(b, C, &okb);
  sg_tensor *st = okw && okb ? sg_empty(1, &sn, SG_F64, SG_CPU) : NULL;
  if (!st) {
    free(wf);
    free(bf);
    return -1;
  }
  double *mean = sg_data_ptr(st), *var = mean + C;
  var[C] = eps;
  if (!training)
    for (int64_t c = 0; c < C; c++) {
      mean[c] = sg_get_flat(rm, c);
      var[c] = sg_get_flat(rv, c);
    }
  sg_path_note(SG_PATH_NORM, "kernel");
  sg_cpu_bn_fwd(training, N, C, L, eps, sg_data_ptr(x), sg_data_ptr(out), mean, var, wf, bf, relu);
  if (training && rm) sg_ref_bn_update_running(rm, rv, mean, var, C, (double)(N * L), momentum);
  free(wf);
  free(bf);
  *stats = st;
  return 0;
}

static int bn_backward(sg_tensor *x, sg_tensor *g, sg_tensor *y, sg_tensor *w, sg_tensor *stats, bool training,
                       sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  if (x->dtype != SG_F32) {
    sg_path_note(SG_PATH_NORM, "loops");
    return y ? sg_ref_batch_norm_relu_backward(x, g, y, w, stats, training, gx, gw, gb)
             : sg_ref_batch_norm_backward(x, g, w, stats, training, gx, gw, gb);
  }
  int64_t N, C, L;
  ncl(x, &N, &C, &L);
  bool ok;
  float *wf = vec_f32(w, C, &ok);
  double *sums = ok ? malloc(sizeof(double) * (size_t)(2 * C + 1)) : NULL; /* sum g * xhat, sum g */
  if (!sums) {
    if (ok) sg_error_set("batch_norm: out of memory");
    free(wf);
    return -1;
  }
  const double *mean = sg_data_ptr(stats), *var = mean + C;
  sg_path_note(SG_PATH_NORM, "kernel");
  sg_cpu_bn_backward(training, N, C, L, var[C], sg_data_ptr(x), y ? sg_data_ptr(y) : NULL, sg_data_ptr(g), mean, var, wf,
                gx ? sg_data_ptr(gx) : NULL, sums + C, sums);
  store_vec(gw, sums, C);
  store_vec(gb, sums + C, C);
  free(wf);
  free(sums);
  return 0;
}

static int batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                      double momentum, double eps, sg_tensor *out, sg_tensor **stats) {
  return bn_forward(x, rm, rv, w, b, training, momentum, eps, false, out, stats);
}

static int batch_norm_relu(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                           double momentum, double eps, sg_tensor *out, sg_tensor **stats) {
  return bn_forward(x, rm, rv, w, b, training, momentum, eps, true, out, stats);
}

static int batch_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training,
                               sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  return bn_backward(x, g, NULL, w, stats, training, gx, gw, gb);
}

static int batch_norm_relu_backward(sg_tensor *x, sg_tensor *g, sg_tensor *y, sg_tensor *w, sg_tensor *stats,
                                    bool training, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  return bn_backward(x, g, y, w, stats, training, gx, gw, gb);
}

static int group_norm(sg_tensor *x, sg_tensor *w, sg_tensor *b, int64_t N, int64_t C, int64_t G, int64_t L,
                      double eps, sg_tensor *out, sg_tensor **stats) {
  *stats = NULL;
  int64_t sn = 2 * N * G;
  bool okw, okb;
  double *wv = vec_f64(w, C, "group_norm", &okw), *bv = vec_f64(b, C, "group_norm", &okb);
  sg_tensor *st = okw && okb ? sg_empty(1, &sn, SG_F64, SG_CPU) : NULL;
  if (!st) {
    free(wv);
    free(bv);
    return -1;
  }
  gn_ctx c = {N, C, G, L, sg_data_ptr(st), (double *)sg_data_ptr(st) + N * G};
  (x->dtype == SG_F64 ? forward_f64 : forward_f32)(&c, eps, sg_data_ptr(x), sg_data_ptr(out), wv, bv);
  free(wv);
  free(bv);
  *stats = st;
  return 0;
}

static int group_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                               int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  bool ok;
  double *wv = vec_f64(w, C, "group_norm", &ok), *sums = NULL;
  if (ok && (gw || gb) && !(sums = calloc((size_t)(2 * C + 1), sizeof *sums))) {
    sg_error_set("group_norm: out of memory");
    ok = false;
  }
  if (!ok) {
    free(wv);
    return -1;
  }
  gn_ctx c = {N, C, G, L, sg_data_ptr(stats), (double *)sg_data_ptr(stats) + N * G};
  double *dw = gw ? sums : NULL, *db = gb ? sums + C : NULL;
  (x->dtype == SG_F64 ? backward_f64 : backward_f32)(&c, sg_data_ptr(x), sg_data_ptr(g), wv,
                                                      gx ? sg_data_ptr(gx) : NULL, dw, db);
  store_vec(gw, dw, C);
  store_vec(gb, db, C);
  free(wv);
  free(sums);
  return 0;
}

void sg_cpu_fill_norm(sg_backend *t);
void sg_cpu_fill_norm(sg_backend *t) {
  t->norm.batch_norm = batch_norm;
  t->norm.batch_norm_backward = batch_norm_backward;
  t->norm.batch_norm_relu = batch_norm_relu;
  t->norm.batch_norm_relu_backward = batch_norm_relu_backward;
  t->norm.group_norm = group_norm;
  t->norm.group_norm_backward = group_norm_backward;
}
