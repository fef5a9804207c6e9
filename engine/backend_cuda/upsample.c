/* Host glue of kernels/upsample.cu: nearest and bilinear upsampling. */
#include "common.h"

/* ---------------------------------------------------------------- upsampling */
/* engine/ops/upsample.c's scales_value */
static double scales_value(double scale, int64_t in, int64_t out) {
  return scale > 0 ? 1.0 / scale : (double)in / (double)out;
}

static sgk_upsample_geom upsample_of(const sg_tensor *x, int64_t oh, int64_t ow, double sh, double sw, int mode,
                                     bool align) {
  sgk_upsample_geom p;
  memset(&p, 0, sizeof p);
  p.planes = x->size[0] * x->size[1];
  p.H = x->size[2];
  p.W = x->size[3];
  p.oh = oh;
  p.ow = ow;
  p.bilinear = mode == 1;
  p.align = align;
  p.nsh = (float)scales_value(sh, p.H, oh);
  p.nsw = (float)scales_value(sw, p.W, ow);
  p.bsh = align ? (oh > 1 ? (double)(p.H - 1) / (double)(oh - 1) : 0.0) : scales_value(sh, p.H, oh);
  p.bsw = align ? (ow > 1 ? (double)(p.W - 1) / (double)(ow - 1) : 0.0) : scales_value(sw, p.W, ow);
  return p;
}

int sg_cuda_upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align) {
  if (!sg_cuda_ensure()) return -1;
  sgk_upsample_geom p = upsample_of(x, out->size[2], out->size[3], scale_h, scale_w, mode, align);
  void *scratch = sg_cuda_malloc((size_t)sgk_upsample_scratch_bytes(&p));
  if (!scratch) return -1;
  bool ok = LAUNCH(sgk_upsample(sg_data_ptr(x), x->dtype, sg_data_ptr(out), &p, scratch, sg_cuda_stream()));
  sg_cuda_free(scratch);
  return ok ? 0 : -1;
}

int sg_cuda_upsample_backward(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align) {
  if (!sg_cuda_ensure()) return -1;
  sgk_upsample_geom p = upsample_of(gx, g->size[2], g->size[3], scale_h, scale_w, mode, align);
  void *scratch = sg_cuda_malloc((size_t)sgk_upsample_scratch_bytes(&p));
  if (!scratch) return -1;
  bool ok = LAUNCH(sgk_upsample_backward(sg_data_ptr(g), g->dtype, sg_data_ptr(gx), &p, scratch, sg_cuda_stream()));
  sg_cuda_free(scratch);
  return ok ? 0 : -1;
}
