/* Reference 2-d convolution over the "big/small/weight" geometry of backend.h,
 * as direct loops: every small position is the sum over its kernel window of
 * big times weight; the data gradient scatters each small value back over the
 * same window, the weight gradient sums small times big over the images and
 * positions. Sums in double, one store per output element. */
#include "ref.h"
#include <stdlib.h>

/* big row and column read by kernel tap (i, j) at small position (y, x); outside the image when < 0 or >= size */
static int64_t big_row(const sg_conv_geom *g, int64_t y, int64_t i) { return y * g->sh - g->ph + i * g->dh; }
static int64_t big_col(const sg_conv_geom *g, int64_t x, int64_t j) { return x * g->sw - g->pw + j * g->dw; }

/* small = conv(big, w) */
static void forward(const sg_conv_geom *g, bool f64, const void *big, const void *w, void *small) {
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t o = 0; o < g->Cs; o++) {
      int64_t gr = o / Csg;
      for (int64_t y = 0; y < g->Hs; y++)
        for (int64_t x = 0; x < g->Ws; x++) {
          double acc = 0;
          for (int64_t c = 0; c < Cbg; c++)
            for (int64_t i = 0; i < g->kh; i++)
              for (int64_t j = 0; j < g->kw; j++) {
                int64_t iy = big_row(g, y, i), ix = big_col(g, x, j);
                if (iy < 0 || iy >= g->Hb || ix < 0 || ix >= g->Wb) continue;
                acc += SG_REF_LD(big, f64, ((n * g->Cb + gr * Cbg + c) * g->Hb + iy) * g->Wb + ix) *
                       SG_REF_LD(w, f64, ((o * Cbg + c) * g->kh + i) * g->kw + j);
              }
          SG_REF_ST(small, f64, ((n * g->Cs + o) * g->Hs + y) * g->Ws + x, acc);
        }
    }
}

/* big = adjoint conv(small, w): each small value spread over its window */
static int backward_data(const sg_conv_geom *g, bool f64, const void *small, const void *w, void *big) {
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G, nb = g->N * g->Cb * g->Hb * g->Wb;
  double *acc = calloc((size_t)(nb ? nb : 1), sizeof *acc);
  if (!acc) { sg_error_set("conv: out of memory"); return -1; }
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t o = 0; o < g->Cs; o++) {
      int64_t gr = o / Csg;
      for (int64_t y = 0; y < g->Hs; y++)
        for (int64_t x = 0; x < g->Ws; x++) {
          double v = SG_REF_LD(small, f64, ((n * g->Cs + o) * g->Hs + y) * g->Ws + x);
          for (int64_t c = 0; c < Cbg; c++)
            for (int64_t i = 0; i < g->kh; i++)
              for (int64_t j = 0; j < g->kw; j++) {
                int64_t iy = big_row(g, y, i), ix = big_col(g, x, j);
                if (iy < 0 || iy >= g->Hb || ix < 0 || ix >= g->Wb) continue;
                acc[((n * g->Cb + gr * Cbg + c) * g->Hb + iy) * g->Wb + ix] +=
                    v * SG_REF_LD(w, f64, ((o * Cbg + c) * g->kh + i) * g->kw + j);
              }
        }
    }
  for (int64_t k = 0; k < nb; k++) SG_REF_ST(big, f64, k, acc[k]);
  free(acc);
  return 0;
}

/* w[o, c, i, j] = sum over images and small positions of small * the big pixel tap (i, j) reads */
static void backward_filter(const sg_conv_geom *g, bool f64, const void *big, const void *small, void *w) {
  int64_t Cbg = g->Cb / g->G, Csg = g->Cs / g->G;
  for (int64_t o = 0; o < g->Cs; o++) {
    int64_t gr = o / Csg;
    for (int64_t c = 0; c < Cbg; c++)
      for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
          double acc = 0;
          for (int64_t n = 0; n < g->N; n++)
            for (int64_t y = 0; y < g->Hs; y++)
              for (int64_t x = 0; x < g->Ws; x++) {
                int64_t iy = big_row(g, y, i), ix = big_col(g, x, j);
                if (iy < 0 || iy >= g->Hb || ix < 0 || ix >= g->Wb) continue;
                acc += SG_REF_LD(small, f64, ((n * g->Cs + o) * g->Hs + y) * g->Ws + x) *
                       SG_REF_LD(big, f64, ((n * g->Cb + gr * Cbg + c) * g->Hb + iy) * g->Wb + ix);
              }
          SG_REF_ST(w, f64, ((o * Cbg + c) * g->kh + i) * g->kw + j, acc);
        }
  }
}

int sg_ref_conv_bias_add_(sg_tensor *out, sg_tensor *bias) {
  bool f64 = out->dtype == SG_F64, bf64 = bias->dtype == SG_F64;
  int64_t N = out->size[0], C = out->size[1], S = N > 0 && C > 0 ? sg_numel(out) / (N * C) : 0;
  void *p = sg_data_ptr(out);
  const void *b = sg_data_ptr(bias);
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t s = 0; s < S; s++) {
        int64_t k = (n * C + c) * S + s; /* a sum of two floats rounds to the same float through double */
        SG_REF_ST(p, f64, k, SG_REF_LD(p, f64, k) + SG_REF_LD(b, bf64, c));
      }
  return 0;
}

int sg_ref_conv_bias_backward(sg_tensor *gout, sg_tensor *gb) {
  bool f64 = gout->dtype == SG_F64;
  int64_t N = gout->size[0], C = gout->size[1], S = N > 0 && C > 0 ? sg_numel(gout) / (N * C) : 0;
  const void *p = sg_data_ptr(gout);
  for (int64_t c = 0; c < C; c++) {
    double s = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < S; k++) s += SG_REF_LD(p, f64, (n * C + c) * S + k);
    SG_REF_ST(sg_data_ptr(gb), gb->dtype == SG_F64, c, s);
  }
  return 0;
}

int sg_ref_conv(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big, sg_tensor *w, sg_tensor *small,
                sg_tensor *bias) {
  bool f64 = w->dtype == SG_F64;
  sg_path_note(SG_PATH_CONV, "reference");
  switch (kind) {
  case SG_CONV_FWD:
    forward(g, f64, sg_data_ptr(big), sg_data_ptr(w), sg_data_ptr(small));
    return bias ? sg_ref_conv_bias_add_(small, bias) : 0;
  case SG_CONV_BWD_DATA:
    return backward_data(g, f64, sg_data_ptr(small), sg_data_ptr(w), sg_data_ptr(big));
  case SG_CONV_BWD_FILTER:
    backward_filter(g, f64, sg_data_ptr(big), sg_data_ptr(small), sg_data_ptr(w));
    return bias ? sg_ref_conv_bias_backward(small, bias) : 0;
  }
  sg_error_set("conv: unknown kind %d", (int)kind);
  return -1;
}

void sg_ref_fill_conv(sg_backend *t);
void sg_ref_fill_conv(sg_backend *t) {
  t->conv.conv = sg_ref_conv;
  t->conv.bias_add_ = sg_ref_conv_bias_add_;
  t->conv.bias_backward = sg_ref_conv_bias_backward;
}
