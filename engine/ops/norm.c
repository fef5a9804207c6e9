/* Batch, group and layer normalisation: argument checks, shapes, outputs and
 * autograd records here; the computation in the device table's norm entries
 * (backend_ref/norm.c is the reference, backend_cpu/norm.c the cpu fast
 * paths, backend_cuda the GPU). Each forward entry returns a statistics
 * tensor of its backend's making, saved for the backward. Batch norm may be
 * fused with a ReLU on its output (sg_batch_norm_relu): a device whose table
 * has no fused entry runs batch norm and then the ReLU op. */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend.h"
#include <math.h>

/* The gradients of a norm node's inputs x, weight, bias: out[k] (NULL on entry) allocated where n->needs[k] (x's
 * dtype and shape for k = 0, the parameter's for 1 and 2); give_grads hands them to gin, or frees them. */
static bool alloc_grads(sg_node *n, sg_tensor **out) {
  for (int k = 0; k < 3; k++) {
    if (n->needs[k] && !(out[k] = sg_empty(n->in_shape[k].ndim, n->in_shape[k].size, n->in_dtype[k],
                                            n->in_device[0])))
      return false;
  }
  return true;
}

static int give_grads(bool ok, sg_tensor **out, sg_tensor **gin) {
  for (int k = 0; k < 3; k++) {
    if (ok) gin[k] = out[k];
    else sg_tensor_decref(out[k]);
  }
  return ok ? 0 : -1;
}

/* t contiguous in its own dtype, or NULL when t is (ok tells a failure apart) */
static sg_tensor *contig_opt(sg_tensor *t, bool *ok) {
  if (!t) return NULL;
  sg_tensor *c = sg_nn_contig(t, t->dtype);
  if (!c) *ok = false;
  return c;
}

/* ---------------------------------------------------------------- batch norm
 * Node: i[0] training, i[1] fused ReLU; saved x, weight (or NULL), the statistics and, fused, the output. */

static int batch_norm_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  bool training = n->i[0] != 0, relu = n->i[1] != 0;
  sg_device dev = n->in_device[0];
  sg_dtype dt = n->in_dtype[0];
  sg_tensor *x = sg_node_saved(n, 0), *w = n->saved[1] ? sg_node_saved(n, 1) : NULL, *st = sg_node_saved(n, 2);
  sg_tensor *y = relu ? sg_node_saved(n, 3) : NULL;
  const sg_backend *be = sg_backend_get(dev);
  if (!x || (n->saved[1] && !w) || !st || (relu && !y) || !be) return -1;
  sg_path_note(SG_PATH_NORM, be->name); /* a cpu backend names its own path */
  bool ok = true;
  sg_tensor *xc = sg_nn_contig(x, dt), *gc = xc ? sg_nn_contig(g, dt) : NULL, *wc = contig_opt(w, &ok);
  sg_tensor *yc = y ? sg_nn_contig(y, dt) : NULL, *out[3] = {NULL, NULL, NULL};
  ok = ok && gc && (!y || yc) && alloc_grads(n, out);
  if (ok && relu)
    ok = SG_BACKEND_CALL(dev, norm.batch_norm_relu_backward, n->op, xc, gc, yc, wc, st, training, out[0], out[1],
                         out[2]) == 0;
  else if (ok)
    ok = SG_BACKEND_CALL(dev, norm.batch_norm_backward, n->op, xc, gc, wc, st, training, out[0], out[1], out[2]) == 0;
  sg_tensor_decref(xc); sg_tensor_decref(gc); sg_tensor_decref(wc); sg_tensor_decref(yc);
  return give_grads(ok, out, gin);
}

static bool check_vec(const char *op, const char *arg, const sg_tensor *t, int64_t C, const sg_tensor *x) {
  if (!t) return true;
  if (!sg_nn_check_float_dev(op, arg, t)) return false;
  if (t->ndim != 1 || t->size[0] != C) {
    sg_error_set("%s: %s must have shape [%lld] for input %s (got %s)", op, arg, (long long)C, SG_SHAPE_STR(x),
                 SG_SHAPE_STR(t));
    return false;
  }
  return true;
}

static sg_tensor *batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *weight, sg_tensor *bias,
                             bool training, double momentum, double eps, bool relu) {
  const char *op = relu ? "batch_norm_relu" : "batch_norm";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  sg_tensor *all[5] = {x, rm, rv, weight, bias};
  if (!sg_same_device(op, 5, all)) return NULL;
  if (x->ndim < 2) {
    sg_error_set("%s: input must have at least 2 dims [N,C,...] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  int64_t N = x->size[0], C = x->size[1], L = 1;
  for (int d = 2; d < x->ndim; d++) L *= x->size[d];
  if (!check_vec(op, "running_mean", rm, C, x) || !check_vec(op, "running_var", rv, C, x) ||
      !check_vec(op, "weight", weight, C, x) || !check_vec(op, "bias", bias, C, x))
    return NULL;
  if ((rm == NULL) != (rv == NULL)) {
    sg_error_set("%s: give both running_mean and running_var, or neither", op);
    return NULL;
  }
  if (!training && !rm) {
    sg_error_set("%s: evaluation mode needs running_mean and running_var", op);
    return NULL;
  }
  if (training && N * L <= 1) {
    sg_error_set("%s: expected more than 1 value per channel when training (input %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  if (!(eps >= 0) || !(momentum >= 0 && momentum <= 1)) {
    sg_error_set("%s: need eps >= 0 and momentum in [0, 1] (got eps %g, momentum %g)", op, eps, momentum);
    return NULL;
  }
  sg_device dev = SG_DEVICE_OF(x);
  const sg_backend *be = sg_backend_get(dev);
  if (!be) return NULL;
  if (relu && !(be->norm.batch_norm_relu && be->norm.batch_norm_relu_backward)) { /* no fused entry: the two ops */
    sg_tensor *y = batch_norm(x, rm, rv, weight, bias, training, momentum, eps, false);
    sg_tensor *r = y ? sg_unary(SG_RELU, y) : NULL;
    sg_tensor_decref(y);
    return r;
  }
  sg_path_note(SG_PATH_NORM, be->name); /* a cpu backend names its own path */
  bool ok = true;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *wc = contig_opt(weight, &ok), *bc = contig_opt(bias, &ok);
  sg_tensor *out = xc && ok ? sg_empty(x->ndim, x->size, x->dtype, dev) : NULL, *st = NULL;
  int rc = -1;
  if (out && relu)
    rc = SG_BACKEND_CALL(dev, norm.batch_norm_relu, op, xc, rm, rv, wc, bc, training, momentum, eps, out, &st);
  else if (out)
    rc = SG_BACKEND_CALL(dev, norm.batch_norm, op, xc, rm, rv, wc, bc, training, momentum, eps, out, &st);
  sg_tensor_decref(xc); sg_tensor_decref(wc); sg_tensor_decref(bc);
  if (rc) {
    sg_tensor_decref(out);
    return NULL;
  }
  sg_tensor *ins[3] = {x, weight, bias};
  sg_node *n = sg_record(op, batch_norm_backward, out, 3, ins);
  if (n) {
    n->i[0] = training;
    n->i[1] = relu;
    sg_node_save(n, x);
    sg_node_save(n, weight);
    sg_node_save(n, st);
    if (relu) sg_node_save(n, out);
  }
  sg_tensor_decref(st);
  return out;
}

sg_tensor *sg_batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *weight, sg_tensor *bias,
                         bool training, double momentum, double eps) {
  return batch_norm(x, rm, rv, weight, bias, training, momentum, eps, false);
}

sg_tensor *sg_batch_norm_relu(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *weight, sg_tensor *bias,
                              bool training, double momentum, double eps) {
  return batch_norm(x, rm, rv, weight, bias, training, momentum, eps, true);
}

/* ---------------------------------------------------------------- group and layer norm
 * Both are one computation: group norm sees x as [N, C, L] (L = product of the trailing dims) in G groups of
 * C/G channels, channel c scaled by weight[c]; layer norm over the last k dims (D values) is the case N = leading
 * rows, C = D, G = 1, L = 1 (each element its own "channel" with its own weight).
 * Node: i[0..3] N, C, G, L; saved x, weight (or NULL) and the statistics. */

static int group_norm_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_device dev = n->in_device[0];
  sg_dtype dt = n->in_dtype[0];
  sg_tensor *x = sg_node_saved(n, 0), *w = n->saved[1] ? sg_node_saved(n, 1) : NULL, *st = sg_node_saved(n, 2);
  if (!x || (n->saved[1] && !w) || !st) return -1;
  bool ok = true;
  sg_tensor *xc = sg_nn_contig(x, dt), *gc = xc ? sg_nn_contig(g, dt) : NULL, *wc = contig_opt(w, &ok);
  sg_tensor *out[3] = {NULL, NULL, NULL};
  ok = ok && gc && alloc_grads(n, out);
  ok = ok && SG_BACKEND_CALL(dev, norm.group_norm_backward, n->op, xc, gc, wc, st, n->i[0], n->i[1], n->i[2],
                             n->i[3], out[0], out[1], out[2]) == 0;
  sg_tensor_decref(xc); sg_tensor_decref(gc); sg_tensor_decref(wc);
  return give_grads(ok, out, gin);
}

/* the shared body once the arguments are checked */
static sg_tensor *norm_run(const char *op, sg_tensor *x, sg_tensor *weight, sg_tensor *bias, int64_t N, int64_t C,
                           int64_t G, int64_t L, double eps) {
  sg_tensor *all[3] = {x, weight, bias};
  if (!sg_same_device(op, 3, all)) return NULL;
  sg_device dev = SG_DEVICE_OF(x);
  bool ok = true;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *wc = contig_opt(weight, &ok), *bc = contig_opt(bias, &ok);
  sg_tensor *out = xc && ok ? sg_empty(x->ndim, x->size, x->dtype, dev) : NULL, *st = NULL;
  if (out && SG_BACKEND_CALL(dev, norm.group_norm, op, xc, wc, bc, N, C, G, L, eps, out, &st)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  sg_tensor_decref(xc); sg_tensor_decref(wc); sg_tensor_decref(bc);
  if (!out) return NULL;
  sg_tensor *ins[3] = {x, weight, bias};
  sg_node *n = sg_record(op, group_norm_backward, out, 3, ins);
  if (n) {
    n->i[0] = N; n->i[1] = C; n->i[2] = G; n->i[3] = L;
    sg_node_save(n, x);
    sg_node_save(n, weight);
    sg_node_save(n, st);
  }
  sg_tensor_decref(st);
  return out;
}

static bool check_eps(const char *op, double eps) {
  if (!(eps >= 0) || isinf(eps)) {
    sg_error_set("%s: eps must be a finite number >= 0 (got %g)", op, eps);
    return false;
  }
  return true;
}

/* weight/bias of exactly the shape of x's last k dims */
static bool check_affine(const char *op, const char *arg, const sg_tensor *t, const sg_tensor *x, int k) {
  if (!t) return true;
  if (!sg_nn_check_float_dev(op, arg, t)) return false;
  const int64_t *want = x->size + x->ndim - k;
  bool ok = t->ndim == k;
  for (int d = 0; ok && d < k; d++) ok = t->size[d] == want[d];
  if (!ok) {
    char buf[96];
    sg_error_set("%s: %s must have shape %s for input %s (got %s)", op, arg, sg_shape_str(k, want, buf, sizeof buf),
                 SG_SHAPE_STR(x), SG_SHAPE_STR(t));
    return false;
  }
  return true;
}

sg_tensor *sg_group_norm(sg_tensor *x, int64_t groups, sg_tensor *weight, sg_tensor *bias, double eps) {
  const char *op = "group_norm";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  if (x->ndim < 2) {
    sg_error_set("%s: input must have at least 2 dims [N,C,...] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  int64_t N = x->size[0], C = x->size[1], L = 1;
  for (int d = 2; d < x->ndim; d++) L *= x->size[d];
  if (groups < 1) {
    sg_error_set("%s: groups must be at least 1 (got %lld)", op, (long long)groups);
    return NULL;
  }
  if (C % groups != 0) {
    sg_error_set("%s: %lld channels do not split into %lld groups (input %s)", op, (long long)C, (long long)groups,
                 SG_SHAPE_STR(x));
    return NULL;
  }
  if (weight && !sg_nn_check_float_dev(op, "weight", weight)) return NULL;
  if (bias && !sg_nn_check_float_dev(op, "bias", bias)) return NULL;
  for (int k = 0; k < 2; k++) {
    const sg_tensor *t = k ? bias : weight;
    if (t && (t->ndim != 1 || t->size[0] != C)) {
      sg_error_set("%s: %s must have shape [%lld] for input %s (got %s)", op, k ? "bias" : "weight", (long long)C,
                   SG_SHAPE_STR(x), SG_SHAPE_STR(t));
      return NULL;
    }
  }
  if (!check_eps(op, eps)) return NULL;
  return norm_run(op, x, weight, bias, N, C, groups, L, eps);
}

sg_tensor *sg_layer_norm(sg_tensor *x, int k, sg_tensor *weight, sg_tensor *bias, double eps) {
  const char *op = "layer_norm";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  if (k < 1) {
    sg_error_set("%s: the number of normalized dims must be at least 1 (got %d)", op, k);
    return NULL;
  }
  if (x->ndim < k) {
    sg_error_set("%s: input %s has too few dims to normalise over the last %d", op, SG_SHAPE_STR(x), k);
    return NULL;
  }
  if (!check_affine(op, "weight", weight, x, k) || !check_affine(op, "bias", bias, x, k) || !check_eps(op, eps))
    return NULL;
  int64_t R = 1, D = 1;
  for (int d = 0; d < x->ndim; d++) *(d < x->ndim - k ? &R : &D) *= x->size[d];
  return norm_run(op, x, weight, bias, R, D, 1, 1, eps);
}
