/* Reductions over any set of dims: the plan (kept dims first, then the
 * reduced ones, each output element reducing one row), the output and the
 * autograd nodes here; the computation in the device table's reduce entries
 * (backend_ref/reduce.c is the reference: double accumulation, int64 for
 * integers, in row order, so results do not depend on threads). */
#include <string.h>
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend.h"
#include <math.h>

typedef sg_reduce_kind rkind;
static const char *RNAMES[] = {"sum", "prod", "max", "min", "all", "any", "count_nonzero", "argmax", "argmin"};

/* Layout of a reduction: kept dims then reduced dims. */
typedef struct {
  int perm[SG_MAX_DIMS], nkeep;
  int64_t outer, row;
  int out_ndim;
  int64_t out_size[SG_MAX_DIMS];
} rplan;

static void plan(const sg_tensor *a, const bool *dims, bool keepdim, rplan *p) {
  int k = 0;
  p->outer = 1; p->row = 1; p->out_ndim = 0;
  for (int d = 0; d < a->ndim; d++)
    if (!(dims ? dims[d] : true)) { p->perm[k++] = d; p->outer *= a->size[d]; }
  p->nkeep = k;
  for (int d = 0; d < a->ndim; d++)
    if (dims ? dims[d] : true) { p->perm[k++] = d; p->row *= a->size[d]; }
  for (int d = 0; d < a->ndim; d++) {
    bool red = dims ? dims[d] : true;
    if (!red) p->out_size[p->out_ndim++] = a->size[d];
    else if (keepdim) p->out_size[p->out_ndim++] = 1;
  }
}

/* a as a contiguous [outer, row] block (a new reference). */
static sg_tensor *as_rows(sg_tensor *a, const rplan *p) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *pt = sg_permute(a, p->perm), *c = pt ? sg_contiguous(pt) : NULL;
  sg_set_grad_enabled(prev);
  sg_tensor_decref(pt);
  return c;
}

static sg_dtype result_type(rkind k, sg_dtype in) {
  switch (k) {
  case R_ALL: case R_ANY: return SG_BOOL;
  case R_NONZERO: case R_ARGMAX: case R_ARGMIN: return SG_I64;
  case R_SUM: case R_PROD: return sg_dtype_is_float(in) ? in : SG_I64;
  default: return in;
  }
}

/* gradient g of a reduced tensor, broadcast back to the input's shape */
static sg_tensor *expand_back(sg_tensor *g, const sg_node *n) {
  const sg_shape *in = &n->in_shape[0];
  sg_tensor *gk = sg_tensor_incref(g);
  if (!n->i[SG_MAX_DIMS]) { /* keepdim was false: put the reduced dims back as size 1 */
    int64_t sz[SG_MAX_DIMS];
    for (int d = 0; d < in->ndim; d++) sz[d] = n->i[d] ? 1 : in->size[d];
    sg_tensor *v = sg_reshape(gk, in->ndim, sz);
    sg_tensor_decref(gk);
    if (!(gk = v)) return NULL;
  }
  sg_tensor *e = sg_expand(gk, in->ndim, in->size);
  sg_tensor_decref(gk);
  return e;
}

static int sum_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  gin[0] = expand_back(g, n);
  return gin[0] ? 0 : -1;
}

static int prod_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  /* d prod / d x_i = product of the others: prefix * suffix, exact with zeros */
  sg_tensor *x = sg_node_saved(n, 0);
  if (!x) return -1;
  bool dims[SG_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) dims[d] = n->i[d];
  rplan p;
  plan(x, dims, true, &p);
  sg_tensor *xf = sg_to_dtype(x, SG_F64), *rows = xf ? as_rows(xf, &p) : NULL;
  sg_tensor *d = rows ? sg_empty_like(rows) : NULL;
  if (d && SG_BACKEND_CALL(SG_DEVICE_OF(d), reduce.prod_backward_rows, "prod", d, rows, p.outer, p.row))
    sg_tensor_assign(&d, NULL);
  sg_tensor_decref(xf); sg_tensor_decref(rows);
  if (!d) return -1;
  /* rows layout back to the input layout */
  int64_t psz[SG_MAX_DIMS];
  int inv[SG_MAX_DIMS];
  for (int k = 0; k < x->ndim; k++) { psz[k] = x->size[p.perm[k]]; inv[p.perm[k]] = k; }
  sg_tensor *dv = sg_view(d, x->ndim, psz), *dp = dv ? sg_permute(dv, inv) : NULL;
  sg_tensor *ge = dp ? expand_back(g, n) : NULL, *m = ge ? sg_mul(ge, dp) : NULL;
  gin[0] = m ? sg_to_dtype(m, n->in_dtype[0]) : NULL;
  sg_tensor_decref(d); sg_tensor_decref(dv); sg_tensor_decref(dp); sg_tensor_decref(ge); sg_tensor_decref(m);
  return gin[0] ? 0 : -1;
}

static int extreme_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  /* ties share the gradient evenly (PyTorch's amax/amin) */
  sg_tensor *x = sg_node_saved(n, 0), *y = x ? sg_node_saved(n, 1) : NULL;
  if (!y) return -1;
  sg_tensor *ye = expand_back(y, n), *mask = ye ? sg_binary(SG_EQ, x, ye) : NULL;
  sg_tensor *mf = mask ? sg_to_dtype(mask, g->dtype) : NULL;
  bool dims[SG_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) dims[d] = n->i[d];
  sg_tensor *cnt = mf ? sg_sum(mf, dims, true) : NULL;
  sg_tensor *ge = cnt ? expand_back(g, n) : NULL, *q = ge ? sg_div(ge, cnt) : NULL;
  gin[0] = q ? sg_mul(q, mf) : NULL;
  sg_tensor_decref(ye); sg_tensor_decref(mask); sg_tensor_decref(mf); sg_tensor_decref(cnt);
  sg_tensor_decref(ge); sg_tensor_decref(q);
  return gin[0] ? 0 : -1;
}

static sg_tensor *reduce(rkind k, sg_tensor *a, const bool *dims, bool keepdim) {
  const char *name = RNAMES[k];
  rplan p;
  plan(a, dims, keepdim, &p);
  if (p.row == 0 && (k == R_MAX || k == R_MIN || k == R_ARGMAX || k == R_ARGMIN)) {
    sg_error_set("%s: cannot reduce over an empty dimension of %s", name, SG_SHAPE_STR(a));
    return NULL;
  }
  sg_tensor *out = sg_empty(p.out_ndim, p.out_size, result_type(k, a->dtype), SG_DEVICE_OF(a));
  if (out && SG_BACKEND_CALL(SG_DEVICE_OF(a), reduce.reduce, name, k, a, p.perm, p.nkeep, out))
    sg_tensor_assign(&out, NULL);
  if (!out) return NULL;
  sg_backward_fn bw = k == R_SUM ? sum_backward : k == R_PROD ? prod_backward
                     : (k == R_MAX || k == R_MIN) ? extreme_backward : NULL;
  if (bw && sg_dtype_is_float(a->dtype)) {
    sg_node *n = sg_record(name, bw, out, 1, &a);
    if (n) {
      for (int d = 0; d < a->ndim; d++) n->i[d] = dims ? dims[d] : 1;
      n->i[SG_MAX_DIMS] = keepdim;
      if (k != R_SUM) sg_node_save(n, a);
      if (k == R_MAX || k == R_MIN) sg_node_save(n, out);
    }
  }
  return out;
}

sg_tensor *sg_sum(sg_tensor *a, const bool *dims, bool keepdim) { return reduce(R_SUM, a, dims, keepdim); }
sg_tensor *sg_prod(sg_tensor *a, const bool *dims, bool keepdim) { return reduce(R_PROD, a, dims, keepdim); }
sg_tensor *sg_amax(sg_tensor *a, const bool *dims, bool keepdim) { return reduce(R_MAX, a, dims, keepdim); }
sg_tensor *sg_amin(sg_tensor *a, const bool *dims, bool keepdim) { return reduce(R_MIN, a, dims, keepdim); }
sg_tensor *sg_all(sg_tensor *a, const bool *dims, bool keepdim) { return reduce(R_ALL, a, dims, keepdim); }
sg_tensor *sg_any(sg_tensor *a, const bool *dims, bool keepdim) { return reduce(R_ANY, a, dims, keepdim); }
sg_tensor *sg_count_nonzero(sg_tensor *a, const bool *dims, bool keepdim) { return reduce(R_NONZERO, a, dims, keepdim); }

static int64_t reduced_count(const sg_tensor *a, const bool *dims) {
  int64_t c = 1;
  for (int d = 0; d < a->ndim; d++) if (!dims || dims[d]) c *= a->size[d];
  return c;
}

sg_tensor *sg_mean(sg_tensor *a, const bool *dims, bool keepdim) {
  if (!sg_dtype_is_float(a->dtype)) {
    sg_error_set("mean: needs a floating-point tensor, got %s (cast it first)", sg_dtype_name(a->dtype));
    return NULL;
  }
  sg_tensor *s = sg_sum(a, dims, keepdim);
  if (!s) return NULL;
  sg_tensor *m = sg_scale(s, 1.0 / (double)reduced_count(a, dims));
  sg_tensor_decref(s);
  return m;
}

sg_tensor *sg_var(sg_tensor *a, const bool *dims, bool keepdim, double correction) {
  if (!sg_dtype_is_float(a->dtype)) {
    sg_error_set("var: needs a floating-point tensor, got %s", sg_dtype_name(a->dtype));
    return NULL;
  }
  double dof = (double)reduced_count(a, dims) - correction;
  sg_tensor *m = sg_mean(a, dims, true), *d = m ? sg_sub(a, m) : NULL, *sq = d ? sg_unary(SG_SQUARE, d) : NULL;
  sg_tensor *s = sq ? sg_sum(sq, dims, keepdim) : NULL;
  sg_tensor *v = s ? sg_scale(s, dof > 0 ? 1.0 / dof : INFINITY) : NULL;
  sg_tensor_decref(m); sg_tensor_decref(d); sg_tensor_decref(sq); sg_tensor_decref(s);
  return v;
}

sg_tensor *sg_std(sg_tensor *a, const bool *dims, bool keepdim, double correction) {
  sg_tensor *v = sg_var(a, dims, keepdim, correction);
  if (!v) return NULL;
  sg_tensor *s = sg_unary(SG_SQRT, v);
  sg_tensor_decref(v);
  return s;
}

sg_tensor *sg_norm(sg_tensor *a, double p, const bool *dims, bool keepdim) {
  if (!sg_dtype_is_float(a->dtype)) {
    sg_error_set("norm: needs a floating-point tensor, got %s", sg_dtype_name(a->dtype));
    return NULL;
  }
  if (!(p > 0)) { sg_error_set("norm: p must be positive (or inf), got %g", p); return NULL; }
  sg_tensor *ab = sg_unary(SG_ABS, a), *r = NULL;
  if (!ab) return NULL;
  if (isinf(p)) r = sg_amax(ab, dims, keepdim);
  else if (p == 1) r = sg_sum(ab, dims, keepdim);
  else {
    sg_tensor *pe = sg_scalar(p, a->dtype, a->storage->device), *pw = pe ? sg_binary(SG_POW, ab, pe) : NULL;
    sg_tensor *s = pw ? sg_sum(pw, dims, keepdim) : NULL;
    sg_tensor *ie = s ? sg_scalar(1.0 / p, a->dtype, a->storage->device) : NULL;
    r = ie ? sg_binary(SG_POW, s, ie) : NULL;
    sg_tensor_decref(pe); sg_tensor_decref(pw); sg_tensor_decref(s); sg_tensor_decref(ie);
  }
  sg_tensor_decref(ab);
  return r;
}

/* ---- values and indices along one dim ---- */
static int index_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  /* the winner of each row gets the gradient: g where arange(size) == index, else 0 */
  sg_tensor *idx = sg_node_saved(n, 0);
  if (!idx) return -1;
  int dim = (int)n->i[0];
  const sg_shape *in = &n->in_shape[0];
  sg_tensor *gk = sg_tensor_incref(g), *ik = sg_tensor_incref(idx);
  if (!n->i[1]) {
    sg_tensor *a = sg_unsqueeze(gk, dim), *b = sg_unsqueeze(ik, dim);
    sg_tensor_decref(gk); sg_tensor_decref(ik);
    gk = a; ik = b;
  }
  int64_t vsz[SG_MAX_DIMS];
  for (int d = 0; d < in->ndim; d++) vsz[d] = d == dim ? in->size[d] : 1;
  sg_tensor *ar0 = gk && ik ? sg_arange(0, (double)in->size[dim], 1, SG_I64) : NULL; /* on the cpu */
  sg_tensor *ar = ar0 ? sg_to_device(ar0, g->storage->device) : NULL;
  sg_tensor_decref(ar0);
  sg_tensor *arv = ar ? sg_view(ar, in->ndim, vsz) : NULL;
  sg_tensor *mask = arv ? sg_binary(SG_EQ, arv, ik) : NULL;
  sg_tensor *z = mask ? sg_scalar(0, g->dtype, g->storage->device) : NULL;
  sg_tensor *w = z ? sg_where(mask, gk, z) : NULL;
  gin[0] = w;
  sg_tensor_decref(gk); sg_tensor_decref(ik); sg_tensor_decref(ar); sg_tensor_decref(arv);
  sg_tensor_decref(mask); sg_tensor_decref(z);
  return gin[0] ? 0 : -1;
}

static int extreme_dim(rkind k, sg_tensor *a, int dim, bool keepdim, sg_tensor **values, sg_tensor **indices) {
  const char *name = k == R_ARGMAX ? "max" : "min";
  if ((dim = sg_wrap_dim(name, dim, a->ndim)) < 0) return -1;
  bool dims[SG_MAX_DIMS] = {0};
  if (a->ndim) dims[dim] = true;
  sg_tensor *idx = reduce(k, a, a->ndim ? dims : NULL, keepdim);
  if (!idx) return -1;
  /* the values are the row extremes (the element at idx: same first-NaN rule) */
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *vv = reduce(k == R_ARGMAX ? R_MAX : R_MIN, a, a->ndim ? dims : NULL, keepdim);
  sg_set_grad_enabled(prev);
  if (!vv) { sg_tensor_decref(idx); return -1; }
  if (sg_dtype_is_float(a->dtype) && a->ndim) {
    sg_node *n = sg_record(name, index_backward, vv, 1, &a);
    if (n) { n->i[0] = dim; n->i[1] = keepdim; sg_node_save(n, idx); }
  } else if (sg_dtype_is_float(a->dtype)) {
    sg_record(name, sum_backward, vv, 1, &a); /* 0-dim: the value is the input */
  }
  *values = vv;
  *indices = idx;
  return 0;
}

int sg_max_dim(sg_tensor *a, int dim, bool keepdim, sg_tensor **v, sg_tensor **i) { return extreme_dim(R_ARGMAX, a, dim, keepdim, v, i); }
int sg_min_dim(sg_tensor *a, int dim, bool keepdim, sg_tensor **v, sg_tensor **i) { return extreme_dim(R_ARGMIN, a, dim, keepdim, v, i); }

static sg_tensor *arg_extreme(rkind k, sg_tensor *a, int dim, bool keepdim) {
  if (dim == SG_ALL_DIMS) return reduce(k, a, NULL, false);
  if ((dim = sg_wrap_dim(RNAMES[k], dim, a->ndim)) < 0) return NULL;
  bool dims[SG_MAX_DIMS] = {0};
  if (a->ndim) dims[dim] = true;
  return reduce(k, a, a->ndim ? dims : NULL, keepdim);
}

sg_tensor *sg_argmax(sg_tensor *a, int dim, bool keepdim) { return arg_extreme(R_ARGMAX, a, dim, keepdim); }
sg_tensor *sg_argmin(sg_tensor *a, int dim, bool keepdim) { return arg_extreme(R_ARGMIN, a, dim, keepdim); }

/* the dims g has more of, or broadcast from 1, summed away (keepdim), then shaped as `shape` */
sg_tensor *sg_sum_to(sg_tensor *g, const sg_shape *shape) {
  if (g->ndim == shape->ndim && memcmp(g->size, shape->size, sizeof(int64_t) * (size_t)g->ndim) == 0)
    return sg_tensor_incref(g);
  bool dims[SG_MAX_DIMS] = {0};
  int lead = g->ndim - shape->ndim;
  for (int d = 0; d < g->ndim; d++)
    dims[d] = d < lead || (shape->size[d - lead] == 1 && g->size[d] != 1);
  sg_tensor *s = sg_sum(g, dims, true);
  if (!s) return NULL;
  sg_tensor *r = sg_reshape(s, shape->ndim, shape->size);
  sg_tensor_decref(s);
  return r;
}
