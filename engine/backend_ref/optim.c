/* Reference optimizer steps (PyTorch's update rules, written once over the
 * element type), in place on contiguous f32/f64 parameter and state; the
 * gradient may be another float type, converted first. And the sum of |x|^p
 * over tensors for the gradient norm. FP contraction is off so that no
 * compiler flag fuses a*b+c: the GPU kernels do the same arithmetic. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include "ref.h"
#include <math.h>

sg_tensor *sg_ref_grad_as(sg_tensor *g, sg_dtype dt) {
  if (g->dtype == dt) return sg_tensor_incref(g);
  sg_tensor *c = sg_empty(g->ndim, g->size, dt, SG_CPU);
  if (c && sg_copy_(c, g)) { sg_tensor_decref(c); c = NULL; }
  return c;
}

#define SGD_LOOP(T)                                                                               \
  do {                                                                                            \
    T *pp = sg_data_ptr(p); const T *gg = sg_data_ptr(g); T *bb = buf ? sg_data_ptr(buf) : NULL; \
    for (int64_t i = 0; i < n; i++) {                                                             \
      T d = gg[i] + (T)h->weight_decay * pp[i];                                                   \
      if (bb) {                                                                                   \
        bb[i] = first ? d : (T)h->momentum * bb[i] + (T)(1 - h->dampening) * d;                   \
        d = h->nesterov ? d + (T)h->momentum * bb[i] : bb[i];                                     \
      }                                                                                           \
      pp[i] -= (T)h->lr * d;                                                                      \
    }                                                                                             \
  } while (0)

int sg_ref_sgd_step(sg_tensor *p, sg_tensor *g0, sg_tensor *buf, const sg_sgd_hyper *h, bool first) {
  sg_tensor *g = sg_ref_grad_as(g0, p->dtype);
  if (!g) return -1;
  int64_t n = sg_numel(p);
  if (p->dtype == SG_F32) SGD_LOOP(float); else SGD_LOOP(double);
  sg_tensor_decref(g);
  return 0;
}

/* Adam / AdamW (decoupled weight decay), the bias corrections folded into step_size and bc2 */
#define ADAM_LOOP(T)                                                                              \
  do {                                                                                            \
    T *pp = sg_data_ptr(p); const T *gg = sg_data_ptr(g); T *mm = sg_data_ptr(m);                 \
    T *vv = sg_data_ptr(v); T *vm = vmax ? sg_data_ptr(vmax) : NULL;                               \
    for (int64_t i = 0; i < n; i++) {                                                             \
      T gi = gg[i];                                                                               \
      if (h->decoupled) pp[i] *= (T)(1 - h->lr * h->weight_decay);                                \
      else gi += (T)h->weight_decay * pp[i];                                                      \
      mm[i] = (T)h->beta1 * mm[i] + (T)(1 - h->beta1) * gi;                                       \
      vv[i] = (T)h->beta2 * vv[i] + (T)(1 - h->beta2) * gi * gi;                                  \
      T vhat = vv[i];                                                                             \
      if (vm) { if (vhat > vm[i]) vm[i] = vhat; vhat = vm[i]; }                                   \
      T denom = (T)sqrt((double)vhat) / (T)sqrt(bc2) + (T)h->eps;                                 \
      pp[i] -= (T)step_size * mm[i] / denom;                                                      \
    }                                                                                             \
  } while (0)

int sg_ref_adam_step(sg_tensor *p, sg_tensor *g0, sg_tensor *m, sg_tensor *v, sg_tensor *vmax,
                     const sg_adam_hyper *h, double bc2, double step_size) {
  sg_tensor *g = sg_ref_grad_as(g0, p->dtype);
  if (!g) return -1;
  int64_t n = sg_numel(p);
  if (p->dtype == SG_F32) ADAM_LOOP(float); else ADAM_LOOP(double);
  sg_tensor_decref(g);
  return 0;
}

#define RMSPROP_LOOP(T)                                                                           \
  do {                                                                                            \
    T *pp = sg_data_ptr(p); const T *gg = sg_data_ptr(g); T *ss = sg_data_ptr(sq);                \
    T *bb = buf ? sg_data_ptr(buf) : NULL; T *aa = gavg ? sg_data_ptr(gavg) : NULL;               \
    for (int64_t i = 0; i < n; i++) {                                                             \
      T gi = gg[i] + (T)h->weight_decay * pp[i];                                                  \
      ss[i] = (T)h->alpha * ss[i] + (T)(1 - h->alpha) * gi * gi;                                  \
      T avg = ss[i];                                                                              \
      if (aa) { aa[i] = (T)h->alpha * aa[i] + (T)(1 - h->alpha) * gi; avg -= aa[i] * aa[i]; }     \
      T denom = (T)sqrt((double)avg) + (T)h->eps;                                                 \
      if (bb) { bb[i] = (T)h->momentum * bb[i] + gi / denom; pp[i] -= (T)h->lr * bb[i]; }         \
      else pp[i] -= (T)h->lr * gi / denom;                                                        \
    }                                                                                             \
  } while (0)

static int rmsprop_step(sg_tensor *p, sg_tensor *g0, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                        const sg_rmsprop_hyper *h) {
  sg_tensor *g = sg_ref_grad_as(g0, p->dtype);
  if (!g) return -1;
  int64_t n = sg_numel(p);
  if (p->dtype == SG_F32) RMSPROP_LOOP(float); else RMSPROP_LOOP(double);
  sg_tensor_decref(g);
  return 0;
}

/* sum over the tensors of |x|^p in double (p = inf: the largest |x|, a NaN sticks) */
static int norm_sum(int n, sg_tensor *const *xs, double p, double *out) {
  bool max_mode = isinf(p);
  double acc = 0;
  for (int k = 0; k < n; k++) {
    const char *d = sg_data_ptr(xs[k]);
    sg_dtype dt = xs[k]->dtype;
    size_t es = sg_dtype_size(dt);
    for (int64_t i = 0, m = sg_numel(xs[k]); i < m; i++) {
      double a = fabs(sg_load_f64(d + i * es, dt));
      double t = max_mode || p == 1.0 ? a : p == 2.0 ? a * a : pow(a, p);
      if (!max_mode) acc += t;
      else if (t > acc || t != t) acc = acc != acc ? acc : t;
    }
  }
  *out = acc;
  return 0;
}

void sg_ref_fill_optim(sg_backend *t);
void sg_ref_fill_optim(sg_backend *t) {
  t->optim.sgd_step = sg_ref_sgd_step;
  t->optim.adam_step = sg_ref_adam_step;
  t->optim.rmsprop_step = rmsprop_step;
  t->optim.norm_sum = norm_sum;
}
