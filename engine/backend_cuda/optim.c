/* Optimizer updates and the gradient norm on the GPU: the glue of
 * kernels/optim.cu. The hyperparameters go over as the doubles the CPU loops
 * cast to the parameter type (same expressions, same roundings). */
#include "common.h"
#include "../../kernels/k_optim.h"
#include <math.h>

static void *ptr(sg_tensor *t) { return t ? sg_data_ptr(t) : NULL; }

int sg_cuda_sgd_step(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first) {
  if (!sg_cuda_ensure()) return -1;
  sgk_sgd k = {h->weight_decay, h->momentum, 1 - h->dampening, h->lr, h->nesterov, first};
  return SG_LAUNCH_OK(sgk_sgd_step(p->dtype == SG_F64, ptr(p), ptr(g), g->dtype, ptr(buf), &k, sg_numel(p),
                                   sg_cuda_stream())) ? 0 : -1;
}

int sg_cuda_adam_step(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                      double bc2, double step_size) {
  if (!sg_cuda_ensure()) return -1;
  sgk_adam k = {1 - h->lr * h->weight_decay, h->weight_decay, h->beta1, 1 - h->beta1, h->beta2, 1 - h->beta2,
                sqrt(bc2), h->eps, step_size, h->decoupled};
  return SG_LAUNCH_OK(sgk_adam_step(p->dtype == SG_F64, ptr(p), ptr(g), g->dtype, ptr(m), ptr(v), ptr(vmax), &k,
                                    sg_numel(p), sg_cuda_stream())) ? 0 : -1;
}

int sg_cuda_rmsprop_step(sg_tensor *p, sg_tensor *g, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                         const sg_rmsprop_hyper *h) {
  if (!sg_cuda_ensure()) return -1;
  sgk_rmsprop k = {h->weight_decay, h->alpha, 1 - h->alpha, h->eps, h->momentum, h->lr};
  return SG_LAUNCH_OK(sgk_rmsprop_step(p->dtype == SG_F64, ptr(p), ptr(g), g->dtype, ptr(sq), ptr(buf), ptr(gavg), &k,
                                       sg_numel(p), sg_cuda_stream())) ? 0 : -1;
}

int sg_cuda_norm_sum(int n, sg_tensor *const *xs, double p, double *out) {
  if (!sg_cuda_ensure()) return -1;
  int64_t count = 0;
  for (int k = 0; k < n; k++) if (sg_numel(xs[k]) > 0) count += sgk_norm_blocks(sg_numel(xs[k]));
  if (count == 0) { *out = 0; return 0; }
  double *buf = sg_cuda_malloc((size_t)(count + 1) * sizeof(double));
  if (!buf) return -1;
  bool ok = true;
  int64_t at = 0;
  for (int k = 0; k < n && ok; k++) {
    int64_t m = sg_numel(xs[k]);
    if (m == 0) continue;
    ok = SG_LAUNCH_OK(sgk_norm_partials(sg_data_ptr(xs[k]), xs[k]->dtype, m, p, buf + at, sg_cuda_stream()));
    at += sgk_norm_blocks(m);
  }
  double r = 0;
  ok = ok && SG_LAUNCH_OK(sgk_norm_finish(buf, count, isinf(p), buf + count, sg_cuda_stream())) &&
       SG_CUDA_OK(cudaMemcpyAsync(&r, buf + count, sizeof r, cudaMemcpyDeviceToHost, sg_cuda_stream())) &&
       SG_CUDA_OK(cudaStreamSynchronize(sg_cuda_stream()));
  sg_cuda_free(buf);
  if (!ok) return -1;
  *out = r;
  return 0;
}
