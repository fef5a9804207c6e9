/* The CUDA backend as the rest of the engine sees it: plain C types only, so
 * any engine file may include it. Compiled only when the build found nvcc and
 * cuDNN (SG_HAVE_CUDA); callers guard their dispatch with that macro.
 *
 * Conventions as in tensor.h: new references out, NULL (or -1) with the sg
 * error set on failure. Every CUDA, cuBLAS and cuDNN call is checked and its
 * failure becomes an error naming the call, file and line. All work runs on
 * one stream (sg_cuda_stream), so memory freed by the host can be reused by
 * the next kernel without events. */
#ifndef SG_CUDA_BACKEND_H
#define SG_CUDA_BACKEND_H
#include "../backend.h"

#define SG_ON_CUDA(t) ((t)->storage->device == SG_CUDA)

/* ---- runtime (cuda_runtime.c) ---- */
int sg_cuda_device_count(void);          /* 0 when there is no driver or device; never fails */
bool sg_cuda_available(void);
const char *sg_cuda_why_unavailable(void); /* the driver's answer when no device is usable */
const char *sg_cuda_device_name(void);
int sg_cuda_synchronize(void);           /* waits for the stream; reports asynchronous kernel errors */
/* cuDNN algorithm choice: benchmark times the candidates once per shape;
 * deterministic restricts to deterministic algorithms (and kernels). */
void sg_cuda_set_benchmark(bool on);
bool sg_cuda_benchmark(void);
void sg_cuda_set_deterministic(bool on);
bool sg_cuda_deterministic(void);

/* ---- memory (cuda_alloc.c): a caching allocator ----
 * Small requests (<= 1 MiB) are carved from 2 MiB segments, large ones from
 * segments of their own rounded size; freed blocks go back to their pool,
 * are found again best-fit and split when much larger than asked for;
 * neighbours merge when both are free. */
void *sg_cuda_malloc(size_t nbytes);     /* NULL + error (asked, in use) after empty_cache + retry */
void sg_cuda_free(void *p);
void sg_cuda_empty_cache(void);          /* gives every wholly free segment back to the driver */
sg_alloc_stats sg_cuda_memory_stats(void);
void sg_cuda_reset_peak_stats(void);
/* One growing scratch buffer for cuDNN/cuBLAS workspaces (valid until the next call). */
void *sg_cuda_workspace(size_t nbytes);
/* Page-locked host memory (cached) for loader batches and asynchronous copies. */
void *sg_cuda_host_malloc(size_t nbytes);
void sg_cuda_host_free(void *p, size_t nbytes);

/* ---- copies (cuda_copy.c) ---- */
/* dst <- src where either is on the GPU (any dtypes, src broadcast to dst). */
int sg_cuda_copy_(sg_tensor *dst, sg_tensor *src);
int sg_cuda_fill_(sg_tensor *t, double v);
int sg_cuda_zero_(sg_tensor *t); /* whole storage */
/* one element to/from the host, for item(), indexing and printing */
int sg_cuda_get_bytes(const sg_tensor *t, int64_t elem_offset, void *out);
int sg_cuda_set_bytes(sg_tensor *t, int64_t elem_offset, const void *in);

#endif
