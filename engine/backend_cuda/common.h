/* Internal header of the CUDA backend's host glue (every .c of this folder
 * but backend.c): the vendor headers, the checked-call macros, the shared
 * stream and library handles, and the few helpers several files share. */
#ifndef SG_BACKEND_CUDA_COMMON_H
#define SG_BACKEND_CUDA_COMMON_H
#include "cuda.h"
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

/* Each returns true on success, else sets the sg error to
 * "<call> failed: <message> (<file>:<line>)" and returns false. */
bool sg_cuda_ok_(cudaError_t e, const char *call, const char *file, int line);
bool sg_cublas_ok_(cublasStatus_t s, const char *call, const char *file, int line);
bool sg_cudnn_ok_(cudnnStatus_t s, const char *call, const char *file, int line);
#define SG_CUDA_OK(call) sg_cuda_ok_((call), #call, __FILE__, __LINE__)
#define SG_CUBLAS_OK(call) sg_cublas_ok_((call), #call, __FILE__, __LINE__)
#define SG_CUDNN_OK(call) sg_cudnn_ok_((call), #call, __FILE__, __LINE__)
/* After a kernel launcher (which returns cudaGetLastError()). */
#define SG_LAUNCH_OK(call) sg_cuda_ok_((cudaError_t)(call), #call, __FILE__, __LINE__)

/* Initialises the device on first use; false (with error) when there is none. */
bool sg_cuda_ensure(void);
cudaStream_t sg_cuda_stream(void);
cublasHandle_t sg_cublas_handle(void);  /* NULL + error on failure */
cudnnHandle_t sg_cudnn_handle(void);

/* A tensor as the kernels see it (kernels/k_common.h). */
#include "../../kernels/k_common.h"
sgk_layout sg_cuda_layout(const sg_tensor *t);
/* t's layout broadcast to ndim/size (aligned at the last dim, stride 0 where t has size 1) */
sgk_layout sg_cuda_layout_as(const sg_tensor *t, int ndim, const int64_t *size);

/* ---- helpers of the CNN glue (the bias in conv, pool, norm, upsample) ---- */
#include "../../kernels/k_nn.h"
#include <string.h>

#define LAUNCH(call) SG_LAUNCH_OK(call)

/* a per-channel vector: 1-d with its stride, or contiguous */
static inline sgk_vec vec_of(sg_tensor *t) {
  sgk_vec v;
  memset(&v, 0, sizeof v);
  if (!t) return v;
  v.p = sg_data_ptr(t);
  v.dt = t->dtype;
  v.stride = t->ndim == 1 ? t->stride[0] : 1;
  return v;
}

/* [N, C, L] of a tensor with dims [N, C, ...] */
static inline void ncl(const sg_tensor *t, int64_t *N, int64_t *C, int64_t *L) {
  *N = t->size[0];
  *C = t->ndim > 1 ? t->size[1] : 1;
  *L = 1;
  for (int d = 2; d < t->ndim; d++) *L *= t->size[d];
}

/* One channel reduction: *sums [2C] doubles (sum of a, sum of b) inside the
 * returned block, which the caller frees with sg_cuda_free; NULL on failure. */
static inline double *channel_reduce(int mode, sg_tensor *x, sg_tensor *g, const double *stats, int64_t N,
                                     int64_t C, int64_t L, int64_t G, double **sums) {
  sgk_red r = {N, C, L, G, sgk_red_splits(N, C, L)};
  double *buf = sg_cuda_malloc(sizeof(double) * (size_t)(2 * C * r.splits + 2 * C));
  if (!buf) return NULL;
  *sums = buf + 2 * C * r.splits;
  sg_dtype dt = (x ? x : g)->dtype;
  bool ok = N * L > 0
                ? LAUNCH(sgk_channel_reduce(mode, x ? sg_data_ptr(x) : NULL, g ? sg_data_ptr(g) : NULL, dt, stats, &r,
                                            buf, sg_cuda_stream())) &&
                      LAUNCH(sgk_channel_sums(buf, &r, *sums, sg_cuda_stream()))
                : SG_CUDA_OK(cudaMemsetAsync(*sums, 0, sizeof(double) * (size_t)(2 * C), sg_cuda_stream()));
  if (!ok) { sg_cuda_free(buf); return NULL; }
  return buf;
}
#endif
