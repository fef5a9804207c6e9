/* Matrix products: matmul (PyTorch semantics, batched with broadcasting) and bmm.
 *
 * Here the checks, the output, the operand views and autograd; the product in
 * the device table's matmul entry (backend_ref/matmul.c is the reference:
 * plain loops, floats accumulated in double, integers in int64 wrapping like
 * PyTorch, stored in the promoted dtype). Floating dtypes may take the
 * device's BLAS (OpenBLAS for f32/f64 on the cpu, cuBLAS on the GPU), which
 * reads a strided matrix directly when it is row-major or column-major (the
 * latter transposed): other layouts are made contiguous first. One shared B
 * whose A's batch dims merge with its rows becomes one [batch*n, k] product.
 * Under autocast (core/autocast.h) f32 operands are cast (differentiably) to
 * the autocast type first and the product is computed and returned in it.
 * sg_matmul_reference forces the plain loops on any device (for tests). */
#include "ops.h"
#include "../autograd/autograd.h"
#include "../core/autocast.h"
#include "../backend.h"
#include <limits.h>

sg_tensor *sg_matmul_reference(sg_tensor *a, sg_tensor *b);

/* How BLAS can read a rows x cols matrix with strides (rs, cs): row-major
 * (NoTrans, ld = rs) or column-major (Trans, ld = cs). Size-1 dims may have
 * any stride. Returns false when neither works. */
static bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool *trans, int64_t *ld) {
  int64_t mincols = cols > 1 ? cols : 1, minrows = rows > 1 ? rows : 1;
  if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= mincols)) {
    *trans = false;
    *ld = rows <= 1 ? mincols : rs;
  } else if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= minrows)) {
    *trans = true;
    *ld = cols <= 1 ? minrows : cs;
  } else {
    return false;
  }
  return *ld <= INT_MAX;
}

static bool blas_dims_ok(int64_t n, int64_t m, int64_t k) { return n <= INT_MAX && m <= INT_MAX && k <= INT_MAX; }

/* ------------------------------------------------------------------ forward */

static sg_tensor *nograd_contiguous(sg_tensor *t) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *c = sg_contiguous(t);
  sg_set_grad_enabled(prev);
  return c;
}

static sg_tensor *nograd_cast(sg_tensor *t, sg_dtype dt) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *c = sg_to_dtype(t, dt);
  sg_set_grad_enabled(prev);
  return c;
}

/* Matrix strides of operand t seen as [.., rows, cols]; a 1-D `a` is a row
 * [1,k] (is_b false), a 1-D `b` a column [k,1] (is_b true). */
static void mat_strides(const sg_tensor *t, bool is_b, int64_t *rs, int64_t *cs) {
  if (t->ndim == 1) {
    if (is_b) { *rs = t->stride[0]; *cs = 0; }
    else { *rs = 0; *cs = t->stride[0]; }
  } else {
    *rs = t->stride[t->ndim - 2];
    *cs = t->stride[t->ndim - 1];
  }
}

/* Batch dims 0..ndim-3 of t together with its row dim, merged into one dim
 * of stride *rs when their strides allow it (a plain view, no copy). */
static bool merge_rows(const sg_tensor *t, int64_t *rows, int64_t *rs) {
  int64_t total = 1, prev_stride = 0;
  bool have = false;
  for (int d = 0; d <= t->ndim - 2; d++) {
    total *= t->size[d];
    if (t->size[d] == 1) continue;
    if (have && prev_stride != t->stride[d] * t->size[d]) return false;
    have = true;
    prev_stride = t->stride[d];
  }
  *rows = total;
  *rs = have ? prev_stride : t->size[t->ndim - 1];
  return true;
}

/* Checks shapes and computes the product without recording autograd. */
static sg_tensor *mm_forward(const char *op, sg_tensor *a, sg_tensor *b, bool reference) {
  sg_tensor *ab[2] = {a, b};
  if (!sg_same_device(op, 2, ab)) return NULL;
  sg_device dev = a->storage->device;
  if (a->ndim == 0 || b->ndim == 0) {
    sg_error_set("%s: both arguments need at least 1 dim, got shapes %s and %s", op, SG_SHAPE_STR(a),
                 SG_SHAPE_STR(b));
    return NULL;
  }
  sg_dtype dt = sg_promote(a->dtype, b->dtype);
  if (dt == SG_BOOL) {
    sg_error_set("%s: bool tensors are not supported (got %s and %s; cast them first)", op, sg_dtype_name(a->dtype),
                 sg_dtype_name(b->dtype));
    return NULL;
  }
  int64_t k = a->size[a->ndim - 1];
  int64_t kb = b->ndim == 1 ? b->size[0] : b->size[b->ndim - 2];
  if (k != kb) {
    sg_error_set("%s: cannot multiply %s by %s (inner sizes %lld and %lld differ)", op, SG_SHAPE_STR(a),
                 SG_SHAPE_STR(b), (long long)k, (long long)kb);
    return NULL;
  }
  int64_t n = a->ndim == 1 ? 1 : a->size[a->ndim - 2];
  int64_t m = b->ndim == 1 ? 1 : b->size[b->ndim - 1];
  /* broadcast batch dims */
  int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = b->ndim > 2 ? b->ndim - 2 : 0, nbat = 0;
  int64_t bat[SG_MAX_DIMS];
  if (!sg_broadcast_shapes(op, na, a->size, nb, b->size, &nbat, bat)) {
    sg_error_set("%s: cannot multiply %s by %s (batch dims do not broadcast)", op, SG_SHAPE_STR(a),
                 SG_SHAPE_STR(b));
    return NULL;
  }
  int64_t osz[SG_MAX_DIMS];
  int ond = 0;
  for (int d = 0; d < nbat; d++) osz[ond++] = bat[d];
  if (a->ndim > 1) osz[ond++] = n;
  if (b->ndim > 1) osz[ond++] = m;

  sg_tensor *out = sg_empty(ond, osz, dt, dev);
  if (!out) return NULL;
  int64_t nbatch = sg_shape_numel(nbat, bat);
  if (nbatch == 0 || n == 0 || m == 0) return out;
  if (k == 0) {
    if (sg_fill_(out, 0)) { sg_tensor_decref(out); return NULL; }
    atomic_store(&out->storage->version, 0);
    return out;
  }

  sg_tensor *ac = nograd_cast(a, dt), *bc = ac ? nograd_cast(b, dt) : NULL;
  if (!bc) { sg_tensor_decref(ac); sg_tensor_decref(out); return NULL; }
  /* a device without BLAS for a floating dtype (the cpu for f16 and bf16) runs its plain loops on these views */
  bool blas_type = dt == SG_F32 || dt == SG_F64 || dt == SG_F16 || dt == SG_BF16;
  bool use_blas = !reference && blas_type && blas_dims_ok(n, m, k);
  if (use_blas) { /* BLAS needs unit stride on one dim of each matrix: copy the others */
    bool tr;
    int64_t ld, rs, cs;
    mat_strides(ac, false, &rs, &cs);
    if (!blas_layout(n, k, rs, cs, &tr, &ld)) {
      sg_tensor *c = nograd_contiguous(ac);
      sg_tensor_decref(ac);
      ac = c;
    }
    if (ac) {
      mat_strides(bc, true, &rs, &cs);
      if (!blas_layout(k, m, rs, cs, &tr, &ld)) {
        sg_tensor *c = nograd_contiguous(bc);
        sg_tensor_decref(bc);
        bc = c;
      }
    }
    if (!ac || !bc) { sg_tensor_decref(ac); sg_tensor_decref(bc); sg_tensor_decref(out); return NULL; }
  }

  sg_mat A = {0}, B = {0};
  A.data = sg_data_ptr(ac);
  B.data = sg_data_ptr(bc);
  mat_strides(ac, false, &A.rs, &A.cs);
  mat_strides(bc, true, &B.rs, &B.cs);
  /* per-batch strides (0 where an operand is broadcast) */
  int64_t sa[SG_MAX_DIMS], sb[SG_MAX_DIMS];
  bool b_shared = true;
  for (int d = 0; d < nbat; d++) {
    int da = d - (nbat - na), db = d - (nbat - nb);
    sa[d] = (da >= 0 && ac->size[da] != 1) ? ac->stride[da] : 0;
    sb[d] = (db >= 0 && bc->size[db] != 1) ? bc->stride[db] : 0;
    if (sb[d] != 0) b_shared = false;
  }
  int64_t rows = n, mrs = A.rs;
  /* one B for all batches and A's batch dims merge with its rows: a single
   * [batch*n, k] x [k, m] product (the usual "linear layer" case) */
  bool fold = nbat > 0 && b_shared && na == nbat && merge_rows(ac, &rows, &mrs) &&
              (!use_blas || blas_dims_ok(rows, m, k));
  if (fold) {
    bool tr;
    int64_t ld;
    if (use_blas && !blas_layout(rows, k, mrs, A.cs, &tr, &ld)) fold = false;
  }
  if (fold) A.rs = mrs;
  if (use_blas) {
    blas_layout(fold ? rows : n, k, A.rs, A.cs, &A.trans, &A.ld);
    blas_layout(k, m, B.rs, B.cs, &B.trans, &B.ld);
  }
  int rc = SG_BACKEND_CALL(dev, matmul.matmul, op, dt, use_blas, fold ? rows : n, m, k, A, B, sg_data_ptr(out),
                           fold ? 0 : nbat, bat, sa, sb);
  sg_tensor_decref(ac);
  sg_tensor_decref(bc);
  if (rc) { sg_tensor_decref(out); return NULL; }
  return out;
}

/* ------------------------------------------------------------------ backward */

/* sum over the shared batch dims of x[b]^T y[b]: x [.., p, q], y [.., p, r] -> [q, r] */
static sg_tensor *fold_product(sg_tensor *x, sg_tensor *y) {
  int64_t fx[2] = {-1, x->size[x->ndim - 1]}, fy[2] = {-1, y->size[y->ndim - 1]};
  sg_tensor *xf = sg_reshape(x, 2, fx), *yf = xf ? sg_reshape(y, 2, fy) : NULL;
  sg_tensor *xt = yf ? sg_transpose(xf, 0, 1) : NULL, *r = xt ? sg_matmul(xt, yf) : NULL;
  sg_tensor_decref(xf); sg_tensor_decref(yf); sg_tensor_decref(xt);
  return r;
}

static sg_tensor *mT(sg_tensor *t) { return sg_transpose(t, t->ndim - 2, t->ndim - 1); }

static int matmul_backward(sg_node *nd, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *a = NULL, *b = NULL;
  if (nd->needs[1] && !(a = sg_node_saved(nd, 0))) return -1;
  if (nd->needs[0] && !(b = sg_node_saved(nd, 1))) return -1;
  const sg_shape *sa = &nd->in_shape[0], *sb = &nd->in_shape[1];
  /* shapes with the dims a 1-D operand lost put back: A2 [.., n, k], B2 [.., k, m] */
  sg_shape sa2 = *sa, sb2 = *sb;
  if (sa->ndim == 1) { sa2.ndim = 2; sa2.size[0] = 1; sa2.size[1] = sa->size[0]; }
  if (sb->ndim == 1) { sb2.ndim = 2; sb2.size[0] = sb->size[0]; sb2.size[1] = 1; }
  int64_t gsz[SG_MAX_DIMS];
  int nbat = g->ndim - (sa->ndim > 1) - (sb->ndim > 1), gnd = 0;
  for (int d = 0; d < nbat; d++) gsz[gnd++] = g->size[d];
  gsz[gnd++] = sa2.size[sa2.ndim - 2];
  gsz[gnd++] = sb2.size[sb2.ndim - 1];
  sg_tensor *g2 = sg_reshape(g, gnd, gsz);
  if (!g2) return -1;
  int rc = 0;
  if (nd->needs[0]) { /* ga = g @ b^T */
    sg_tensor *B2 = sg_reshape(b, sb2.ndim, sb2.size), *r = NULL;
    if (B2 && sa2.ndim == 2 && sb2.ndim > 2) {
      sg_tensor *gt = mT(g2), *bt = gt ? mT(B2) : NULL;
      r = bt ? fold_product(gt, bt) : NULL;
      sg_tensor_decref(gt); sg_tensor_decref(bt);
    } else if (B2) {
      sg_tensor *bt = mT(B2), *p = bt ? sg_matmul(g2, bt) : NULL;
      r = p ? sg_sum_to(p, &sa2) : NULL;
      sg_tensor_decref(bt); sg_tensor_decref(p);
    }
    gin[0] = r ? sg_reshape(r, sa->ndim, sa->size) : NULL;
    sg_tensor_decref(B2); sg_tensor_decref(r);
    if (!gin[0]) rc = -1;
  }
  if (rc == 0 && nd->needs[1]) { /* gb = a^T @ g */
    sg_tensor *A2 = sg_reshape(a, sa2.ndim, sa2.size), *r = NULL;
    if (A2 && sb2.ndim == 2 && sa2.ndim > 2) {
      r = fold_product(A2, g2);
    } else if (A2) {
      sg_tensor *at = mT(A2), *p = at ? sg_matmul(at, g2) : NULL;
      r = p ? sg_sum_to(p, &sb2) : NULL;
      sg_tensor_decref(at); sg_tensor_decref(p);
    }
    gin[1] = r ? sg_reshape(r, sb->ndim, sb->size) : NULL;
    sg_tensor_decref(A2); sg_tensor_decref(r);
    if (!gin[1]) rc = -1;
  }
  sg_tensor_decref(g2);
  return rc;
}

static sg_tensor *mm_op(const char *op, sg_tensor *a, sg_tensor *b, bool reference) {
  if (!reference && a->storage->device == b->storage->device) { /* autocast: run in the 16-bit type */
    sg_dtype natural = sg_promote(a->dtype, b->dtype);
    sg_dtype ct = sg_autocast_compute_type(a->storage->device, natural);
    if (ct != natural) {
      sg_tensor *ac = sg_to_dtype(a, ct), *bc = ac ? sg_to_dtype(b, ct) : NULL; /* recorded: grads reach f32 */
      sg_tensor *out = bc ? mm_op(op, ac, bc, reference) : NULL;
      sg_tensor_decref(ac);
      sg_tensor_decref(bc);
      return out;
    }
  }
  sg_tensor *out = mm_forward(op, a, b, reference);
  if (!out || !sg_dtype_is_float(out->dtype)) return out;
  sg_tensor *in[2] = {a, b};
  sg_node *nd = sg_record(op, matmul_backward, out, 2, in);
  if (nd) {
    sg_node_save(nd, nd->needs[1] ? a : NULL); /* a is needed for b's gradient */
    sg_node_save(nd, nd->needs[0] ? b : NULL);
  }
  return out;
}

sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b) { return mm_op("matmul", a, b, false); }
sg_tensor *sg_matmul_reference(sg_tensor *a, sg_tensor *b) { return mm_op("matmul", a, b, true); }

sg_tensor *sg_bmm(sg_tensor *a, sg_tensor *b) {
  if (a->ndim != 3 || b->ndim != 3) {
    sg_error_set("bmm: expected two 3-D tensors [B,n,k] and [B,k,m], got shapes %s and %s", SG_SHAPE_STR(a),
                 SG_SHAPE_STR(b));
    return NULL;
  }
  if (a->size[0] != b->size[0]) {
    sg_error_set("bmm: batch sizes differ: shapes %s and %s", SG_SHAPE_STR(a), SG_SHAPE_STR(b));
    return NULL;
  }
  return mm_op("bmm", a, b, false);
}
