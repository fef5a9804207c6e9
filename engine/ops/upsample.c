/* Nearest and bilinear resizing of NCHW tensors (PyTorch's F.interpolate
 * rules): checks and the output shape here, the computation in the device
 * table's upsample entries (backend_ref/upsample.c is the reference). */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend.h"
#include <math.h>

static int upsample_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_dtype dt = n->in_dtype[0];
  sg_device dev = n->in_device[0];
  sg_tensor *gc = sg_nn_contig(g, dt), *gx = gc ? sg_empty(4, n->in_shape[0].size, dt, dev) : NULL;
  if (gx && SG_BACKEND_CALL(dev, upsample.upsample_backward, "upsample", gc, gx, n->f[0], n->f[1], (int)n->i[2],
                            n->i[3] != 0)) {
    sg_tensor_decref(gx);
    gx = NULL;
  }
  sg_tensor_decref(gc);
  gin[0] = gx;
  return gx ? 0 : -1;
}

sg_tensor *sg_upsample(sg_tensor *x, int64_t oh, int64_t ow, double scale_h, double scale_w, sg_upsample_mode mode,
                       bool align_corners) {
  const char *op = "upsample";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  if (x->ndim != 4) {
    sg_error_set("%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  if (mode != SG_UPSAMPLE_NEAREST && mode != SG_UPSAMPLE_BILINEAR) {
    sg_error_set("%s: unknown mode %d", op, (int)mode);
    return NULL;
  }
  if (oh < 1 || ow < 1 || x->size[2] < 1 || x->size[3] < 1) {
    sg_error_set("%s: input %s and output size %lldx%lld must be non-empty", op, SG_SHAPE_STR(x), (long long)oh,
                 (long long)ow);
    return NULL;
  }
  if (!(scale_h >= 0) || !(scale_w >= 0) || isinf(scale_h) || isinf(scale_w)) {
    sg_error_set("%s: scale factors must be positive (got %g, %g)", op, scale_h, scale_w);
    return NULL;
  }
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL) { sg_error_set("%s: output is too large", op); return NULL; }
  sg_tensor *xc = sg_nn_contig(x, x->dtype);
  sg_tensor *out = xc ? sg_empty(4, osz, x->dtype, SG_DEVICE_OF(x)) : NULL;
  if (out && SG_BACKEND_CALL(SG_DEVICE_OF(x), upsample.upsample, op, xc, out, scale_h, scale_w, (int)mode,
                             align_corners)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  sg_tensor_decref(xc);
  if (!out) return NULL;
  sg_node *n = sg_record(op, upsample_backward, out, 1, &x);
  if (n) {
    n->i[0] = oh; n->i[1] = ow; n->i[2] = mode; n->i[3] = align_corners;
    n->f[0] = scale_h; n->f[1] = scale_w;
  }
  return out;
}
