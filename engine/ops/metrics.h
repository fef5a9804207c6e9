/* Segmentation metrics: confusion-matrix counting (engine/ops/confusion.c). */
#ifndef SG_METRICS_H
#define SG_METRICS_H
#include <stdbool.h>
#include <stdint.h>

/* Adds the confusion counts of n_groups equal, consecutive chunks of pred and
 * target (each n elements, class ids) into out, an n_groups x nclasses x
 * nclasses array (row = target class, column = predicted class). Targets equal
 * to ignore_index (when has_ignore) are skipped with their prediction. Returns
 * 0, or -1 with sg_error_set() naming the first class outside 0..nclasses-1
 * (nothing is added then). */
int sg_confusion_count(const int64_t *pred, const int64_t *target, int64_t n, int64_t n_groups, int64_t nclasses,
                       bool has_ignore, int64_t ignore_index, int64_t *out);
#endif
