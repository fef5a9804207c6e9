/* Host glue of kernels/norm.cu: batch norm and group/layer norm. Scratch
 * buffers come from the caching allocator and go back right after the
 * launches: all work is on one stream, so the next user of a block queues
 * behind these kernels. */
#include "common.h"
#include <stdint.h>

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

int sg_cuda_batch_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training,
                                sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  if (!sg_cuda_ensure()) return -1;
  int64_t N, C, L;
  ncl(x, &N, &C, &L);
  const double *st = sg_data_ptr(stats);
  double *sums = NULL, *buf = NULL, *coef = NULL;
  bool ok = true;
  if (training || gw || gb) ok = (buf = channel_reduce(SGK_RED_BN_BWD, x, g, st, N, C, L, 1, &sums)) != NULL;
  if (ok && gx) {
    ok = (coef = sg_cuda_malloc(sizeof(double) * (size_t)(4 * C))) != NULL &&
         LAUNCH(sgk_bn_backward_coef(st, sums, vec_of(w), C, (double)(N * L), coef, sg_cuda_stream())) &&
         LAUNCH(sgk_bn_backward_data(sg_data_ptr(x), sg_data_ptr(g), x->dtype, sg_data_ptr(gx), coef, training, N, C, L,
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

int sg_cuda_group_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                                int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb) {
  if (!sg_cuda_ensure()) return -1;
  const double *st = sg_data_ptr(stats);
  if (gx && !LAUNCH(sgk_group_norm_backward(sg_data_ptr(x), sg_data_ptr(g), x->dtype, sg_data_ptr(gx), vec_of(w), N, C,
                                            G, L, st, sg_cuda_stream())))
    return -1;
  if (!gw && !gb) return 0;
  double *sums, *buf = channel_reduce(SGK_RED_GN_BWD, x, g, st, N, C, L, G, &sums);
  if (!buf) return -1;
  bool ok = (!gw || LAUNCH(sgk_store_vec(sums + C, C, vec_of(gw), sg_cuda_stream()))) &&
            (!gb || LAUNCH(sgk_store_vec(sums, C, vec_of(gb), sg_cuda_stream())));
  sg_cuda_free(buf);
  return ok ? 0 : -1;
}
