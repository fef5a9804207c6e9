/* Device discovery, the stream, library handles and checked calls. */
#include "../core/config.h"
#include "common.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

bool sg_cuda_ok_(cudaError_t e, const char *call, const char *file, int line) {
  if (e == cudaSuccess) return true;
  sg_error_set("%s failed: %s (%s:%d)", call, cudaGetErrorString(e), file, line);
  (void)cudaGetLastError(); /* clear a sticky-less error so the next call starts clean */
  return false;
}

bool sg_cublas_ok_(cublasStatus_t s, const char *call, const char *file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return true;
  sg_error_set("%s failed: %s (%s:%d)", call, cublasGetStatusString(s), file, line);
  return false;
}

bool sg_cudnn_ok_(cudnnStatus_t s, const char *call, const char *file, int line) {
  if (s == CUDNN_STATUS_SUCCESS) return true;
  char detail[256] = "";
  cudnnGetLastErrorString(detail, sizeof detail);
  sg_error_set("%s failed: %s%s%s (%s:%d)", call, cudnnGetErrorString(s), detail[0] ? ": " : "", detail, file,
               line);
  return false;
}

/* Discovery happens once; a machine without a driver answers 0 devices. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int n_devices;
static char why[256] = "not probed";
static char dev_name[256] = "none";

static void probe(void) {
  cudaError_t e = cudaGetDeviceCount(&n_devices);
  if (e != cudaSuccess) {
    n_devices = 0;
    snprintf(why, sizeof why, "%s", cudaGetErrorString(e));
    (void)cudaGetLastError();
    return;
  }
  if (n_devices == 0) { snprintf(why, sizeof why, "the driver reports no CUDA device"); return; }
  struct cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
    snprintf(dev_name, sizeof dev_name, "%.200s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1 << 30));
  why[0] = 0;
}

int sg_cuda_device_count(void) { pthread_once(&probe_once, probe); return n_devices; }
bool sg_cuda_available(void) { return sg_cuda_device_count() > 0; }
const char *sg_cuda_why_unavailable(void) { sg_cuda_device_count(); return why; }
const char *sg_cuda_device_name(void) { sg_cuda_device_count(); return dev_name; }

/* The stream and handles are made by the first thread that needs them (the
 * Lua thread in practice; loader workers never touch the GPU). */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static cudaStream_t stream;
static bool stream_ready;
static cublasHandle_t cublas;
static cudnnHandle_t cudnn;

bool sg_cuda_ensure(void) {
  if (!sg_cuda_available()) {
    sg_error_set("device 'cuda' is not available: %s", sg_cuda_why_unavailable());
    return false;
  }
  if (stream_ready) return true;
  bool ok = true;
  pthread_mutex_lock(&init_lock);
  if (!stream_ready) {
    ok = SG_CUDA_OK(cudaSetDevice(0)) && SG_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    stream_ready = ok;
  }
  pthread_mutex_unlock(&init_lock);
  return ok;
}

cudaStream_t sg_cuda_stream(void) { return stream; }

cublasHandle_t sg_cublas_handle(void) {
  if (cublas) return cublas;
  if (!sg_cuda_ensure()) return NULL;
  cublasHandle_t h;
  if (!SG_CUBLAS_OK(cublasCreate(&h))) return NULL;
  if (!SG_CUBLAS_OK(cublasSetStream(h, stream))) { cublasDestroy(h); return NULL; }
  cublas = h;
  return cublas;
}

cudnnHandle_t sg_cudnn_handle(void) {
  if (cudnn) return cudnn;
  if (!sg_cuda_ensure()) return NULL;
  cudnnHandle_t h;
  if (!SG_CUDNN_OK(cudnnCreate(&h))) return NULL;
  if (!SG_CUDNN_OK(cudnnSetStream(h, stream))) { cudnnDestroy(h); return NULL; }
  cudnn = h;
  return cudnn;
}

int sg_cuda_synchronize(void) {
  if (!sg_cuda_ensure()) return -1;
  return SG_CUDA_OK(cudaStreamSynchronize(stream)) ? 0 : -1;
}

/* the switches live in the runtime configuration (sg.config) */
void sg_cuda_set_benchmark(bool on) { sg_config.cuda_benchmark = on; }
bool sg_cuda_benchmark(void) { return sg_config.cuda_benchmark; }
void sg_cuda_set_deterministic(bool on) { sg_config.deterministic = on; }
bool sg_cuda_deterministic(void) { return sg_config.deterministic; }
