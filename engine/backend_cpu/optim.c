/* Optimizer steps on the cpu: f32 Adam/AdamW through the threaded kernel
 * below (the same arithmetic as the reference, vectorised), f32 sums
 * of squares for the gradient norm read without conversion; the rest runs
 * the reference loops. */
#include "../backend_ref/ref.h"
#include <math.h>

/* OpenMP only pays off above this many elements of work */
#define PAR_MIN 32768
#ifdef _OPENMP
#include <omp.h>
#endif

/* Adam / AdamW over n f32 elements, threaded, PyTorch's rule with the constants computed by the caller:
 * decoupled: p *= decay, else g += wd * p; m = b1 * m + omb1 * g; v = b2 * v + omb2 * g * g;
 * vmax = max(vmax, v) when vmax != NULL (AMSGrad); p -= step_size * m / (sqrt(v or vmax) / sbc2 + eps). */
typedef struct {
  float decay, wd, b1, omb1, b2, omb2, sbc2, eps, step_size;
  bool decoupled;
} sg_cpu_adam_consts;

static void sg_cpu_adam(int64_t n, float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                 float *restrict vmax, const sg_cpu_adam_consts *c) {
  const float decay = c->decay, wd = c->wd, b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2, sbc2 = c->sbc2,
              eps = c->eps, step = c->step_size;
  const bool decoupled = c->decoupled;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 4 * PAR_MIN)
#endif
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    if (decoupled) p[i] *= decay;
    else gi += wd * p[i];
    m[i] = b1 * m[i] + omb1 * gi;
    v[i] = b2 * v[i] + omb2 * gi * gi;
    float vhat = v[i];
    if (vmax) {
      if (vhat > vmax[i]) vmax[i] = vhat;
      vhat = vmax[i];
    }
    p[i] -= step * m[i] / (sqrtf(vhat) / sbc2 + eps);
  }
}


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
