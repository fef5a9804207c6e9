/* What the host glue and the CUDA kernels share: plain C, included from both
 * C (engine/backend_cuda) and CUDA C++ (the kernels directory).
 *
 * A tensor reaches a kernel as a base pointer (element 0 of the view, not the
 * storage) and a layout: sizes and element strides of up to SG_KDIMS dims.
 * Launchers are extern "C", take the stream, and return the cudaError_t of
 * the launch (as int, 0 = success) so the glue can check it. Dtype codes are
 * the engine's sg_dtype values. */
#ifndef SG_K_COMMON_H
#define SG_K_COMMON_H
#include <stdint.h>

#define SG_KDIMS 8
typedef struct {
  int ndim;
  int64_t size[SG_KDIMS];
  int64_t stride[SG_KDIMS]; /* in elements; 0 for broadcast dims */
} sgk_layout;

#ifdef __cplusplus
#define SGK_API extern "C"
#else
#define SGK_API
#endif
typedef struct CUstream_st *sgk_stream; /* = cudaStream_t, without the CUDA headers */

/* ---- kernels/copy.cu ---- */
/* dst[i] = cast(src[i]) over n elements in dst's row-major order; both
 * layouts have the same sizes (src broadcast by zero strides). */
SGK_API int sgk_copy(void *dst, int dst_dtype, const sgk_layout *dl, const void *src, int src_dtype,
                     const sgk_layout *sl, int64_t n, sgk_stream s);
/* every element of the view set to the value (given as double) */
SGK_API int sgk_fill(void *dst, int dtype, const sgk_layout *dl, double v, int64_t n, sgk_stream s);

#endif
