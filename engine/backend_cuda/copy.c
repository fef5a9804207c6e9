/* Copies within the GPU and across the host/device boundary, fills, and
 * single-element access. */
#include "common.h"
#include <string.h>

sgk_layout sg_cuda_layout(const sg_tensor *t) { return sg_cuda_layout_as(t, t->ndim, t->size); }

sgk_layout sg_cuda_layout_as(const sg_tensor *t, int ndim, const int64_t *size) {
  sgk_layout l;
  memset(&l, 0, sizeof l);
  l.ndim = ndim;
  for (int d = 0; d < ndim; d++) {
    int td = t->ndim - ndim + d;
    l.size[d] = size[d];
    l.stride[d] = td >= 0 && t->size[td] != 1 ? t->stride[td] : 0;
  }
  return l;
}

static bool plain(const sg_tensor *t) { return sg_is_contiguous(t); }

/* device -> device, any dtypes and layouts (src already broadcastable to dst) */
static int d2d(sg_tensor *dst, sg_tensor *src) {
  sgk_layout dl = sg_cuda_layout(dst), sl = sg_cuda_layout_as(src, dst->ndim, dst->size);
  return SG_LAUNCH_OK(sgk_copy(sg_data_ptr(dst), dst->dtype, &dl, sg_data_ptr(src), src->dtype, &sl, sg_numel(dst),
                               sg_cuda_stream()))
             ? 0 : -1;
}

/* host tensor -> device tensor of the same shape */
static int h2d(sg_tensor *dst, sg_tensor *src) {
  sg_tensor *stage = NULL, *dstage = NULL;
  int rc = -1;
  if (!plain(src) || src->dtype != dst->dtype || !sg_same_shape(src, dst)) { /* cast/broadcast on the host */
    stage = sg_empty(dst->ndim, dst->size, dst->dtype, SG_CPU);
    if (!stage || sg_copy_(stage, src)) goto out;
    src = stage;
  }
  sg_tensor *target = dst;
  if (!plain(dst)) {
    dstage = sg_empty(dst->ndim, dst->size, dst->dtype, SG_CUDA);
    if (!dstage) goto out;
    target = dstage;
  }
  /* from pageable memory the call returns once the bytes are staged, so src may go at once;
     from pinned memory the block is parked until the stream passes this point */
  if (!SG_CUDA_OK(cudaMemcpyAsync(sg_data_ptr(target), sg_data_ptr(src), (size_t)sg_numel(dst) * sg_dtype_size(dst->dtype),
                                  cudaMemcpyHostToDevice, sg_cuda_stream())))
    goto out;
  if (dstage && d2d(dst, dstage)) goto out;
  rc = 0;
out:
  sg_tensor_decref(stage);
  sg_tensor_decref(dstage);
  return rc;
}

/* device tensor -> host tensor; waits for the bytes */
static int d2h(sg_tensor *dst, sg_tensor *src) {
  sg_tensor *stage = NULL, *hstage = NULL;
  int rc = -1;
  if (!plain(src) || src->dtype != dst->dtype || !sg_same_shape(src, dst)) {
    stage = sg_empty(dst->ndim, dst->size, dst->dtype, SG_CUDA);
    if (!stage || d2d(stage, src)) goto out;
    src = stage;
  }
  sg_tensor *target = dst;
  if (!plain(dst)) {
    hstage = sg_empty(dst->ndim, dst->size, dst->dtype, SG_CPU);
    if (!hstage) goto out;
    target = hstage;
  }
  if (!SG_CUDA_OK(cudaMemcpyAsync(sg_data_ptr(target), sg_data_ptr(src), (size_t)sg_numel(dst) * sg_dtype_size(dst->dtype),
                                  cudaMemcpyDeviceToHost, sg_cuda_stream())) ||
      !SG_CUDA_OK(cudaStreamSynchronize(sg_cuda_stream())))
    goto out;
  if (hstage && sg_copy_(dst, hstage)) goto out;
  rc = 0;
out:
  sg_tensor_decref(stage);
  sg_tensor_decref(hstage);
  return rc;
}

int sg_cuda_copy_(sg_tensor *dst, sg_tensor *src) {
  if (!sg_cuda_ensure()) return -1;
  if (sg_numel(dst) == 0) return 0;
  bool dc = SG_ON_CUDA(dst), sc = SG_ON_CUDA(src);
  int rc = dc && sc ? d2d(dst, src) : dc ? h2d(dst, src) : d2h(dst, src);
  if (rc == 0) atomic_fetch_add(&dst->storage->version, 1);
  return rc;
}

int sg_cuda_fill_(sg_tensor *t, double v) {
  if (!sg_cuda_ensure()) return -1;
  sgk_layout l = sg_cuda_layout(t);
  if (!SG_LAUNCH_OK(sgk_fill(sg_data_ptr(t), t->dtype, &l, v, sg_numel(t), sg_cuda_stream()))) return -1;
  atomic_fetch_add(&t->storage->version, 1);
  return 0;
}

int sg_cuda_zero_(sg_tensor *t) {
  if (!sg_cuda_ensure()) return -1;
  return SG_CUDA_OK(cudaMemsetAsync(t->storage->data, 0, t->storage->nbytes, sg_cuda_stream())) ? 0 : -1;
}

int sg_cuda_get_bytes(const sg_tensor *t, int64_t elem_offset, void *out) {
  if (!sg_cuda_ensure()) return -1;
  size_t es = sg_dtype_size(t->dtype);
  const char *p = (const char *)t->storage->data + elem_offset * (int64_t)es;
  return SG_CUDA_OK(cudaMemcpyAsync(out, p, es, cudaMemcpyDeviceToHost, sg_cuda_stream())) &&
                 SG_CUDA_OK(cudaStreamSynchronize(sg_cuda_stream()))
             ? 0 : -1;
}

int sg_cuda_set_bytes(sg_tensor *t, int64_t elem_offset, const void *in) {
  if (!sg_cuda_ensure()) return -1;
  size_t es = sg_dtype_size(t->dtype);
  char *p = (char *)t->storage->data + elem_offset * (int64_t)es;
  /* synchronous: `in` is a caller's stack variable */
  return SG_CUDA_OK(cudaMemcpyAsync(p, in, es, cudaMemcpyHostToDevice, sg_cuda_stream())) &&
                 SG_CUDA_OK(cudaStreamSynchronize(sg_cuda_stream()))
             ? 0 : -1;
}
