/* Reference reductions. Each output element reduces one row: the elements of
 * the reduced dims perm[nkeep..) in row-major order of that permutation, read
 * in place through the input's strides (any dtype, any strides). Floats
 * accumulate in double, integers in int64 (wrapping like PyTorch); max/min and
 * their positions take the first NaN of a row, else the first extreme. */
#include "ref.h"
#include <math.h>
#include <string.h>

sg_ref_dims sg_ref_reduce_dims(const sg_tensor *t, const int *perm, int from, int to) {
  sg_ref_dims l;
  memset(&l, 0, sizeof l);
  for (int k = from; k < to; k++) {
    int64_t sz = t->size[perm[k]], st = t->stride[perm[k]];
    if (sz == 1) continue;
    if (l.ndim > 0 && l.stride[l.ndim - 1] == st * sz) { /* walks on where the previous dim left off */
      l.size[l.ndim - 1] *= sz;
      l.stride[l.ndim - 1] = st;
      continue;
    }
    l.size[l.ndim] = sz;
    l.stride[l.ndim] = st;
    l.ndim++;
  }
  return l;
}

int64_t sg_ref_dims_offset(const sg_ref_dims *l, int n, int64_t i) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; d--) {
    off += (i % l->size[d]) * l->stride[d];
    i /= l->size[d];
  }
  return off;
}

int64_t sg_ref_dims_lines(const sg_ref_dims *l) {
  int64_t n = 1;
  for (int d = 0; d + 1 < l->ndim; d++) n *= l->size[d];
  return n;
}

/* the running state of one row */
typedef struct {
  double f;     /* float sum, product or extreme */
  int64_t i;    /* the same for integers */
  int64_t pos, best, cnt;
  bool all, any;
} racc;

static void acc_float(racc *r, int kind, double v) {
  switch (kind) {
  case R_SUM: r->f += v; break;
  case R_PROD: r->f *= v; break;
  case R_MAX: case R_ARGMAX: if (r->pos == 0 || (r->f == r->f && (v > r->f || v != v))) { r->f = v; r->best = r->pos; } break;
  case R_MIN: case R_ARGMIN: if (r->pos == 0 || (r->f == r->f && (v < r->f || v != v))) { r->f = v; r->best = r->pos; } break;
  case R_ALL: r->all = r->all && v != 0; break;
  case R_ANY: r->any = r->any || v != 0; break;
  case R_NONZERO: r->cnt += v != 0; break;
  }
  r->pos++;
}

static void acc_int(racc *r, int kind, int64_t v) {
  switch (kind) {
  case R_SUM: r->i = (int64_t)((uint64_t)r->i + (uint64_t)v); break;
  case R_PROD: r->i = (int64_t)((uint64_t)r->i * (uint64_t)v); break;
  case R_MAX: case R_ARGMAX: if (r->pos == 0 || v > r->i) { r->i = v; r->best = r->pos; } break;
  case R_MIN: case R_ARGMIN: if (r->pos == 0 || v < r->i) { r->i = v; r->best = r->pos; } break;
  case R_ALL: r->all = r->all && v != 0; break;
  case R_ANY: r->any = r->any || v != 0; break;
  case R_NONZERO: r->cnt += v != 0; break;
  }
  r->pos++;
}

int sg_ref_reduce(int kind, sg_tensor *a, const int *perm, int nkeep, sg_tensor *out) {
  sg_dtype dt = a->dtype;
  size_t es = sg_dtype_size(dt), os = sg_dtype_size(out->dtype);
  bool fl = sg_dtype_is_float(dt);
  sg_ref_dims keep = sg_ref_reduce_dims(a, perm, 0, nkeep), row = sg_ref_reduce_dims(a, perm, nkeep, a->ndim);
  int64_t outer = sg_numel(out), lines = sg_ref_dims_lines(&row);
  int64_t inner = row.ndim ? row.size[row.ndim - 1] : 1, ist = row.ndim ? row.stride[row.ndim - 1] : 0;
  const char *base = sg_data_ptr(a);
  char *ob = sg_data_ptr(out);
  for (int64_t o = 0; o < outer; o++) {
    const char *r0 = base + sg_ref_dims_offset(&keep, keep.ndim, o) * (int64_t)es;
    racc r = {kind == R_PROD ? 1.0 : 0.0, kind == R_PROD ? 1 : 0, 0, 0, 0, true, false};
    for (int64_t l = 0; l < lines; l++) {
      const char *p = r0 + sg_ref_dims_offset(&row, row.ndim - 1, l) * (int64_t)es;
      for (int64_t j = 0; j < inner; j++) {
        const char *e = p + j * ist * (int64_t)es;
        if (fl) acc_float(&r, kind, sg_load_f64(e, dt));
        else acc_int(&r, kind, sg_load_i64(e, dt));
      }
    }
    char *dst = ob + o * (int64_t)os;
    if (kind == R_ARGMAX || kind == R_ARGMIN) *(int64_t *)dst = r.best;
    else if (kind == R_ALL) *(uint8_t *)dst = r.all;
    else if (kind == R_ANY) *(uint8_t *)dst = r.any;
    else if (kind == R_NONZERO) *(int64_t *)dst = r.cnt;
    else if (fl) sg_store_f64(dst, out->dtype, r.f);
    else sg_store_i64(dst, out->dtype, r.i);
  }
  return 0;
}

int sg_ref_prod_backward_rows(sg_tensor *d, sg_tensor *rows, int64_t outer, int64_t row) {
  /* the product of the others: prefix times suffix, exact with zeros */
  const double *x = sg_data_ptr(rows);
  double *dr = sg_data_ptr(d);
  for (int64_t o = 0; o < outer; o++) {
    double acc = 1;
    for (int64_t i = 0; i < row; i++) { dr[o * row + i] = acc; acc *= x[o * row + i]; }
    acc = 1;
    for (int64_t i = row - 1; i >= 0; i--) { dr[o * row + i] *= acc; acc *= x[o * row + i]; }
  }
  return 0;
}

void sg_ref_fill_reduce(sg_backend *t);
void sg_ref_fill_reduce(sg_backend *t) {
  t->reduce.reduce = sg_ref_reduce;
  t->reduce.prod_backward_rows = sg_ref_prod_backward_rows;
}
