/* Internal header of the CUDA backend's host glue: the vendor headers, the
 * checked-call macros and the shared stream and library handles. */
#ifndef SG_CUDA_COMMON_H
#define SG_CUDA_COMMON_H
#include "cuda_backend.h"
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
#endif
