/* Host glue of the CNN kernels (kernels/nn_pool.cu, nn_norm.cu,
 * nn_upsample.cu): pooling, batch/group/layer norm, upsampling and the
 * convolution bias. Scratch buffers come from the caching allocator and go
 * back right after the launches: all work is on one stream, so the next
 * user of a block queues behind these kernels. */
#include "cuda_nn.h"
#include "cuda_index.h"
#include "cuda_common.h"
#include "../../kernels/k_nn.h"
#include <stdint.h>
#include <string.h>

/* a per-channel vector: 1-d with its stride, or contiguous */
static sgk_vec vec_of(sg_tensor *t) {
  sgk_vec v;
  memset(&v, 0, sizeof v);
  if (!t) return v;
  v.p = sg_data_ptr(t);
  v.dt = t->dtype;
  v.stride = t->ndim == 1 ? t->stride[0] : 1;
  return v;
}

#define LAUNCH(call) SG_LAUNCH_OK(call)

/* [N, C, L] of a tensor with dims [N, C, ...] */
static void ncl(const sg_tensor *t, int64_t *N, int64_t *C, int64_t *L) {
  *N = t->size[0];
  *C = t->ndim > 1 ? t->size[1] : 1;
  *L = 1;
  for (int d = 2; d < t->ndim; d++) *L *= t->size[d];
}

static sgk_pool pool_of(const sg_tensor *x, int64_t oh, int64_t ow, const int64_t *par, int npar, bool adaptive) {
  sgk_pool p;
  memset(&p, 0, sizeof p);
  p.planes = x->size[0] * x->size[1];
  p.H = x->size[2];
  p.W = x->size[3];
  p.oh = oh;
  p.ow = ow;
  if (!adaptive) {
    p.kh = par[0]; p.kw = par[1]; p.sh = par[2]; p.sw = par[3]; p.ph = par[4]; p.pw = par[5];
    p.cip = npar > 6 ? (int)par[6] : 0;
  }
  p.adaptive = adaptive;
  return p;
}

/* ---------------------------------------------------------------- convolution bias */
int sg_cuda_bias_add_(sg_tensor *out, sg_tensor *bias) {
  if (!sg_cuda_ensure()) return -1;
  int64_t N, C, L;
  ncl(out, &N, &C, &L);
  return LAUNCH(sgk_bias_add(sg_data_ptr(out), out->dtype, vec_of(bias), N, C, L, sg_cuda_stream())) ? 0 : -1;
}

/* One channel reduction: *sums [2C] doubles (sum of a, sum of b) inside the
 * returned block, which the caller frees with sg_cuda_free; NULL on failure. */
static double *reduce(int mode, sg_tensor *x, sg_tensor *g, const double *stats, int64_t N, int64_t C, int64_t L,
                      int64_t G, double **sums) {
  sgk_red r = {N, C, L, G, sgk_red_splits(N, C, L)};
  double *buf = sg_cuda_malloc(sizeof(double) * (size_t)(2 * C * r.splits + 2 * C));
  if (!buf) return NULL;
  *sums = buf + 2 * C * r.splits;
  sg_dtype dt = (x ? x : g)->dtype;
  bool ok = N * L > 0
                ? LAUNCH(sgk_channel_reduce(mode, x ? sg_data_ptr(x) : NULL, g ? sg_data_ptr(g) : NULL, dt, stats, &r,
                                            buf, sg_cuda_stream())) &&
                      LAUNCH(sgk_channel_sums(buf, &r, *sums, sg_cuda_stream()))
                : SG_CUDA_OK(cudaMemsetAsync(*sums, 0, sizeof(double) * (size_t)(2 * C), sg_cuda_stream()));
  if (!ok) { sg_cuda_free(buf); return NULL; }
  return buf;
}

int sg_cuda_bias_backward(sg_tensor *gout, sg_tensor *gb) {
  if (!sg_cuda_ensure()) return -1;
  int64_t N, C, L;
  ncl(gout, &N, &C, &L);
  double *sums, *buf = reduce(SGK_RED_SUM, NULL, gout, NULL, N, C, L, 1, &sums);
  if (!buf) return -1;
  bool ok = LAUNCH(sgk_store_vec(sums, C, vec_of(gb), sg_cuda_stream()));
  sg_cuda_free(buf);
  return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- pooling */
int sg_cuda_max_pool2d(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(x, values->size[2], values->size[3], par, 6, false);
  return LAUNCH(sgk_max_pool2d(sg_data_ptr(x), x->dtype, sg_data_ptr(values), sg_data_ptr(indices), &p,
                               sg_cuda_stream()))
             ? 0 : -1;
}

int sg_cuda_max_pool2d_bwd(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(gx, g->size[2], g->size[3], par, 6, false);
  return LAUNCH(sgk_max_pool2d_bwd(sg_data_ptr(g), sg_data_ptr(indices), g->dtype, sg_data_ptr(gx), &p,
                                   sg_cuda_stream()))
             ? 0 : -1;
}

int sg_cuda_max_unpool2d(sg_tensor *x, sg_tensor *indices, sg_tensor *out) {
  if (!sg_cuda_ensure()) return -1;
  int64_t planes = x->size[0] * x->size[1], is = x->size[2] * x->size[3], os = out->size[2] * out->size[3];
  size_t es = sg_dtype_size(out->dtype);
  /* indices outside the output plane are an error, as on the CPU (one synchronisation) */
  int64_t bad_pos, bad_val;
  int bad = sg_cuda_index_check(indices, os, &bad_pos, &bad_val);
  if (bad < 0) return -1;
  if (bad) {
    sg_error_set("max_unpool2d: index %lld is out of range for an output plane of %lldx%lld", (long long)bad_val,
                 (long long)out->size[2], (long long)out->size[3]);
    return -1;
  }
  /* where indices repeat the last input position wins, as in the CPU loop: a winner per output position */
  unsigned *win = NULL;
  if (is < (int64_t)UINT32_MAX - 1 && planes * os > 0) {
    if (!(win = sg_cuda_malloc(sizeof(unsigned) * (size_t)(planes * os)))) return -1;
  }
  bool ok = SG_CUDA_OK(cudaMemsetAsync(sg_data_ptr(out), 0, (size_t)(planes * os) * es, sg_cuda_stream())) &&
       (!win || SG_CUDA_OK(cudaMemsetAsync(win, 0, sizeof(unsigned) * (size_t)(planes * os), sg_cuda_stream()))) &&
       LAUNCH(sgk_max_unpool2d(sg_data_ptr(x), sg_data_ptr(indices), x->dtype, sg_data_ptr(out), win, planes, is, os,
                               sg_cuda_stream()));
  sg_cuda_free(win);
  return ok ? 0 : -1;
}

int sg_cuda_max_unpool2d_bwd(sg_tensor *g, sg_tensor *indices, sg_tensor *gx) {
  if (!sg_cuda_ensure()) return -1;
  int64_t planes = gx->size[0] * gx->size[1], is = gx->size[2] * gx->size[3], os = g->size[2] * g->size[3];
  return LAUNCH(sgk_max_unpool2d_bwd(sg_data_ptr(g), sg_data_ptr(indices), g->dtype, sg_data_ptr(gx), planes, is, os,
                                     sg_cuda_stream()))
             ? 0 : -1;
}

int sg_cuda_avg_pool2d(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(x, out->size[2], out->size[3], par, 7, adaptive);
  return LAUNCH(sgk_avg_pool2d(sg_data_ptr(x), x->dtype, sg_data_ptr(out), &p, sg_cuda_stream())) ? 0 : -1;
}

int sg_cuda_avg_pool2d_bwd(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx) {
  if (!sg_cuda_ensure()) return -1;
  sgk_pool p = pool_of(gx, g->size[2], g->size[3], par, 7, adaptive);
  return LAUNCH(sgk_avg_pool2d_bwd(sg_data_ptr(g), g->dtype, sg_data_ptr(gx), &p, sg_cuda_stream())) ? 0 : -1;
}

/* ---------------------------------------------------------------- batch norm */
int sg_cuda_batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                       double momentum, double eps, sg_tensor *out, sg_tensor **stats) {
  *stats = NULL;
  if (!sg_cuda_ensure()) return -1;
  int64_t N, C, L;
  ncl(x, &N, &C, &L);
  int64_t sn = 4 * C;
  sg_tensor *st = sg_empty(1, &sn, SG_F64, SG_CUDA);
  if (!st) return -1;
  sgk_red r = {N, C, L, 1, sgk_red_splits(N, C, L)};
  double *partials = NULL;
  bool ok = true;
  if (training) { /* the op checked N * L > 1 */
    ok = (partials = sg_cuda_malloc(sizeof(double) * (size_t)(2 * C * r.splits))) != NULL &&
         LAUNCH(sgk_channel_reduce(SGK_RED_STATS, sg_data_ptr(x), NULL, x->dtype, NULL, &r, partials,
                                   sg_cuda_stream()));
  }
  /* training: batch statistics (and the running ones updated); evaluation: the running ones */
  ok = ok && LAUNCH(sgk_bn_stats(partials, sg_data_ptr(x), x->dtype, &r, eps, momentum, vec_of(rm), vec_of(rv),
                                 vec_of(w), vec_of(b), sg_data_ptr(st), sg_cuda_stream()));
  ok = ok && LAUNCH(sgk_bn_apply(sg_data_ptr(x), x->dtype, sg_data_ptr(out), sg_data_ptr(st), N, C, L,
                                 sg_cuda_stream()));
  sg_cuda_free(partials);
  if (!ok) { sg_tensor_decref(st); return -1; }
  if (training && rm) {
    atomic_fetch_add(&rm->storage->version, 1);
    atomic_fetch_add(&rv->storage->version, 1);
  }
  *stats = st;
  return 0;
}

int sg_cuda_batch_norm_bwd(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training, sg_tensor *gx,
                           sg_tensor *gw, sg_tensor *gb) {
  if (!sg_cuda_ensure()) return -1;
  int64_t N, C, L;
  ncl(x, &N, &C, &L);
  const double *st = sg_data_ptr(stats);
  double *sums = NULL, *buf = NULL, *coef = NULL;
  bool ok = true;
  if (training || gw || gb) ok = (buf = reduce(SGK_RED_BN_BWD, x, g, st, N, C, L, 1, &sums)) != NULL;
  if (ok && gx) {
    ok = (coef = sg_cuda_malloc(sizeof(double) * (size_t)(4 * C))) != NULL &&
         LAUNCH(sgk_bn_bwd_coef(st, sums, vec_of(w), C, (double)(N * L), coef, sg_cuda_stream())) &&
         LAUNCH(sgk_bn_bwd_data(sg_data_ptr(x), sg_data_ptr(g), x->dtype, sg_data_ptr(gx), coef, training, N, C, L,
                                sg_cuda_stream()));
  }
  if (ok && gw) ok = LAUNCH(sgk_store_vec(sums + C, C, vec_of(gw), sg_cuda_stream()));
  if (ok && gb) ok = LAUNCH(sgk_store_vec(sums, C, vec_of(gb), sg_cuda_stream()));
  sg_cuda_free(buf);
  sg_cuda_free(coef);
  return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- group / layer norm */
int sg_cuda_group_norm(sg_tensor *x, sg_tensor *w, sg_tensor *b, int64_t N, int64_t C, int64_t G, int64_t L,
                       double eps, sg_tensor *out, sg_tensor **stats) {
  *stats = NULL;
  if (!sg_cuda_ensure()) return -1;
  int64_t sn = 2 * N * G;
  sg_tensor *st = sg_empty(1, &sn, SG_F64, SG_CUDA);
  if (!st) return -1;
  if (!LAUNCH(sgk_group_norm(sg_data_ptr(x), x->dtype, sg_data_ptr(out), vec_of(w), vec_of(b), N, C, G, L, eps,
                             sg_data_ptr(st), sg_cuda_stream()))) {
    sg_tensor_decref(st);
    return -1;
  }
  *stats = st;
  return 0;
}

int sg_cuda_group_norm_bwd(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                           int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  if (!sg_cuda_ensure()) return -1;
  const double *st = sg_data_ptr(stats);
  if (gx && !LAUNCH(sgk_group_norm_bwd(sg_data_ptr(x), sg_data_ptr(g), x->dtype, sg_data_ptr(gx), vec_of(w), N, C, G,
                                       L, st, sg_cuda_stream())))
    return -1;
  if (!gw && !gb) return 0;
  double *sums, *buf = reduce(SGK_RED_GN_BWD, x, g, st, N, C, L, G, &sums);
  if (!buf) return -1;
  bool ok = (!gw || LAUNCH(sgk_store_vec(sums + C, C, vec_of(gw), sg_cuda_stream()))) &&
            (!gb || LAUNCH(sgk_store_vec(sums, C, vec_of(gb), sg_cuda_stream())));
  sg_cuda_free(buf);
  return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- upsampling */
/* engine/ops/upsample.c's scales_value */
static double scales_value(double scale, int64_t in, int64_t out) {
  return scale > 0 ? 1.0 / scale : (double)in / (double)out;
}

static sgk_upsample_geom upsample_of(const sg_tensor *x, int64_t oh, int64_t ow, double sh, double sw, int mode,
                                     bool align) {
  sgk_upsample_geom p;
  memset(&p, 0, sizeof p);
  p.planes = x->size[0] * x->size[1];
  p.H = x->size[2];
  p.W = x->size[3];
  p.oh = oh;
  p.ow = ow;
  p.bilinear = mode == 1;
  p.align = align;
  p.nsh = (float)scales_value(sh, p.H, oh);
  p.nsw = (float)scales_value(sw, p.W, ow);
  p.bsh = align ? (oh > 1 ? (double)(p.H - 1) / (double)(oh - 1) : 0.0) : scales_value(sh, p.H, oh);
  p.bsw = align ? (ow > 1 ? (double)(p.W - 1) / (double)(ow - 1) : 0.0) : scales_value(sw, p.W, ow);
  return p;
}

int sg_cuda_upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align) {
  if (!sg_cuda_ensure()) return -1;
  sgk_upsample_geom p = upsample_of(x, out->size[2], out->size[3], scale_h, scale_w, mode, align);
  void *scratch = sg_cuda_malloc((size_t)sgk_upsample_scratch_bytes(&p));
  if (!scratch) return -1;
  bool ok = LAUNCH(sgk_upsample(sg_data_ptr(x), x->dtype, sg_data_ptr(out), &p, scratch, sg_cuda_stream()));
  sg_cuda_free(scratch);
  return ok ? 0 : -1;
}

int sg_cuda_upsample_bwd(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align) {
  if (!sg_cuda_ensure()) return -1;
  sgk_upsample_geom p = upsample_of(gx, g->size[2], g->size[3], scale_h, scale_w, mode, align);
  void *scratch = sg_cuda_malloc((size_t)sgk_upsample_scratch_bytes(&p));
  if (!scratch) return -1;
  bool ok = LAUNCH(sgk_upsample_bwd(sg_data_ptr(g), g->dtype, sg_data_ptr(gx), &p, scratch, sg_cuda_stream()));
  sg_cuda_free(scratch);
  return ok ? 0 : -1;
}
