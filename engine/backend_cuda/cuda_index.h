/* Indexing ops on the GPU (engine/ops/shape.c and index.c dispatch here). */
#ifndef SG_CUDA_INDEX_H
#define SG_CUDA_INDEX_H
#include "../core/tensor.h"

/* out (contiguous CUDA, nd dims of out_size, a's dtype) <- a through the per-dim
 * maps: maps[d] a host array of out_size[d] input positions (-1: the fill
 * value) or NULL for the identity. a is right-aligned to the nd dims;
 * astride[d] its element strides so aligned (0 for leading dims). All maps
 * lie in the host block map_data[map_len] (uploaded in one copy). */
int sg_cuda_index_map(sg_tensor *out, const sg_tensor *a, int nd, const int64_t *out_size, const int64_t *astride,
                      int64_t *const *maps, const int64_t *map_data, int64_t map_len, double fill);
/* The adjoint: ga (contiguous CUDA f32/f64, the input's shape) <- the sum of g
 * (contiguous, out_size, ga's dtype) over the output positions reading each
 * element, in the CPU's order (bit-identical sums). Every element is written. */
int sg_cuda_index_adjoint(sg_tensor *ga, const sg_tensor *g, int nd, const int64_t *out_size, int64_t *const *maps);

/* mode 0 gather: dst (index shape) <- src along dim; 1 scatter, 2 scatter_add:
 * dst along dim <- src (index shape). dst and src: same dtype and rank as ix;
 * ix: contiguous i64 CUDA tensor with checked values. */
int sg_cuda_gather_scatter(int mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix);
/* ix: contiguous i64 CUDA tensor. 0 when every value is in [0, hi); 1 with the
 * first offending position and value; -1 on error. Waits for the device. */
int sg_cuda_index_check(const sg_tensor *ix, int64_t hi, int64_t *pos, int64_t *val);
/* The largest value of a non-empty contiguous i64 CUDA tensor. Waits. */
int sg_cuda_index_max(const sg_tensor *ix, int64_t *mx);
/* out [.., classes] contiguous i64 <- one_hot(ix) (values checked). */
int sg_cuda_one_hot(sg_tensor *out, const sg_tensor *ix, int64_t classes);

#endif
