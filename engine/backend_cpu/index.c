/* Indexing on the cpu: the strided gather / scatter walk and the row-wise
 * index-map copy and adjoint that the ops ran inline before the table; index
 * checks and one_hot run the reference loops. */
#include "../backend_ref/ref.h"
#include <string.h>

/* `ix` is contiguous i64 with the index shape, values already checked.
 * GATHER: dst (index shape) <- src indexed; otherwise dst indexed <- src (index shape).
 * dst and src have the same dtype. */
static void gs_run(sg_gs_mode mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix) {
  int64_t cnt = sg_numel(ix);
  if (cnt == 0) return;
  int nd = ix->ndim > 0 ? ix->ndim : 1;
  int64_t size[SG_MAX_DIMS], sd[SG_MAX_DIMS], ss[SG_MAX_DIMS], pos[SG_MAX_DIMS] = {0};
  for (int d = 0; d < nd; d++) {
    size[d] = ix->ndim ? ix->size[d] : 1;
    sd[d] = dst->ndim ? dst->stride[d] : 0;
    ss[d] = src->ndim ? src->stride[d] : 0;
  }
  /* the indexed side moves with idx along dim, not with the position */
  const int64_t *st_idx = mode == SG_GS_GATHER ? ss : sd;
  int64_t dim_stride = st_idx[dim];
  int64_t walk_idx[SG_MAX_DIMS];
  for (int d = 0; d < nd; d++) walk_idx[d] = d == dim ? 0 : st_idx[d];
  const int64_t *walk_pos = mode == SG_GS_GATHER ? sd : ss;
  size_t es = sg_dtype_size(dst->dtype);
  char *db = (char *)dst->storage->data + dst->offset * (int64_t)es;
  const char *sb = (const char *)src->storage->data + src->offset * (int64_t)es;
  const int64_t *iv = sg_data_ptr(ix);
  int64_t off_i = 0, off_p = 0; /* element offsets of the indexed and the positional side */
  bool fl = sg_dtype_is_float(dst->dtype);
  for (int64_t k = 0; k < cnt; k++) {
    int64_t oi = off_i + iv[k] * dim_stride;
    if (mode == SG_GS_GATHER) memcpy(db + off_p * (int64_t)es, sb + oi * (int64_t)es, es);
    else if (mode == SG_GS_SCATTER) memcpy(db + oi * (int64_t)es, sb + off_p * (int64_t)es, es);
    else if (dst->dtype == SG_F32) *(float *)(db + oi * 4) += *(const float *)(sb + off_p * 4);
    else if (dst->dtype == SG_F64) *(double *)(db + oi * 8) += *(const double *)(sb + off_p * 8);
    else if (fl) {
      char *p = db + oi * (int64_t)es;
      sg_store_f64(p, dst->dtype, sg_load_f64(p, dst->dtype) + sg_load_f64(sb + off_p * (int64_t)es, src->dtype));
    } else {
      char *p = db + oi * (int64_t)es;
      uint64_t v = (uint64_t)sg_load_i64(p, dst->dtype) + (uint64_t)sg_load_i64(sb + off_p * (int64_t)es, src->dtype);
      sg_store_i64(p, dst->dtype, (int64_t)v);
    }
    for (int d = nd - 1; d >= 0; d--) { /* odometer over the index shape */
      off_i += walk_idx[d];
      off_p += walk_pos[d];
      if (++pos[d] < size[d]) break;
      off_i -= walk_idx[d] * size[d];
      off_p -= walk_pos[d] * size[d];
      pos[d] = 0;
    }
  }
}

static int cpu_gather_scatter(int mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix) {
  gs_run((sg_gs_mode)mode, dst, src, dim, ix);
  return 0;
}

#define COPY_ROW(T)                                                                              \
  do {                                                                                           \
    T *o = (T *)op;                                                                              \
    const T *src = (const T *)base + off;                                                        \
    T fv; memcpy(&fv, fill, sizeof fv);                                                          \
    if (hole) { for (int64_t j = 0; j < inner; j++) o[j] = fv; }                                 \
    else if (!im) { for (int64_t j = 0; j < inner; j++) o[j] = src[j * ist]; }                  \
    else for (int64_t j = 0; j < inner; j++) o[j] = im[j] < 0 ? fv : src[im[j] * ist];           \
  } while (0)

/* out (contiguous, out_size, a's dtype) <- a through the maps, one output row at a time */
static int cpu_index_map(sg_tensor *out, const sg_tensor *a, int nd, const int64_t *out_size, const int64_t *st,
                         int64_t *const *map, const int64_t *map_data, int64_t map_len, double fill_value) {
  (void)map_data;
  (void)map_len;
  size_t es = sg_dtype_size(a->dtype);
  if (sg_numel(out) == 0) return 0;
  const char *base = (const char *)a->storage->data + a->offset * (int64_t)es;
  char *op = sg_data_ptr(out);
  char fill[8] = {0};
  sg_store_f64(fill, a->dtype, fill_value);
  if (nd == 0) { memcpy(op, base, es); return 0; }
  int64_t idx[SG_MAX_DIMS] = {0};
  int64_t inner = out_size[nd - 1], ist = st[nd - 1];
  const int64_t *im = map[nd - 1];
  for (;;) {
    int64_t off = 0;
    bool hole = false;
    for (int d = 0; d < nd - 1; d++) {
      int64_t s = map[d] ? map[d][idx[d]] : idx[d];
      if (s < 0) hole = true;
      off += s * st[d];
    }
    switch (es) {
    case 1: COPY_ROW(uint8_t); break;
    case 2: COPY_ROW(uint16_t); break;
    case 4: COPY_ROW(uint32_t); break;
    default: COPY_ROW(uint64_t); break;
    }
    op += inner * (int64_t)es;
    int d = nd - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < out_size[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return 0;
  }
}

#define ADD_ROW(T)                                                                               \
  do {                                                                                           \
    T *acc = (T *)sg_data_ptr(ga) + off;                                                         \
    const T *gr = (const T *)gp;                                                                 \
    if (!im) { for (int64_t j = 0; j < inner; j++) acc[j * ist] += gr[j]; }                     \
    else for (int64_t j = 0; j < inner; j++) if (im[j] >= 0) acc[im[j] * ist] += gr[j];         \
    gp += inner * (int64_t)sizeof(T);                                                            \
  } while (0)

/* ga (contiguous, the input's shape, f32/f64) = g (contiguous, output shape, same dtype) through the maps */
static int cpu_index_map_backward(sg_tensor *ga, const sg_tensor *g, int nd, const int64_t *out_size,
                                  int64_t *const *map) {
  memset(sg_data_ptr(ga), 0, (size_t)sg_numel(ga) * sg_dtype_size(ga->dtype));
  if (sg_numel(g) == 0) return 0;
  const char *gp = sg_data_ptr(g);
  if (nd == 0) {
    if (ga->dtype == SG_F64) *(double *)sg_data_ptr(ga) += *(const double *)gp;
    else *(float *)sg_data_ptr(ga) += *(const float *)gp;
    return 0;
  }
  int64_t st[SG_MAX_DIMS], idx[SG_MAX_DIMS] = {0};
  int off0 = nd - ga->ndim; /* ga right-aligned to the output dims */
  for (int d = 0; d < nd; d++) st[d] = d < off0 ? 0 : ga->stride[d - off0];
  int64_t inner = out_size[nd - 1], ist = st[nd - 1];
  const int64_t *im = map[nd - 1];
  for (;;) {
    int64_t off = 0;
    bool hole = false;
    for (int d = 0; d < nd - 1; d++) {
      int64_t s = map[d] ? map[d][idx[d]] : idx[d];
      if (s < 0) hole = true;
      off += s * st[d];
    }
    if (hole) gp += inner * (int64_t)sg_dtype_size(g->dtype);
    else if (ga->dtype == SG_F64) ADD_ROW(double);
    else ADD_ROW(float);
    int d = nd - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < out_size[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return 0;
  }
}

void sg_cpu_fill_index(sg_backend *t);
void sg_cpu_fill_index(sg_backend *t) {
  t->index.index_map = cpu_index_map;
  t->index.index_map_backward = cpu_index_map_backward;
  t->index.gather_scatter = cpu_gather_scatter;
}
