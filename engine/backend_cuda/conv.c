/* 2-d convolutions through cuDNN's legacy convolution API (cudnn_cnn:
 * cudnnConvolutionForward / BackwardData / BackwardFilter with filter and
 * convolution descriptors).
 *
 * Algorithms are chosen once per key (direction, dtype, shapes, parameters,
 * policy) and cached with the descriptors: by cuDNN's heuristics
 * (cudnnGet*Algorithm_v7) by default, or by timing every candidate
 * (cudnnFind*AlgorithmEx) in benchmark mode; in deterministic mode only
 * algorithms cuDNN reports as deterministic qualify. The math type is
 * tensor-op for f16/bf16 (accumulating in f32) and plain FMA for f32 unless
 * TF32 is allowed (sg_cuda_conv_set_tf32); f64 computes in f64.
 *
 * cuDNN pads symmetrically. When the CPU geometry is not symmetric (padding
 * 'same' with an odd total, or a transposed conv's output_padding of at least
 * the stride) the big side runs through an explicitly zero-padded copy and
 * cuDNN pads nothing. Batches whose tensors would exceed 2^31 elements run in
 * chunks of images (the weight gradient accumulates over the chunks).
 *
 * The bias add and its backward (kernels/conv.cu, and the channel reduction
 * of kernels/norm.cu) are at the end. */
#include "../core/config.h"
#include "common.h"
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_BENCH = 1, F_DET = 2, F_TF32 = 4 };

typedef struct {
  int32_t kind, dt, flags, unused;
  int64_t N, G, Cb, Hb, Wb, Cs, Hs, Ws, kh, kw, sh, sw, ph, pw, dh, dw;
} conv_key;

typedef struct entry {
  struct entry *next;
  conv_key key;
  cudnnTensorDescriptor_t big, small;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  int algo;
  cudnnMathType_t math;
  size_t ws;
} entry;

#define NBUCKETS 256
#define MAX_ALGOS 16
#define FIND_WS_CAP ((size_t)1 << 30)

static entry *buckets[NBUCKETS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sg_conv_cache_stats counters;

static _Thread_local char last_algo[128] = "none";

static const char *const KIND_NAME[3] = {"fwd", "bwd_data", "bwd_filter"};

void sg_cuda_conv_set_tf32(bool on) { sg_config.conv_tf32 = on; }
bool sg_cuda_conv_tf32(void) { return sg_config.conv_tf32; }
const char *sg_cuda_conv_last_algo(void) { return last_algo; }

sg_conv_cache_stats sg_cuda_conv_cache_stats(void) {
  pthread_mutex_lock(&lock);
  sg_conv_cache_stats s = counters;
  pthread_mutex_unlock(&lock);
  return s;
}

static void destroy_entry(entry *e) {
  if (!e) return;
  if (e->big) cudnnDestroyTensorDescriptor(e->big);
  if (e->small) cudnnDestroyTensorDescriptor(e->small);
  if (e->w) cudnnDestroyFilterDescriptor(e->w);
  if (e->conv) cudnnDestroyConvolutionDescriptor(e->conv);
  free(e);
}

void sg_cuda_conv_cache_clear(void) {
  pthread_mutex_lock(&lock);
  for (int b = 0; b < NBUCKETS; b++) {
    entry *e = buckets[b];
    while (e) {
      entry *next = e->next;
      destroy_entry(e);
      e = next;
    }
    buckets[b] = NULL;
  }
  counters.entries = 0;
  pthread_mutex_unlock(&lock);
}

static unsigned key_hash(const conv_key *k) {
  const unsigned char *p = (const unsigned char *)k;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 16777619u;
  return h % NBUCKETS;
}

static cudnnDataType_t data_type(int dt) {
  switch (dt) {
  case SG_F16: return CUDNN_DATA_HALF;
  case SG_BF16: return CUDNN_DATA_BFLOAT16;
  case SG_F64: return CUDNN_DATA_DOUBLE;
  default: return CUDNN_DATA_FLOAT;
  }
}

/* the math type the descriptor starts with (and the policy for f32) */
static cudnnMathType_t base_math(const conv_key *k) {
  if (k->dt == SG_F16 || k->dt == SG_BF16) return CUDNN_TENSOR_OP_MATH;
  if (k->dt == SG_F32) return k->flags & F_TF32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  return CUDNN_DEFAULT_MATH;
}

static const char *geom_str(const conv_key *k, char *buf, size_t n) {
  snprintf(buf, n,
           "%s %s: big [%lld,%lld,%lld,%lld], small [%lld,%lld,%lld,%lld], weight [%lld,%lld,%lld,%lld], "
           "stride {%lld,%lld}, padding {%lld,%lld}, dilation {%lld,%lld}, groups %lld",
           KIND_NAME[k->kind], sg_dtype_name((sg_dtype)k->dt), (long long)k->N, (long long)k->Cb, (long long)k->Hb,
           (long long)k->Wb, (long long)k->N, (long long)k->Cs, (long long)k->Hs, (long long)k->Ws, (long long)k->Cs,
           (long long)(k->Cb / k->G), (long long)k->kh, (long long)k->kw, (long long)k->sh, (long long)k->sw,
           (long long)k->ph, (long long)k->pw, (long long)k->dh, (long long)k->dw, (long long)k->G);
  return buf;
}

static entry *new_entry(const conv_key *k) {
  entry *e = calloc(1, sizeof *e);
  if (!e) { sg_error_set("conv: out of memory"); return NULL; }
  e->key = *k;
  cudnnDataType_t t = data_type(k->dt), ct = k->dt == SG_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  bool ok = SG_CUDNN_OK(cudnnCreateTensorDescriptor(&e->big)) && SG_CUDNN_OK(cudnnCreateTensorDescriptor(&e->small)) &&
            SG_CUDNN_OK(cudnnCreateFilterDescriptor(&e->w)) &&
            SG_CUDNN_OK(cudnnCreateConvolutionDescriptor(&e->conv)) &&
            SG_CUDNN_OK(cudnnSetTensor4dDescriptor(e->big, CUDNN_TENSOR_NCHW, t, (int)k->N, (int)k->Cb, (int)k->Hb,
                                                   (int)k->Wb)) &&
            SG_CUDNN_OK(cudnnSetTensor4dDescriptor(e->small, CUDNN_TENSOR_NCHW, t, (int)k->N, (int)k->Cs, (int)k->Hs,
                                                   (int)k->Ws)) &&
            SG_CUDNN_OK(cudnnSetFilter4dDescriptor(e->w, t, CUDNN_TENSOR_NCHW, (int)k->Cs, (int)(k->Cb / k->G),
                                                   (int)k->kh, (int)k->kw)) &&
            SG_CUDNN_OK(cudnnSetConvolution2dDescriptor(e->conv, (int)k->ph, (int)k->pw, (int)k->sh, (int)k->sw,
                                                        (int)k->dh, (int)k->dw, CUDNN_CROSS_CORRELATION, ct)) &&
            SG_CUDNN_OK(cudnnSetConvolutionGroupCount(e->conv, (int)k->G)) &&
            SG_CUDNN_OK(cudnnSetConvolutionMathType(e->conv, base_math(k)));
  if (ok) { /* the geometry must be the one cuDNN derives, or the caller computed it wrongly */
    int n, c, h, w;
    ok = SG_CUDNN_OK(cudnnGetConvolution2dForwardOutputDim(e->conv, e->big, e->w, &n, &c, &h, &w));
    if (ok && (n != k->N || c != k->Cs || h != k->Hs || w != k->Ws)) {
      char buf[320];
      sg_error_set("conv: cuDNN derives an output of [%d,%d,%d,%d] for %s (internal geometry error)", n, c, h, w,
                   geom_str(k, buf, sizeof buf));
      ok = false;
    }
  }
  if (!ok) { destroy_entry(e); return NULL; }
  return e;
}

/* ---------------------------------------------------------------- algorithm choice */
typedef struct {
  int algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  cudnnDeterminism_t det;
  cudnnMathType_t math;
} perf;

#define COPY_PERF(dst, src, n)                                                                              \
  for (int i_ = 0; i_ < (n); i_++)                                                                          \
    (dst)[i_] = (perf){(int)(src)[i_].algo, (src)[i_].status, (src)[i_].time, (src)[i_].memory,             \
                       (src)[i_].determinism, (src)[i_].mathType}

static int algo_count(int kind) {
  return kind == SG_CONV_FWD        ? CUDNN_CONVOLUTION_FWD_ALGO_COUNT
         : kind == SG_CONV_BWD_DATA ? CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT
                                         : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}

static cudnnStatus_t ws_size(const entry *e, cudnnHandle_t h, int algo, size_t *sz) {
  switch (e->key.kind) {
  case SG_CONV_FWD:
    return cudnnGetConvolutionForwardWorkspaceSize(h, e->big, e->w, e->conv, e->small, (cudnnConvolutionFwdAlgo_t)algo,
                                                   sz);
  case SG_CONV_BWD_DATA:
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, e->w, e->small, e->conv, e->big,
                                                        (cudnnConvolutionBwdDataAlgo_t)algo, sz);
  default:
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, e->big, e->small, e->conv, e->w,
                                                          (cudnnConvolutionBwdFilterAlgo_t)algo, sz);
  }
}

static int heuristics(const entry *e, cudnnHandle_t h, perf *p, int *n) {
  int req = algo_count(e->key.kind);
  if (req > MAX_ALGOS) req = MAX_ALGOS;
  *n = 0;
  if (e->key.kind == SG_CONV_FWD) {
    cudnnConvolutionFwdAlgoPerf_t r[MAX_ALGOS];
    if (!SG_CUDNN_OK(cudnnGetConvolutionForwardAlgorithm_v7(h, e->big, e->w, e->conv, e->small, req, n, r))) return -1;
    COPY_PERF(p, r, *n);
  } else if (e->key.kind == SG_CONV_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t r[MAX_ALGOS];
    if (!SG_CUDNN_OK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, e->w, e->small, e->conv, e->big, req, n, r)))
      return -1;
    COPY_PERF(p, r, *n);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t r[MAX_ALGOS];
    if (!SG_CUDNN_OK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, e->big, e->small, e->conv, e->w, req, n, r)))
      return -1;
    COPY_PERF(p, r, *n);
  }
  return 0;
}

/* times every candidate on the real buffers (outputs are scribbled on: the
 * caller overwrites them next; the weight gradient goes to a scratch buffer
 * so accumulation over batch chunks is safe) */
static int find(const entry *e, cudnnHandle_t h, void *big, void *w, void *small, perf *p, int *n) {
  const conv_key *k = &e->key;
  int req = algo_count(k->kind);
  if (req > MAX_ALGOS) req = MAX_ALGOS;
  *n = 0;
  /* the largest workspace any algorithm asks for, within a cap; less if that cannot be had */
  size_t most = 0;
  for (int a = 0; a < req; a++) {
    size_t sz = 0;
    if (ws_size(e, h, a, &sz) == CUDNN_STATUS_SUCCESS && sz > most) most = sz;
  }
  if (most > FIND_WS_CAP) most = FIND_WS_CAP;
  void *ws = NULL;
  while (most) {
    if ((ws = sg_cuda_workspace(most))) break;
    most = most > ((size_t)1 << 20) ? most / 2 : 0;
  }
  void *dw = NULL;
  if (k->kind == SG_CONV_BWD_FILTER) {
    size_t wbytes = (size_t)(k->Cs * (k->Cb / k->G) * k->kh * k->kw) * sg_dtype_size((sg_dtype)k->dt);
    if (!(dw = sg_cuda_malloc(wbytes))) return -1;
    /* the workspace may have moved: sg_cuda_malloc does not touch it, but ask again to be sure */
    if (most && !(ws = sg_cuda_workspace(most))) { sg_cuda_free(dw); return -1; }
  }
  int rc = 0;
  if (k->kind == SG_CONV_FWD) {
    cudnnConvolutionFwdAlgoPerf_t r[MAX_ALGOS];
    if (!SG_CUDNN_OK(cudnnFindConvolutionForwardAlgorithmEx(h, e->big, big, e->w, w, e->conv, e->small, small, req, n,
                                                            r, ws, most)))
      rc = -1;
    else COPY_PERF(p, r, *n);
  } else if (k->kind == SG_CONV_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t r[MAX_ALGOS];
    if (!SG_CUDNN_OK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, e->w, w, e->small, small, e->conv, e->big, big,
                                                                 req, n, r, ws, most)))
      rc = -1;
    else COPY_PERF(p, r, *n);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t r[MAX_ALGOS];
    if (!SG_CUDNN_OK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, e->big, big, e->small, small, e->conv, e->w, dw,
                                                                   req, n, r, ws, most)))
      rc = -1;
    else COPY_PERF(p, r, *n);
  }
  sg_cuda_free(dw);
  return rc;
}

/* the first usable candidate: succeeded, deterministic when asked, no TF32
 * for f32 unless allowed, and its workspace can be had */
static int choose(entry *e, cudnnHandle_t h, void *big, void *w, void *small) {
  const conv_key *k = &e->key;
  perf p[MAX_ALGOS];
  int n = 0;
  bool bench = k->flags & F_BENCH, det = k->flags & F_DET;
  if (bench ? find(e, h, big, w, small, p, &n) : heuristics(e, h, p, &n)) return -1;
  pthread_mutex_lock(&lock);
  if (bench) counters.finds++;
  else counters.heuristics++;
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < n; i++) {
    if (p[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (det && p[i].det != CUDNN_DETERMINISTIC) continue;
    cudnnMathType_t m = p[i].math;
    if (k->dt == SG_F32 && !(k->flags & F_TF32)) {
      if (m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
      m = CUDNN_FMA_MATH;
    }
    if (cudnnSetConvolutionMathType(e->conv, m) != CUDNN_STATUS_SUCCESS) continue;
    size_t sz = 0;
    if (ws_size(e, h, p[i].algo, &sz) != CUDNN_STATUS_SUCCESS) continue;
    if (sz && !sg_cuda_workspace(sz)) continue; /* too large for the memory left: the next candidate */
    e->algo = p[i].algo;
    e->math = m;
    e->ws = sz;
    return 0;
  }
  char buf[320];
  sg_error_set("conv: cuDNN offers no usable%s algorithm (%d candidates%s) for %s", det ? " deterministic" : "", n,
               bench ? ", timed" : "", geom_str(k, buf, sizeof buf));
  return -1;
}

static entry *lookup(const conv_key *k, cudnnHandle_t h, void *big, void *w, void *small) {
  unsigned b = key_hash(k);
  pthread_mutex_lock(&lock);
  for (entry *e = buckets[b]; e; e = e->next)
    if (memcmp(&e->key, k, sizeof *k) == 0) {
      counters.hits++;
      pthread_mutex_unlock(&lock);
      return e;
    }
  pthread_mutex_unlock(&lock);
  entry *e = new_entry(k);
  if (!e) return NULL;
  if (choose(e, h, big, w, small) || !SG_CUDNN_OK(cudnnSetConvolutionMathType(e->conv, e->math))) {
    destroy_entry(e);
    return NULL;
  }
  pthread_mutex_lock(&lock);
  e->next = buckets[b];
  buckets[b] = e;
  counters.entries++;
  pthread_mutex_unlock(&lock);
  return e;
}

static int execute(const entry *e, cudnnHandle_t h, void *big, void *w, void *small, bool accumulate) {
  void *ws = NULL;
  if (e->ws && !(ws = sg_cuda_workspace(e->ws))) return -1;
  float f1 = 1.0f, fb = accumulate ? 1.0f : 0.0f;
  double d1 = 1.0, db = accumulate ? 1.0 : 0.0;
  bool f64 = e->key.dt == SG_F64;
  const void *alpha = f64 ? (const void *)&d1 : (const void *)&f1, *beta = f64 ? (const void *)&db : (const void *)&fb;
  snprintf(last_algo, sizeof last_algo, "%s algo %d (math %d, workspace %zu B)", KIND_NAME[e->key.kind], e->algo,
           (int)e->math, e->ws);
  switch (e->key.kind) {
  case SG_CONV_FWD:
    return SG_CUDNN_OK(cudnnConvolutionForward(h, alpha, e->big, big, e->w, w, e->conv,
                                               (cudnnConvolutionFwdAlgo_t)e->algo, ws, e->ws, beta, e->small, small))
               ? 0 : -1;
  case SG_CONV_BWD_DATA:
    return SG_CUDNN_OK(cudnnConvolutionBackwardData(h, alpha, e->w, w, e->small, small, e->conv,
                                                    (cudnnConvolutionBwdDataAlgo_t)e->algo, ws, e->ws, beta, e->big,
                                                    big))
               ? 0 : -1;
  default:
    return SG_CUDNN_OK(cudnnConvolutionBackwardFilter(h, alpha, e->big, big, e->small, small, e->conv,
                                                      (cudnnConvolutionBwdFilterAlgo_t)e->algo, ws, e->ws, beta, e->w,
                                                      w))
               ? 0 : -1;
  }
}

/* ---------------------------------------------------------------- explicit padding */
/* The big image's rows [0, hc) x columns [0, wc) sit in the padded buffer at
 * (ph, pw); everything else of the padded buffer is zero. to_pad: big ->
 * padded (the caller zeroed it); else padded -> big (the caller zeroed big). */
static int pad_copy(bool to_pad, const sg_conv_geom *g, int64_t nc, int64_t Hr, int64_t Wr, char *pad, char *big,
                    sg_dtype dt) {
  int64_t hc = g->Hb < Hr - g->ph ? g->Hb : Hr - g->ph, wc = g->Wb < Wr - g->pw ? g->Wb : Wr - g->pw;
  if (hc <= 0 || wc <= 0 || nc <= 0) return 0;
  sgk_layout bl, pl;
  memset(&bl, 0, sizeof bl);
  memset(&pl, 0, sizeof pl);
  bl.ndim = pl.ndim = 4;
  int64_t sz[4] = {nc, g->Cb, hc, wc};
  int64_t bs[4] = {g->Cb * g->Hb * g->Wb, g->Hb * g->Wb, g->Wb, 1}, ps[4] = {g->Cb * Hr * Wr, Hr * Wr, Wr, 1};
  for (int d = 0; d < 4; d++) {
    bl.size[d] = pl.size[d] = sz[d];
    bl.stride[d] = bs[d];
    pl.stride[d] = ps[d];
  }
  char *pbase = pad + (g->ph * Wr + g->pw) * (int64_t)sg_dtype_size(dt);
  int64_t n = nc * g->Cb * hc * wc;
  return SG_LAUNCH_OK(to_pad ? sgk_copy(pbase, dt, &pl, big, dt, &bl, n, sg_cuda_stream())
                             : sgk_copy(big, dt, &bl, pbase, dt, &pl, n, sg_cuda_stream()))
             ? 0 : -1;
}

/* ---------------------------------------------------------------- entry point */
static int conv_run(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big_t, sg_tensor *w_t, sg_tensor *small_t) {
  if (!sg_cuda_ensure()) return -1;
  cudnnHandle_t h = sg_cudnn_handle();
  if (!h) return -1;
  sg_dtype dt = w_t->dtype;
  size_t es = sg_dtype_size(dt);
  if (big_t->dtype != dt || small_t->dtype != dt || !sg_is_contiguous(big_t) || !sg_is_contiguous(w_t) ||
      !sg_is_contiguous(small_t)) {
    sg_error_set("conv: cuDNN path needs contiguous tensors of one dtype (internal error)");
    return -1;
  }
  char *bp = sg_data_ptr(big_t), *wp = sg_data_ptr(w_t), *sp = sg_data_ptr(small_t);
  int64_t wnumel = g->Cs * (g->Cb / g->G) * g->kh * g->kw;
  if (g->N == 0) { /* no images: the weight gradient is zero, the other outputs are empty */
    if (kind == SG_CONV_BWD_FILTER)
      return SG_CUDA_OK(cudaMemsetAsync(wp, 0, (size_t)wnumel * es, sg_cuda_stream())) ? 0 : -1;
    return 0;
  }
  /* the geometry cuDNN runs: symmetric padding on the real image when that
     reproduces the small grid's size, else an explicitly padded image */
  int64_t nh = g->Hb + 2 * g->ph - g->dh * (g->kh - 1) - 1, nw = g->Wb + 2 * g->pw - g->dw * (g->kw - 1) - 1;
  bool direct = nh >= 0 && nw >= 0 && nh / g->sh + 1 == g->Hs && nw / g->sw + 1 == g->Ws;
  int64_t Hr = direct ? g->Hb : (g->Hs - 1) * g->sh + g->dh * (g->kh - 1) + 1;
  int64_t Wr = direct ? g->Wb : (g->Ws - 1) * g->sw + g->dw * (g->kw - 1) + 1;
  conv_key k;
  memset(&k, 0, sizeof k);
  k.kind = kind; k.dt = dt;
  k.flags = (sg_cuda_benchmark() ? F_BENCH : 0) | (sg_cuda_deterministic() ? F_DET : 0) |
            (dt == SG_F32 && sg_config.conv_tf32 ? F_TF32 : 0);
  k.G = g->G; k.Cb = g->Cb; k.Hb = Hr; k.Wb = Wr; k.Cs = g->Cs; k.Hs = g->Hs; k.Ws = g->Ws;
  k.kh = g->kh; k.kw = g->kw; k.sh = g->sh; k.sw = g->sw; k.dh = g->dh; k.dw = g->dw;
  k.ph = direct ? g->ph : 0; k.pw = direct ? g->pw : 0;
  /* cuDNN's descriptors take int: images per chunk so that no tensor reaches 2^31 elements */
  int64_t per = g->Cb * Hr * Wr > g->Cs * g->Hs * g->Ws ? g->Cb * Hr * Wr : g->Cs * g->Hs * g->Ws;
  int64_t params[] = {g->G, g->Cb, Hr, Wr, g->Cs, g->Hs, g->Ws, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->dh, g->dw};
  bool fits = per <= INT_MAX && wnumel <= INT_MAX;
  for (size_t i = 0; i < sizeof params / sizeof *params; i++) fits = fits && params[i] <= INT_MAX;
  if (!fits) {
    char buf[320];
    k.N = 1;
    sg_error_set("conv: one image is too large for cuDNN (2^31 elements per tensor): %s", geom_str(&k, buf, sizeof buf));
    return -1;
  }
  int64_t chunk = INT_MAX / per;
  if (chunk > g->N) chunk = g->N;
  char *pad = NULL;
  if (!direct && !(pad = sg_cuda_malloc((size_t)(chunk * g->Cb * Hr * Wr) * es))) return -1;
  int rc = 0;
  for (int64_t n0 = 0; n0 < g->N && !rc; n0 += chunk) {
    int64_t nc = g->N - n0 < chunk ? g->N - n0 : chunk;
    char *bc = bp + n0 * g->Cb * g->Hb * g->Wb * (int64_t)es, *sc = sp + n0 * g->Cs * g->Hs * g->Ws * (int64_t)es;
    char *brun = direct ? bc : pad;
    if (!direct && kind != SG_CONV_BWD_DATA) {
      if (!SG_CUDA_OK(cudaMemsetAsync(pad, 0, (size_t)(nc * g->Cb * Hr * Wr) * es, sg_cuda_stream())) ||
          pad_copy(true, g, nc, Hr, Wr, pad, bc, dt)) {
        rc = -1;
        break;
      }
    }
    k.N = nc;
    entry *e = lookup(&k, h, brun, wp, sc);
    if (!e || execute(e, h, brun, wp, sc, kind == SG_CONV_BWD_FILTER && n0 > 0)) {
      rc = -1;
      break;
    }
    if (!direct && kind == SG_CONV_BWD_DATA) {
      if (!SG_CUDA_OK(cudaMemsetAsync(bc, 0, (size_t)(nc * g->Cb * g->Hb * g->Wb) * es, sg_cuda_stream())) ||
          pad_copy(false, g, nc, Hr, Wr, pad, bc, dt))
        rc = -1;
    }
  }
  sg_cuda_free(pad); /* one stream: the kernels above run before any reuse */
  return rc;
}

/* ---------------------------------------------------------------- convolution bias */
int sg_cuda_bias_add_(sg_tensor *out, sg_tensor *bias) {
  if (!sg_cuda_ensure()) return -1;
  int64_t N, C, L;
  ncl(out, &N, &C, &L);
  return LAUNCH(sgk_bias_add(sg_data_ptr(out), out->dtype, vec_of(bias), N, C, L, sg_cuda_stream())) ? 0 : -1;
}

int sg_cuda_bias_backward(sg_tensor *gout, sg_tensor *gb) {
  if (!sg_cuda_ensure()) return -1;
  int64_t N, C, L;
  ncl(gout, &N, &C, &L);
  double *sums, *buf = channel_reduce(SGK_RED_SUM, NULL, gout, NULL, N, C, L, 1, &sums);
  if (!buf) return -1;
  bool ok = LAUNCH(sgk_store_vec(sums, C, vec_of(gb), sg_cuda_stream()));
  sg_cuda_free(buf);
  return ok ? 0 : -1;
}

/* the bias (FWD: added to small; BWD_FILTER: its gradient from small) after the cuDNN call */
int sg_cuda_conv(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big, sg_tensor *w, sg_tensor *small,
                 sg_tensor *bias) {
  sg_path_note(SG_PATH_CONV, "cudnn");
  int rc = conv_run(kind, g, big, w, small);
  if (rc || !bias) return rc;
  if (kind == SG_CONV_FWD) return sg_cuda_bias_add_(small, bias);
  if (kind == SG_CONV_BWD_FILTER) return sg_cuda_bias_backward(small, bias);
  return 0;
}
