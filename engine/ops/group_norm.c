/* Group normalisation (instance norm is the case groups == C) and layer
 * normalisation, fused: one pass for the statistics' sum, one for the squared
 * deviations, one writing the affine-transformed output; the backward is the
 * closed form in two passes (per-channel sums, then the input gradient).
 *
 * Both ops are one kernel. Group norm sees x as [N, C, L] (L = product of the
 * trailing dims) cut into G groups of Cg = C/G channels: a statistics row is
 * the Cg*L contiguous values of one (sample, group), and channel c carries
 * weight[c], bias[c]. Layer norm over the last k dims (D values) is the same
 * with N = leading rows, C = D, G = 1, L = 1: every element of a row is its
 * own "channel" with its own weight. Statistics are accumulated in double;
 * the mean and 1/sqrt(var + eps) per row are kept for the backward.
 * GPU tensors run the same maths in backend_cuda/norm.c (one block per row). */
/* GCC's -O2 vectoriser ("very cheap" model) leaves loops of unknown trip
 * count scalar: let it vectorise this file's streaming loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=cheap")
#endif
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GN_INLINE static inline __attribute__((always_inline))

typedef struct {
  int64_t N, C, G, L;
  double *mean, *invstd; /* [N*G] each, in the same allocation */
  bool cuda;             /* GPU: x, weight and the device statistics [2*N*G] are saved tensors 0, 1, 2 */
} gn_ctx;

/* ---- reductions with four independent accumulators (latency, not order) ---- */

GN_INLINE double k_sum(const void *p, bool f64, int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += SG_NN_LD(p, f64, i); a1 += SG_NN_LD(p, f64, i + 1);
    a2 += SG_NN_LD(p, f64, i + 2); a3 += SG_NN_LD(p, f64, i + 3);
  }
  for (; i < n; i++) a0 += SG_NN_LD(p, f64, i);
  return (a0 + a1) + (a2 + a3);
}

GN_INLINE double k_sqdev(const void *p, bool f64, int64_t n, double m) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    double d0 = SG_NN_LD(p, f64, i) - m, d1 = SG_NN_LD(p, f64, i + 1) - m;
    double d2 = SG_NN_LD(p, f64, i + 2) - m, d3 = SG_NN_LD(p, f64, i + 3) - m;
    a0 += d0 * d0; a1 += d1 * d1; a2 += d2 * d2; a3 += d3 * d3;
  }
  for (; i < n; i++) { double d = SG_NN_LD(p, f64, i) - m; a0 += d * d; }
  return (a0 + a1) + (a2 + a3);
}

/* s1 = sum g, s2 = sum g * (x - m) */
GN_INLINE void k_gsums(const void *g, const void *x, bool f64, int64_t n, double m, double *s1, double *s2) {
  double a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    double g0 = SG_NN_LD(g, f64, i), g1 = SG_NN_LD(g, f64, i + 1);
    a0 += g0; a1 += g1;
    b0 += g0 * (SG_NN_LD(x, f64, i) - m); b1 += g1 * (SG_NN_LD(x, f64, i + 1) - m);
  }
  for (; i < n; i++) {
    double gv = SG_NN_LD(g, f64, i);
    a0 += gv; b0 += gv * (SG_NN_LD(x, f64, i) - m);
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
          SG_NN_ST(yr, f64, j, (SG_NN_LD(xr, f64, j) - m) * is * (wr ? wr[j] : 1.0) + (br ? br[j] : 0.0));
        continue;
      }
      for (int64_t j = 0; j < Cg; j++) {
        int64_t ch = gi * Cg + j;
        double sc = is * (w ? w[ch] : 1.0), sh = (b ? b[ch] : 0.0) - m * sc;
        for (int64_t l = j * L; l < (j + 1) * L; l++) SG_NN_ST(yr, f64, l, SG_NN_LD(xr, f64, l) * sc + sh);
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
          s1 = SG_NN_LD(gr, f64, j);
          s2 = s1 * (SG_NN_LD(xr, f64, j) - m);
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
          SG_NN_ST(or_, f64, j, is * ((wr ? wr[j] : 1.0) * SG_NN_LD(gr, f64, j) - a) + c1 * (SG_NN_LD(xr, f64, j) - m));
        continue;
      }
      for (int64_t j = 0; j < Cg; j++) {
        int64_t ch = gi * Cg + j;
        double wc = w ? w[ch] : 1.0;
        for (int64_t l = j * L; l < (j + 1) * L; l++)
          SG_NN_ST(or_, f64, l, is * (wc * SG_NN_LD(gr, f64, l) - a) + c1 * (SG_NN_LD(xr, f64, l) - m));
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

static int gn_bw_cuda(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  const gn_ctx *c = n->ctx;
  sg_tensor *x = sg_node_saved(n, 0), *w = n->saved[1] ? sg_node_saved(n, 1) : NULL, *st = sg_node_saved(n, 2);
  if (!x || (n->saved[1] && !w) || !st) return -1;
  sg_tensor *xc = sg_nn_contig(x, n->in_dtype[0]), *gc = xc ? sg_nn_contig(g, n->in_dtype[0]) : NULL;
  sg_tensor *wc = gc && w ? sg_nn_contig(w, w->dtype) : NULL;
  sg_tensor *out[3] = {NULL, NULL, NULL};
  bool ok = gc && (!w || wc);
  for (int k = 0; k < 3 && ok; k++)
    if (n->needs[k]) ok = (out[k] = sg_empty(n->in_shape[k].ndim, n->in_shape[k].size, n->in_dtype[k], SG_CUDA)) != NULL;
  ok = ok && SG_BACKEND_CALL(SG_DEVICE_OF(xc), norm.group_norm_backward, "group_norm", xc, gc, wc, st, c->N, c->C, c->G, c->L, out[0], out[1], out[2]) == 0;
  sg_tensor_decref(xc); sg_tensor_decref(gc); sg_tensor_decref(wc);
  for (int k = 0; k < 3; k++) {
    if (ok) gin[k] = out[k];
    else sg_tensor_decref(out[k]);
  }
  return ok ? 0 : -1;
}

static int gn_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  const gn_ctx *c = n->ctx;
  if (c->cuda) return gn_bw_cuda(n, g, gin);
  sg_dtype dt = n->in_dtype[0];
  sg_tensor *x = sg_node_saved(n, 0), *w = n->saved[1] ? sg_node_saved(n, 1) : NULL;
  if (!x || (n->saved[1] && !w)) return -1;
  int rc = -1;
  sg_tensor *xc = sg_nn_contig(x, dt), *gc = xc ? sg_nn_contig(g, dt) : NULL;
  sg_tensor *wc = gc && w ? sg_nn_contig(w, SG_F64) : NULL, *gx = NULL;
  double *sums = NULL;
  if (!gc || (w && !wc)) goto out;
  if (n->needs[0] && !(gx = sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, dt, SG_CPU))) goto out;
  bool want_wb = n->needs[1] || n->needs[2];
  if (want_wb && !(sums = calloc((size_t)(2 * c->C + 1), sizeof *sums))) {
    sg_error_set("%s: out of memory", n->op);
    goto out;
  }
  double *dw = n->needs[1] ? sums : NULL, *db = n->needs[2] ? sums + c->C : NULL;
  const double *wp = wc ? sg_data_ptr(wc) : NULL;
  void *gxp = gx ? sg_data_ptr(gx) : NULL;
  (dt == SG_F64 ? backward_f64 : backward_f32)(c, sg_data_ptr(xc), sg_data_ptr(gc), wp, gxp, dw, db);
  for (int k = 1; k <= 2; k++) {
    if (!n->needs[k]) continue;
    sg_tensor *t = sg_empty(n->in_shape[k].ndim, n->in_shape[k].size, n->in_dtype[k], SG_CPU);
    if (!t) goto out;
    bool t64 = n->in_dtype[k] == SG_F64;
    const double *src = k == 1 ? dw : db;
    for (int64_t ch = 0; ch < c->C; ch++) SG_NN_ST(sg_data_ptr(t), t64, ch, src[ch]);
    gin[k] = t;
  }
  gin[0] = gx;
  gx = NULL;
  rc = 0;
out:
  if (rc)
    for (int k = 1; k <= 2; k++) {
      sg_tensor_decref(gin[k]);
      gin[k] = NULL;
    }
  free(sums);
  sg_tensor_decref(gx);
  sg_tensor_decref(xc); sg_tensor_decref(gc); sg_tensor_decref(wc);
  return rc;
}

/* Shared body once the arguments are checked: x viewed as [N, C, L] with G groups. */
static sg_tensor *norm_run_cuda(const char *op, sg_tensor *x, sg_tensor *weight, sg_tensor *bias, int64_t N,
                                int64_t C, int64_t G, int64_t L, double eps) {
  gn_ctx *c = calloc(1, sizeof *c);
  if (!c) { sg_error_set("%s: out of memory", op); return NULL; }
  c->N = N; c->C = C; c->G = G; c->L = L; c->cuda = true;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *out = xc ? sg_empty(x->ndim, x->size, x->dtype, SG_CUDA) : NULL;
  sg_tensor *wc = out && weight ? sg_nn_contig(weight, weight->dtype) : NULL;
  sg_tensor *bc = out && bias ? sg_nn_contig(bias, bias->dtype) : NULL, *st = NULL;
  if (out && ((weight && !wc) || (bias && !bc) || SG_BACKEND_CALL(SG_DEVICE_OF(xc), norm.group_norm, "group_norm", xc, wc, bc, N, C, G, L, eps, out, &st))) {
    sg_tensor_decref(out);
    out = NULL;
  }
  sg_tensor_decref(xc); sg_tensor_decref(wc); sg_tensor_decref(bc);
  if (!out) { free(c); return NULL; }
  sg_tensor *ins[3] = {x, weight, bias};
  sg_node *n = sg_record(op, gn_bw, out, 3, ins);
  if (n) {
    n->ctx = c;
    n->free_ctx = free;
    sg_node_save(n, x);
    sg_node_save(n, weight);
    sg_node_save(n, st);
  } else {
    free(c);
  }
  sg_tensor_decref(st);
  return out;
}

static sg_tensor *norm_run(const char *op, sg_tensor *x, sg_tensor *weight, sg_tensor *bias, int64_t N, int64_t C,
                           int64_t G, int64_t L, double eps) {
  sg_tensor *all[3] = {x, weight, bias};
  if (!sg_same_device(op, 3, all)) return NULL;
  if (x->storage->device != SG_CPU) return norm_run_cuda(op, x, weight, bias, N, C, G, L, eps);
  size_t rows = (size_t)(N * G);
  gn_ctx *c = malloc(sizeof *c + sizeof(double) * 2 * rows + 1);
  if (!c) { sg_error_set("%s: out of memory", op); return NULL; }
  c->N = N; c->C = C; c->G = G; c->L = L; c->cuda = false;
  c->mean = (double *)(c + 1);
  c->invstd = c->mean + rows;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *out = xc ? sg_empty(x->ndim, x->size, x->dtype, SG_CPU) : NULL;
  sg_tensor *wc = out && weight ? sg_nn_contig(weight, SG_F64) : NULL;
  sg_tensor *bc = out && bias ? sg_nn_contig(bias, SG_F64) : NULL;
  if (!out || (weight && !wc) || (bias && !bc)) {
    free(c);
    sg_tensor_decref(xc); sg_tensor_decref(out); sg_tensor_decref(wc); sg_tensor_decref(bc);
    return NULL;
  }
  (x->dtype == SG_F64 ? forward_f64 : forward_f32)(c, eps, sg_data_ptr(xc), sg_data_ptr(out),
                                                    wc ? sg_data_ptr(wc) : NULL, bc ? sg_data_ptr(bc) : NULL);
  sg_tensor_decref(xc); sg_tensor_decref(wc); sg_tensor_decref(bc);
  sg_tensor *ins[3] = {x, weight, bias};
  sg_node *n = sg_record(op, gn_bw, out, 3, ins);
  if (n) {
    n->ctx = c;
    n->free_ctx = free;
    sg_node_save(n, x);
    sg_node_save(n, weight);
  } else {
    free(c);
  }
  return out;
}

static bool check_eps(const char *op, double eps) {
  if (!(eps >= 0) || isinf(eps)) {
    sg_error_set("%s: eps must be a finite number >= 0 (got %g)", op, eps);
    return false;
  }
  return true;
}

/* weight/bias of exactly the shape of x's last k dims */
static bool check_affine(const char *op, const char *arg, const sg_tensor *t, const sg_tensor *x, int k) {
  if (!t) return true;
  if (!sg_nn_check_float_dev(op, arg, t)) return false;
  const int64_t *want = x->size + x->ndim - k;
  bool ok = t->ndim == k;
  for (int d = 0; ok && d < k; d++) ok = t->size[d] == want[d];
  if (!ok) {
    char buf[96];
    sg_error_set("%s: %s must have shape %s for input %s (got %s)", op, arg, sg_shape_str(k, want, buf, sizeof buf),
                 SG_SHAPE_STR(x), SG_SHAPE_STR(t));
    return false;
  }
  return true;
}

sg_tensor *sg_group_norm(sg_tensor *x, int64_t groups, sg_tensor *weight, sg_tensor *bias, double eps) {
  const char *op = "group_norm";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  if (x->ndim < 2) {
    sg_error_set("%s: input must have at least 2 dims [N,C,...] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  int64_t N = x->size[0], C = x->size[1], L = 1;
  for (int d = 2; d < x->ndim; d++) L *= x->size[d];
  if (groups < 1) {
    sg_error_set("%s: groups must be at least 1 (got %lld)", op, (long long)groups);
    return NULL;
  }
  if (C % groups != 0) {
    sg_error_set("%s: %lld channels do not split into %lld groups (input %s)", op, (long long)C, (long long)groups,
                 SG_SHAPE_STR(x));
    return NULL;
  }
  if (weight && !sg_nn_check_float_dev(op, "weight", weight)) return NULL;
  if (bias && !sg_nn_check_float_dev(op, "bias", bias)) return NULL;
  for (int k = 0; k < 2; k++) {
    const sg_tensor *t = k ? bias : weight;
    if (t && (t->ndim != 1 || t->size[0] != C)) {
      sg_error_set("%s: %s must have shape [%lld] for input %s (got %s)", op, k ? "bias" : "weight", (long long)C,
                   SG_SHAPE_STR(x), SG_SHAPE_STR(t));
      return NULL;
    }
  }
  if (!check_eps(op, eps)) return NULL;
  return norm_run(op, x, weight, bias, N, C, groups, L, eps);
}

sg_tensor *sg_layer_norm(sg_tensor *x, int k, sg_tensor *weight, sg_tensor *bias, double eps) {
  const char *op = "layer_norm";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  if (k < 1) {
    sg_error_set("%s: the number of normalized dims must be at least 1 (got %d)", op, k);
    return NULL;
  }
  if (x->ndim < k) {
    sg_error_set("%s: input %s has too few dims to normalise over the last %d", op, SG_SHAPE_STR(x), k);
    return NULL;
  }
  if (!check_affine(op, "weight", weight, x, k) || !check_affine(op, "bias", bias, x, k) || !check_eps(op, eps))
    return NULL;
  int64_t R = 1, D = 1;
  for (int d = 0; d < x->ndim; d++) *(d < x->ndim - k ? &R : &D) *= x->size[d];
  return norm_run(op, x, weight, bias, R, D, 1, 1, eps);
}
