/* The reference backend: plain, obviously correct loops on host memory for
 * every entry of the device table (backend.h), written for reading, not speed.
 * Every other backend is tested against it (tests/ops/). Its files are named
 * after the op families; each fills its entries in sg_ref_fill_<family>.
 * The fast cpu paths may call these functions for the cases they do not
 * speed up. Floating tensors are f32 or f64 here, contiguous (c), unless an
 * entry says otherwise (the reductions take any dtype and any strides). */
#ifndef SG_BACKEND_REF_H
#define SG_BACKEND_REF_H
#include "../backend.h"

/* element i of a contiguous f32 or f64 buffer, through double */
#define SG_REF_LD(p, f64, i) ((f64) ? ((const double *)(p))[i] : (double)((const float *)(p))[i])
#define SG_REF_ST(p, f64, i, v)                                                                        \
  do {                                                                                                 \
    if (f64) ((double *)(p))[i] = (v);                                                                 \
    else ((float *)(p))[i] = (float)(v);                                                               \
  } while (0)

/* ---- upsample.c ---- */
/* PyTorch's F.interpolate source rows (or columns) for each output row: d reads i0 with weight l0 and i1 with
 * weight l1 (nearest: i0 == i1, l1 == 0); scale > 0 when the caller gave a scale factor; mode: 0 nearest,
 * 1 bilinear. */
typedef struct { int64_t i0, i1; double l0, l1; } sg_upsample_tap;
void sg_ref_upsample_taps(sg_upsample_tap *t, int64_t in, int64_t out, double scale, int mode, bool align);
int sg_ref_upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align);
int sg_ref_upsample_backward(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align);

/* ---- optim.c ---- */
/* g in dt: g itself (a new reference) or a converted copy */
sg_tensor *sg_ref_grad_as(sg_tensor *g, sg_dtype dt);
int sg_ref_sgd_step(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first);
int sg_ref_adam_step(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                     double bc2, double step_size);

/* ---- pool.c ---- */
int sg_ref_max_pool2d(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices);
int sg_ref_max_pool2d_backward(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx);
int sg_ref_max_unpool2d(sg_tensor *x, sg_tensor *indices, sg_tensor *out);
int sg_ref_max_unpool2d_backward(sg_tensor *g, sg_tensor *indices, sg_tensor *gx);
int sg_ref_avg_pool2d(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out);
int sg_ref_avg_pool2d_backward(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx);

/* ---- norm.c ---- */
/* The statistics tensor the cpu and reference norm entries hand to their backward (f64, on the cpu):
 * batch norm [2C+1]: mean[C], biased variance[C] (the batch's when training, else the running ones), eps;
 * group / layer norm [2R] for R = N*G rows: mean[R], 1/sqrt(var + eps)[R]. */
int sg_ref_batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                      double momentum, double eps, sg_tensor *out, sg_tensor **stats);
int sg_ref_batch_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training,
                               sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);
int sg_ref_batch_norm_relu(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                           double momentum, double eps, sg_tensor *out, sg_tensor **stats);
int sg_ref_batch_norm_relu_backward(sg_tensor *x, sg_tensor *g, sg_tensor *y, sg_tensor *w, sg_tensor *stats,
                                    bool training, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);
/* rm <- (1 - momentum) rm + momentum mean, rv <- (1 - momentum) rv + momentum var M / (M - 1), computed in double
 * (M values per channel); bumps their versions. */
void sg_ref_bn_update_running(sg_tensor *rm, sg_tensor *rv, const double *mean, const double *var, int64_t C,
                              double M, double momentum);
int sg_ref_group_norm(sg_tensor *x, sg_tensor *w, sg_tensor *b, int64_t N, int64_t C, int64_t G, int64_t L,
                      double eps, sg_tensor *out, sg_tensor **stats);
int sg_ref_group_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                               int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);

/* ---- conv.c ---- */
/* the conv entries of backend.h (any N, C, H, W including empty batches) */
int sg_ref_conv(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big, sg_tensor *w, sg_tensor *small,
                sg_tensor *bias);
int sg_ref_conv_bias_add_(sg_tensor *out, sg_tensor *bias);
int sg_ref_conv_bias_backward(sg_tensor *gout, sg_tensor *gb);

/* ---- elementwise.c ----
 * Unlike the other families these take any dtype and any strides (broadcast operands have zero strides):
 * the loops run through sg_iter (core/iter.h). The scalar functions are the definition every backend's
 * fast loops must agree with; op is an sg_unop (ops/ops.h), -1 for clamp. */
double sg_ref_unary_f(int op, double x);                       /* float compute types, in double */
int64_t sg_ref_unary_i(int op, int64_t x);                     /* integer compute types, wrapping */
double sg_ref_unary_grad(int op, double g, double x, double y); /* d op(x)/dx * g from input x, output y */
double sg_ref_binary_f(int op, double a, double b);           /* op an sg_binop */
int64_t sg_ref_binary_i(int op, int64_t a, int64_t b);
/* an element of dtype t as a cast to the compute type ct gives it (float ct: as double; else as int64) */
double sg_ref_load_ct_f(const void *p, sg_dtype t, sg_dtype ct);
int64_t sg_ref_load_ct_i(const void *p, sg_dtype t, sg_dtype ct);
int sg_ref_binary(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct);
int sg_ref_where(sg_tensor *out, sg_tensor *cond, sg_tensor *a, sg_tensor *b);
int sg_ref_unary(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi);
int sg_ref_unary_backward(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y);

/* ---- index.c ---- */
/* the index entries of backend.h, every dtype */
int sg_ref_index_map(sg_tensor *out, const sg_tensor *a, int nd, const int64_t *out_size, const int64_t *astride,
                     int64_t *const *maps, const int64_t *map_data, int64_t map_len, double fill);
int sg_ref_index_map_backward(sg_tensor *ga, const sg_tensor *g, int nd, const int64_t *out_size,
                              int64_t *const *maps);
int sg_ref_gather_scatter(int mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix);
int sg_ref_index_check(const sg_tensor *ix, int64_t hi, int64_t *pos, int64_t *val);
int sg_ref_index_max(const sg_tensor *ix, int64_t *mx);
int sg_ref_one_hot(sg_tensor *out, const sg_tensor *ix, int64_t classes);

/* ---- loss.c ---- */
int sg_ref_bce_with_logits(sg_tensor *x, sg_tensor *t, bool mean, sg_tensor *out);
int sg_ref_bce_with_logits_backward(sg_tensor *x, sg_tensor *t, double scale, sg_tensor *gx);

/* ---- metrics.c ---- */
int sg_ref_confusion(const sg_tensor *pred, const sg_tensor *target, int64_t n_groups, int64_t nclasses,
                     bool has_ignore, int64_t ignore_index, sg_tensor *out);

/* ---- reduce.c ---- */
/* Dims perm[from..to) of t in that order as (size, stride) pairs, size-1 dims dropped and a dim merged into the
 * one before it when that one continues where it ends (the visiting order is kept). */
typedef struct { int ndim; int64_t size[SG_MAX_DIMS], stride[SG_MAX_DIMS]; } sg_ref_dims;
sg_ref_dims sg_ref_reduce_dims(const sg_tensor *t, const int *perm, int from, int to);
/* the element offset of position i in the row-major order of the first n dims of l */
int64_t sg_ref_dims_offset(const sg_ref_dims *l, int n, int64_t i);
/* how many runs of the last dim l holds (the product of the other sizes) */
int64_t sg_ref_dims_lines(const sg_ref_dims *l);
/* the reduce entries of backend.h: any dtype, a strided, rows in place */
int sg_ref_reduce(int kind, sg_tensor *a, const int *perm, int nkeep, sg_tensor *out);
int sg_ref_prod_backward_rows(sg_tensor *d, sg_tensor *rows, int64_t outer, int64_t row);

/* ---- matmul.c ---- */
/* the element offsets into A and B of batch t (row-major over bat[nbat]; strides sa, sb, 0 where broadcast) */
void sg_ref_batch_offsets(int nbat, const int64_t *bat, const int64_t *sa, const int64_t *sb, int64_t t,
                          int64_t *oa, int64_t *ob);
/* the matmul entry of backend.h for every dtype but bool (blas ignored: always the plain loops) */
int sg_ref_matmul(sg_dtype dt, bool blas, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, void *C, int nbat,
                  const int64_t *bat, const int64_t *sa, const int64_t *sb);

#endif
