/* Confusion-matrix counting for the segmentation metrics (lua/semseg/metrics.lua). */
#include "metrics.h"
#include "../core/tensor.h"
#include <inttypes.h>
#include <string.h>

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

int sg_confusion_count(const int64_t *pred, const int64_t *target, int64_t n, int64_t n_groups, int64_t nclasses,
                       bool has_ignore, int64_t ignore_index, int64_t *out) {
  if (nclasses < 1 || n_groups < 1 || n < 0 || n % n_groups != 0) {
    sg_error_set("confusion: bad sizes (%" PRId64 " elements, %" PRId64 " groups, %" PRId64 " classes)", n, n_groups,
                 nclasses);
    return -1;
  }
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
