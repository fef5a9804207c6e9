/* The GradScaler's unscale + inf/NaN check (see amp.h). */
#include "amp.h"
#include "../backend.h"
#include <math.h>

static int check(sg_tensor *const *grads, int n, sg_tensor *found) {
  if (n < 0 || (n > 0 && !grads)) { sg_error_set("amp unscale: bad gradient list"); return -1; }
  if (!found || found->dtype != SG_F32 || sg_numel(found) != 1 || !sg_is_contiguous(found)) {
    sg_error_set("amp unscale: found_inf must be a one-element f32 tensor");
    return -1;
  }
  sg_device dev = found->storage->device;
  for (int k = 0; k < n; k++) {
    sg_tensor *g = grads[k];
    if (!g) { sg_error_set("amp unscale: gradient %d is missing", k + 1); return -1; }
    if (!sg_dtype_is_float(g->dtype)) {
      sg_error_set("amp unscale: gradient %d has dtype %s (floating point expected)", k + 1, sg_dtype_name(g->dtype));
      return -1;
    }
    if (!sg_is_contiguous(g)) { sg_error_set("amp unscale: gradient %d is not contiguous", k + 1); return -1; }
    if (g->storage->device != dev) {
      sg_error_set("amp unscale: gradient %d is on %s but found_inf on %s", k + 1, sg_device_name(g->storage->device),
                   sg_device_name(dev));
      return -1;
    }
  }
  return 0;
}

int sg_amp_unscale_(sg_tensor *const *grads, int n, double inv_scale, sg_tensor *found_inf) {
  if (check(grads, n, found_inf)) return -1;
  if (!isfinite(inv_scale)) { sg_error_set("amp unscale: the inverse scale %g is not finite", inv_scale); return -1; }
  if (SG_BACKEND_CALL(SG_DEVICE_OF(found_inf), amp.unscale_, "amp unscale", grads, n, inv_scale, found_inf))
    return -1;
  for (int k = 0; k < n; k++) atomic_fetch_add(&grads[k]->storage->version, 1);
  atomic_fetch_add(&found_inf->storage->version, 1);
  return 0;
}
