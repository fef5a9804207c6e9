/* Optimizer steps on the cpu: f32 Adam/AdamW through the threaded kernel of
 * cpu_kernels.c (the same arithmetic as the reference, vectorised), f32 sums
 * of squares for the gradient norm read without conversion; the rest runs
 * the reference loops. */
#include "../backend_ref/ref.h"
#include "cpu_kernels.h"
#include <math.h>

static int adam_step(sg_tensor *p, sg_tensor *g0, sg_tensor *m, sg_tensor *v, sg_tensor *vmax,
                     const sg_adam_hyper *h, double bc2, double step_size) {
  if (p->dtype != SG_F32) return sg_ref_adam_step(p, g0, m, v, vmax, h, bc2, step_size);
  sg_tensor *g = sg_ref_grad_as(g0, p->dtype);
  if (!g) return -1;
  sg_cpu_adam_consts c = {(float)(1 - h->lr * h->weight_decay), (float)h->weight_decay, (float)h->beta1,
                          (float)(1 - h->beta1), (float)h->beta2, (float)(1 - h->beta2), (float)sqrt(bc2),
                          (float)h->eps, (float)step_size, h->decoupled};
  sg_cpu_adam(sg_numel(p), sg_data_ptr(p), sg_data_ptr(g), sg_data_ptr(m), sg_data_ptr(v),
              vmax ? sg_data_ptr(vmax) : NULL, &c);
  sg_tensor_decref(g);
  return 0;
}

void sg_cpu_fill_optim(sg_backend *t);
void sg_cpu_fill_optim(sg_backend *t) { t->optim.adam_step = adam_step; }
