/* Fused optimizer updates: one pass over a parameter and its state per step.
 * Parameter and state must be contiguous f32 or f64 of one shape (the Lua
 * side keeps state that way); the gradient contiguous of that shape, in the
 * parameter's type or another float type (e.g. bf16 under mixed precision),
 * converted to the parameter's type first. The parameter is updated in place
 * outside autograd. On the GPU one kernel per parameter does the same
 * arithmetic in the same order (kernels/optim.cu); FP contraction is off
 * here so that no -march flag fuses a*b+c on the CPU side either. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include "optim.h"
#include "../autograd/autograd.h"
#include "../backend_cpu/cpu_kernels.h"
#include <math.h>
#include <stdlib.h>
#include "../backend.h"

static int check(const char *op, sg_tensor *p, sg_tensor *g, sg_tensor **state, int nstate) {
  if (!sg_dtype_is_float(p->dtype) || (p->dtype != SG_F32 && p->dtype != SG_F64)) {
    sg_error_set("%s: parameters must be f32 or f64, got %s", op, sg_dtype_name(p->dtype));
    return -1;
  }
  sg_tensor *all[6] = {p, g};
  for (int k = 0; k < nstate; k++) all[2 + k] = state[k];
  if (!sg_same_device(op, 2 + nstate, all)) return -1;
  for (int k = 0; k < 2 + nstate; k++) {
    sg_tensor *t = all[k];
    bool type_ok = t->dtype == p->dtype || (k == 1 && sg_dtype_is_float(t->dtype));
    if (!sg_same_shape(t, p) || !type_ok || !sg_is_contiguous(t)) {
      sg_error_set("%s: tensor %d has shape %s dtype %s (contiguous %s); expected the parameter's %s %s", op, k + 1,
                   SG_SHAPE_STR(t), sg_dtype_name(t->dtype), sg_is_contiguous(t) ? "yes" : "no", SG_SHAPE_STR(p),
                   sg_dtype_name(p->dtype));
      return -1;
    }
  }
  return 0;
}

static void bump(sg_tensor *t) { atomic_fetch_add(&t->storage->version, 1); }

/* the gradient in the parameter's type (new reference; g itself when it is) */
static sg_tensor *grad_as(sg_tensor *g, sg_dtype dt) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *c = sg_to_dtype(g, dt);
  sg_set_grad_enabled(prev);
  return c;
}

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
  if ((SG_DEVICE_OF(p) != SG_CPU)) {
    if (SG_BACKEND_CALL(SG_DEVICE_OF(p), optim.sgd_step, "sgd_step", p, g, buf, h, first)) return -1;
  } else
  {
    sg_tensor *gp = g;
    if (!(g = grad_as(gp, p->dtype))) return -1;
    int64_t n = sg_numel(p);
    if (p->dtype == SG_F32) SGD_LOOP(float); else SGD_LOOP(double);
    sg_tensor_decref(g);
  }
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
  if ((SG_DEVICE_OF(p) != SG_CPU)) {
    if (SG_BACKEND_CALL(SG_DEVICE_OF(p), optim.adam_step, "adam_step", p, g, m, v, vmax, h, bc2, step_size)) return -1;
  } else
  {
    sg_tensor *gp = g;
    if (!(g = grad_as(gp, p->dtype))) return -1;
    if (p->dtype == SG_F32) {
      sg_cpu_adam_consts c = {(float)(1 - h->lr * h->weight_decay), (float)h->weight_decay, (float)h->beta1,
                              (float)(1 - h->beta1), (float)h->beta2, (float)(1 - h->beta2), (float)sqrt(bc2),
                              (float)h->eps, (float)step_size, h->decoupled};
      sg_cpu_adam(n, sg_data_ptr(p), sg_data_ptr(g), sg_data_ptr(m), sg_data_ptr(v), vmax ? sg_data_ptr(vmax) : NULL,
                  &c);
    } else {
      ADAM_LOOP(double);
    }
    sg_tensor_decref(g);
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
  if ((SG_DEVICE_OF(p) != SG_CPU)) {
    if (SG_BACKEND_CALL(SG_DEVICE_OF(p), optim.rmsprop_step, "rmsprop_step", p, g, sq, buf, gavg, h)) return -1;
  } else
  {
    sg_tensor *gp = g;
    if (!(g = grad_as(gp, p->dtype))) return -1;
    int64_t n = sg_numel(p);
    if (p->dtype == SG_F32) RMSPROP_LOOP(float); else RMSPROP_LOOP(double);
    sg_tensor_decref(g);
  }
  bump(p); bump(sq);
  if (buf) bump(buf);
  if (gavg) bump(gavg);
  return 0;
}

/* ------------------------------------------------------------------ gradient norm */
static double norm_term(double a, double p, bool max_mode) {
  a = fabs(a);
  if (max_mode || p == 1.0) return a;
  if (p == 2.0) return a * a;
  return pow(a, p);
}

int sg_grad_norm(int n, sg_tensor **xs, double p, double *out) {
  if (!(p > 0)) {
    sg_error_set("grad_norm: the norm type must be positive (or math.huge for the largest magnitude), got %g", p);
    return -1;
  }
  *out = 0;
  if (n <= 0) return 0;
  if (!sg_same_device("grad_norm", n, xs)) return -1;
  for (int k = 0; k < n; k++)
    if (!sg_dtype_is_float(xs[k]->dtype)) {
      sg_error_set("grad_norm: gradient %d is %s, expected a float type", k + 1, sg_dtype_name(xs[k]->dtype));
      return -1;
    }
  bool max_mode = isinf(p);
  sg_tensor **cs = calloc((size_t)n, sizeof *cs);
  if (!cs) { sg_error_set("grad_norm: out of memory"); return -1; }
  bool prev = sg_set_grad_enabled(false);
  int rc = 0;
  for (int k = 0; k < n && rc == 0; k++)
    if (!(cs[k] = sg_contiguous(xs[k]))) rc = -1;
  sg_set_grad_enabled(prev);
  double acc = 0;
  if (rc == 0) {
    if ((SG_DEVICE_OF(cs[0]) != SG_CPU)) rc = SG_BACKEND_CALL(SG_DEVICE_OF(cs[0]), reduce.norm_sum, "clip_grad_norm", n, cs, p, &acc);
    else
    for (int k = 0; k < n; k++) {
      const char *d = sg_data_ptr(cs[k]);
      sg_dtype dt = cs[k]->dtype;
      size_t es = sg_dtype_size(dt);
      for (int64_t i = 0, m = sg_numel(cs[k]); i < m; i++) {
        double t = norm_term(dt == SG_F32 ? ((const float *)d)[i] : sg_load_f64(d + i * es, dt), p, max_mode);
        if (!max_mode) acc += t;
        else if (t > acc || t != t) acc = acc != acc ? acc : t; /* NaN sticks */
      }
    }
  }
  for (int k = 0; k < n; k++) sg_tensor_decref(cs[k]);
  free(cs);
  if (rc) return -1;
  *out = max_mode ? acc : pow(acc, 1 / p);
  return 0;
}
