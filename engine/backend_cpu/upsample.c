/* Up-sampling on the cpu: f32 nearest (the decoders' 2x) through the threaded
 * kernels below; everything else runs the reference loops. */
#include "../backend_ref/ref.h"
#include <stdlib.h>

/* OpenMP only pays off above this many elements of work */
#define PAR_MIN 32768
#ifdef _OPENMP
#include <omp.h>
#endif

/* Nearest up-sampling, f32, threaded: iy [oh] and ix [ow] are the input row / column each output row /
 * column reads, non-decreasing (PyTorch's nearest rule always is). Every output element, and every gradient
 * sum, is computed by one thread in a fixed order: the same bits for any thread count. */
static void sg_cpu_nearest_fwd(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *iy,
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

static int sg_cpu_nearest_backward(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, const int64_t *iy,
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


/* the source row of every output row, then of every output column */
static int64_t *nearest_index(const sg_tensor *small, const sg_tensor *big, double sh, double sw) {
  int64_t oh = big->size[2], ow = big->size[3];
  sg_upsample_tap *t = malloc(sizeof *t * (size_t)(oh + ow));
  int64_t *idx = t ? malloc(sizeof *idx * (size_t)(oh + ow)) : NULL;
  if (!idx) {
    free(t);
    sg_error_set("upsample: out of memory");
    return NULL;
  }
  sg_ref_upsample_taps(t, small->size[2], oh, sh, 0, false);
  sg_ref_upsample_taps(t + oh, small->size[3], ow, sw, 0, false);
  for (int64_t d = 0; d < oh + ow; d++) idx[d] = t[d].i0;
  free(t);
  return idx;
}

static int upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align) {
  if (mode != 0 || x->dtype != SG_F32) return sg_ref_upsample(x, out, scale_h, scale_w, mode, align);
  int64_t *idx = nearest_index(x, out, scale_h, scale_w);
  if (!idx) return -1;
  int64_t oh = out->size[2];
  sg_cpu_nearest_fwd(x->size[0] * x->size[1], x->size[2], x->size[3], oh, out->size[3], idx, idx + oh,
                     sg_data_ptr(x), sg_data_ptr(out));
  free(idx);
  return 0;
}

static int upsample_backward(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align) {
  if (mode != 0 || g->dtype != SG_F32) return sg_ref_upsample_backward(g, gx, scale_h, scale_w, mode, align);
  int64_t *idx = nearest_index(gx, g, scale_h, scale_w);
  if (!idx) return -1;
  int64_t oh = g->size[2];
  int rc = sg_cpu_nearest_backward(gx->size[0] * gx->size[1], gx->size[2], gx->size[3], oh, g->size[3], idx, idx + oh,
                              sg_data_ptr(g), sg_data_ptr(gx));
  free(idx);
  return rc;
}

void sg_cpu_fill_upsample(sg_backend *t);
void sg_cpu_fill_upsample(sg_backend *t) {
  t->upsample.upsample = upsample;
  t->upsample.upsample_backward = upsample_backward;
}
