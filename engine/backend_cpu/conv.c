/* Convolution on the cpu: f32 through oneDNN (dnnl_conv.c) first; what oneDNN
 * does not take (f64, geometries it cannot express, oneDNN absent or switched
 * off) runs per image and group as im2col + cblas gemm:
 *   FWD:         small = W * im2col(big)
 *   BWD_DATA:    big   = col2im(W^T * small)
 *   BWD_FILTER:  gW    = sum over images of small * im2col(big)^T
 * The bias add and gradient are the reference loops (backend_ref/conv.c). */
#include "../backend_ref/ref.h"
#include "dnnl_conv.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- im2col */
/* col [Cbg*kh*kw, Hs*Ws] from img [Cbg, Hb, Wb] */
#define DEFINE_IM2COL(T, SUF)                                                                            \
  static void im2col_##SUF(const sg_conv_geom *g, const T *img, T *col) {                                 \
    int64_t Cbg = g->Cb / g->G, S = g->Hs * g->Ws;                                                         \
    for (int64_t c = 0; c < Cbg; c++)                                                                     \
      for (int64_t i = 0; i < g->kh; i++)                                                                 \
        for (int64_t j = 0; j < g->kw; j++) {                                                             \
          T *row = col + ((c * g->kh + i) * g->kw + j) * S;                                               \
          for (int64_t oy = 0; oy < g->Hs; oy++) {                                                        \
            int64_t iy = oy * g->sh - g->ph + i * g->dh;                                                  \
            T *r = row + oy * g->Ws;                                                                      \
            if (iy < 0 || iy >= g->Hb) { for (int64_t ox = 0; ox < g->Ws; ox++) r[ox] = 0; continue; }    \
            const T *src = img + (c * g->Hb + iy) * g->Wb;                                                \
            for (int64_t ox = 0; ox < g->Ws; ox++) {                                                      \
              int64_t ix = ox * g->sw - g->pw + j * g->dw;                                                \
              r[ox] = ix >= 0 && ix < g->Wb ? src[ix] : 0;                                                \
            }                                                                                             \
          }                                                                                               \
        }                                                                                                 \
  }                                                                                                       \
  /* img [Cbg, Hb, Wb] += col2im(col) */                                                                  \
  static void col2im_##SUF(const sg_conv_geom *g, const T *col, T *img) {                                 \
    int64_t Cbg = g->Cb / g->G, S = g->Hs * g->Ws;                                                         \
    for (int64_t c = 0; c < Cbg; c++)                                                                     \
      for (int64_t i = 0; i < g->kh; i++)                                                                 \
        for (int64_t j = 0; j < g->kw; j++) {                                                             \
          const T *row = col + ((c * g->kh + i) * g->kw + j) * S;                                         \
          for (int64_t oy = 0; oy < g->Hs; oy++) {                                                        \
            int64_t iy = oy * g->sh - g->ph + i * g->dh;                                                  \
            if (iy < 0 || iy >= g->Hb) continue;                                                          \
            const T *r = row + oy * g->Ws;                                                                \
            T *dst = img + (c * g->Hb + iy) * g->Wb;                                                      \
            for (int64_t ox = 0; ox < g->Ws; ox++) {                                                      \
              int64_t ix = ox * g->sw - g->pw + j * g->dw;                                                \
              if (ix >= 0 && ix < g->Wb) dst[ix] += r[ox];                                                \
            }                                                                                             \
          }                                                                                               \
        }                                                                                                 \
  }
DEFINE_IM2COL(float, f32)
DEFINE_IM2COL(double, f64)

static void im2col(const sg_conv_geom *g, bool f64, const void *img, void *col) {
  if (f64) im2col_f64(g, img, col); else im2col_f32(g, img, col);
}
static void col2im(const sg_conv_geom *g, bool f64, const void *col, void *img) {
  if (f64) col2im_f64(g, col, img); else col2im_f32(g, col, img);
}

/* row-major C[M,N] = alpha * op(A) * op(B) + beta * C */
static void gemm(bool f64, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                 const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
  if (f64)
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                1.0, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
  else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                1.0f, A, (int)lda, B, (int)ldb, (float)beta, C, (int)ldc);
}

/* a 1x1 kernel with unit stride and no padding: im2col is the identity */
static bool trivial_cols(const sg_conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 && g->Hs == g->Hb &&
         g->Ws == g->Wb;
}

static size_t col_bytes(const sg_conv_geom *g, bool f64) {
  size_t es = f64 ? 8 : 4;
  return (size_t)(g->Cb / g->G * g->kh * g->kw * g->Hs * g->Ws) * es;
}

/* the im2col buffer of one image and group (none when the columns are the image itself) */
static int col_buffer(const sg_conv_geom *g, bool f64, bool triv, char **col) {
  *col = NULL;
  if (triv) return 0;
  size_t n = col_bytes(g, f64);
  if (!(*col = malloc(n ? n : 1))) {
    sg_error_set("conv: out of memory");
    return -1;
  }
  return 0;
}

/* small [N,Cs,Hs,Ws] = conv(big [N,Cb,Hb,Wb], w); all contiguous, same dtype */
static int blas_forward(const sg_conv_geom *g, bool f64, const void *big, const void *w, void *small) {
  size_t es = f64 ? 8 : 4;
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, K = Cbg * g->kh * g->kw, S = g->Hs * g->Ws;
  bool triv = trivial_cols(g);
  char *col;
  if (col_buffer(g, f64, triv, &col)) return -1;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t gr = 0; gr < g->G; gr++) {
      const char *img = (const char *)big + ((n * g->Cb + gr * Cbg) * g->Hb * g->Wb) * (int64_t)es;
      const char *cols = img;
      if (!triv) { im2col(g, f64, img, col); cols = col; }
      gemm(f64, false, false, Csg, S, K, (const char *)w + gr * Csg * K * (int64_t)es, K, cols, S, 0.0,
           (char *)small + ((n * g->Cs + gr * Csg) * S) * (int64_t)es, S);
    }
  free(col);
  return 0;
}

/* big = adjoint conv(small, w); big is overwritten */
static int blas_backward_data(const sg_conv_geom *g, bool f64, const void *small, const void *w, void *big) {
  size_t es = f64 ? 8 : 4;
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, K = Cbg * g->kh * g->kw, S = g->Hs * g->Ws;
  bool triv = trivial_cols(g);
  char *col;
  if (col_buffer(g, f64, triv, &col)) return -1;
  if (!triv) memset(big, 0, (size_t)(g->N * g->Cb * g->Hb * g->Wb) * es);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t gr = 0; gr < g->G; gr++) {
      char *img = (char *)big + ((n * g->Cb + gr * Cbg) * g->Hb * g->Wb) * (int64_t)es;
      gemm(f64, true, false, K, S, Csg, (const char *)w + gr * Csg * K * (int64_t)es, K,
           (const char *)small + ((n * g->Cs + gr * Csg) * S) * (int64_t)es, S, 0.0, triv ? img : col, S);
      if (!triv) col2im(g, f64, col, img);
    }
  free(col);
  return 0;
}

/* gw [Cs, Cbg, kh, kw] = sum over images of small * im2col(big)^T (overwritten) */
static int blas_backward_filter(const sg_conv_geom *g, bool f64, const void *big, const void *small, void *gw) {
  size_t es = f64 ? 8 : 4;
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, K = Cbg * g->kh * g->kw, S = g->Hs * g->Ws;
  bool triv = trivial_cols(g);
  char *col;
  if (col_buffer(g, f64, triv, &col)) return -1;
  memset(gw, 0, (size_t)(g->Cs * K) * es);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t gr = 0; gr < g->G; gr++) {
      const char *img = (const char *)big + ((n * g->Cb + gr * Cbg) * g->Hb * g->Wb) * (int64_t)es;
      const char *cols = img;
      if (!triv) { im2col(g, f64, img, col); cols = col; }
      gemm(f64, false, true, Csg, K, S, (const char *)small + ((n * g->Cs + gr * Csg) * S) * (int64_t)es, S,
           cols, S, 1.0, (char *)gw + gr * Csg * K * (int64_t)es, K);
    }
  free(col);
  return 0;
}

/* ---------------------------------------------------------------- the entry */
static int conv(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big, sg_tensor *w, sg_tensor *small,
                sg_tensor *bias) {
  sg_dtype dt = w->dtype;
  if ((unsigned)kind > SG_CONV_BWD_FILTER) {
    sg_error_set("conv: unknown kind %d", (int)kind);
    return -1;
  }
  if (dt != SG_F32 && dt != SG_F64) return sg_ref_conv(kind, g, big, w, small, bias);
  void *bp = sg_data_ptr(big), *wp = sg_data_ptr(w), *sp = sg_data_ptr(small);
  if (dt == SG_F32) {
    static const sg_dnnl_kind dk[3] = {[SG_CONV_FWD] = SG_DNNL_FWD, [SG_CONV_BWD_DATA] = SG_DNNL_BWD_DATA,
                                       [SG_CONV_BWD_FILTER] = SG_DNNL_BWD_WEIGHTS};
    sg_dnnl_geom d = {g->N, g->G, g->Cb, g->Hb, g->Wb, g->Cs, g->Hs, g->Ws,
                      g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->dh, g->dw};
    int rc = sg_dnnl_conv(dk[kind], &d, bp, wp, sp, bias ? sg_data_ptr(bias) : NULL);
    if (rc < 0) return -1;
    if (rc == 1) {
      sg_path_note(SG_PATH_CONV, "dnnl");
      return 0;
    }
  }
  bool f64 = dt == SG_F64;
  int rc;
  sg_path_note(SG_PATH_CONV, "blas");
  switch (kind) {
  case SG_CONV_FWD:
    rc = blas_forward(g, f64, bp, wp, sp);
    return rc || !bias ? rc : sg_ref_conv_bias_add_(small, bias);
  case SG_CONV_BWD_DATA:
    return blas_backward_data(g, f64, sp, wp, bp);
  case SG_CONV_BWD_FILTER:
    rc = blas_backward_filter(g, f64, bp, sp, wp);
    return rc || !bias ? rc : sg_ref_conv_bias_backward(small, bias);
  }
  sg_error_set("conv: unknown kind %d", (int)kind);
  return -1;
}

void sg_cpu_fill_conv(sg_backend *t);
void sg_cpu_fill_conv(sg_backend *t) {
  t->conv.conv = conv;
  t->conv.share_begin = sg_dnnl_conv_share_begin;
  t->conv.share_end = sg_dnnl_conv_share_end;
}
