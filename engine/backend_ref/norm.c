/* Reference batch, group and layer normalisation: per-channel (batch norm) or
 * per-row (group and layer norm) statistics in double, two passes (mean, then
 * the squared deviations), the affine output, and the closed-form backward
 * from the kept statistics:
 *   xhat = (x - mean) * invstd,  gw = g * weight,
 *   dx = invstd * (gw - mean(gw) - xhat * mean(gw * xhat))   (batch statistics)
 *   dx = invstd * gw                                          (batch norm, evaluation)
 *   dweight = sum g * xhat,  dbias = sum g.
 * Layout of the statistics tensors: ref.h. */
#include "ref.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

/* [N, C, L] of x [N, C, ...] */
static void ncl(const sg_tensor *x, int64_t *N, int64_t *C, int64_t *L) {
  *N = x->size[0];
  *C = x->size[1];
  *L = 1;
  for (int d = 2; d < x->ndim; d++) *L *= x->size[d];
}

/* the n values of a per-channel tensor (any float dtype and stride), or n copies of dflt when t is NULL */
static double *vec(const sg_tensor *t, int64_t n, double dflt, const char *op) {
  double *v = malloc(sizeof *v * (size_t)(n + 1));
  if (!v) { sg_error_set("%s: out of memory", op); return NULL; }
  for (int64_t i = 0; i < n; i++) v[i] = t ? sg_get_flat(t, i) : dflt;
  return v;
}

static void store_vec(sg_tensor *t, const double *v, int64_t n) {
  if (!t) return;
  bool f64 = t->dtype == SG_F64;
  for (int64_t i = 0; i < n; i++) SG_REF_ST(sg_data_ptr(t), f64, i, v[i]);
}

/* a new f64 statistics tensor of n values on the cpu */
static sg_tensor *new_stats(int64_t n) { return sg_empty(1, &n, SG_F64, SG_CPU); }

/* ---------------------------------------------------------------- batch norm */

void sg_ref_bn_update_running(sg_tensor *rm, sg_tensor *rv, const double *mean, const double *var, int64_t C,
                              double M, double momentum) {
  for (int64_t c = 0; c < C; c++) {
    double m = (1 - momentum) * sg_get_flat(rm, c) + momentum * mean[c];
    double v = (1 - momentum) * sg_get_flat(rv, c) + momentum * var[c] * M / (M - 1);
    sg_set_f64(rm, &c, m);
    sg_set_f64(rv, &c, v);
  }
  atomic_fetch_add(&rm->storage->version, 1);
  atomic_fetch_add(&rv->storage->version, 1);
}

static int bn_forward(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                      double momentum, double eps, bool relu, sg_tensor *out, sg_tensor **stats) {
  *stats = NULL;
  int64_t N, C, L;
  ncl(x, &N, &C, &L);
  double M = (double)(N * L);
  bool f64 = x->dtype == SG_F64;
  const void *xp = sg_data_ptr(x);
  void *yp = sg_data_ptr(out);
  sg_tensor *st = new_stats(2 * C + 1);
  double *wv = st ? vec(w, C, 1.0, "batch_norm") : NULL, *bv = wv ? vec(b, C, 0.0, "batch_norm") : NULL;
  if (!bv) {
    free(wv);
    sg_tensor_decref(st);
    return -1;
  }
  double *mean = sg_data_ptr(st), *var = mean + C;
  var[C] = eps;
  for (int64_t c = 0; c < C; c++) {
    if (!training) {
      mean[c] = sg_get_flat(rm, c);
      var[c] = sg_get_flat(rv, c);
      continue;
    }
    double s = 0, q = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < L; k++) s += SG_REF_LD(xp, f64, (n * C + c) * L + k);
    mean[c] = s / M;
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < L; k++) {
        double d = SG_REF_LD(xp, f64, (n * C + c) * L + k) - mean[c];
        q += d * d;
      }
    var[c] = q / M;
  }
  if (training && rm) sg_ref_bn_update_running(rm, rv, mean, var, C, M, momentum);
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      double scale = wv[c] / sqrt(var[c] + eps), shift = bv[c] - mean[c] * scale;
      for (int64_t k = 0; k < L; k++) {
        int64_t i = (n * C + c) * L + k;
        double y = SG_REF_LD(xp, f64, i) * scale + shift;
        if (relu && !(y > 0) && y == y) y = 0; /* NaN stays NaN */
        SG_REF_ST(yp, f64, i, y);
      }
    }
  free(wv);
  free(bv);
  *stats = st;
  return 0;
}

/* y: the fused ReLU's output (g counts where y > 0), or NULL */
static int bn_backward(sg_tensor *x, sg_tensor *g, sg_tensor *y, sg_tensor *w, sg_tensor *stats, bool training,
                       sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  int64_t N, C, L;
  ncl(x, &N, &C, &L);
  double M = (double)(N * L);
  bool f64 = x->dtype == SG_F64;
  const void *xp = sg_data_ptr(x), *gp = sg_data_ptr(g), *yp = y ? sg_data_ptr(y) : NULL;
  const double *mean = sg_data_ptr(stats), *var = mean + C, eps = var[C];
  double *wv = vec(w, C, 1.0, "batch_norm"), *sum_g = wv ? calloc((size_t)(2 * C + 1), sizeof(double)) : NULL;
  if (!sum_g) {
    if (wv) sg_error_set("batch_norm: out of memory");
    free(wv);
    return -1;
  }
  double *sum_gxhat = sum_g + C;
#define GRAD(i) (yp && !(SG_REF_LD(yp, f64, i) > 0) ? 0.0 : SG_REF_LD(gp, f64, i))
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      double is = 1.0 / sqrt(var[c] + eps);
      for (int64_t k = 0; k < L; k++) {
        int64_t i = (n * C + c) * L + k;
        sum_g[c] += GRAD(i);
        sum_gxhat[c] += GRAD(i) * (SG_REF_LD(xp, f64, i) - mean[c]) * is;
      }
    }
  if (gx) {
    void *op = sg_data_ptr(gx);
    for (int64_t n = 0; n < N; n++)
      for (int64_t c = 0; c < C; c++) {
        double is = 1.0 / sqrt(var[c] + eps);
        for (int64_t k = 0; k < L; k++) {
          int64_t i = (n * C + c) * L + k;
          double xhat = (SG_REF_LD(xp, f64, i) - mean[c]) * is, v;
          if (training) v = wv[c] * is * (GRAD(i) - sum_g[c] / M - xhat * sum_gxhat[c] / M);
          else v = wv[c] * is * GRAD(i);
          SG_REF_ST(op, f64, i, v);
        }
      }
  }
#undef GRAD
  store_vec(gw, sum_gxhat, C);
  store_vec(gb, sum_g, C);
  free(wv);
  free(sum_g);
  return 0;
}

int sg_ref_batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                      double momentum, double eps, sg_tensor *out, sg_tensor **stats) {
  return bn_forward(x, rm, rv, w, b, training, momentum, eps, false, out, stats);
}

int sg_ref_batch_norm_relu(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                           double momentum, double eps, sg_tensor *out, sg_tensor **stats) {
  return bn_forward(x, rm, rv, w, b, training, momentum, eps, true, out, stats);
}

int sg_ref_batch_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training,
                               sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  return bn_backward(x, g, NULL, w, stats, training, gx, gw, gb);
}

int sg_ref_batch_norm_relu_backward(sg_tensor *x, sg_tensor *g, sg_tensor *y, sg_tensor *w, sg_tensor *stats,
                                    bool training, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  return bn_backward(x, g, y, w, stats, training, gx, gw, gb);
}

/* ---------------------------------------------------------------- group / layer norm */
/* Row r = n * G + gi holds the M = (C/G) * L contiguous values of sample n's group gi; element j of the row
 * belongs to channel gi * C/G + j / L. */

int sg_ref_group_norm(sg_tensor *x, sg_tensor *w, sg_tensor *b, int64_t N, int64_t C, int64_t G, int64_t L,
                      double eps, sg_tensor *out, sg_tensor **stats) {
  *stats = NULL;
  int64_t R = N * G, Cg = C / G, M = Cg * L;
  bool f64 = x->dtype == SG_F64;
  const void *xp = sg_data_ptr(x);
  void *yp = sg_data_ptr(out);
  sg_tensor *st = new_stats(2 * R);
  double *wv = st ? vec(w, C, 1.0, "group_norm") : NULL, *bv = wv ? vec(b, C, 0.0, "group_norm") : NULL;
  if (!bv) {
    free(wv);
    sg_tensor_decref(st);
    return -1;
  }
  double *mean = sg_data_ptr(st), *invstd = mean + R;
  for (int64_t r = 0; r < R; r++) {
    double s = 0, q = 0;
    for (int64_t j = 0; j < M; j++) s += SG_REF_LD(xp, f64, r * M + j);
    double m = M ? s / (double)M : 0.0;
    for (int64_t j = 0; j < M; j++) {
      double d = SG_REF_LD(xp, f64, r * M + j) - m;
      q += d * d;
    }
    double is = 1.0 / sqrt((M ? q / (double)M : 0.0) + eps);
    mean[r] = m;
    invstd[r] = is;
    for (int64_t j = 0; j < M; j++) {
      int64_t c = (r % G) * Cg + j / L;
      SG_REF_ST(yp, f64, r * M + j, (SG_REF_LD(xp, f64, r * M + j) - m) * is * wv[c] + bv[c]);
    }
  }
  free(wv);
  free(bv);
  *stats = st;
  return 0;
}

int sg_ref_group_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                               int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  int64_t R = N * G, Cg = C / G, M = Cg * L;
  bool f64 = x->dtype == SG_F64;
  const void *xp = sg_data_ptr(x), *gp = sg_data_ptr(g);
  const double *mean = sg_data_ptr(stats), *invstd = mean + R;
  double *wv = vec(w, C, 1.0, "group_norm"), *sum_g = wv ? calloc((size_t)(2 * C + 1), sizeof(double)) : NULL;
  if (!sum_g) {
    if (wv) sg_error_set("group_norm: out of memory");
    free(wv);
    return -1;
  }
  double *sum_gxhat = sum_g + C;
  for (int64_t r = 0; r < R; r++) {
    double m = mean[r], is = invstd[r], mean_gw = 0, mean_gwxhat = 0;
    for (int64_t j = 0; j < M; j++) {
      int64_t c = (r % G) * Cg + j / L;
      double gv = SG_REF_LD(gp, f64, r * M + j), xhat = (SG_REF_LD(xp, f64, r * M + j) - m) * is;
      sum_g[c] += gv;
      sum_gxhat[c] += gv * xhat;
      mean_gw += gv * wv[c] / (double)M;
      mean_gwxhat += gv * wv[c] * xhat / (double)M;
    }
    for (int64_t j = 0; gx && j < M; j++) {
      int64_t c = (r % G) * Cg + j / L;
      double gv = SG_REF_LD(gp, f64, r * M + j), xhat = (SG_REF_LD(xp, f64, r * M + j) - m) * is;
      SG_REF_ST(sg_data_ptr(gx), f64, r * M + j, is * (gv * wv[c] - mean_gw - xhat * mean_gwxhat));
    }
  }
  store_vec(gw, sum_gxhat, C);
  store_vec(gb, sum_g, C);
  free(wv);
  free(sum_g);
  return 0;
}

void sg_ref_fill_norm(sg_backend *t);
void sg_ref_fill_norm(sg_backend *t) {
  t->norm.batch_norm = sg_ref_batch_norm;
  t->norm.batch_norm_backward = sg_ref_batch_norm_backward;
  t->norm.batch_norm_relu = sg_ref_batch_norm_relu;
  t->norm.batch_norm_relu_backward = sg_ref_batch_norm_relu_backward;
  t->norm.group_norm = sg_ref_group_norm;
  t->norm.group_norm_backward = sg_ref_group_norm_backward;
}
