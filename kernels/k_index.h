/* Launchers of kernels/index.cu: index maps (flip, roll, pad, repeat,
 * index_select) and their adjoint, gather/scatter/scatter_add, one_hot and
 * the checks of index values. */
#ifndef SG_K_INDEX_H
#define SG_K_INDEX_H
#include "k_common.h"

/* Output element (j0..jn-1) (contiguous, row-major over size) reads input
 * element sum_d map_d(j_d) * stride[d], where map_d is map[d][j_d] (a device
 * array) or j_d when map[d] is NULL; a map value < 0 reads the fill value
 * (fill_bits: the value in the element type, little-endian in the low bytes).
 * The input is right-aligned to the output dims (stride 0 for leading dims). */
typedef struct {
  int ndim;
  int64_t size[SG_KDIMS];
  int64_t stride[SG_KDIMS];
  const int64_t *map[SG_KDIMS];
} sgk_idxmap;
SGK_API int sgk_index_map(void *out, const void *in, int elem_size, const sgk_idxmap *m, uint64_t fill_bits,
                          int64_t n, sgk_stream s);

/* The adjoint of an index map: ga (contiguous, in_size, f32 or f64) gets, for
 * each element, the sum of g (contiguous, out_size, same type) over every
 * output position that read it, in row-major order of g (the CPU's order).
 * Per dim the output positions reading input coordinate p are:
 *   kind 0 (identity) {p}; kind 1 (broadcast leading dim, in_size 1) all of
 *   [0, out_size); kind 2 ent[off[p] .. off[p+1]) (ascending). */
typedef struct {
  int ndim;
  int64_t in_size[SG_KDIMS];
  int64_t out_size[SG_KDIMS];
  int kind[SG_KDIMS];
  const int64_t *off[SG_KDIMS];
  const int64_t *ent[SG_KDIMS];
} sgk_idxadj;
SGK_API int sgk_index_adjoint(void *ga, const void *g, int f64, const sgk_idxadj *a, int64_t n_in, sgk_stream s);

/* gather / scatter along `dim` with a contiguous int64 index of sizes `size`
 * (values already checked): dstride/sstride are the element strides of dst
 * and src, istride the index's (contiguous) strides.
 *   gather:  dst[pos] = src[pos with dim := ix[pos]]
 *   scatter: dst[pos with dim := ix[pos]] = src[pos]  (add: +=)
 * Scatters run one thread per line along dim, in index order, so repeated
 * indices resolve (last write wins, sums in order) exactly as on the CPU;
 * an i32/i64 scatter_add uses integer atomics (exact in any order). */
typedef struct {
  int ndim, dim;
  int64_t size[SG_KDIMS];
  int64_t istride[SG_KDIMS];
  int64_t dstride[SG_KDIMS];
  int64_t sstride[SG_KDIMS];
} sgk_gs;
SGK_API int sgk_gather(const sgk_gs *g, void *dst, const void *src, int elem_size, const int64_t *ix, int64_t n,
                       sgk_stream s);
SGK_API int sgk_scatter(const sgk_gs *g, int add, void *dst, const void *src, int dtype, const int64_t *ix, int64_t n,
                        sgk_stream s);

/* *bad (device) <- the first position k with v[k] outside [0, hi), or
 * UINT64_MAX when there is none. */
SGK_API int sgk_index_check(const int64_t *v, int64_t n, int64_t hi, unsigned long long *bad, sgk_stream s);
/* *mx (device) <- the largest of v[0..n) (n > 0) */
SGK_API int sgk_index_max(const int64_t *v, int64_t n, long long *mx, sgk_stream s);
/* out [n, classes] int64 <- v[i] == c (values checked) */
SGK_API int sgk_one_hot(int64_t *out, const int64_t *v, int64_t n, int64_t classes, sgk_stream s);

#endif
