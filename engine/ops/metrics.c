/* Confusion-matrix counting for the segmentation metrics (lua/semseg/metrics.lua):
 * sizes checked here, the counting on the device table (metrics.confusion). */
#include "metrics.h"
#include "../backend.h"
#include <inttypes.h>

int sg_confusion_count(const sg_tensor *pred, const sg_tensor *target, int64_t n_groups, int64_t nclasses,
                       bool has_ignore, int64_t ignore_index, sg_tensor *out) {
  int64_t n = sg_numel(target);
  if (nclasses < 1 || n_groups < 1 || n % n_groups != 0 || sg_numel(pred) != n ||
      sg_numel(out) != n_groups * nclasses * nclasses) {
    sg_error_set("confusion: bad sizes (%" PRId64 " elements, %" PRId64 " groups, %" PRId64 " classes)", n, n_groups,
                 nclasses);
    return -1;
  }
  const sg_tensor *ts[3] = {pred, target, out};
  for (int k = 0; k < 3; k++)
    if (ts[k]->dtype != SG_I64 || !sg_is_contiguous(ts[k])) {
      sg_error_set("confusion: internal error, expected contiguous i64 tensors");
      return -1;
    }
  sg_tensor *all[3] = {(sg_tensor *)pred, (sg_tensor *)target, out};
  if (!sg_same_device("confusion", 3, all)) return -1;
  return SG_BACKEND_CALL(SG_DEVICE_OF(out), metrics.confusion, "confusion", pred, target, n_groups, nclasses,
                         has_ignore, ignore_index, out);
}
