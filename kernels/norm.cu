// Per-channel reductions, batch norm, group and layer norm. The maths is
// engine/ops/norm.c's and group_norm.c's: statistics and sums in double, the
// elementwise passes in double too (rounded once to the output type), so
// f32 results match the CPU to rounding.
//
// Reductions never use atomics: every block writes its partial sums and a
// second step adds them in a fixed order, so repeated runs agree bit for bit.
#include "k_nn_device.cuh"

using namespace sgk;

namespace {

constexpr int kRedThreads = 256;
constexpr int kRowThreads = 512;

// ---------------------------------------------------------------- channel reduction
// grid (C, splits): block (c, sp) covers the flat positions j = n * L + l of
// channel c congruent to its threads modulo splits * blockDim.
template <class D, int MODE>
__global__ void __launch_bounds__(kRedThreads)
    chan_reduce(const typename D::S *x, const typename D::S *g, const double *stats, sgk_red r, double *partials) {
  __shared__ double shm[64];
  const int64_t c = blockIdx.x, C = r.C, L = r.L, N = r.N;
  const int sp = blockIdx.y;
  const int64_t step = (int64_t)r.splits * blockDim.x, j = (int64_t)sp * blockDim.x + threadIdx.x;
  const int64_t qn = step / L, ql = step - qn * L;
  int64_t n = j / L, l = j - n * L;
  double K = 0, m = 0, is = 1;
  int64_t Cg = 1, R = 0;
  if (MODE == SGK_RED_STATS) K = (double)D::ld(x + c * L);
  if (MODE == SGK_RED_BN_BWD) { m = stats[c]; is = stats[C + c]; }
  if (MODE == SGK_RED_GN_BWD) { Cg = C / r.G; R = N * r.G; }
  double a = 0, b = 0;
  while (n < N) {
    int64_t off = (n * C + c) * L + l;
    if (MODE == SGK_RED_SUM) {
      a += (double)D::ld(g + off);
    } else if (MODE == SGK_RED_STATS) {
      double d = (double)D::ld(x + off) - K;
      a += d;
      b += d * d;
    } else {
      if (MODE == SGK_RED_GN_BWD) {
        int64_t row = n * r.G + c / Cg;
        m = stats[row];
        is = stats[R + row];
      }
      double gv = (double)D::ld(g + off);
      a += gv;
      b += gv * ((double)D::ld(x + off) - m) * is;
    }
    l += ql;
    n += qn;
    if (l >= L) { l -= L; n++; }
  }
  block_sum2(a, b, shm);
  if (threadIdx.x == 0) {
    partials[(c * r.splits + sp) * 2] = a;
    partials[(c * r.splits + sp) * 2 + 1] = b;
  }
}

__global__ void chan_sums(const double *partials, sgk_red r, double *sums) {
  SGK_GRID_STRIDE(c, r.C) {
    double a = 0, b = 0;
    for (int sp = 0; sp < r.splits; sp++) {
      a += partials[(c * r.splits + sp) * 2];
      b += partials[(c * r.splits + sp) * 2 + 1];
    }
    sums[c] = a;
    sums[r.C + c] = b;
  }
}

__global__ void store_vec(const double *src, int64_t C, sgk_vec out) {
  SGK_GRID_STRIDE(c, C) vec_st(out, c, src[c]);
}

// ---------------------------------------------------------------- batch norm
// stats: mean [C], invstd [C], scale [C], shift [C] (y = x * scale + shift)
template <class D>
__global__ void bn_stats(const double *partials, const typename D::S *x, sgk_red r, double eps, double momentum,
                         sgk_vec rm, sgk_vec rv, sgk_vec w, sgk_vec b, double *stats) {
  const int64_t C = r.C;
  SGK_GRID_STRIDE(c, C) {
    double mean, invstd;
    if (partials) {
      double s1 = 0, s2 = 0, M = (double)(r.N * r.L);
      for (int sp = 0; sp < r.splits; sp++) {
        s1 += partials[(c * r.splits + sp) * 2];
        s2 += partials[(c * r.splits + sp) * 2 + 1];
      }
      double K = (double)D::ld(x + c * r.L);
      mean = K + s1 / M;
      double var = (s2 - s1 * (s1 / M)) / M;
      if (var < 0) var = 0;
      invstd = 1.0 / sqrt(var + eps);
      if (rm.p) {
        vec_st(rm, c, (1 - momentum) * vec_ld(rm, c, 0.0) + momentum * mean);
        vec_st(rv, c, (1 - momentum) * vec_ld(rv, c, 0.0) + momentum * var * M / (M - 1));
      }
    } else {
      mean = vec_ld(rm, c, 0.0);
      invstd = 1.0 / sqrt(vec_ld(rv, c, 1.0) + eps);
    }
    double sc = invstd * vec_ld(w, c, 1.0);
    stats[c] = mean;
    stats[C + c] = invstd;
    stats[2 * C + c] = sc;
    stats[3 * C + c] = vec_ld(b, c, 0.0) - mean * sc;
  }
}

template <class D>
struct BnApply {
  const typename D::S *x;
  typename D::S *y;
  const double *stats;
  int64_t C;
  __device__ void operator()(int64_t row, int64_t i) const {
    int64_t c = row % C;
    D::st(y + i, (typename D::A)((double)D::ld(x + i) * stats[2 * C + c] + stats[3 * C + c]));
  }
};

// coef [4C]: k1 = w * invstd, k2 = sum_g / M, k3 = invstd * sum_gxhat / M, mean
__global__ void bn_bwd_coef(const double *stats, const double *sums, sgk_vec w, int64_t C, double M, double *coef) {
  SGK_GRID_STRIDE(c, C) {
    double is = stats[C + c];
    coef[c] = vec_ld(w, c, 1.0) * is;
    coef[C + c] = sums ? sums[c] / M : 0.0;
    coef[2 * C + c] = sums ? is * (sums[C + c] / M) : 0.0;
    coef[3 * C + c] = stats[c];
  }
}

template <class D>
struct BnBwdData {
  const typename D::S *x, *g;
  typename D::S *gx;
  const double *coef;
  int64_t C;
  bool training;
  __device__ void operator()(int64_t row, int64_t i) const {
    int64_t c = row % C;
    double gv = (double)D::ld(g + i), v;
    if (training) v = coef[c] * (gv - coef[C + c] - ((double)D::ld(x + i) - coef[3 * C + c]) * coef[2 * C + c]);
    else v = coef[c] * gv;
    D::st(gx + i, (typename D::A)v);
  }
};

// ---------------------------------------------------------------- group / layer norm
// f(weight of the channel, offset within the row) for this thread's share of
// a row of Cg channels of L values; the weight is read once per channel when
// the channels are long
template <class F>
__device__ __forceinline__ void row_foreach(const sgk_vec &w, int64_t c0, int64_t Cg, int64_t L, F &&f) {
  if (L >= 32) {
    for (int64_t j = 0; j < Cg; j++) {
      const double wc = vec_ld(w, c0 + j, 1.0);
      for (int64_t l = threadIdx.x; l < L; l += blockDim.x) f(wc, j * L + l);
    }
  } else {
    for (int64_t e = threadIdx.x; e < Cg * L; e += blockDim.x) f(vec_ld(w, c0 + e / L, 1.0), e);
  }
}

template <class D>
__global__ void __launch_bounds__(kRowThreads)
    gn_fwd(const typename D::S *x, typename D::S *y, sgk_vec w, sgk_vec b, int64_t N, int64_t C, int64_t G, int64_t L,
           double eps, double *stats) {
  __shared__ double shm[64];
  using A = typename D::A;
  const int64_t Cg = C / G, M = Cg * L, R = N * G;
  for (int64_t row = blockIdx.x; row < R; row += gridDim.x) { // uniform per block
    const int64_t gi = row % G, base = row * M;
    const typename D::S *xr = x + base;
    typename D::S *yr = y + base;
    double s = 0, unused = 0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) s += (double)D::ld(xr + e);
    block_sum2(s, unused, shm);
    const double m = M ? s / (double)M : 0.0;
    double q = 0;
    unused = 0;
    for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
      double d = (double)D::ld(xr + e) - m;
      q += d * d;
    }
    block_sum2(q, unused, shm);
    const double var = M ? q / (double)M : 0.0, is = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      stats[row] = m;
      stats[R + row] = is;
    }
    if (L >= 32) { // channel by channel: the affine coefficients once per channel
      for (int64_t j = 0; j < Cg; j++) {
        const int64_t ch = gi * Cg + j;
        const double sc = is * vec_ld(w, ch, 1.0), sh = vec_ld(b, ch, 0.0) - m * sc;
        for (int64_t l = threadIdx.x; l < L; l += blockDim.x)
          D::st(yr + j * L + l, (A)((double)D::ld(xr + j * L + l) * sc + sh));
      }
    } else if (L == 1) { // layer norm: a weight per element
      for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
        const int64_t ch = gi * Cg + e;
        D::st(yr + e, (A)(((double)D::ld(xr + e) - m) * is * vec_ld(w, ch, 1.0) + vec_ld(b, ch, 0.0)));
      }
    } else {
      for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
        const int64_t ch = gi * Cg + e / L;
        const double sc = is * vec_ld(w, ch, 1.0), sh = vec_ld(b, ch, 0.0) - m * sc;
        D::st(yr + e, (A)((double)D::ld(xr + e) * sc + sh));
      }
    }
  }
}

template <class D>
__global__ void __launch_bounds__(kRowThreads)
    gn_backward(const typename D::S *x, const typename D::S *g, typename D::S *gx, sgk_vec w, int64_t N, int64_t C,
           int64_t G, int64_t L, const double *stats) {
  __shared__ double shm[64];
  using A = typename D::A;
  const int64_t Cg = C / G, M = Cg * L, R = N * G;
  for (int64_t row = blockIdx.x; row < R; row += gridDim.x) {
    const int64_t gi = row % G, base = row * M;
    const typename D::S *xr = x + base, *gr = g + base;
    typename D::S *out = gx + base;
    const double m = stats[row], is = stats[R + row];
    double sa = 0, sb = 0; // sum w g, sum w g (x - m)
    row_foreach(w, gi * Cg, Cg, L, [&](double wc, int64_t e) {
      double wg = wc * (double)D::ld(gr + e);
      sa += wg;
      sb += wg * ((double)D::ld(xr + e) - m);
    });
    block_sum2(sa, sb, shm);
    if (!M) continue;
    const double a = sa / (double)M, c1 = -is * is * is * sb / (double)M;
    row_foreach(w, gi * Cg, Cg, L, [&](double wc, int64_t e) {
      D::st(out + e, (A)(is * (wc * (double)D::ld(gr + e) - a) + c1 * ((double)D::ld(xr + e) - m)));
    });
  }
}

// ---------------------------------------------------------------- launchers
bool red_grid_ok(const sgk_red *r) { return r->C >= 1 && r->C <= 0x7fffffff && r->splits >= 1 && r->splits <= 65535; }

template <class D>
int launch_reduce(int mode, const void *xv, const void *gv, const double *stats, const sgk_red *r, double *partials,
                  cudaStream_t s) {
  if (!red_grid_ok(r) || r->L < 1) return (int)cudaErrorInvalidValue;
  using S = typename D::S;
  const S *x = (const S *)xv, *g = (const S *)gv;
  dim3 grid((unsigned)r->C, (unsigned)r->splits);
  switch (mode) {
  case SGK_RED_SUM: chan_reduce<D, SGK_RED_SUM><<<grid, kRedThreads, 0, s>>>(x, g, stats, *r, partials); break;
  case SGK_RED_STATS: chan_reduce<D, SGK_RED_STATS><<<grid, kRedThreads, 0, s>>>(x, g, stats, *r, partials); break;
  case SGK_RED_BN_BWD: chan_reduce<D, SGK_RED_BN_BWD><<<grid, kRedThreads, 0, s>>>(x, g, stats, *r, partials); break;
  case SGK_RED_GN_BWD: chan_reduce<D, SGK_RED_GN_BWD><<<grid, kRedThreads, 0, s>>>(x, g, stats, *r, partials); break;
  default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}

template <class D>
int launch_bn_stats(const double *partials, const void *x, const sgk_red *r, double eps, double momentum, sgk_vec rm,
                    sgk_vec rv, sgk_vec w, sgk_vec b, double *stats, cudaStream_t s) {
  bn_stats<D><<<blocks_for(r->C), kThreads, 0, s>>>(partials, (const typename D::S *)x, *r, eps, momentum, rm, rv, w,
                                                    b, stats);
  return (int)cudaGetLastError();
}

template <class D>
int launch_bn_apply(const void *x, void *y, const double *stats, int64_t N, int64_t C, int64_t L, cudaStream_t s) {
  BnApply<D> f{(const typename D::S *)x, (typename D::S *)y, stats, C};
  return launch_rows(f, N * C, L, s);
}

template <class D>
int launch_bn_bwd_data(const void *x, const void *g, void *gx, const double *coef, int training, int64_t N, int64_t C,
                       int64_t L, cudaStream_t s) {
  BnBwdData<D> f{(const typename D::S *)x, (const typename D::S *)g, (typename D::S *)gx, coef, C, training != 0};
  return launch_rows(f, N * C, L, s);
}

unsigned row_blocks(int64_t rows) { return (unsigned)(rows < 65535 * 16 ? (rows < 1 ? 1 : rows) : 65535 * 16); }
// threads per row block: enough for the row's M values (short layer-norm rows take one warp)
int row_threads(int64_t M) { return M >= 512 ? 512 : M >= 256 ? 256 : M >= 128 ? 128 : M >= 64 ? 64 : 32; }

template <class D>
int launch_gn(const void *x, void *y, sgk_vec w, sgk_vec b, int64_t N, int64_t C, int64_t G, int64_t L, double eps,
              double *stats, cudaStream_t s) {
  gn_fwd<D><<<row_blocks(N * G), row_threads(C / G * L), 0, s>>>((const typename D::S *)x, (typename D::S *)y, w, b, N, C, G, L,
                                                      eps, stats);
  return (int)cudaGetLastError();
}

template <class D>
int launch_gn_backward(const void *x, const void *g, void *gx, sgk_vec w, int64_t N, int64_t C, int64_t G, int64_t L,
                  const double *stats, cudaStream_t s) {
  gn_backward<D><<<row_blocks(N * G), row_threads(C / G * L), 0, s>>>((const typename D::S *)x, (const typename D::S *)g,
                                                      (typename D::S *)gx, w, N, C, G, L, stats);
  return (int)cudaGetLastError();
}

} // namespace

SGK_API int sgk_red_splits(int64_t N, int64_t C, int64_t L) {
  int64_t M = N * L, want = C > 0 ? (1024 + C - 1) / C : 1, most = (M + 4095) / 4096;
  if (want > most) want = most;
  if (want > 1024) want = 1024;
  return want < 1 ? 1 : (int)want;
}

SGK_API int sgk_channel_reduce(int mode, const void *x, const void *g, int dt, const double *stats, const sgk_red *r,
                               double *partials, sgk_stream s) {
  if (r->N * r->L <= 0 || r->C <= 0) return 0; // the caller treats empty channels itself
  return SGK_FLOAT_DISPATCH(dt, launch_reduce, mode, x, g, stats, r, partials, s);
}

SGK_API int sgk_channel_sums(const double *partials, const sgk_red *r, double *sums, sgk_stream s) {
  if (r->C <= 0) return 0;
  chan_sums<<<blocks_for(r->C), kThreads, 0, s>>>(partials, *r, sums);
  return (int)cudaGetLastError();
}

SGK_API int sgk_store_vec(const double *src, int64_t C, sgk_vec out, sgk_stream s) {
  if (C <= 0) return 0;
  store_vec<<<blocks_for(C), kThreads, 0, s>>>(src, C, out);
  return (int)cudaGetLastError();
}

SGK_API int sgk_bn_stats(const double *partials, const void *x, int dt, const sgk_red *r, double eps, double momentum,
                         sgk_vec rm, sgk_vec rv, sgk_vec w, sgk_vec b, double *stats, sgk_stream s) {
  if (r->C <= 0) return 0;
  return SGK_FLOAT_DISPATCH(dt, launch_bn_stats, partials, x, r, eps, momentum, rm, rv, w, b, stats, s);
}

SGK_API int sgk_bn_apply(const void *x, int dt, void *y, const double *stats, int64_t N, int64_t C, int64_t L,
                         sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_bn_apply, x, y, stats, N, C, L, s);
}

SGK_API int sgk_bn_backward_coef(const double *stats, const double *sums, sgk_vec w, int64_t C, double M, double *coef,
                                 sgk_stream s) {
  if (C <= 0) return 0;
  bn_bwd_coef<<<blocks_for(C), kThreads, 0, s>>>(stats, sums, w, C, M, coef);
  return (int)cudaGetLastError();
}

SGK_API int sgk_bn_backward_data(const void *x, const void *g, int dt, void *gx, const double *coef, int training,
                                 int64_t N, int64_t C, int64_t L, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_bn_bwd_data, x, g, gx, coef, training, N, C, L, s);
}

SGK_API int sgk_group_norm(const void *x, int dt, void *y, sgk_vec w, sgk_vec b, int64_t N, int64_t C, int64_t G,
                           int64_t L, double eps, double *stats, sgk_stream s) {
  if (N * G <= 0 || G <= 0 || C % G) return N * G <= 0 ? 0 : (int)cudaErrorInvalidValue;
  return SGK_FLOAT_DISPATCH(dt, launch_gn, x, y, w, b, N, C, G, L, eps, stats, s);
}

SGK_API int sgk_group_norm_backward(const void *x, const void *g, int dt, void *gx, sgk_vec w, int64_t N, int64_t C,
                                    int64_t G, int64_t L, const double *stats, sgk_stream s) {
  if (N * G <= 0 || G <= 0 || C % G) return N * G <= 0 ? 0 : (int)cudaErrorInvalidValue;
  return SGK_FLOAT_DISPATCH(dt, launch_gn_backward, x, g, gx, w, N, C, G, L, stats, s);
}
