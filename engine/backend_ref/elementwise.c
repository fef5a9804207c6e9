/* Reference elementwise ops (binary, unary and their gradients, clamp, where):
 * one element at a time through sg_iter, in double for float compute types and
 * in wrapping int64 for the others. An input is
 * read in its own dtype and rounded to the compute type ct first, which is
 * what casting it to ct would give, so no temporary is needed. */
#include "ref.h"
#include "../core/iter.h"
#include "../ops/ops.h"
#include "../ops/elementwise_math.h"
#include <math.h>
#include <string.h>

/* the scalar math is elementwise_math.h's, which the CUDA kernels compile too; its op codes are the table's */
#define SAME(a, b) _Static_assert((int)(a) == (int)(b), #a " != " #b);
SAME(SG_NEG, SGK_NEG) SAME(SG_ABS, SGK_ABS) SAME(SG_EXP, SGK_EXP) SAME(SG_LOG, SGK_LOG) SAME(SG_LOG1P, SGK_LOG1P)
SAME(SG_SQRT, SGK_SQRT) SAME(SG_RSQRT, SGK_RSQRT) SAME(SG_SIGMOID, SGK_SIGMOID) SAME(SG_TANH, SGK_TANH)
SAME(SG_RELU, SGK_RELU) SAME(SG_NOT, SGK_NOT) SAME(SG_SIGN, SGK_SIGN) SAME(SG_SQUARE, SGK_SQUARE)
SAME(SG_GELU, SGK_GELU) SAME(SG_GELU_TANH, SGK_GELU_TANH) SAME(SG_NUNOPS, SGK_NUNOPS)
SAME(SG_ADD, SGK_ADD) SAME(SG_SUB, SGK_SUB) SAME(SG_MUL, SGK_MUL) SAME(SG_DIV, SGK_DIV) SAME(SG_POW, SGK_POW)
SAME(SG_MINIMUM, SGK_MINIMUM) SAME(SG_MAXIMUM, SGK_MAXIMUM) SAME(SG_EQ, SGK_EQ) SAME(SG_NE, SGK_NE) SAME(SG_LT, SGK_LT)
SAME(SG_LE, SGK_LE) SAME(SG_GT, SGK_GT) SAME(SG_GE, SGK_GE) SAME(SG_AND, SGK_AND) SAME(SG_OR, SGK_OR)
SAME(SG_NBINOPS, SGK_NBINOPS)
#undef SAME

double sg_ref_unary_f(int op, double x) { return sg_um_unary_f(op, x); }
int64_t sg_ref_unary_i(int op, int64_t x) { return sg_um_unary_i(op, x); }
double sg_ref_unary_grad(int op, double g, double x, double y) { return sg_um_unary_grad(op, g, x, y); }

typedef struct { int op; sg_dtype at, ct, ot; double lo, hi; } uctx;

static void unary_row(char **p, const int64_t *s, int64_t n, void *vc) {
  const uctx *c = vc;
  for (int64_t i = 0; i < n; i++) {
    const char *pa = p[1] + i * s[1];
    char *po = p[0] + i * s[0];
    if (sg_dtype_is_float(c->ct)) {
      double x = sg_load_f64(pa, c->at);
      if (c->ct == SG_F32) x = (float)x;
      double y = c->op < 0 ? (x < c->lo ? c->lo : (x > c->hi ? c->hi : x)) : sg_ref_unary_f(c->op, x);
      sg_store_f64(po, c->ot, y);
    } else if (c->op < 0) { /* clamp of integers: bounds compared in double */
      double x = (double)sg_load_i64(pa, c->at);
      sg_store_f64(po, c->ot, x < c->lo ? c->lo : (x > c->hi ? c->hi : x));
    } else {
      sg_store_i64(po, c->ot, sg_ref_unary_i(c->op, sg_load_i64(pa, c->at)));
    }
  }
}

int sg_ref_unary(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi) {
  sg_tensor *t[2] = {out, a};
  sg_iter it;
  sg_iter_init(&it, 2, t, out->ndim, out->size);
  uctx c = {op, a->dtype, ct, out->dtype, lo, hi};
  sg_iter_run(&it, unary_row, &c);
  return 0;
}

static void unary_backward_row(char **p, const int64_t *s, int64_t n, void *vc) {
  const uctx *c = vc;
  for (int64_t i = 0; i < n; i++) {
    double g = sg_load_f64(p[1] + i * s[1], c->ct), x = sg_load_f64(p[2] + i * s[2], c->ct),
           y = sg_load_f64(p[3] + i * s[3], c->ct);
    sg_store_f64(p[0] + i * s[0], c->ct, sg_ref_unary_grad(c->op, g, x, y));
  }
}

int sg_ref_unary_backward(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y) {
  sg_tensor *t[4] = {out, g, x, y};
  sg_iter it;
  sg_iter_init(&it, 4, t, out->ndim, out->size);
  uctx c = {op, out->dtype, out->dtype, out->dtype, 0, 0};
  sg_iter_run(&it, unary_backward_row, &c);
  return 0;
}

/* ------------------------------------------------------------------ binary */
double sg_ref_binary_f(int op, double a, double b) { return sg_um_binary_f(op, a, b); }
int64_t sg_ref_binary_i(int op, int64_t a, int64_t b) { return sg_um_binary_i(op, a, b); }

double sg_ref_load_ct_f(const void *p, sg_dtype t, sg_dtype ct) {
  double v = sg_load_f64(p, t);
  return ct == SG_F32 ? (double)(float)v : v;
}

int64_t sg_ref_load_ct_i(const void *p, sg_dtype t, sg_dtype ct) {
  if (ct == SG_BOOL) return sg_load_f64(p, t) != 0; /* a cast to bool: nonzero (NaN too) is true */
  return sg_load_i64(p, t);
}

typedef struct { int op; sg_dtype at, bt, ct, ot; } bctx;

static void binary_row(char **p, const int64_t *s, int64_t n, void *vc) {
  const bctx *c = vc;
  for (int64_t i = 0; i < n; i++) {
    const char *pa = p[1] + i * s[1], *pb = p[2] + i * s[2];
    char *po = p[0] + i * s[0];
    if (sg_dtype_is_float(c->ct))
      sg_store_f64(po, c->ot,
                   sg_ref_binary_f(c->op, sg_ref_load_ct_f(pa, c->at, c->ct), sg_ref_load_ct_f(pb, c->bt, c->ct)));
    else
      sg_store_i64(po, c->ot,
                   sg_ref_binary_i(c->op, sg_ref_load_ct_i(pa, c->at, c->ct), sg_ref_load_ct_i(pb, c->bt, c->ct)));
  }
}

int sg_ref_binary(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct) {
  sg_tensor *t[3] = {out, a, b};
  sg_iter it;
  sg_iter_init(&it, 3, t, out->ndim, out->size);
  bctx c = {op, a->dtype, b->dtype, ct, out->dtype};
  sg_iter_run(&it, binary_row, &c);
  return 0;
}

/* ------------------------------------------------------------------ where */
static void where_row(char **p, const int64_t *s, int64_t n, void *vc) {
  size_t es = *(const size_t *)vc;
  for (int64_t i = 0; i < n; i++)
    memcpy(p[0] + i * s[0], *(const uint8_t *)(p[1] + i * s[1]) ? p[2] + i * s[2] : p[3] + i * s[3], es);
}

int sg_ref_where(sg_tensor *out, sg_tensor *cond, sg_tensor *a, sg_tensor *b) {
  sg_tensor *t[4] = {out, cond, a, b};
  sg_iter it;
  sg_iter_init(&it, 4, t, out->ndim, out->size);
  size_t es = sg_dtype_size(out->dtype);
  sg_iter_run(&it, where_row, &es);
  return 0;
}

void sg_ref_fill_elementwise(sg_backend *t);
void sg_ref_fill_elementwise(sg_backend *t) {
  t->elementwise.binary = sg_ref_binary;
  t->elementwise.where = sg_ref_where;
  t->elementwise.unary = sg_ref_unary;
  t->elementwise.unary_backward = sg_ref_unary_backward;
}
