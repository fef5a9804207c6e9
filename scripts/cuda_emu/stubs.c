#include <cublas_v2.h>
#include <cudnn.h>
#include <stdio.h>
cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = 0; return CUBLAS_STATUS_NOT_INITIALIZED; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { (void)h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) { (void)h; (void)s; return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusString(cublasStatus_t s) { return s ? "cuBLAS not emulated" : "success"; }
cudnnStatus_t cudnnCreate(cudnnHandle_t *h) { *h = 0; return CUDNN_STATUS_NOT_INITIALIZED; }
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) { (void)h; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) { (void)h; (void)s; return CUDNN_STATUS_SUCCESS; }
const char *cudnnGetErrorString(cudnnStatus_t s) { return s ? "cuDNN not emulated" : "success"; }
void cudnnGetLastErrorString(char *buf, size_t n) { snprintf(buf, n, "%s", ""); }
