/* Fused losses: binary cross-entropy with logits, mean or sum over all
 * elements, in one pass (the Lua composite of lua/semseg/losses.lua runs ten
 * elementwise ops and their backward passes on the full image). Per element
 * loss = max(x, 0) - x t + log1p(exp(-|x|)) in double (the device table's
 * loss.bce_with_logits). The backward is g * (sigmoid(x) - t) (/ n for the
 * mean). A device without the fused entry (cuda) fails naming it; the Lua
 * loss runs the composite there. */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend.h"

static int bce_with_logits_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *x = sg_node_saved(n, 0), *t = sg_node_saved(n, 1);
  if (!x || !t) return -1;
  sg_tensor *gx = sg_empty(x->ndim, x->size, x->dtype, SG_DEVICE_OF(x));
  if (!gx) return -1;
  int64_t N = sg_numel(x);
  double scale = sg_get_flat(g, 0) / (n->i[0] && N ? (double)N : 1.0);
  if (SG_BACKEND_CALL(SG_DEVICE_OF(x), loss.bce_with_logits_backward, "bce_with_logits", x, t, scale, gx)) {
    sg_tensor_decref(gx);
    return -1;
  }
  gin[0] = gx;
  return 0;
}

sg_tensor *sg_bce_with_logits(sg_tensor *x, sg_tensor *t, bool mean) {
  const char *op = "bce_with_logits";
  if (!sg_nn_check_float_dev(op, "logits", x) || !sg_nn_check_float_dev(op, "target", t)) return NULL;
  if (!sg_same_shape(x, t)) {
    sg_error_set("%s: logits of shape %s and target of shape %s differ", op, SG_SHAPE_STR(x), SG_SHAPE_STR(t));
    return NULL;
  }
  sg_tensor *xt[2] = {x, t};
  if (!sg_same_device(op, 2, xt)) return NULL;
  sg_device dev = SG_DEVICE_OF(x);
  __typeof__(((sg_backend *)0)->loss.bce_with_logits) fwd = SG_BACKEND_OP(dev, loss.bce_with_logits, op);
  if (!fwd) {
    if (sg_backend_present(dev))
      sg_error_set("%s: the fused op has no kernel on %s (sg.loss.bce_with_logits runs the composite there)", op,
                   sg_device_name(dev));
    return NULL;
  }
  if (t->requires_grad && sg_grad_enabled()) {
    sg_error_set("%s: the fused op does not differentiate the target", op);
    return NULL;
  }
  sg_dtype dt = x->dtype;
  sg_tensor *xc = sg_nn_contig(x, dt), *tc = xc ? sg_nn_contig(t, dt) : NULL;
  sg_tensor *out = tc ? sg_empty(0, NULL, dt, dev) : NULL;
  if (out && fwd(xc, tc, mean, out)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  if (out) {
    sg_node *nd = sg_record(op, bce_with_logits_backward, out, 2, xt);
    if (nd) {
      nd->i[0] = mean;
      sg_node_save(nd, xc);
      sg_node_save(nd, tc);
    }
  }
  sg_tensor_decref(xc);
  sg_tensor_decref(tc);
  return out;
}
