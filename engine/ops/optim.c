/* Fused optimizer updates: one pass over a parameter and its state per step.
 * All tensors must be contiguous f32 or f64 of one shape (the Lua side keeps
 * state that way). The parameter is updated in place outside autograd. */
#include "optim.h"
#include "../backend_cpu/cpu_kernels.h"
#include <math.h>

static int check(const char *op, sg_tensor *p, sg_tensor *g, sg_tensor **state, int nstate) {
  if (!sg_dtype_is_float(p->dtype) || (p->dtype != SG_F32 && p->dtype != SG_F64)) {
    sg_error_set("%s: parameters must be f32 or f64, got %s", op, sg_dtype_name(p->dtype));
    return -1;
  }
  sg_tensor *all[6] = {p, g};
  for (int k = 0; k < nstate; k++) all[2 + k] = state[k];
  for (int k = 0; k < 2 + nstate; k++) {
    sg_tensor *t = all[k];
    if (!sg_same_shape(t, p) || t->dtype != p->dtype || !sg_is_contiguous(t)) {
      sg_error_set("%s: tensor %d has shape %s dtype %s (contiguous %s); expected the parameter's %s %s", op, k + 1,
                   SG_SHAPE_STR(t), sg_dtype_name(t->dtype), sg_is_contiguous(t) ? "yes" : "no", SG_SHAPE_STR(p),
                   sg_dtype_name(p->dtype));
      return -1;
    }
  }
  return 0;
}

static void bump(sg_tensor *t) { atomic_fetch_add(&t->storage->version, 1); }

/* The update rules are written once over a generic element type T. */
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

int sg_sgd_step(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first) {
  if (check("sgd", p, g, buf ? &buf : NULL, buf ? 1 : 0)) return -1;
  int64_t n = sg_numel(p);
  if (p->dtype == SG_F32) SGD_LOOP(float); else SGD_LOOP(double);
  bump(p);
  if (buf) bump(buf);
  return 0;
}

/* Adam / AdamW (decoupled weight decay) as in PyTorch, with bias correction
 * folded into the step size. */
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

int sg_adam_step(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                 int64_t step) {
  sg_tensor *st[3] = {m, v, vmax};
  if (check("adam", p, g, st, vmax ? 3 : 2)) return -1;
  if (step < 1) { sg_error_set("adam: step must be >= 1, got %lld", (long long)step); return -1; }
  int64_t n = sg_numel(p);
  double bc1 = 1 - pow(h->beta1, (double)step), bc2 = 1 - pow(h->beta2, (double)step);
  double step_size = h->lr / bc1;
  if (p->dtype == SG_F32) {
    sg_cpu_adam_consts c = {(float)(1 - h->lr * h->weight_decay), (float)h->weight_decay, (float)h->beta1,
                            (float)(1 - h->beta1), (float)h->beta2, (float)(1 - h->beta2), (float)sqrt(bc2),
                            (float)h->eps, (float)step_size, h->decoupled};
    sg_cpu_adam(n, sg_data_ptr(p), sg_data_ptr(g), sg_data_ptr(m), sg_data_ptr(v), vmax ? sg_data_ptr(vmax) : NULL,
                &c);
  } else {
    ADAM_LOOP(double);
  }
  bump(p); bump(m); bump(v);
  if (vmax) bump(vmax);
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

int sg_rmsprop_step(sg_tensor *p, sg_tensor *g, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                    const sg_rmsprop_hyper *h) {
  sg_tensor *st[3] = {sq, buf ? buf : sq, gavg ? gavg : sq};
  if (check("rmsprop", p, g, st, 3)) return -1;
  int64_t n = sg_numel(p);
  if (p->dtype == SG_F32) RMSPROP_LOOP(float); else RMSPROP_LOOP(double);
  bump(p); bump(sq);
  if (buf) bump(buf);
  if (gavg) bump(gavg);
  return 0;
}
