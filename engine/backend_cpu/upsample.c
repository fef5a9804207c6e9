/* Up-sampling on the cpu: f32 nearest (the decoders' 2x) through the threaded
 * kernels of cpu_kernels.c; everything else runs the reference loops. */
#include "../backend_ref/ref.h"
#include "cpu_kernels.h"
#include <stdlib.h>

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
