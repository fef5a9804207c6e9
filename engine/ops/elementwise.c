/* Elementwise ops with broadcasting and PyTorch-style type promotion: shapes,
 * result and compute dtypes and autograd here, the computation in the device
 * table's elementwise entries (backend_ref/elementwise.c is the reference). */
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend.h"
#include <math.h>
#include <string.h>

static const char *BIN_NAMES[SG_NBINOPS] = {"add", "sub", "mul", "div", "pow", "minimum", "maximum", "eq", "ne",
                                            "lt", "le", "gt", "ge", "logical_and", "logical_or"};
static const char *UN_NAMES[SG_NUNOPS] = {"neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt",
                                          "sigmoid", "tanh", "relu", "logical_not", "sign", "square",
                                          "gelu", "gelu_tanh"};
const char *sg_binop_name(sg_binop op) { return BIN_NAMES[op]; }
const char *sg_unop_name(sg_unop op) { return UN_NAMES[op]; }

static bool is_compare(sg_binop op) { return op >= SG_EQ && op <= SG_GE; }
static bool is_logical(sg_binop op) { return op == SG_AND || op == SG_OR; }

/* ------------------------------------------------------------------ drivers */
static sg_tensor *cast_nograd(sg_tensor *t, sg_dtype dt) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *r = sg_to_dtype(t, dt);
  sg_set_grad_enabled(prev);
  return r;
}

/* PyTorch's rule for host scalars: a 0-dim CPU tensor used with a tensor on
 * another device is copied there (differentiably when it needs grad; else as
 * a fill of its value, which needs no transfer), so numbers and scalars made
 * on the host mix with GPU tensors. *t becomes the copy, kept in *hold for
 * the caller to release; false with the error set when the copy fails. */
static bool scalar_to(sg_tensor **t, const sg_tensor *peer, sg_tensor **hold) {
  sg_device dev = peer->storage->device;
  if ((*t)->storage->device == dev || (*t)->storage->device != SG_CPU || (*t)->ndim != 0) return true;
  double v = sg_get_flat(*t, 0);
  bool exact = (*t)->dtype != SG_I64 || fabs(v) < 9007199254740992.0; /* i64 beyond 2^53 is not a double */
  *hold = sg_needs_grad(1, t) || !exact ? sg_to_device(*t, dev) : sg_scalar(v, (*t)->dtype, dev);
  if (!*hold) return false;
  *t = *hold;
  return true;
}

static bool same_device(const char *op, sg_tensor *a, sg_tensor *b) {
  if (a->storage->device == b->storage->device) return true;
  sg_error_set("%s: tensors on different devices (%s and %s)", op, sg_device_name(a->storage->device),
               sg_device_name(b->storage->device));
  return false;
}

/* Computes op(a, b) into `out` (already shaped like the broadcast result); the
 * backend converts a and b to the compute type ct. */
static int run_binary(sg_binop op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct) {
  return SG_BACKEND_CALL(SG_DEVICE_OF(out), elementwise.binary, BIN_NAMES[op], op, out, a, b, ct);
}

static sg_dtype compute_type(sg_binop op, sg_tensor *a, sg_tensor *b, sg_dtype *out) {
  sg_dtype ct = sg_promote(a->dtype, b->dtype);
  if (is_logical(op)) ct = SG_BOOL;
  if (op == SG_DIV && !sg_dtype_is_float(ct)) ct = SG_F32; /* true division */
  /* bool + bool and bool * bool stay bool (logical or / and), as in PyTorch */
  *out = (is_compare(op) || is_logical(op)) ? SG_BOOL : ct;
  /* 16-bit floats compute in f32 and round once when stored */
  if (ct == SG_F16 || ct == SG_BF16) ct = SG_F32;
  return ct;
}

static int binary_backward(sg_node *n, sg_tensor *g, sg_tensor **gin);

static bool check_types(const char *name, sg_binop op, const sg_tensor *a, const sg_tensor *b) {
  if (op == SG_SUB && a->dtype == SG_BOOL && b->dtype == SG_BOOL) {
    sg_error_set("%s: subtracting two bool tensors is not supported (use logical_and / logical_not)", name);
    return false;
  }
  return true;
}

static sg_tensor *binary(sg_binop op, sg_tensor *a, sg_tensor *b) {
  const char *name = BIN_NAMES[op];
  int nd; int64_t sz[SG_MAX_DIMS];
  if (!same_device(name, a, b) || !check_types(name, op, a, b) ||
      !sg_broadcast_shapes(name, a->ndim, a->size, b->ndim, b->size, &nd, sz)) return NULL;
  sg_dtype ot, ct = compute_type(op, a, b, &ot);
  sg_tensor *out = sg_empty(nd, sz, ot, a->storage->device);
  if (!out) return NULL;
  if (run_binary(op, out, a, b, ct)) { sg_tensor_decref(out); return NULL; }
  if (!is_compare(op) && !is_logical(op) && sg_dtype_is_float(ot)) {
    sg_tensor *in[2] = {a, b};
    sg_node *n = sg_record(name, binary_backward, out, 2, in);
    if (n) {
      n->i[0] = op;
      if (op == SG_MUL || op == SG_DIV || op == SG_POW || op == SG_MINIMUM || op == SG_MAXIMUM) {
        sg_node_save(n, a);
        sg_node_save(n, b);
      }
      if (op == SG_POW) sg_node_save(n, out);
    }
  }
  return out;
}

sg_tensor *sg_binary(sg_binop op, sg_tensor *a, sg_tensor *b) {
  sg_tensor *ha = NULL, *hb = NULL, *r = NULL;
  if (scalar_to(&a, b, &ha) && scalar_to(&b, a, &hb)) r = binary(op, a, b);
  sg_tensor_decref(ha);
  sg_tensor_decref(hb);
  return r;
}

/* Checks that an in-place write into `a` keeps autograd correct. */
static int inplace_check(const char *op, sg_tensor *a, int nin, sg_tensor **in) {
  if (!sg_needs_grad(nin, in)) return 0;
  if (a->requires_grad && !a->grad_fn) {
    sg_error_set("%s_: a leaf tensor that requires grad cannot be modified in place (use sg.no_grad or clone it)", op);
    return -1;
  }
  if (a->is_view) {
    sg_error_set("%s_: in-place ops on views are not tracked by autograd; use the out-of-place %s", op, op);
    return -1;
  }
  return 0;
}

/* History for an in-place result: an alias carries a's old history as the
 * op's first input, then a takes the new node. */
sg_tensor *sg_alias(sg_tensor *t);
static sg_node *record_inplace(const char *op, sg_backward_fn bw, sg_tensor *a, int nin, sg_tensor **in) {
  if (!sg_needs_grad(nin, in)) return NULL;
  sg_tensor *old = sg_alias(a);
  if (!old) return NULL;
  old->requires_grad = a->requires_grad;
  old->grad_fn = a->grad_fn;
  a->grad_fn = NULL;
  sg_tensor *in2[SG_NODE_MAX_IN];
  for (int k = 0; k < nin; k++) in2[k] = in[k] == a ? old : in[k];
  sg_node *n = sg_record(op, bw, a, nin, in2);
  sg_tensor_decref(old);
  return n;
}

static sg_tensor *binary_inplace(sg_binop op, sg_tensor *a, sg_tensor *b) {
  const char *name = BIN_NAMES[op];
  int nd; int64_t sz[SG_MAX_DIMS];
  if (!same_device(name, a, b) || !check_types(name, op, a, b) ||
      !sg_broadcast_shapes(name, a->ndim, a->size, b->ndim, b->size, &nd, sz)) return NULL;
  if (nd != a->ndim || sg_shape_numel(nd, sz) != sg_numel(a)) {
    sg_error_set("%s_: the result of shape %s does not fit the destination of shape %s", name,
                 sg_shape_str(nd, sz, (char[96]){0}, 96), SG_SHAPE_STR(a));
    return NULL;
  }
  sg_dtype ot, ct = compute_type(op, a, b, &ot);
  if ((sg_dtype_is_float(ot) && !sg_dtype_is_float(a->dtype)) || (a->dtype == SG_BOOL && ot != SG_BOOL)) {
    sg_error_set("%s_: the result type %s cannot be stored in place into a %s tensor", name, sg_dtype_name(ot),
                 sg_dtype_name(a->dtype));
    return NULL;
  }
  sg_tensor *in[2] = {a, b};
  if (inplace_check(name, a, 2, in)) return NULL;
  bool track = !is_compare(op) && !is_logical(op) && sg_dtype_is_float(a->dtype) && sg_needs_grad(2, in);
  bool saves = op == SG_MUL || op == SG_DIV || op == SG_POW || op == SG_MINIMUM || op == SG_MAXIMUM;
  sg_tensor *a_old = NULL, *b_old = NULL;
  if (track && saves) { /* the write below destroys a's old values: backward needs a copy */
    bool prev = sg_set_grad_enabled(false);
    a_old = sg_clone(a);
    b_old = !a_old ? NULL : b->storage == a->storage ? sg_clone(b) : sg_tensor_incref(b);
    sg_set_grad_enabled(prev);
    if (!b_old) { sg_tensor_decref(a_old); return NULL; }
  }
  sg_node *n = track ? record_inplace(name, binary_backward, a, 2, in) : NULL;
  if (n) {
    n->i[0] = op;
    if (saves) {
      sg_node_save(n, a_old);
      sg_node_save(n, b_old);
    }
    if (op == SG_POW) sg_node_save(n, a);
  }
  sg_tensor_decref(a_old);
  sg_tensor_decref(b_old);
  /* a is operand 0 and 1 at once: safe, every element is read before written */
  if (run_binary(op, a, a, b, ct)) return NULL;
  atomic_fetch_add(&a->storage->version, 1);
  if (n && op == SG_POW) n->saved_version[2] = atomic_load(&a->storage->version);
  return sg_tensor_incref(a);
}

sg_tensor *sg_binary_(sg_binop op, sg_tensor *a, sg_tensor *b) {
  sg_tensor *hb = NULL, *r = NULL;
  if (scalar_to(&b, a, &hb)) r = binary_inplace(op, a, b);
  sg_tensor_decref(hb);
  return r;
}

static sg_tensor *reduce_grad(sg_tensor *g, sg_node *n, int k) {
  return sg_sum_to(g, &n->in_shape[k]);
}

static int binary_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_binop op = (sg_binop)n->i[0];
  sg_tensor *a = NULL, *b = NULL, *t[4] = {0};
  if (n->nsaved) {
    if (!(a = sg_node_saved(n, 0)) || !(b = sg_node_saved(n, 1))) return -1;
  }
  int rc = -1;
  switch (op) {
  case SG_ADD:
    if (n->needs[0]) gin[0] = reduce_grad(g, n, 0);
    if (n->needs[1]) gin[1] = reduce_grad(g, n, 1);
    break;
  case SG_SUB:
    if (n->needs[0]) gin[0] = reduce_grad(g, n, 0);
    if (n->needs[1] && (t[0] = sg_unary(SG_NEG, g))) gin[1] = reduce_grad(t[0], n, 1);
    break;
  case SG_MUL:
    if (n->needs[0] && (t[0] = sg_mul(g, b))) gin[0] = reduce_grad(t[0], n, 0);
    if (n->needs[1] && (t[1] = sg_mul(g, a))) gin[1] = reduce_grad(t[1], n, 1);
    break;
  case SG_DIV:
    if ((t[0] = sg_div(g, b))) {
      if (n->needs[0]) gin[0] = reduce_grad(t[0], n, 0);
      /* d/db (a/b) = -(g/b) * a / b */
      if (n->needs[1] && (t[1] = sg_mul(t[0], a)) && (t[2] = sg_div(t[1], b)) && (t[3] = sg_unary(SG_NEG, t[2])))
        gin[1] = reduce_grad(t[3], n, 1);
    }
    break;
  case SG_POW: {
    sg_tensor *y = sg_node_saved(n, 2);
    if (!y) return -1;
    if (n->needs[0]) { /* g * b * a^(b-1), written as g * b * y / a where a != 0 */
      sg_tensor *one = sg_scalar(1, b->dtype, b->storage->device), *bm1 = one ? sg_sub(b, one) : NULL;
      sg_tensor *p = bm1 ? sg_binary(SG_POW, a, bm1) : NULL, *q = p ? sg_mul(p, b) : NULL;
      if (q && (t[0] = sg_mul(g, q))) gin[0] = reduce_grad(t[0], n, 0);
      sg_tensor_decref(one); sg_tensor_decref(bm1); sg_tensor_decref(p); sg_tensor_decref(q);
    }
    if (n->needs[1]) { /* g * y * log(a), 0 where a <= 0 (PyTorch's convention at a == 0) */
      sg_tensor *zero = sg_scalar(0, a->dtype, a->storage->device), *pos = zero ? sg_binary(SG_GT, a, zero) : NULL;
      sg_tensor *la = pos ? sg_unary(SG_LOG, a) : NULL, *m = la ? sg_mul(y, la) : NULL;
      sg_tensor *mm = m ? sg_where(pos, m, zero) : NULL;
      if (mm && (t[1] = sg_mul(g, mm))) gin[1] = reduce_grad(t[1], n, 1);
      sg_tensor_decref(zero); sg_tensor_decref(pos); sg_tensor_decref(la); sg_tensor_decref(m); sg_tensor_decref(mm);
    }
    break;
  }
  case SG_MINIMUM:
  case SG_MAXIMUM: { /* the chosen side gets g; ties split it evenly like PyTorch */
    sg_tensor *pick = sg_binary(op == SG_MAXIMUM ? SG_GT : SG_LT, a, b);
    sg_tensor *tie = pick ? sg_binary(SG_EQ, a, b) : NULL;
    sg_tensor *pf = tie ? sg_to_dtype(pick, g->dtype) : NULL, *tf = pf ? sg_to_dtype(tie, g->dtype) : NULL;
    sg_tensor *half = tf ? sg_scale(tf, 0.5) : NULL, *wa = half ? sg_add(pf, half) : NULL;
    if (wa && n->needs[0] && (t[0] = sg_mul(g, wa))) gin[0] = reduce_grad(t[0], n, 0);
    if (wa && n->needs[1]) {
      sg_tensor *one = sg_scalar(1, g->dtype, g->storage->device), *wb = one ? sg_sub(one, wa) : NULL;
      if (wb && (t[1] = sg_mul(g, wb))) gin[1] = reduce_grad(t[1], n, 1);
      sg_tensor_decref(one); sg_tensor_decref(wb);
    }
    sg_tensor_decref(pick); sg_tensor_decref(tie); sg_tensor_decref(pf); sg_tensor_decref(tf);
    sg_tensor_decref(half); sg_tensor_decref(wa);
    break;
  }
  default: break;
  }
  rc = (n->needs[0] && !gin[0]) || (n->nin > 1 && n->needs[1] && !gin[1]) ? -1 : 0;
  for (int k = 0; k < 4; k++) sg_tensor_decref(t[k]);
  return rc;
}

/* ------------------------------------------------------------------ unary */
/* the table that will run (the reference under sg.config.reference); a backend with several paths names the one
 * it took afterwards */
static void note_path(sg_device dev) {
  const sg_backend *be = sg_backend_get(dev);
  sg_path_note(SG_PATH_ELTWISE, be ? be->name : sg_device_name(dev));
}

static int unary_backward(sg_node *n, sg_tensor *g, sg_tensor **gin);

static sg_dtype unary_out_type(sg_unop op, sg_dtype in) {
  if (op == SG_NOT) return SG_BOOL;
  bool keeps_int = op == SG_NEG || op == SG_ABS || op == SG_RELU || op == SG_SIGN || op == SG_SQUARE;
  if (!sg_dtype_is_float(in) && !keeps_int) return SG_F32;
  if (in == SG_BOOL && op != SG_NOT) return op == SG_RELU || op == SG_ABS ? SG_BOOL : SG_I64;
  return in;
}

/* Computes op(a) into out; the backend converts a to the compute type ct
 * (clamp: op -1 with bounds lo, hi). */
static int run_unary(int op, sg_tensor *out, sg_tensor *a, double lo, double hi) {
  sg_dtype ct = sg_dtype_is_float(out->dtype) && out->dtype != SG_F64 ? SG_F32 : out->dtype;
  if (op == SG_NOT) ct = SG_BOOL;
  if (!sg_dtype_is_float(a->dtype) && sg_dtype_is_float(out->dtype)) ct = out->dtype == SG_F64 ? SG_F64 : SG_F32;
  if (out->dtype == SG_F32 || out->dtype == SG_F64) ct = out->dtype;
  sg_device dev = SG_DEVICE_OF(out);
  note_path(dev);
  return SG_BACKEND_CALL(dev, elementwise.unary, op < 0 ? "clamp" : UN_NAMES[op], op, out, a,
                         ct == SG_BOOL ? a->dtype : ct, lo, hi);
}

sg_tensor *sg_unary(sg_unop op, sg_tensor *a) {
  sg_tensor *out = sg_empty(a->ndim, a->size, unary_out_type(op, a->dtype), a->storage->device);
  if (!out) return NULL;
  if (run_unary(op, out, a, 0, 0)) { sg_tensor_decref(out); return NULL; }
  if (sg_dtype_is_float(out->dtype) && op != SG_NOT && op != SG_SIGN) {
    sg_node *n = sg_record(UN_NAMES[op], unary_backward, out, 1, &a);
    if (n) { n->i[0] = op; sg_node_save(n, a); sg_node_save(n, out); }
  }
  return out;
}

sg_tensor *sg_unary_(sg_unop op, sg_tensor *a) {
  sg_dtype ot = unary_out_type(op, a->dtype);
  if (ot != a->dtype && !(op == SG_NOT)) {
    sg_error_set("%s_: the result type %s cannot be stored in place into a %s tensor", UN_NAMES[op],
                 sg_dtype_name(ot), sg_dtype_name(a->dtype));
    return NULL;
  }
  if (inplace_check(UN_NAMES[op], a, 1, &a)) return NULL;
  sg_node *n = NULL;
  if (sg_dtype_is_float(a->dtype) && op != SG_SIGN && op != SG_NOT && sg_needs_grad(1, &a)) {
    /* the input's old values are gone after the write: keep a copy for backward */
    bool prev = sg_set_grad_enabled(false);
    sg_tensor *x = sg_clone(a);
    sg_set_grad_enabled(prev);
    if (!x) return NULL;
    n = record_inplace(UN_NAMES[op], unary_backward, a, 1, &a);
    if (n) { n->i[0] = op; sg_node_save(n, x); }
    sg_tensor_decref(x);
  }
  if (run_unary(op, a, a, 0, 0)) return NULL;
  atomic_fetch_add(&a->storage->version, 1);
  if (n) sg_node_save(n, a); /* saved after the write: its version is current */
  return sg_tensor_incref(a);
}

/* Which saved tensors the derivative reads: only those must be unmodified
 * (the other one is still used for its shape and dtype). */
static bool un_reads_x(int op) {
  return op == SG_ABS || op == SG_LOG || op == SG_LOG1P || op == SG_SQUARE || op == SG_GELU || op == SG_GELU_TANH;
}
static bool un_reads_y(int op) {
  return op == SG_EXP || op == SG_SQRT || op == SG_RSQRT || op == SG_SIGMOID || op == SG_TANH || op == SG_RELU;
}

static int unary_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  int op = (int)n->i[0];
  sg_tensor *x = un_reads_x(op) ? sg_node_saved(n, 0) : n->saved[0];
  sg_tensor *y = x ? (un_reads_y(op) ? sg_node_saved(n, 1) : n->saved[1]) : NULL;
  if (!y) return -1;
  sg_tensor *gc = sg_to_dtype(g, y->dtype), *xc = gc ? sg_to_dtype(x, y->dtype) : NULL;
  sg_tensor *out = xc ? sg_empty_like(y) : NULL;
  if (out) {
    sg_device dev = SG_DEVICE_OF(out);
    note_path(dev);
    if (!SG_BACKEND_CALL(dev, elementwise.unary_backward, UN_NAMES[op], op, out, gc, xc, y))
      gin[0] = sg_to_dtype(out, n->in_dtype[0]);
  }
  sg_tensor_decref(gc); sg_tensor_decref(xc); sg_tensor_decref(out);
  return gin[0] ? 0 : -1;
}

/* ------------------------------------------------------------------ clamp, where */
static int clamp_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *x = sg_node_saved(n, 0);
  if (!x) return -1;
  sg_device dev = x->storage->device;
  sg_tensor *lo = sg_scalar(n->f[0], x->dtype, dev), *hi = sg_scalar(n->f[1], x->dtype, dev);
  sg_tensor *m1 = lo && hi ? sg_binary(SG_GE, x, lo) : NULL, *m2 = m1 ? sg_binary(SG_LE, x, hi) : NULL;
  sg_tensor *m = m2 ? sg_binary(SG_AND, m1, m2) : NULL, *z = m ? sg_scalar(0, g->dtype, g->storage->device) : NULL;
  gin[0] = z ? sg_where(m, g, z) : NULL;
  sg_tensor_decref(lo); sg_tensor_decref(hi); sg_tensor_decref(m1); sg_tensor_decref(m2);
  sg_tensor_decref(m); sg_tensor_decref(z);
  return gin[0] ? 0 : -1;
}

static bool clamp_args(double lo, double hi) {
  if (lo != lo || hi != hi || lo > hi) { sg_error_set("clamp: min %g is greater than max %g", lo, hi); return false; }
  return true;
}

sg_tensor *sg_clamp(sg_tensor *a, double lo, double hi) {
  if (!clamp_args(lo, hi)) return NULL;
  sg_tensor *out = sg_empty_like(a);
  if (!out) return NULL;
  if (run_unary(-1, out, a, lo, hi)) { sg_tensor_decref(out); return NULL; }
  sg_node *n = sg_dtype_is_float(a->dtype) ? sg_record("clamp", clamp_backward, out, 1, &a) : NULL;
  if (n) { n->f[0] = lo; n->f[1] = hi; sg_node_save(n, a); }
  return out;
}

sg_tensor *sg_clamp_(sg_tensor *a, double lo, double hi) {
  if (!clamp_args(lo, hi) || inplace_check("clamp", a, 1, &a)) return NULL;
  sg_node *n = NULL;
  if (sg_dtype_is_float(a->dtype) && sg_needs_grad(1, &a)) {
    bool prev = sg_set_grad_enabled(false);
    sg_tensor *x = sg_clone(a);
    sg_set_grad_enabled(prev);
    if (!x) return NULL;
    n = record_inplace("clamp", clamp_backward, a, 1, &a);
    if (n) { n->f[0] = lo; n->f[1] = hi; sg_node_save(n, x); }
    sg_tensor_decref(x);
  }
  if (run_unary(-1, a, a, lo, hi)) return NULL;
  atomic_fetch_add(&a->storage->version, 1);
  return sg_tensor_incref(a);
}

static int where_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *c = sg_node_saved(n, 0);
  if (!c) return -1;
  sg_tensor *z = sg_scalar(0, g->dtype, g->storage->device);
  if (!z) return -1;
  int rc = 0;
  for (int k = 1; k <= 2; k++) {
    if (!n->needs[k]) continue;
    sg_tensor *m = k == 1 ? sg_where(c, g, z) : sg_where(c, z, g);
    gin[k] = m ? sg_sum_to(m, &n->in_shape[k]) : NULL;
    sg_tensor_decref(m);
    if (!gin[k]) rc = -1;
  }
  sg_tensor_decref(z);
  return rc;
}

static sg_tensor *where(sg_tensor *cond, sg_tensor *a, sg_tensor *b) {
  int n1, n2; int64_t s1[SG_MAX_DIMS], s2[SG_MAX_DIMS];
  if (!same_device("where", cond, a) || !same_device("where", a, b)) return NULL;
  if (!sg_broadcast_shapes("where", a->ndim, a->size, b->ndim, b->size, &n1, s1) ||
      !sg_broadcast_shapes("where", cond->ndim, cond->size, n1, s1, &n2, s2)) return NULL;
  sg_dtype dt = sg_promote(a->dtype, b->dtype);
  sg_tensor *cb = cond->dtype == SG_BOOL ? sg_tensor_incref(cond) : NULL;
  if (!cb) { /* nonzero means true */
    sg_tensor *z = sg_scalar(0, cond->dtype, cond->storage->device);
    cb = z ? sg_binary(SG_NE, cond, z) : NULL;
    sg_tensor_decref(z);
    if (!cb) return NULL;
  }
  sg_tensor *ac = cast_nograd(a, dt), *bc = ac ? cast_nograd(b, dt) : NULL;
  sg_tensor *out = bc ? sg_empty(n2, s2, dt, a->storage->device) : NULL;
  if (out) {
    if (SG_BACKEND_CALL(SG_DEVICE_OF(out), elementwise.where, "where", out, cb, ac, bc)) sg_tensor_assign(&out, NULL);
    if (out && sg_dtype_is_float(dt)) {
      sg_tensor *in[3] = {cb, a, b};
      sg_node *nd = sg_record("where", where_backward, out, 3, in);
      if (nd) sg_node_save(nd, cb);
    }
  }
  sg_tensor_decref(cb); sg_tensor_decref(ac); sg_tensor_decref(bc);
  return out;
}

sg_tensor *sg_where(sg_tensor *cond, sg_tensor *a, sg_tensor *b) {
  sg_tensor *peer = cond->storage->device != SG_CPU ? cond : a->storage->device != SG_CPU ? a : b;
  sg_tensor *hc = NULL, *ha = NULL, *hb = NULL, *r = NULL;
  if (scalar_to(&cond, peer, &hc) && scalar_to(&a, peer, &ha) && scalar_to(&b, peer, &hb)) r = where(cond, a, b);
  sg_tensor_decref(hc); sg_tensor_decref(ha); sg_tensor_decref(hb);
  return r;
}

sg_tensor *sg_masked_fill(sg_tensor *a, sg_tensor *mask, double v) {
  if (mask->dtype != SG_BOOL) {
    sg_error_set("masked_fill: mask must be a bool tensor, got %s", sg_dtype_name(mask->dtype));
    return NULL;
  }
  sg_tensor *s = sg_scalar(v, a->dtype, a->storage->device);
  if (!s) return NULL;
  sg_tensor *r = sg_where(mask, s, a);
  sg_tensor_decref(s);
  if (r && !sg_same_shape(r, a)) {
    sg_error_set("masked_fill: mask of shape %s does not broadcast to the tensor's shape %s", SG_SHAPE_STR(mask),
                 SG_SHAPE_STR(a));
    sg_tensor_decref(r);
    return NULL;
  }
  return r;
}

sg_tensor *sg_scale(sg_tensor *a, double s) {
  sg_tensor *k = sg_scalar(s, sg_dtype_is_float(a->dtype) ? a->dtype : SG_F32, a->storage->device);
  if (!k) return NULL;
  sg_tensor *r = sg_mul(a, k);
  sg_tensor_decref(k);
  return r;
}

sg_tensor *sg_scalar_like(double v, bool is_integer, const sg_tensor *like) {
  sg_dtype dt = like->dtype;
  if (!is_integer && !sg_dtype_is_float(dt)) dt = SG_F32;
  if (is_integer && dt == SG_BOOL) dt = SG_I64;
  return sg_scalar(v, dt, like->storage->device);
}
