/* 2-d convolution and its adjoint (transposed convolution).
 *
 * Both are described by one geometry: a "big" image (the input of conv2d, the
 * output of conv_transpose2d) and a "small" grid of kernel positions (the
 * output of conv2d, the input of conv_transpose2d). The weight is always
 * [small channels, big channels / groups, kh, kw]. Three primitives cover the
 * forward and backward passes of both ops:
 *   big_to_small:  small = W * im2col(big)            (conv2d forward)
 *   small_to_big:  big   = col2im(W^T * small)        (its adjoint)
 *   weight_grad:   gW   += small * im2col(big)^T
 * each per image and group with cblas gemm. The reference path runs plain
 * direct loops in double. GPU tensors run the same three primitives through
 * cuDNN (backend_cuda/conv.c), following autocast. */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend_cpu/dnnl_conv.h"
#include "../core/autocast.h"
#include "../backend.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

sg_tensor *sg_nn_contig(sg_tensor *t, sg_dtype dt) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *c = sg_to_dtype(t, dt), *r = c ? sg_contiguous(c) : NULL;
  sg_set_grad_enabled(prev);
  sg_tensor_decref(c);
  return r;
}

bool sg_nn_check_float(const char *op, const char *arg, const sg_tensor *t) {
  if (t->storage->device != SG_CPU) {
    sg_error_set("%s: %s must be a cpu tensor (got %s)", op, arg, sg_device_name(t->storage->device));
    return false;
  }
  if (t->dtype != SG_F32 && t->dtype != SG_F64) {
    sg_error_set("%s: %s must be f32 or f64 (got %s)", op, arg, sg_dtype_name(t->dtype));
    return false;
  }
  return true;
}

bool sg_nn_check_float_dev(const char *op, const char *arg, const sg_tensor *t) {
  if (t->storage->device != SG_CPU) {
    if (!sg_dtype_is_float(t->dtype)) {
      sg_error_set("%s: %s must be a floating tensor (got %s)", op, arg, sg_dtype_name(t->dtype));
      return false;
    }
    return true;
  }
  return sg_nn_check_float(op, arg, t);
}

sg_conv_opts sg_conv_defaults(void) {
  sg_conv_opts o;
  memset(&o, 0, sizeof o);
  o.stride[0] = o.stride[1] = 1;
  o.dilation[0] = o.dilation[1] = 1;
  o.groups = 1;
  return o;
}

typedef struct {
  int64_t N, G, Cb, Hb, Wb, Cs, Hs, Ws, kh, kw, sh, sw, ph, pw, dh, dw;
  bool f64, transposed, reference;
  bool cuda;   /* the tensors are on the GPU: cuDNN computes (any float dtype) */
  sg_dtype dt; /* the dtype of input, weight, bias and output */
} geom;

/* ---------------------------------------------------------------- im2col */
/* col [Cbg*kh*kw, Hs*Ws] from img [Cbg, Hb, Wb] */
#define DEFINE_IM2COL(T, SUF)                                                                            \
  static void im2col_##SUF(const geom *g, const T *img, T *col) {                                         \
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
  static void col2im_##SUF(const geom *g, const T *col, T *img) {                                         \
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

static void im2col(const geom *g, const void *img, void *col) {
  if (g->f64) im2col_f64(g, img, col); else im2col_f32(g, img, col);
}
static void col2im(const geom *g, const void *col, void *img) {
  if (g->f64) col2im_f64(g, col, img); else col2im_f32(g, col, img);
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
static bool trivial_cols(const geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 && g->Hs == g->Hb &&
         g->Ws == g->Wb;
}

static size_t col_bytes(const geom *g) {
  size_t es = g->f64 ? 8 : 4;
  return (size_t)(g->Cb / g->G * g->kh * g->kw * g->Hs * g->Ws) * es;
}

/* small [N,Cs,Hs,Ws] = conv(big [N,Cb,Hb,Wb], w); all contiguous, same dtype */
static int big_to_small(const geom *g, const void *big, const void *w, void *small) {
  size_t es = g->f64 ? 8 : 4;
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, K = Cbg * g->kh * g->kw, S = g->Hs * g->Ws;
  bool triv = trivial_cols(g);
  char *col = NULL;
  if (!triv && !(col = malloc(col_bytes(g) ? col_bytes(g) : 1))) { sg_error_set("conv: out of memory"); return -1; }
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t gr = 0; gr < g->G; gr++) {
      const char *img = (const char *)big + ((n * g->Cb + gr * Cbg) * g->Hb * g->Wb) * (int64_t)es;
      const char *cols = img;
      if (!triv) { im2col(g, img, col); cols = col; }
      gemm(g->f64, false, false, Csg, S, K, (const char *)w + gr * Csg * K * (int64_t)es, K, cols, S, 0.0,
           (char *)small + ((n * g->Cs + gr * Csg) * S) * (int64_t)es, S);
    }
  free(col);
  return 0;
}

/* big = adjoint conv(small, w); big is overwritten */
static int small_to_big(const geom *g, const void *small, const void *w, void *big) {
  size_t es = g->f64 ? 8 : 4;
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, K = Cbg * g->kh * g->kw, S = g->Hs * g->Ws;
  bool triv = trivial_cols(g);
  char *col = NULL;
  if (!triv && !(col = malloc(col_bytes(g) ? col_bytes(g) : 1))) { sg_error_set("conv: out of memory"); return -1; }
  if (!triv) memset(big, 0, (size_t)(g->N * g->Cb * g->Hb * g->Wb) * es);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t gr = 0; gr < g->G; gr++) {
      char *img = (char *)big + ((n * g->Cb + gr * Cbg) * g->Hb * g->Wb) * (int64_t)es;
      gemm(g->f64, true, false, K, S, Csg, (const char *)w + gr * Csg * K * (int64_t)es, K,
           (const char *)small + ((n * g->Cs + gr * Csg) * S) * (int64_t)es, S, 0.0, triv ? img : col, S);
      if (!triv) col2im(g, col, img);
    }
  free(col);
  return 0;
}

/* gw [Cs, Cbg, kh, kw] = sum over images of small * im2col(big)^T (overwritten) */
static int weight_grad(const geom *g, const void *big, const void *small, void *gw) {
  size_t es = g->f64 ? 8 : 4;
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, K = Cbg * g->kh * g->kw, S = g->Hs * g->Ws;
  bool triv = trivial_cols(g);
  char *col = NULL;
  if (!triv && !(col = malloc(col_bytes(g) ? col_bytes(g) : 1))) { sg_error_set("conv: out of memory"); return -1; }
  memset(gw, 0, (size_t)(g->Cs * K) * es);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t gr = 0; gr < g->G; gr++) {
      const char *img = (const char *)big + ((n * g->Cb + gr * Cbg) * g->Hb * g->Wb) * (int64_t)es;
      const char *cols = img;
      if (!triv) { im2col(g, img, col); cols = col; }
      gemm(g->f64, false, true, Csg, K, S, (const char *)small + ((n * g->Cs + gr * Csg) * S) * (int64_t)es, S,
           cols, S, 1.0, (char *)gw + gr * Csg * K * (int64_t)es, K);
    }
  free(col);
  return 0;
}

/* ---------------------------------------------------------------- reference loops */
static void ref_big_to_small(const geom *g, const void *big, const void *w, void *small) {
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t o = 0; o < g->Cs; o++)
      for (int64_t oy = 0; oy < g->Hs; oy++)
        for (int64_t ox = 0; ox < g->Ws; ox++) {
          double acc = 0;
          int64_t gr = o / Csg;
          for (int64_t c = 0; c < Cbg; c++)
            for (int64_t i = 0; i < g->kh; i++)
              for (int64_t j = 0; j < g->kw; j++) {
                int64_t iy = oy * g->sh - g->ph + i * g->dh, ix = ox * g->sw - g->pw + j * g->dw;
                if (iy < 0 || iy >= g->Hb || ix < 0 || ix >= g->Wb) continue;
                acc += SG_NN_LD(big, g->f64, ((n * g->Cb + gr * Cbg + c) * g->Hb + iy) * g->Wb + ix) *
                       SG_NN_LD(w, g->f64, ((o * Cbg + c) * g->kh + i) * g->kw + j);
              }
          SG_NN_ST(small, g->f64, ((n * g->Cs + o) * g->Hs + oy) * g->Ws + ox, acc);
        }
}

static int ref_small_to_big(const geom *g, const void *small, const void *w, void *big) {
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, nb = g->N * g->Cb * g->Hb * g->Wb;
  double *acc = calloc((size_t)(nb ? nb : 1), sizeof *acc);
  if (!acc) { sg_error_set("conv_transpose2d: out of memory"); return -1; }
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t ci = 0; ci < g->Cs; ci++)
      for (int64_t y = 0; y < g->Hs; y++)
        for (int64_t x = 0; x < g->Ws; x++) {
          double v = SG_NN_LD(small, g->f64, ((n * g->Cs + ci) * g->Hs + y) * g->Ws + x);
          int64_t gr = ci / Csg;
          for (int64_t c = 0; c < Cbg; c++)
            for (int64_t i = 0; i < g->kh; i++)
              for (int64_t j = 0; j < g->kw; j++) {
                int64_t yy = y * g->sh - g->ph + i * g->dh, xx = x * g->sw - g->pw + j * g->dw;
                if (yy < 0 || yy >= g->Hb || xx < 0 || xx >= g->Wb) continue;
                acc[((n * g->Cb + gr * Cbg + c) * g->Hb + yy) * g->Wb + xx] +=
                    v * SG_NN_LD(w, g->f64, ((ci * Cbg + c) * g->kh + i) * g->kw + j);
              }
        }
  for (int64_t k = 0; k < nb; k++) SG_NN_ST(big, g->f64, k, acc[k]);
  free(acc);
  return 0;
}

/* out[n, c, ...] += bias[c] */
static void add_bias(bool f64, void *out, const void *b, int64_t N, int64_t C, int64_t S) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      double bv = SG_NN_LD(b, f64, c);
      int64_t base = (n * C + c) * S;
      if (f64) { double *p = (double *)out + base; for (int64_t s = 0; s < S; s++) p[s] += bv; }
      else { float *p = (float *)out + base; float bf = (float)bv; for (int64_t s = 0; s < S; s++) p[s] += bf; }
    }
}

/* ---------------------------------------------------------------- oneDNN dispatch */
/* One of the three primitives through oneDNN (f32, not the reference path):
 * 1 done, 0 not handled (take the BLAS path), -1 error. bias: fused bias for
 * SG_DNNL_FWD, bias gradient for SG_DNNL_BWD_WEIGHTS, or NULL. */
static int try_dnnl(sg_dnnl_kind kind, const geom *g, const void *big, const void *w, const void *small,
                    const void *bias) {
  if (g->f64 || g->reference) return 0;
  sg_dnnl_geom d = {g->N, g->G, g->Cb, g->Hb, g->Wb, g->Cs, g->Hs, g->Ws,
                    g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->dh, g->dw};
  int rc = sg_dnnl_conv(kind, &d, (float *)big, (float *)w, (float *)small, (float *)bias);
  if (rc == 1) sg_conv_note_path("dnnl");
  return rc;
}

/* ---------------------------------------------------------------- CUDA (cuDNN) */
static sg_conv_geom cuda_geom(const geom *g) {
  return (sg_conv_geom){g->N,  g->G,  g->Cb, g->Hb, g->Wb, g->Cs, g->Hs, g->Ws,
                             g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->dh, g->dw};
}

/* out from x, w (contiguous) and the optional bias */
static int cuda_forward(const geom *g, sg_tensor *x, sg_tensor *w, sg_tensor *bias, sg_tensor *out) {
  sg_conv_geom cg = cuda_geom(g);
  sg_conv_note_path("cudnn");
  int rc = g->transposed ? SG_BACKEND_CALL(SG_DEVICE_OF(out), conv.conv, "conv", SG_CONV_BWD_DATA, &cg, out, w, x)
                         : SG_BACKEND_CALL(SG_DEVICE_OF(x), conv.conv, "conv", SG_CONV_FWD, &cg, x, w, out);
  if (!rc && bias) rc = SG_BACKEND_CALL(SG_DEVICE_OF(out), conv.bias_add_, "conv2d", out, bias);
  return rc;
}

static int conv_bw_cuda(sg_node *n, sg_tensor *gout, sg_tensor **gin) {
  const geom *g = n->ctx;
  sg_conv_geom cg = cuda_geom(g);
  sg_tensor *go = sg_nn_contig(gout, g->dt);
  if (!go) return -1;
  sg_conv_note_path("cudnn");
  int rc = 0;
  /* gout lives on the output side: small for conv2d, big for the transposed op */
  if (n->needs[0]) {
    sg_tensor *w = sg_node_saved(n, 1), *wc = w ? sg_nn_contig(w, g->dt) : NULL;
    sg_tensor *gx = wc ? sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, g->dt, SG_CUDA) : NULL;
    if (gx && (g->transposed ? SG_BACKEND_CALL(SG_DEVICE_OF(go), conv.conv, "conv", SG_CONV_FWD, &cg, go, wc, gx)
                             : SG_BACKEND_CALL(SG_DEVICE_OF(gx), conv.conv, "conv", SG_CONV_BWD_DATA, &cg, gx, wc, go))) {
      sg_tensor_decref(gx);
      gx = NULL;
    }
    sg_tensor_decref(wc);
    if (!(gin[0] = gx)) rc = -1;
  }
  if (!rc && n->needs[1]) {
    sg_tensor *x = sg_node_saved(n, 0), *xc = x ? sg_nn_contig(x, g->dt) : NULL;
    sg_tensor *gw = xc ? sg_empty(n->in_shape[1].ndim, n->in_shape[1].size, g->dt, SG_CUDA) : NULL;
    if (gw && (g->transposed ? SG_BACKEND_CALL(SG_DEVICE_OF(go), conv.conv, "conv", SG_CONV_BWD_FILTER, &cg, go, gw, xc)
                             : SG_BACKEND_CALL(SG_DEVICE_OF(xc), conv.conv, "conv", SG_CONV_BWD_FILTER, &cg, xc, gw, go))) {
      sg_tensor_decref(gw);
      gw = NULL;
    }
    sg_tensor_decref(xc);
    if (!(gin[1] = gw)) rc = -1;
  }
  if (!rc && n->needs[2]) {
    int64_t C = go->size[1];
    sg_tensor *gb = sg_empty(1, &C, g->dt, SG_CUDA);
    if (gb && SG_BACKEND_CALL(SG_DEVICE_OF(go), conv.bias_backward, "conv2d", go, gb)) {
      sg_tensor_decref(gb);
      gb = NULL;
    }
    if (!(gin[2] = gb)) rc = -1;
  }
  sg_tensor_decref(go);
  return rc;
}

/* ---------------------------------------------------------------- backward */
static int conv_bw(sg_node *n, sg_tensor *gout, sg_tensor **gin) {
  const geom *g = n->ctx;
  if (g->cuda) return conv_bw_cuda(n, gout, gin);
  sg_dtype dt = g->f64 ? SG_F64 : SG_F32;
  sg_tensor *go = sg_nn_contig(gout, dt);
  if (!go) return -1;
  int rc = 0;
  sg_tensor *gb_dnnl = NULL; /* bias gradient computed by oneDNN with the weight gradient */
  sg_dnnl_conv_share_begin(); /* go is reordered once for both gradients */
  /* gout lives on the output side: small for conv2d, big for the transposed op */
  if (n->needs[0]) {
    sg_tensor *w = sg_node_saved(n, 1), *wc = w ? sg_nn_contig(w, dt) : NULL;
    sg_tensor *gx = wc ? sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, dt, SG_CPU) : NULL;
    int d = !gx ? 0
            : g->transposed ? try_dnnl(SG_DNNL_FWD, g, sg_data_ptr(go), sg_data_ptr(wc), sg_data_ptr(gx), NULL)
                            : try_dnnl(SG_DNNL_BWD_DATA, g, sg_data_ptr(gx), sg_data_ptr(wc), sg_data_ptr(go), NULL);
    if (!d && gx) sg_conv_note_path("blas");
    if (gx && (d < 0 || (!d && (g->transposed ? big_to_small(g, sg_data_ptr(go), sg_data_ptr(wc), sg_data_ptr(gx))
                                              : small_to_big(g, sg_data_ptr(go), sg_data_ptr(wc), sg_data_ptr(gx)))))) {
      sg_tensor_decref(gx);
      gx = NULL;
    }
    sg_tensor_decref(wc);
    if (!(gin[0] = gx)) rc = -1;
  }
  if (!rc && n->needs[1]) {
    sg_tensor *x = sg_node_saved(n, 0), *xc = x ? sg_nn_contig(x, dt) : NULL;
    sg_tensor *gw = xc ? sg_empty(n->in_shape[1].ndim, n->in_shape[1].size, dt, SG_CPU) : NULL;
    /* conv2d's bias gradient comes out of the same oneDNN primitive */
    if (gw && !g->transposed && n->needs[2] && !g->f64 && !g->reference) {
      int64_t C = go->size[1];
      gb_dnnl = sg_empty(1, &C, dt, SG_CPU);
      if (!gb_dnnl) { sg_tensor_decref(gw); gw = NULL; }
    }
    int d = !gw ? 0
            : g->transposed ? try_dnnl(SG_DNNL_BWD_WEIGHTS, g, sg_data_ptr(go), sg_data_ptr(gw), sg_data_ptr(xc), NULL)
                            : try_dnnl(SG_DNNL_BWD_WEIGHTS, g, sg_data_ptr(xc), sg_data_ptr(gw), sg_data_ptr(go),
                                       gb_dnnl ? sg_data_ptr(gb_dnnl) : NULL);
    if (d != 1 && gb_dnnl) { sg_tensor_decref(gb_dnnl); gb_dnnl = NULL; }
    if (!d && gw) sg_conv_note_path("blas");
    if (gw && (d < 0 || (!d && (g->transposed ? weight_grad(g, sg_data_ptr(go), sg_data_ptr(xc), sg_data_ptr(gw))
                                              : weight_grad(g, sg_data_ptr(xc), sg_data_ptr(go), sg_data_ptr(gw)))))) {
      sg_tensor_decref(gw);
      gw = NULL;
    }
    sg_tensor_decref(xc);
    if (!(gin[1] = gw)) rc = -1;
  }
  if (!rc && n->needs[2] && gb_dnnl) {
    gin[2] = gb_dnnl;
    gb_dnnl = NULL;
  } else if (!rc && n->needs[2]) {
    int64_t C = go->size[1], S = go->size[2] * go->size[3];
    sg_tensor *gb = sg_empty(1, &C, dt, SG_CPU);
    if (gb) {
      const void *p = sg_data_ptr(go);
      for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t b = 0; b < go->size[0]; b++)
          for (int64_t k = 0; k < S; k++) s += SG_NN_LD(p, g->f64, (b * C + c) * S + k);
        SG_NN_ST(sg_data_ptr(gb), g->f64, c, s);
      }
    }
    if (!(gin[2] = gb)) rc = -1;
  }
  sg_dnnl_conv_share_end();
  sg_tensor_decref(gb_dnnl);
  sg_tensor_decref(go);
  return rc;
}

/* ---------------------------------------------------------------- forward */
static bool check_pair(const char *op, const char *what, const int64_t *v, int64_t min) {
  if (v[0] < min || v[1] < min) {
    sg_error_set("%s: %s must be %s (got {%lld, %lld})", op, what, min > 0 ? "positive" : "non-negative",
                 (long long)v[0], (long long)v[1]);
    return false;
  }
  return true;
}

static sg_tensor *conv_common(bool transposed, sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *opt);

/* Mixed precision on the GPU: input, weight and bias cast (differentiably) to
 * the autocast type, the convolution run in it (accumulating in f32). */
static sg_tensor *conv_autocast(bool transposed, sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o,
                                sg_dtype ct) {
  sg_tensor *xc = sg_to_dtype(x, ct), *wc = xc ? sg_to_dtype(w, ct) : NULL;
  sg_tensor *bc = wc && bias ? sg_to_dtype(bias, ct) : NULL;
  sg_tensor *out = wc && (bc || !bias) ? conv_common(transposed, xc, wc, bc, o) : NULL;
  sg_tensor_decref(xc);
  sg_tensor_decref(wc);
  sg_tensor_decref(bc);
  return out;
}

static sg_tensor *conv_common(bool transposed, sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *opt) {
  const char *op = transposed ? "conv_transpose2d" : "conv2d";
  sg_conv_opts dflt = sg_conv_defaults();
  const sg_conv_opts *o = opt ? opt : &dflt;
  if (!sg_nn_check_float_dev(op, "input", x) || !sg_nn_check_float_dev(op, "weight", w)) return NULL;
  if (bias && !sg_nn_check_float_dev(op, "bias", bias)) return NULL;
  sg_tensor *all[3] = {x, w, bias};
  if (!sg_same_device(op, 3, all)) return NULL;
  sg_device dev = x->storage->device;
  if (dev != SG_CPU) {
    sg_dtype natural = sg_promote(x->dtype, w->dtype);
    if (bias) natural = sg_promote(natural, bias->dtype);
    sg_dtype ct = sg_autocast_compute_type(dev, natural);
    if (ct != natural) return conv_autocast(transposed, x, w, bias, o, ct);
  }
  if (x->ndim != 4) {
    sg_error_set("%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  if (w->ndim != 4) {
    sg_error_set("%s: weight must be 4-d [%s,kh,kw] (got %s)", op, transposed ? "C,O/groups" : "O,C/groups",
                 SG_SHAPE_STR(w));
    return NULL;
  }
  if (w->dtype != x->dtype || (bias && bias->dtype != x->dtype)) {
    sg_error_set("%s: input, weight and bias must have the same dtype (got %s, %s, %s)", op, sg_dtype_name(x->dtype),
                 sg_dtype_name(w->dtype), bias ? sg_dtype_name(bias->dtype) : "none");
    return NULL;
  }
  int64_t G = o->groups;
  if (G < 1) { sg_error_set("%s: groups must be positive (got %lld)", op, (long long)G); return NULL; }
  if (!check_pair(op, "stride", o->stride, 1) || !check_pair(op, "dilation", o->dilation, 1) ||
      !check_pair(op, "padding", o->padding, 0) || !check_pair(op, "output_padding", o->output_padding, 0))
    return NULL;
  if (w->size[2] < 1 || w->size[3] < 1 || w->size[0] < 1 || w->size[1] < 1) {
    sg_error_set("%s: weight must have positive sizes (got %s)", op, SG_SHAPE_STR(w));
    return NULL;
  }
  geom g;
  memset(&g, 0, sizeof g);
  g.N = x->size[0]; g.G = G; g.kh = w->size[2]; g.kw = w->size[3];
  g.sh = o->stride[0]; g.sw = o->stride[1]; g.dh = o->dilation[0]; g.dw = o->dilation[1];
  g.f64 = x->dtype == SG_F64; g.transposed = transposed; g.reference = o->reference;
  g.cuda = dev != SG_CPU; g.dt = x->dtype;
  int64_t out_ch;
  if (!transposed) {
    g.Cb = x->size[1]; g.Hb = x->size[2]; g.Wb = x->size[3]; g.Cs = w->size[0];
    if (g.Cs % G) {
      sg_error_set("%s: out channels %lld are not divisible by groups %lld (weight %s)", op, (long long)g.Cs,
                   (long long)G, SG_SHAPE_STR(w));
      return NULL;
    }
    if (g.Cb != w->size[1] * G) {
      sg_error_set("%s: input has %lld channels but weight expects %lld (input %s, weight %s%s)", op, (long long)g.Cb,
                   (long long)(w->size[1] * G), SG_SHAPE_STR(x), SG_SHAPE_STR(w), G > 1 ? ", groups > 1" : "");
      return NULL;
    }
    int64_t pt[2] = {o->padding[0], o->padding[1]}, ptot[2] = {2 * o->padding[0], 2 * o->padding[1]};
    if (o->same) {
      if (o->stride[0] != 1 || o->stride[1] != 1) {
        sg_error_set("%s: padding='same' needs stride 1 (got {%lld, %lld})", op, (long long)o->stride[0],
                     (long long)o->stride[1]);
        return NULL;
      }
      ptot[0] = g.dh * (g.kh - 1); ptot[1] = g.dw * (g.kw - 1);
      pt[0] = ptot[0] / 2; pt[1] = ptot[1] / 2;
    }
    g.ph = pt[0]; g.pw = pt[1];
    int64_t eh = g.Hb + ptot[0] - g.dh * (g.kh - 1) - 1, ew = g.Wb + ptot[1] - g.dw * (g.kw - 1) - 1;
    if (eh < 0 || ew < 0) {
      sg_error_set("%s: input %s (padded %lldx%lld) is smaller than the kernel %lldx%lld (dilation {%lld, %lld})", op,
                   SG_SHAPE_STR(x), (long long)(g.Hb + ptot[0]), (long long)(g.Wb + ptot[1]), (long long)g.kh,
                   (long long)g.kw, (long long)g.dh, (long long)g.dw);
      return NULL;
    }
    g.Hs = eh / g.sh + 1; g.Ws = ew / g.sw + 1;
    out_ch = g.Cs;
  } else {
    if (o->same) { sg_error_set("%s: padding='same' is not supported", op); return NULL; }
    g.Cs = x->size[1]; g.Hs = x->size[2]; g.Ws = x->size[3];
    if (w->size[0] != g.Cs) {
      sg_error_set("%s: input has %lld channels but weight expects %lld (input %s, weight %s)", op, (long long)g.Cs,
                   (long long)w->size[0], SG_SHAPE_STR(x), SG_SHAPE_STR(w));
      return NULL;
    }
    if (g.Cs % G) {
      sg_error_set("%s: input channels %lld are not divisible by groups %lld (input %s)", op, (long long)g.Cs,
                   (long long)G, SG_SHAPE_STR(x));
      return NULL;
    }
    for (int k = 0; k < 2; k++)
      if (o->output_padding[k] >= o->stride[k] && o->output_padding[k] >= o->dilation[k]) {
        sg_error_set("%s: output_padding must be smaller than stride or dilation (got output_padding {%lld, %lld}, "
                     "stride {%lld, %lld}, dilation {%lld, %lld})", op, (long long)o->output_padding[0],
                     (long long)o->output_padding[1], (long long)o->stride[0], (long long)o->stride[1],
                     (long long)o->dilation[0], (long long)o->dilation[1]);
        return NULL;
      }
    g.Cb = w->size[1] * G;
    g.ph = o->padding[0]; g.pw = o->padding[1];
    g.Hb = (g.Hs - 1) * g.sh - 2 * g.ph + g.dh * (g.kh - 1) + o->output_padding[0] + 1;
    g.Wb = (g.Ws - 1) * g.sw - 2 * g.pw + g.dw * (g.kw - 1) + o->output_padding[1] + 1;
    if (g.Hb < 1 || g.Wb < 1 || g.Hs < 1 || g.Ws < 1) {
      sg_error_set("%s: output size %lldx%lld is not positive (input %s, weight %s, padding {%lld, %lld})", op,
                   (long long)g.Hb, (long long)g.Wb, SG_SHAPE_STR(x), SG_SHAPE_STR(w), (long long)g.ph,
                   (long long)g.pw);
      return NULL;
    }
    out_ch = g.Cb;
  }
  if (bias && (bias->ndim != 1 || bias->size[0] != out_ch)) {
    sg_error_set("%s: bias must have shape [%lld] (got %s)", op, (long long)out_ch, SG_SHAPE_STR(bias));
    return NULL;
  }
  int64_t osz[4] = {g.N, out_ch, transposed ? g.Hb : g.Hs, transposed ? g.Wb : g.Ws};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL ||
      (double)(g.Cb / G) * (double)(g.kh * g.kw) * (double)(g.Hs * g.Ws) > (double)SG_MAX_NUMEL) {
    sg_error_set("%s: output %s is too large", op, sg_shape_str(4, osz, (char[96]){0}, 96));
    return NULL;
  }
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *wc = xc ? sg_nn_contig(w, x->dtype) : NULL;
  sg_tensor *bc = wc && bias ? sg_nn_contig(bias, x->dtype) : NULL;
  sg_tensor *out = wc && (bc || !bias) ? sg_empty(4, osz, x->dtype, dev) : NULL;
  int rc = out ? 0 : -1;
  bool bias_done = false;
  if (out && g.cuda) {
    rc = cuda_forward(&g, xc, wc, bc, out);
    bias_done = true;
  } else
  if (out) {
    void *xp = sg_data_ptr(xc), *wp = sg_data_ptr(wc), *op_ = sg_data_ptr(out);
    if (o->reference) {
      sg_conv_note_path("reference");
      if (transposed) rc = ref_small_to_big(&g, xp, wp, op_);
      else ref_big_to_small(&g, xp, wp, op_);
    } else {
      int d = transposed ? try_dnnl(SG_DNNL_BWD_DATA, &g, op_, wp, xp, NULL)
                         : try_dnnl(SG_DNNL_FWD, &g, xp, wp, op_, bc ? sg_data_ptr(bc) : NULL);
      if (d < 0) rc = -1;
      else if (d == 1) bias_done = !transposed;
      else {
        sg_conv_note_path("blas");
        rc = transposed ? small_to_big(&g, xp, wp, op_) : big_to_small(&g, xp, wp, op_);
      }
    }
  }
  if (!rc && bc && !bias_done) add_bias(g.f64, sg_data_ptr(out), sg_data_ptr(bc), osz[0], osz[1], osz[2] * osz[3]);
  sg_tensor_decref(bc);
  sg_tensor_decref(xc);
  sg_tensor_decref(wc);
  if (rc) { sg_tensor_decref(out); return NULL; }
  sg_tensor *ins[3] = {x, w, bias};
  sg_node *n = sg_record(op, conv_bw, out, 3, ins);
  if (n) {
    geom *gc = malloc(sizeof *gc);
    if (!gc) { sg_tensor_decref(out); sg_error_set("%s: out of memory", op); return NULL; }
    *gc = g;
    n->ctx = gc;
    n->free_ctx = free;
    sg_node_save(n, n->needs[1] ? x : NULL);
    sg_node_save(n, n->needs[0] ? w : NULL);
  }
  return out;
}

sg_tensor *sg_conv2d(sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o) {
  return conv_common(false, x, w, bias, o);
}

sg_tensor *sg_conv_transpose2d(sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o) {
  return conv_common(true, x, w, bias, o);
}
