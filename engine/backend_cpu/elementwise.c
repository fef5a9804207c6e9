/* Elementwise ops on the cpu: f32 activations through oneDNN when the
 * operands are large and contiguous, otherwise row loops over sg_iter spread
 * over threads, typed for f32 and f64; other dtype combinations go through the
 * reference's scalar functions, still threaded. where is the reference's. */
#include "../backend_ref/ref.h"
#include "../core/iter.h"
#include "../ops/ops.h"
#include "dnnl_eltwise.h"
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------ threading
 * Large iterations are cut into fixed chunks of the flat element range and
 * the chunks are spread over OpenMP threads. Every element is computed by the
 * same code whatever the chunking, so the results do not depend on the
 * number of threads. Reductions never come through here. */
#ifdef _OPENMP
#define PAR_MIN 65536   /* fewer elements: one thread */
#define PAR_CHUNK 16384 /* elements per chunk (sg_iter_run_range runs one) */

/* True when chunks may run concurrently: the output (operand 0) writes each
 * element once, and an input sharing its storage is the very same view (an
 * in-place op), never a shifted or differently strided alias of it. */
static bool par_safe(const sg_iter *it, sg_tensor *const *t) {
  for (int d = 0; d < it->ndim; d++)
    if (it->size[d] > 1 && it->stride[0][d] == 0) return false;
  for (int k = 1; k < it->nops; k++) {
    if (t[k]->storage != t[0]->storage) continue;
    if (it->base[k] != it->base[0]) return false;
    for (int d = 0; d < it->ndim; d++)
      if (it->size[d] > 1 && it->stride[k][d] != it->stride[0][d]) return false;
  }
  return true;
}
#endif

static void iter_run_par(sg_iter *it, sg_tensor *const *t, sg_row_fn fn, void *ctx) {
#ifdef _OPENMP
  int64_t total = 1;
  for (int d = 0; d < it->ndim; d++) total *= it->size[d];
  if (total >= PAR_MIN && omp_get_max_threads() > 1 && !omp_in_parallel() && par_safe(it, t)) {
    int64_t nchunks = (total + PAR_CHUNK - 1) / PAR_CHUNK;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunks; c++)
      sg_iter_run_range(it, fn, ctx, c * PAR_CHUNK, (c + 1) * PAR_CHUNK < total ? (c + 1) * PAR_CHUNK : total);
    return;
  }
#else
  (void)t;
#endif
  sg_iter_run(it, fn, ctx);
}

/* ------------------------------------------------------------------ binary */
#define ROW2(T, EXPR)                                                                          \
  do {                                                                                         \
    if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T)) {                         \
      T *o = (T *)p[0]; const T *pa = (const T *)p[1], *pb = (const T *)p[2];                  \
      for (int64_t i = 0; i < n; i++) { T a = pa[i], b = pb[i]; o[i] = (EXPR); }               \
    } else if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == 0) {                          \
      T *o = (T *)p[0]; const T *pa = (const T *)p[1]; const T b = *(const T *)p[2];           \
      for (int64_t i = 0; i < n; i++) { T a = pa[i]; o[i] = (EXPR); }                          \
    } else {                                                                                   \
      for (int64_t i = 0; i < n; i++) {                                                        \
        T a = *(const T *)(p[1] + i * s[1]), b = *(const T *)(p[2] + i * s[2]);                \
        *(T *)(p[0] + i * s[0]) = (EXPR);                                                      \
      }                                                                                        \
    }                                                                                          \
  } while (0)

#define BIN_TYPED(T)                                                  \
  switch (c->op) {                                                    \
  case SG_ADD: ROW2(T, a + b); return;                                \
  case SG_SUB: ROW2(T, a - b); return;                                \
  case SG_MUL: ROW2(T, a * b); return;                                \
  case SG_DIV: ROW2(T, a / b); return;                                \
  default: break;                                                     \
  }

typedef struct { int op; sg_dtype at, bt, ct, ot; } bctx;

static void bin_row(char **p, const int64_t *s, int64_t n, void *vc) {
  const bctx *c = vc;
  if (c->at == c->ct && c->bt == c->ct && c->ct == c->ot) {
    if (c->ct == SG_F32) { BIN_TYPED(float) }
    else if (c->ct == SG_F64) { BIN_TYPED(double) }
  }
  if (sg_dtype_is_float(c->ct)) {
    for (int64_t i = 0; i < n; i++) {
      double a = sg_ref_load_ct_f(p[1] + i * s[1], c->at, c->ct), b = sg_ref_load_ct_f(p[2] + i * s[2], c->bt, c->ct);
      sg_store_f64(p[0] + i * s[0], c->ot, sg_ref_binary_f(c->op, a, b));
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      int64_t a = sg_ref_load_ct_i(p[1] + i * s[1], c->at, c->ct), b = sg_ref_load_ct_i(p[2] + i * s[2], c->bt, c->ct);
      sg_store_i64(p[0] + i * s[0], c->ot, sg_ref_binary_i(c->op, a, b));
    }
  }
}

static int binary(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct) {
  sg_tensor *ops[3] = {out, a, b};
  sg_iter it;
  sg_iter_init(&it, 3, ops, out->ndim, out->size);
  bctx c = {op, a->dtype, b->dtype, ct, out->dtype};
  iter_run_par(&it, ops, bin_row, &c);
  return 0;
}

/* ------------------------------------------------------------------ f32 math */
#define SQRT1_2F 0.70710678f
#define INV_SQRT_2PIF 0.39894228f
#define GELU_KF 0.79788456f
#define GELU_CF 0.044715f

static inline float sigmoid_f(float x) { return x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)); }
/* the reference's formulas (backend_ref/elementwise.c), limits included, in float */
static inline float gelu_f(float x) {
  float cdf = 0.5f * erfcf(-x * SQRT1_2F);
  return cdf == 0 ? 0.0f : x * cdf;
}
static inline float gelu_tanh_f(float x) {
  float h = 1 + tanhf(GELU_KF * (x + GELU_CF * x * x * x));
  return h == 0 ? 0.0f : 0.5f * x * h;
}
static inline float gelu_grad_f(float x) {
  float pdf = expf(-0.5f * x * x) * INV_SQRT_2PIF;
  return 0.5f * erfcf(-x * SQRT1_2F) + (pdf == 0 ? 0.0f : x * pdf);
}
static inline float gelu_tanh_grad_f(float x) {
  float t = tanhf(GELU_KF * (x + GELU_CF * x * x * x)), s = 1 - t * t;
  return 0.5f * (1 + t) + (s == 0 ? 0.0f : 0.5f * x * s * GELU_KF * (1 + 3 * GELU_CF * x * x));
}

/* ------------------------------------------------------------------ unary */
typedef struct { int op; sg_dtype at, ct, ot; double lo, hi; } kctx; /* input, compute and output dtypes */

#define ROW1(T, EXPR)                                                                          \
  do {                                                                                         \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                                              \
      T *o = (T *)p[0]; const T *pa = (const T *)p[1];                                         \
      for (int64_t i = 0; i < n; i++) { T x = pa[i]; o[i] = (EXPR); }                          \
    } else {                                                                                   \
      for (int64_t i = 0; i < n; i++) {                                                        \
        T x = *(const T *)(p[1] + i * s[1]);                                                   \
        *(T *)(p[0] + i * s[0]) = (EXPR);                                                      \
      }                                                                                        \
    }                                                                                          \
  } while (0)

static void un_row(char **p, const int64_t *s, int64_t n, void *vc) {
  const kctx *c = vc;
  if (c->at == SG_F32 && c->ct == SG_F32 && c->ot == SG_F32) {
    switch (c->op) {
    case SG_NEG: ROW1(float, -x); return;
    case SG_EXP: ROW1(float, expf(x)); return;
    case SG_LOG: ROW1(float, logf(x)); return;
    case SG_SQRT: ROW1(float, sqrtf(x)); return;
    case SG_SIGMOID: ROW1(float, sigmoid_f(x)); return;
    case SG_TANH: ROW1(float, tanhf(x)); return;
    case SG_RELU: ROW1(float, x > 0 ? x : (x != x ? x : 0.0f)); return;
    case SG_SQUARE: ROW1(float, x * x); return;
    case SG_ABS: ROW1(float, fabsf(x)); return;
    case SG_GELU: ROW1(float, gelu_f(x)); return;
    case SG_GELU_TANH: ROW1(float, gelu_tanh_f(x)); return;
    default: break;
    }
  }
  if (c->op == -1) { /* clamp */
    for (int64_t i = 0; i < n; i++) {
      double x = sg_dtype_is_float(c->ct) ? sg_load_f64(p[1] + i * s[1], c->at)
                                          : (double)sg_load_i64(p[1] + i * s[1], c->at);
      if (c->ct == SG_F32) x = (float)x;
      x = x < c->lo ? c->lo : (x > c->hi ? c->hi : x);
      sg_store_f64(p[0] + i * s[0], c->ot, x);
    }
  } else if (c->ct == SG_F32 && c->ot == SG_F32) { /* e.g. an integer input: the f32 math of the typed loops */
    for (int64_t i = 0; i < n; i++) {
      float x = (float)sg_load_f64(p[1] + i * s[1], c->at), r;
      switch (c->op) {
      case SG_NEG: r = -x; break;
      case SG_EXP: r = expf(x); break;
      case SG_LOG: r = logf(x); break;
      case SG_SQRT: r = sqrtf(x); break;
      case SG_SIGMOID: r = sigmoid_f(x); break;
      case SG_TANH: r = tanhf(x); break;
      case SG_RELU: r = x > 0 ? x : (x != x ? x : 0.0f); break;
      case SG_SQUARE: r = x * x; break;
      case SG_ABS: r = fabsf(x); break;
      case SG_GELU: r = gelu_f(x); break;
      case SG_GELU_TANH: r = gelu_tanh_f(x); break;
      default: r = (float)sg_ref_unary_f(c->op, x);
      }
      *(float *)(p[0] + i * s[0]) = r;
    }
  } else if (sg_dtype_is_float(c->ct)) {
    for (int64_t i = 0; i < n; i++) {
      double x = sg_load_f64(p[1] + i * s[1], c->at);
      if (c->ct == SG_F32) x = (float)x; /* what a cast of the input to ct gives */
      sg_store_f64(p[0] + i * s[0], c->ot, sg_ref_unary_f(c->op, x));
    }
  } else {
    for (int64_t i = 0; i < n; i++)
      sg_store_i64(p[0] + i * s[0], c->ot, sg_ref_unary_i(c->op, sg_load_i64(p[1] + i * s[1], c->at)));
  }
}

/* the oneDNN algorithm of a unary op, or -1 */
static int dnnl_alg(int op) {
  switch (op) {
  case SG_RELU: return SG_DNNL_ELT_RELU;
  case SG_SIGMOID: return SG_DNNL_ELT_SIGMOID;
  case SG_TANH: return SG_DNNL_ELT_TANH;
  case SG_EXP: return SG_DNNL_ELT_EXP;
  case SG_SQRT: return SG_DNNL_ELT_SQRT;
  case SG_ABS: return SG_DNNL_ELT_ABS;
  case SG_SQUARE: return SG_DNNL_ELT_SQUARE;
  case SG_GELU: return SG_DNNL_ELT_GELU_ERF;
  case SG_GELU_TANH: return SG_DNNL_ELT_GELU_TANH;
  default: return -1;
  }
}

static float *f32_data(const sg_tensor *t) { return (float *)t->storage->data + t->offset; }

/* true when every tensor is a contiguous f32 tensor of n >= the oneDNN
 * threshold elements (same shapes are the op's business) */
static bool dnnl_eligible(int nt, sg_tensor *const *t) {
  for (int k = 0; k < nt; k++)
    if (t[k]->dtype != SG_F32 || !sg_is_contiguous(t[k])) return false;
  return sg_numel(t[0]) >= SG_DNNL_ELTWISE_MIN;
}

static int unary(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi) {
  sg_tensor *ops[2] = {out, a};
  int alg = dnnl_alg(op), rc = 0;
  if (alg >= 0 && dnnl_eligible(2, ops))
    rc = sg_dnnl_eltwise_fwd((sg_dnnl_elt)alg, sg_numel(out), f32_data(a), f32_data(out));
  sg_path_note(SG_PATH_ELTWISE, rc == 1 ? "dnnl" : "loops");
  if (rc == 0) {
    sg_iter it;
    sg_iter_init(&it, 2, ops, out->ndim, out->size);
    kctx c = {op, a->dtype, ct, out->dtype, lo, hi};
    iter_run_par(&it, ops, un_row, &c);
  }
  return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ unary backward */
static void ungrad_row(char **p, const int64_t *s, int64_t n, void *vc) {
  const kctx *c = vc;
  for (int64_t i = 0; i < n; i++) {
    double g = sg_load_f64(p[1] + i * s[1], c->ct), x = sg_load_f64(p[2] + i * s[2], c->ct),
           y = sg_load_f64(p[3] + i * s[3], c->ct);
    sg_store_f64(p[0] + i * s[0], c->ct, sg_ref_unary_grad(c->op, g, x, y));
  }
}

static void ungrad_row_f32(char **p, const int64_t *s, int64_t n, void *vc) {
  const kctx *c = vc;
  if (s[0] != 4 || s[1] != 4 || s[2] != 4 || s[3] != 4) { ungrad_row(p, s, n, vc); return; }
  float *o = (float *)p[0];
  const float *g = (const float *)p[1], *x = (const float *)p[2], *y = (const float *)p[3];
  switch (c->op) {
  case SG_RELU: for (int64_t i = 0; i < n; i++) o[i] = y[i] > 0 ? g[i] : 0.0f; break;
  case SG_SIGMOID: for (int64_t i = 0; i < n; i++) o[i] = g[i] * y[i] * (1 - y[i]); break;
  case SG_TANH: for (int64_t i = 0; i < n; i++) o[i] = g[i] * (1 - y[i] * y[i]); break;
  case SG_EXP: for (int64_t i = 0; i < n; i++) o[i] = g[i] * y[i]; break;
  case SG_GELU: for (int64_t i = 0; i < n; i++) o[i] = g[i] * gelu_grad_f(x[i]); break;
  case SG_GELU_TANH: for (int64_t i = 0; i < n; i++) o[i] = g[i] * gelu_tanh_grad_f(x[i]); break;
  default: for (int64_t i = 0; i < n; i++) o[i] = (float)sg_ref_unary_grad(c->op, g[i], x[i], y[i]);
  }
}

static int unary_backward(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y) {
  sg_tensor *ops[4] = {out, g, x, y};
  int alg = dnnl_alg(op), rc = 0;
  if (alg >= 0 && dnnl_eligible(4, ops))
    rc = sg_dnnl_eltwise_backward((sg_dnnl_elt)alg, sg_numel(out), f32_data(g), f32_data(x), f32_data(y), f32_data(out));
  sg_path_note(SG_PATH_ELTWISE, rc == 1 ? "dnnl" : "loops");
  if (rc == 0) {
    sg_iter it;
    sg_iter_init(&it, 4, ops, out->ndim, out->size);
    kctx c = {op, y->dtype, y->dtype, y->dtype, 0, 0};
    iter_run_par(&it, ops, y->dtype == SG_F32 ? ungrad_row_f32 : ungrad_row, &c);
  }
  return rc < 0 ? -1 : 0;
}

void sg_cpu_fill_elementwise(sg_backend *t);
void sg_cpu_fill_elementwise(sg_backend *t) {
  t->elementwise.binary = binary;
  t->elementwise.unary = unary;
  t->elementwise.unary_backward = unary_backward;
}
