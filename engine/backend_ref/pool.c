/* Reference pooling over the H x W planes of NCHW tensors: max pooling with
 * its flat argmax positions, max unpooling (a scatter by those positions),
 * average and adaptive average pooling. Windows as PyTorch's; sums and
 * gradients are accumulated in double per plane and rounded once. */
#include "ref.h"
#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- windows */
/* The window of output (y, x) of an average pool over an H x W plane: rows [h0, h1), columns [w0, w1),
 * clipped to the plane, and its divisor (par: kh kw sh sw ph pw count_include_pad; unused when adaptive). */
typedef struct { int64_t h0, h1, w0, w1; double div; } window;
static window window_of(const int64_t par[7], bool adaptive, int64_t H, int64_t W, int64_t oh, int64_t ow, int64_t y,
                        int64_t x) {
  window r;
  if (adaptive) { /* PyTorch: from floor(y H / oh) to ceil((y + 1) H / oh) */
    r.h0 = y * H / oh;
    r.h1 = ((y + 1) * H + oh - 1) / oh;
    r.w0 = x * W / ow;
    r.w1 = ((x + 1) * W + ow - 1) / ow;
    r.div = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
    return r;
  }
  r.h0 = y * par[2] - par[4];
  r.w0 = x * par[3] - par[5];
  r.h1 = r.h0 + par[0] < H + par[4] ? r.h0 + par[0] : H + par[4];
  r.w1 = r.w0 + par[1] < W + par[5] ? r.w0 + par[1] : W + par[5];
  double padded = (double)((r.h1 - r.h0) * (r.w1 - r.w0)); /* the window within the padded plane */
  if (r.h0 < 0) r.h0 = 0;
  if (r.w0 < 0) r.w0 = 0;
  if (r.h1 > H) r.h1 = H;
  if (r.w1 > W) r.w1 = W;
  r.div = par[6] ? padded : (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}

/* a zeroed double buffer of n elements, or NULL with an error */
static double *acc_new(int64_t n, const char *op) {
  double *a = calloc((size_t)(n > 0 ? n : 1), sizeof *a);
  if (!a) sg_error_set("%s: out of memory", op);
  return a;
}

/* ---------------------------------------------------------------- max pool */
int sg_ref_max_pool2d(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices) {
  bool f64 = x->dtype == SG_F64;
  int64_t H = x->size[2], W = x->size[3], oh = values->size[2], ow = values->size[3];
  int64_t planes = x->size[0] * x->size[1];
  const void *xp = sg_data_ptr(x);
  void *vp = sg_data_ptr(values);
  int64_t *ip = indices ? sg_data_ptr(indices) : NULL;
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xo = 0; xo < ow; xo++) {
        int64_t h0 = y * par[2] - par[4], w0 = xo * par[3] - par[5];
        int64_t h1 = h0 + par[0] < H ? h0 + par[0] : H, w1 = w0 + par[1] < W ? w0 + par[1] : W;
        if (h0 < 0) h0 = 0;
        if (w0 < 0) w0 = 0;
        /* the first maximum in row-major order; a NaN wins and ends the search; all -inf: the first position */
        double best = -INFINITY;
        int64_t at = h0 * W + w0;
        bool nan = false;
        for (int64_t h = h0; h < h1 && !nan; h++)
          for (int64_t w = w0; w < w1 && !nan; w++) {
            double v = SG_REF_LD(xp, f64, (pl * H + h) * W + w);
            if (v > best || isnan(v)) {
              best = v;
              at = h * W + w;
              nan = isnan(v);
            }
          }
        int64_t o = (pl * oh + y) * ow + xo;
        SG_REF_ST(vp, f64, o, best);
        if (ip) ip[o] = at;
      }
  return 0;
}

int sg_ref_max_pool2d_backward(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx) {
  (void)par;
  bool f64 = g->dtype == SG_F64;
  int64_t is = gx->size[2] * gx->size[3], os = g->size[2] * g->size[3], planes = g->size[0] * g->size[1];
  double *acc = acc_new(is, "max_pool2d");
  if (!acc) return -1;
  const int64_t *ip = sg_data_ptr(indices);
  const void *gp = sg_data_ptr(g);
  void *xp = sg_data_ptr(gx);
  for (int64_t pl = 0; pl < planes; pl++) {
    for (int64_t k = 0; k < is; k++) acc[k] = 0;
    for (int64_t k = 0; k < os; k++) acc[ip[pl * os + k]] += SG_REF_LD(gp, f64, pl * os + k);
    for (int64_t k = 0; k < is; k++) SG_REF_ST(xp, f64, pl * is + k, acc[k]);
  }
  free(acc);
  return 0;
}

/* ---------------------------------------------------------------- max unpool */
int sg_ref_max_unpool2d(sg_tensor *x, sg_tensor *indices, sg_tensor *out) {
  int64_t oh = out->size[2], ow = out->size[3], os = oh * ow, is = x->size[2] * x->size[3];
  int64_t planes = x->size[0] * x->size[1];
  const int64_t *ip = sg_data_ptr(indices);
  for (int64_t k = 0; k < planes * is; k++)
    if (ip[k] < 0 || ip[k] >= os) {
      sg_error_set("max_unpool2d: index %lld is out of range for an output plane of %lldx%lld", (long long)ip[k],
                   (long long)oh, (long long)ow);
      return -1;
    }
  bool f64 = x->dtype == SG_F64;
  const void *xp = sg_data_ptr(x);
  void *op = sg_data_ptr(out);
  for (int64_t k = 0; k < planes * os; k++) SG_REF_ST(op, f64, k, 0.0);
  /* in input order: where positions repeat, the last input wins */
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t k = 0; k < is; k++) SG_REF_ST(op, f64, pl * os + ip[pl * is + k], SG_REF_LD(xp, f64, pl * is + k));
  return 0;
}

int sg_ref_max_unpool2d_backward(sg_tensor *g, sg_tensor *indices, sg_tensor *gx) {
  bool f64 = g->dtype == SG_F64;
  int64_t os = g->size[2] * g->size[3], is = gx->size[2] * gx->size[3], planes = gx->size[0] * gx->size[1];
  const int64_t *ip = sg_data_ptr(indices);
  const void *gp = sg_data_ptr(g);
  void *xp = sg_data_ptr(gx);
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t k = 0; k < is; k++) SG_REF_ST(xp, f64, pl * is + k, SG_REF_LD(gp, f64, pl * os + ip[pl * is + k]));
  return 0;
}

/* ---------------------------------------------------------------- average pools */
int sg_ref_avg_pool2d(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out) {
  bool f64 = x->dtype == SG_F64;
  int64_t H = x->size[2], W = x->size[3], oh = out->size[2], ow = out->size[3];
  int64_t planes = x->size[0] * x->size[1];
  const void *xp = sg_data_ptr(x);
  void *op = sg_data_ptr(out);
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xo = 0; xo < ow; xo++) {
        window r = window_of(par, adaptive, H, W, oh, ow, y, xo);
        double s = 0;
        for (int64_t h = r.h0; h < r.h1; h++)
          for (int64_t w = r.w0; w < r.w1; w++) s += SG_REF_LD(xp, f64, (pl * H + h) * W + w);
        SG_REF_ST(op, f64, (pl * oh + y) * ow + xo, r.div > 0 ? s / r.div : 0.0);
      }
  return 0;
}

int sg_ref_avg_pool2d_backward(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx) {
  bool f64 = g->dtype == SG_F64;
  int64_t H = gx->size[2], W = gx->size[3], oh = g->size[2], ow = g->size[3];
  int64_t planes = g->size[0] * g->size[1];
  double *acc = acc_new(H * W, adaptive ? "adaptive_avg_pool2d" : "avg_pool2d");
  if (!acc) return -1;
  const void *gp = sg_data_ptr(g);
  void *xp = sg_data_ptr(gx);
  for (int64_t pl = 0; pl < planes; pl++) {
    for (int64_t k = 0; k < H * W; k++) acc[k] = 0;
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xo = 0; xo < ow; xo++) {
        window r = window_of(par, adaptive, H, W, oh, ow, y, xo);
        if (!(r.div > 0)) continue;
        double v = SG_REF_LD(gp, f64, (pl * oh + y) * ow + xo) / r.div;
        for (int64_t h = r.h0; h < r.h1; h++)
          for (int64_t w = r.w0; w < r.w1; w++) acc[h * W + w] += v;
      }
    for (int64_t k = 0; k < H * W; k++) SG_REF_ST(xp, f64, pl * H * W + k, acc[k]);
  }
  free(acc);
  return 0;
}

void sg_ref_fill_pool(sg_backend *t);
void sg_ref_fill_pool(sg_backend *t) {
  t->pool.max_pool2d = sg_ref_max_pool2d;
  t->pool.max_pool2d_backward = sg_ref_max_pool2d_backward;
  t->pool.max_unpool2d = sg_ref_max_unpool2d;
  t->pool.max_unpool2d_backward = sg_ref_max_unpool2d_backward;
  t->pool.avg_pool2d = sg_ref_avg_pool2d;
  t->pool.avg_pool2d_backward = sg_ref_avg_pool2d_backward;
}
