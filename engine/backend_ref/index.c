/* Reference indexing: one loop over the output (or the index) positions, each
 * position unravelled and its source offset summed from scratch; elements
 * moved as bytes, sums taken in double (f32 + f32 rounds the same through
 * double) or as wrapping integers. */
#include "ref.h"
#include <string.h>

/* unravels the flat position i of a row-major shape into pos */
static void unravel(int64_t i, int nd, const int64_t *size, int64_t *pos) {
  for (int d = nd - 1; d >= 0; d--) {
    pos[d] = i % size[d];
    i /= size[d];
  }
}

/* the source offset (elements) of output position pos through the maps, or -1 for a hole */
static int64_t map_source(int nd, const int64_t *pos, const int64_t *stride, int64_t *const *maps) {
  int64_t off = 0;
  bool hole = false;
  for (int d = 0; d < nd; d++) {
    int64_t s = maps[d] ? maps[d][pos[d]] : pos[d];
    if (s < 0) hole = true;
    else off += s * stride[d];
  }
  return hole ? -1 : off;
}

int sg_ref_index_map(sg_tensor *out, const sg_tensor *a, int nd, const int64_t *out_size, const int64_t *astride,
                     int64_t *const *maps, const int64_t *map_data, int64_t map_len, double fill) {
  (void)map_data;
  (void)map_len;
  size_t es = sg_dtype_size(a->dtype);
  char fb[8] = {0};
  sg_store_f64(fb, a->dtype, fill);
  const char *src = sg_data_ptr(a);
  char *dst = sg_data_ptr(out);
  int64_t pos[SG_MAX_DIMS];
  for (int64_t i = 0, n = sg_numel(out); i < n; i++) {
    unravel(i, nd, out_size, pos);
    int64_t off = map_source(nd, pos, astride, maps);
    memcpy(dst + i * (int64_t)es, off < 0 ? fb : src + off * (int64_t)es, es);
  }
  return 0;
}

int sg_ref_index_map_backward(sg_tensor *ga, const sg_tensor *g, int nd, const int64_t *out_size,
                              int64_t *const *maps) {
  bool f64 = ga->dtype == SG_F64;
  void *gp = sg_data_ptr(ga);
  const void *gg = sg_data_ptr(g);
  int64_t n_in = sg_numel(ga), stride[SG_MAX_DIMS], pos[SG_MAX_DIMS];
  for (int64_t i = 0; i < n_in; i++) SG_REF_ST(gp, f64, i, 0.0);
  int off0 = nd - ga->ndim; /* ga's dims right-aligned to the output's */
  int64_t st = 1;
  for (int d = nd - 1; d >= 0; d--) {
    stride[d] = d < off0 ? 0 : st;
    if (d >= off0) st *= ga->size[d - off0];
  }
  for (int64_t i = 0, n = sg_numel(g); i < n; i++) {
    unravel(i, nd, out_size, pos);
    int64_t off = map_source(nd, pos, stride, maps);
    if (off >= 0) SG_REF_ST(gp, f64, off, SG_REF_LD(gp, f64, off) + SG_REF_LD(gg, f64, i));
  }
  return 0;
}

int sg_ref_gather_scatter(int mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix) {
  int nd = ix->ndim > 0 ? ix->ndim : 1;
  int64_t size[SG_MAX_DIMS], pos[SG_MAX_DIMS];
  for (int d = 0; d < nd; d++) size[d] = ix->ndim ? ix->size[d] : 1;
  sg_dtype dt = dst->dtype;
  size_t es = sg_dtype_size(dt);
  char *db = sg_data_ptr(dst);
  const char *sb = sg_data_ptr(src);
  const int64_t *iv = sg_data_ptr(ix);
  for (int64_t k = 0, n = sg_numel(ix); k < n; k++) {
    unravel(k, nd, size, pos);
    /* the side at the index position (src for a gather, dst for a scatter) and the other one */
    int64_t at = 0, plain = 0;
    const sg_tensor *indexed = mode == SG_GS_GATHER ? src : dst, *other = mode == SG_GS_GATHER ? dst : src;
    for (int d = 0; d < nd; d++) {
      int64_t si = indexed->ndim ? indexed->stride[d] : 0, so = other->ndim ? other->stride[d] : 0;
      at += (d == dim ? iv[k] : pos[d]) * si;
      plain += pos[d] * so;
    }
    if (mode == SG_GS_GATHER) memcpy(db + plain * (int64_t)es, sb + at * (int64_t)es, es);
    else if (mode == SG_GS_SCATTER) memcpy(db + at * (int64_t)es, sb + plain * (int64_t)es, es);
    else if (sg_dtype_is_float(dt)) {
      char *p = db + at * (int64_t)es;
      sg_store_f64(p, dt, sg_load_f64(p, dt) + sg_load_f64(sb + plain * (int64_t)es, dt));
    } else {
      char *p = db + at * (int64_t)es;
      sg_store_i64(p, dt, (int64_t)((uint64_t)sg_load_i64(p, dt) + (uint64_t)sg_load_i64(sb + plain * (int64_t)es, dt)));
    }
  }
  return 0;
}

int sg_ref_index_check(const sg_tensor *ix, int64_t hi, int64_t *pos, int64_t *val) {
  const int64_t *v = sg_data_ptr(ix);
  for (int64_t k = 0, n = sg_numel(ix); k < n; k++)
    if (v[k] < 0 || v[k] >= hi) {
      *pos = k;
      *val = v[k];
      return 1;
    }
  return 0;
}

int sg_ref_index_max(const sg_tensor *ix, int64_t *mx) {
  const int64_t *v = sg_data_ptr(ix);
  *mx = INT64_MIN;
  for (int64_t k = 0, n = sg_numel(ix); k < n; k++)
    if (v[k] > *mx) *mx = v[k];
  return 0;
}

int sg_ref_one_hot(sg_tensor *out, const sg_tensor *ix, int64_t classes) {
  const int64_t *v = sg_data_ptr(ix);
  int64_t *o = sg_data_ptr(out);
  for (int64_t k = 0, n = sg_numel(ix); k < n; k++)
    for (int64_t c = 0; c < classes; c++) o[k * classes + c] = v[k] == c;
  return 0;
}

void sg_ref_fill_index(sg_backend *t);
void sg_ref_fill_index(sg_backend *t) {
  t->index.index_map = sg_ref_index_map;
  t->index.index_map_backward = sg_ref_index_map_backward;
  t->index.gather_scatter = sg_ref_gather_scatter;
  t->index.index_check = sg_ref_index_check;
  t->index.index_max = sg_ref_index_max;
  t->index.one_hot = sg_ref_one_hot;
}
