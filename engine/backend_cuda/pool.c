/* Host glue of kernels/pool.cu: max pooling (with indices), max
 * unpooling, average and adaptive average pooling. */
#include "common.h"
#include <stdint.h>

/* ---------------------------------------------------------------- pooling */
static sgk_pool pool_of(const sg_tensor *x, int64_t oh, int64_t ow, const int64_t *par, int npar, bool adaptive) {
  sgk_pool p;
  memset(&p, 0, sizeof p);
  p.planes = x->size[0] * x->size[1];
  p.H = x->size[2];
  p.W = x->size[3];
  p.oh = oh;
  p.ow = ow;
  if (!adaptive) {
    p.kh = par[0]; p.kw = par[1]; p.sh = par[2]; p.sw = par[3]; p.ph = par[4]; p.pw = par[5];
    p.cip = npar > 6 ? (int)par[6] : 0;
  }
  p.adaptive = adaptive;
  return p;
}

int sg_cuda_max_pool2d(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(x, values->size[2], values->size[3], par, 6, false);
  /* without indices (no one needs the positions) the kernel writes them to a scratch block */
  int64_t *idx = indices ? sg_data_ptr(indices) : sg_cuda_malloc(sizeof(int64_t) * (size_t)sg_numel(values));
  if (!idx) return -1;
  bool ok = LAUNCH(sgk_max_pool2d(sg_data_ptr(x), x->dtype, sg_data_ptr(values), idx, &p, sg_cuda_stream()));
  if (!indices) sg_cuda_free(idx);
  return ok ? 0 : -1;
}

int sg_cuda_max_pool2d_backward(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(gx, g->size[2], g->size[3], par, 6, false);
  return LAUNCH(sgk_max_pool2d_backward(sg_data_ptr(g), sg_data_ptr(indices), g->dtype, sg_data_ptr(gx), &p,
                                        sg_cuda_stream()))
             ? 0 : -1;
}

int sg_cuda_max_unpool2d(sg_tensor *x, sg_tensor *indices, sg_tensor *out) {
  if (!sg_cuda_ensure()) return -1;
  int64_t planes = x->size[0] * x->size[1], is = x->size[2] * x->size[3], os = out->size[2] * out->size[3];
  size_t es = sg_dtype_size(out->dtype);
  /* indices outside the output plane are an error, as on the CPU (one synchronisation) */
  int64_t bad_pos, bad_val;
  int bad = sg_cuda_index_check(indices, os, &bad_pos, &bad_val);
  if (bad < 0) return -1;
  if (bad) {
    sg_error_set("max_unpool2d: index %lld is out of range for an output plane of %lldx%lld", (long long)bad_val,
                 (long long)out->size[2], (long long)out->size[3]);
    return -1;
  }
  /* where indices repeat the last input position wins, as in the CPU loop: a winner per output position */
  unsigned *win = NULL;
  if (is < (int64_t)UINT32_MAX - 1 && planes * os > 0) {
    if (!(win = sg_cuda_malloc(sizeof(unsigned) * (size_t)(planes * os)))) return -1;
  }
  bool ok = SG_CUDA_OK(cudaMemsetAsync(sg_data_ptr(out), 0, (size_t)(planes * os) * es, sg_cuda_stream())) &&
       (!win || SG_CUDA_OK(cudaMemsetAsync(win, 0, sizeof(unsigned) * (size_t)(planes * os), sg_cuda_stream()))) &&
       LAUNCH(sgk_max_unpool2d(sg_data_ptr(x), sg_data_ptr(indices), x->dtype, sg_data_ptr(out), win, planes, is, os,
                               sg_cuda_stream()));
  sg_cuda_free(win);
  return ok ? 0 : -1;
}

int sg_cuda_max_unpool2d_backward(sg_tensor *g, sg_tensor *indices, sg_tensor *gx) {
  if (!sg_cuda_ensure()) return -1;
  int64_t planes = gx->size[0] * gx->size[1], is = gx->size[2] * gx->size[3], os = g->size[2] * g->size[3];
  return LAUNCH(sgk_max_unpool2d_backward(sg_data_ptr(g), sg_data_ptr(indices), g->dtype, sg_data_ptr(gx), planes, is,
                                          os, sg_cuda_stream()))
             ? 0 : -1;
}

int sg_cuda_avg_pool2d(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(x, out->size[2], out->size[3], par, 7, adaptive);
  return LAUNCH(sgk_avg_pool2d(sg_data_ptr(x), x->dtype, sg_data_ptr(out), &p, sg_cuda_stream())) ? 0 : -1;
}

int sg_cuda_avg_pool2d_backward(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(gx, g->size[2], g->size[3], par, 7, adaptive);
  return LAUNCH(sgk_avg_pool2d_backward(sg_data_ptr(g), g->dtype, sg_data_ptr(gx), &p, sg_cuda_stream())) ? 0 : -1;
}
