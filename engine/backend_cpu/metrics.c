/* Confusion counting on the cpu: the counting loop moved from ops/confusion.c,
 * with its binary case that indexes a 2x2 table without multiplications. */
#include "../backend_ref/ref.h"
#include <inttypes.h>

static int check_range(const int64_t *v, int64_t n, int64_t nclasses, bool has_ignore, int64_t ignore,
                       const int64_t *target, const char *what) {
  for (int64_t i = 0; i < n; i++) {
    if (has_ignore && target[i] == ignore) continue;
    if (v[i] < 0 || v[i] >= nclasses) {
      sg_error_set("confusion: %s class %" PRId64 " at position %" PRId64 " is outside 0..%" PRId64
                   "%s", what, v[i], i, nclasses - 1, has_ignore ? " (and is not the ignore_index)" : "");
      return -1;
    }
  }
  return 0;
}

static int cpu_confusion(const sg_tensor *pt, const sg_tensor *tt, int64_t n_groups, int64_t nclasses,
                         bool has_ignore, int64_t ignore_index, sg_tensor *ot) {
  const int64_t *pred = sg_data_ptr(pt), *target = sg_data_ptr(tt);
  int64_t n = sg_numel(tt), *out = sg_data_ptr(ot);
  /* check first so that a failure adds nothing */
  if (check_range(target, n, nclasses, has_ignore, ignore_index, target, "target") ||
      check_range(pred, n, nclasses, has_ignore, ignore_index, target, "predicted"))
    return -1;
  int64_t per = n / n_groups;
  for (int64_t g = 0; g < n_groups; g++) {
    int64_t *m = out + g * nclasses * nclasses;
    const int64_t *p = pred + g * per, *t = target + g * per;
    if (nclasses == 2 && !has_ignore) { /* the binary case: no multiplications */
      int64_t c[4] = {0, 0, 0, 0};
      for (int64_t i = 0; i < per; i++) c[(t[i] << 1) | p[i]]++;
      for (int k = 0; k < 4; k++) m[k] += c[k];
      continue;
    }
    for (int64_t i = 0; i < per; i++) {
      if (has_ignore && t[i] == ignore_index) continue;
      m[t[i] * nclasses + p[i]]++;
    }
  }
  return 0;
}

void sg_cpu_fill_metrics(sg_backend *t);
void sg_cpu_fill_metrics(sg_backend *t) { t->metrics.confusion = cpu_confusion; }
