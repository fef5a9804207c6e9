/* Fused optimizer update kernels (the Lua side in lua/semseg/optim.lua keeps
 * parameter groups, state and schedules). */
#ifndef SG_OPTIM_H
#define SG_OPTIM_H
#include "../backend.h"

/* buf may be NULL (no momentum); `first` initialises the momentum buffer */
int sg_sgd_step(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first);
/* vmax is the AMSGrad state or NULL; step counts from 1 */
int sg_adam_step(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                 int64_t step);
/* buf (momentum) and gavg (centered) may be NULL */
int sg_rmsprop_step(sg_tensor *p, sg_tensor *g, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                    const sg_rmsprop_hyper *h);
/* The norm of all the tensors together, as one vector: (sum |x|^p)^(1/p), or
 * max |x| when p is INFINITY; summed in double (on the GPU one kernel per
 * tensor, then a single read). For clip_grad_norm. 0, or -1 with error. */
int sg_grad_norm(int n, sg_tensor **xs, double p, double *out);
#endif
