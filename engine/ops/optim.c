/* Fused optimizer updates: one pass over a parameter and its state per step.
 * Parameter and state must be contiguous f32 or f64 of one shape (the Lua
 * side keeps state that way); the gradient contiguous of that shape, in the
 * parameter's type or another float type (e.g. bf16 under mixed precision).
 * The parameter is updated in place outside autograd, by the device table's
 * optim entries (backend_ref/optim.c is the reference). */
#include "optim.h"
#include "../autograd/autograd.h"
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

int sg_sgd_step(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first) {
  if (check("sgd", p, g, buf ? &buf : NULL, buf ? 1 : 0)) return -1;
  if (SG_BACKEND_CALL(SG_DEVICE_OF(p), optim.sgd_step, "sgd_step", p, g, buf, h, first)) return -1;
  bump(p);
  if (buf) bump(buf);
  return 0;
}

/* Adam / AdamW (decoupled weight decay) as in PyTorch, with bias correction
 * folded into the step size. */
int sg_adam_step(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                 int64_t step) {
  sg_tensor *st[3] = {m, v, vmax};
  if (check("adam", p, g, st, vmax ? 3 : 2)) return -1;
  if (step < 1) { sg_error_set("adam: step must be >= 1, got %lld", (long long)step); return -1; }
  double bc1 = 1 - pow(h->beta1, (double)step), bc2 = 1 - pow(h->beta2, (double)step);
  double step_size = h->lr / bc1;
  if (SG_BACKEND_CALL(SG_DEVICE_OF(p), optim.adam_step, "adam_step", p, g, m, v, vmax, h, bc2, step_size)) return -1;
  bump(p); bump(m); bump(v);
  if (vmax) bump(vmax);
  return 0;
}

int sg_rmsprop_step(sg_tensor *p, sg_tensor *g, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                    const sg_rmsprop_hyper *h) {
  sg_tensor *st[3] = {sq, buf ? buf : sq, gavg ? gavg : sq};
  if (check("rmsprop", p, g, st, 3)) return -1;
  if (SG_BACKEND_CALL(SG_DEVICE_OF(p), optim.rmsprop_step, "rmsprop_step", p, g, sq, buf, gavg, h)) return -1;
  bump(p); bump(sq);
  if (buf) bump(buf);
  if (gavg) bump(gavg);
  return 0;
}

/* ------------------------------------------------------------------ gradient norm */
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
  if (rc == 0) rc = SG_BACKEND_CALL(SG_DEVICE_OF(cs[0]), optim.norm_sum, "clip_grad_norm", n, cs, p, &acc);
  for (int k = 0; k < n; k++) sg_tensor_decref(cs[k]);
  free(cs);
  if (rc) return -1;
  *out = max_mode ? acc : pow(acc, 1 / p);
  return 0;
}
