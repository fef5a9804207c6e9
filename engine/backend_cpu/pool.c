/* Pooling on the cpu. f32 max pooling runs the threaded kernels below; f32
 * average pooling, and adaptive pooling whose windows tile the plane, runs
 * oneDNN (dnnl_pool.c) when it is built and switched on; everything else,
 * unpooling included (its entries stay empty), runs the reference loops
 * (backend_ref/pool.c). The max pooling kernels find the reference's maxima
 * and positions and add gradients in its order, in f32 (the reference adds in
 * double). Work is spread over OpenMP threads by output rows or planes, so
 * results do not depend on the thread count. */
#include "pool.h"
#include "dnnl_pool.h"
#include "../backend_ref/ref.h"
#include <math.h>
#include <string.h>

/* OpenMP only pays off above this many elements of work */
#define PAR_MIN 32768

static void note(const char *path) { sg_path_note(SG_PATH_POOL, path); }

/* ---------------------------------------------------------------- max pooling kernels */
/* One row of 2x2, stride-2 windows: branchless, so that it vectorises (the first NaN wins, as in the
 * loop below: a NaN is taken only over a number, and nothing replaces a NaN). idx may be NULL. */
static inline __attribute__((always_inline)) void maxpool_row_2x2(const float *a, const float *b, int64_t ow,
                                                                  int64_t at0, int64_t W, float *y, int64_t *idx) {
  for (int64_t ox = 0; ox < ow; ox++) {
    float v0 = a[2 * ox], v1 = a[2 * ox + 1], v2 = b[2 * ox], v3 = b[2 * ox + 1];
    float best = v0;
    int k = 0;
    bool t1 = v1 > best || (v1 != v1 && best == best);
    best = t1 ? v1 : best; k = t1 ? 1 : k;
    bool t2 = v2 > best || (v2 != v2 && best == best);
    best = t2 ? v2 : best; k = t2 ? 2 : k;
    bool t3 = v3 > best || (v3 != v3 && best == best);
    best = t3 ? v3 : best; k = t3 ? 3 : k;
    y[ox] = best;
    if (idx) idx[ox] = at0 + 2 * ox + (k & 1) + (k >> 1) * W;
  }
}

/* Max pooling over `planes` H x W planes: output oh x ow, window kh x kw, stride sh, sw, padding ph, pw
 * (at most half the window). y receives each window's maximum and idx its flat position in the plane
 * (backend.h's rule: the first maximum in row-major window order, a NaN wins and stops the search, a
 * window of -inf gives its first in-range position); idx may be NULL. */
static void maxpool_fwd(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
                        int64_t sh, int64_t sw, int64_t ph, int64_t pw, const float *x, float *y, int64_t *idx) {
  int64_t rows = planes * oh;
  bool two = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * ow * kh * kw >= PAR_MIN)
#endif
  for (int64_t r = 0; r < rows; r++) {
    int64_t p = r / oh, oy = r % oh;
    const float *xp = x + p * H * W;
    float *yr = y + r * ow;
    int64_t *ir = idx ? idx + r * ow : NULL;
    if (two) { /* the U-Net's 2x2 windows; the positions only when wanted */
      const float *a = xp + 2 * oy * W, *b = a + W;
      if (ir) maxpool_row_2x2(a, b, ow, 2 * oy * W, W, yr, ir);
      else maxpool_row_2x2(a, b, ow, 2 * oy * W, W, yr, NULL);
      continue;
    }
    int64_t h0 = oy * sh - ph, h1 = h0 + kh < H ? h0 + kh : H;
    if (h0 < 0) h0 = 0;
    for (int64_t ox = 0; ox < ow; ox++) {
      int64_t w0 = ox * sw - pw, w1 = w0 + kw < W ? w0 + kw : W;
      if (w0 < 0) w0 = 0;
      float best = -INFINITY;
      int64_t bi = h0 * W + w0;
      for (int64_t hh = h0; hh < h1; hh++)
        for (int64_t ww = w0; ww < w1; ww++) {
          float v = xp[hh * W + ww];
          if (v > best || v != v) {
            best = v;
            bi = hh * W + ww;
            if (v != v) goto found;
          }
        }
    found:
      yr[ox] = best;
      if (ir) ir[ox] = bi;
    }
  }
}

/* gx[p, idx[p, k]] += g[p, k] over each plane's outputs in order, gx zeroed first */
static void maxpool_backward(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *idx,
                        const float *g, float *gx) {
  int64_t is = H * W, os = oh * ow;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (planes * is >= PAR_MIN)
#endif
  for (int64_t p = 0; p < planes; p++) {
    float *o = gx + p * is;
    memset(o, 0, sizeof *o * (size_t)is);
    const int64_t *ip = idx + p * os;
    const float *gp = g + p * os;
    for (int64_t k = 0; k < os; k++) o[ip[k]] += gp[k];
  }
}

/* ---------------------------------------------------------------- entries */
static int max_pool2d(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices) {
  if (x->dtype != SG_F32) {
    note("loops");
    return sg_ref_max_pool2d(x, par, values, indices);
  }
  note("kernel");
  maxpool_fwd(x->size[0] * x->size[1], x->size[2], x->size[3], values->size[2], values->size[3], par[0], par[1],
              par[2], par[3], par[4], par[5], sg_data_ptr(x), sg_data_ptr(values),
              indices ? sg_data_ptr(indices) : NULL);
  return 0;
}

static int max_pool2d_backward(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx) {
  if (g->dtype != SG_F32) {
    note("loops");
    return sg_ref_max_pool2d_backward(g, indices, par, gx);
  }
  note("kernel");
  maxpool_backward(g->size[0] * g->size[1], gx->size[2], gx->size[3], g->size[2], g->size[3], sg_data_ptr(indices),
              sg_data_ptr(g), sg_data_ptr(gx));
  return 0;
}

/* The oneDNN form of an average pool over big [N,C,H,W] with output small [N,C,oh,ow]: avg_pool2d, or an
 * adaptive pool whose windows tile the plane exactly (kernel = stride = H / oh); false when there is none. */
static bool dnnl_form(const int64_t par[7], bool adaptive, const sg_tensor *big, const sg_tensor *small,
                      sg_dnnl_pool_geom *g, sg_dnnl_pool_alg *alg) {
  const int64_t *b = big->size, *s = small->size;
  if (!adaptive) {
    *g = (sg_dnnl_pool_geom){b[0], b[1], b[2], b[3], s[2], s[3], par[0], par[1], par[2], par[3], par[4], par[5]};
    *alg = par[6] ? SG_DNNL_POOL_AVG_INCL : SG_DNNL_POOL_AVG_EXCL;
    return true;
  }
  if (b[2] % s[2] || b[3] % s[3]) return false;
  int64_t kh = b[2] / s[2], kw = b[3] / s[3];
  *g = (sg_dnnl_pool_geom){b[0], b[1], b[2], b[3], s[2], s[3], kh, kw, kh, kw, 0, 0};
  *alg = SG_DNNL_POOL_AVG_INCL;
  return true;
}

static int avg_pool2d(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out) {
  sg_dnnl_pool_geom g;
  sg_dnnl_pool_alg alg;
  if (x->dtype == SG_F32 && dnnl_form(par, adaptive, x, out, &g, &alg)) {
    int rc = sg_dnnl_pool_fwd(alg, &g, sg_data_ptr(x), sg_data_ptr(out));
    if (rc) {
      note("dnnl");
      return rc < 0 ? -1 : 0;
    }
  }
  note("loops");
  return sg_ref_avg_pool2d(x, par, adaptive, out);
}

static int avg_pool2d_backward(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx) {
  sg_dnnl_pool_geom geo;
  sg_dnnl_pool_alg alg;
  if (g->dtype == SG_F32 && dnnl_form(par, adaptive, gx, g, &geo, &alg)) {
    int rc = sg_dnnl_pool_backward(alg, &geo, sg_data_ptr(g), sg_data_ptr(gx));
    if (rc) {
      note("dnnl");
      return rc < 0 ? -1 : 0;
    }
  }
  note("loops");
  return sg_ref_avg_pool2d_backward(g, par, adaptive, gx);
}

void sg_cpu_fill_pool(sg_backend *t);
void sg_cpu_fill_pool(sg_backend *t) {
  t->pool.max_pool2d = max_pool2d;
  t->pool.max_pool2d_backward = max_pool2d_backward;
  t->pool.avg_pool2d = avg_pool2d;
  t->pool.avg_pool2d_backward = avg_pool2d_backward;
}
