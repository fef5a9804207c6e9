/* Reference confusion counting: every class checked in one pass (targets, then
 * predictions), then one count per element, group by group. */
#include "ref.h"
#include <inttypes.h>

int sg_ref_confusion(const sg_tensor *pred, const sg_tensor *target, int64_t n_groups, int64_t nclasses,
                     bool has_ignore, int64_t ignore_index, sg_tensor *out) {
  const int64_t *p = sg_data_ptr(pred), *t = sg_data_ptr(target);
  int64_t n = sg_numel(target), *m = sg_data_ptr(out);
  for (int side = 0; side < 2; side++) {
    const int64_t *v = side ? p : t;
    for (int64_t i = 0; i < n; i++) {
      if (has_ignore && t[i] == ignore_index) continue;
      if (v[i] < 0 || v[i] >= nclasses) {
        sg_error_set("confusion: %s class %" PRId64 " at position %" PRId64 " is outside 0..%" PRId64 "%s",
                     side ? "predicted" : "target", v[i], i, nclasses - 1,
                     has_ignore ? " (and is not the ignore_index)" : "");
        return -1;
      }
    }
  }
  int64_t per = n / n_groups;
  for (int64_t i = 0; i < n; i++) {
    if (has_ignore && t[i] == ignore_index) continue;
    m[(i / per) * nclasses * nclasses + t[i] * nclasses + p[i]]++;
  }
  return 0;
}

void sg_ref_fill_metrics(sg_backend *t);
void sg_ref_fill_metrics(sg_backend *t) { t->metrics.confusion = sg_ref_confusion; }
