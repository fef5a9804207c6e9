/* Launchers of kernels/reduce.cu: reductions for engine/backend_cuda/reduce.c.
 *
 * A reduction reads the input through two layouts: `outer` holds the kept
 * dims (in output order), `row` the reduced dims (in input order). Output
 * element o (contiguous, row-major over outer) reduces the elements
 * in[off(outer, o) + off(row, i)] for i < numel(row), where i counts in row's
 * row-major order (the index argmax/argmin report). Floats accumulate in
 * double and integers in wrapping int64, as engine/ops/reduce.c does; the
 * order of combination is a fixed tree for given sizes and layouts (no float
 * atomics), so results do not depend on launch timing. */
#ifndef SG_K_REDUCE_H
#define SG_K_REDUCE_H
#include "k_common.h"
#include <stddef.h>

/* the kinds of engine/ops/reduce.c (rkind), in its order */
enum { SGK_R_SUM, SGK_R_PROD, SGK_R_MAX, SGK_R_MIN, SGK_R_ALL, SGK_R_ANY, SGK_R_NONZERO, SGK_R_ARGMAX, SGK_R_ARGMIN };

/* Bytes of device scratch sgk_reduce needs for these layouts (0: none). */
SGK_API size_t sgk_reduce_scratch(const sgk_layout *outer, const sgk_layout *row);
/* out (dtype ot, numel(outer) contiguous elements) = the reduction of in
 * (dtype it). scratch: sgk_reduce_scratch bytes of device memory (NULL when
 * that is 0), free for reuse once the stream has passed this call. */
SGK_API int sgk_reduce(int kind, void *out, int ot, const void *in, int it, const sgk_layout *outer,
                       const sgk_layout *row, void *scratch, sgk_stream s);

/* prod backward: d[o*row + i] = product of x[o*row + j] over j != i (prefix
 * times suffix, exact with zeros), contiguous f64 rows. */
SGK_API int sgk_prod_backward_rows(double *d, const double *x, int64_t outer, int64_t row, sgk_stream s);

#endif
