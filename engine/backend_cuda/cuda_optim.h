/* Optimizer updates and the gradient norm on the GPU (engine/ops/optim.c
 * dispatches here after its checks). */
#ifndef SG_CUDA_OPTIM_H
#define SG_CUDA_OPTIM_H
#include "../backend.h"

/* p and state: contiguous CUDA tensors of p's dtype (f32/f64); g: contiguous,
 * f16/bf16/f32/f64. One kernel each; 0, or -1 with the error set. */
int sg_cuda_sgd_step(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first);
int sg_cuda_adam_step(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                      double bc2, double step_size);
int sg_cuda_rmsprop_step(sg_tensor *p, sg_tensor *g, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                         const sg_rmsprop_hyper *h);
/* sum over the (contiguous CUDA) tensors of sum |x|^p, or max |x| when p is
 * infinite: one kernel per tensor, one to combine, one read. */
int sg_cuda_norm_sum(int n, sg_tensor *const *xs, double p, double *out);

#endif
