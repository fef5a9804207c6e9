/* Segmentation metrics: confusion-matrix counting (engine/ops/metrics.c). */
#ifndef SG_METRICS_H
#define SG_METRICS_H
#include "../core/tensor.h"

/* Adds the confusion counts of n_groups equal, consecutive chunks of pred and
 * target (contiguous i64 class ids of one size and device) into out (contiguous
 * i64, n_groups x nclasses x nclasses, row = target class, column = predicted
 * class). Targets equal to ignore_index (when has_ignore) are skipped with their
 * prediction. Returns 0, or -1 with sg_error_set() naming the first class
 * outside 0..nclasses-1 (nothing is added then). */
int sg_confusion_count(const sg_tensor *pred, const sg_tensor *target, int64_t n_groups, int64_t nclasses,
                       bool has_ignore, int64_t ignore_index, sg_tensor *out);
#endif
