// Pooling over the H x W planes of NCHW tensors (max with indices, max
// unpooling, average and adaptive average) with gather-style backwards. The
// window rules are engine/backend_ref/pool.c's.
#include "k_nn_device.cuh"

using namespace sgk;

namespace {

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// Outputs along one axis whose window [o*s - p, o*s - p + k) contains position h:
// o in [lo, hi] (empty when lo > hi).
__device__ __forceinline__ void covering(int64_t h, int64_t k, int64_t s, int64_t p, int64_t n_out, int64_t &lo,
                                         int64_t &hi) {
  int64_t a = h + p - k; // o*s > a
  lo = a < 0 ? 0 : a / s + 1;
  hi = imin((h + p) / s, n_out - 1);
}

// ---------------------------------------------------------------- max pool
template <class D>
__global__ void max_pool_fwd(const typename D::S *x, typename D::S *y, int64_t *idx, sgk_pool p, int64_t n) {
  using A = typename D::A;
  SGK_GRID_STRIDE(i, n) {
    int64_t xo = i % p.ow, t = i / p.ow, yo = t % p.oh, pl = t / p.oh;
    int64_t h0 = yo * p.sh - p.ph, h1 = imin(h0 + p.kh, p.H);
    int64_t w0 = xo * p.sw - p.pw, w1 = imin(w0 + p.kw, p.W);
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    const typename D::S *xp = x + pl * p.H * p.W;
    A best = (A)-INFINITY;
    int64_t bi = h0 * p.W + w0;
    bool nan = false;
    for (int64_t hh = h0; hh < h1 && !nan; hh++)
      for (int64_t ww = w0; ww < w1; ww++) {
        A v = D::ld(xp + hh * p.W + ww);
        if (v > best || v != v) {
          best = v;
          bi = hh * p.W + ww;
          if (v != v) { nan = true; break; }
        }
      }
    D::st(y + i, best);
    idx[i] = bi;
  }
}

// one thread per input position: the outputs whose window covers it, in increasing order (as the CPU adds them)
template <class D>
__global__ void max_pool_backward(const typename D::S *g, const int64_t *idx, typename D::S *gx, sgk_pool p, int64_t n) {
  using A = typename D::A;
  SGK_GRID_STRIDE(i, n) {
    int64_t w = i % p.W, t = i / p.W, h = t % p.H, pl = t / p.H;
    int64_t ylo, yhi, xlo, xhi;
    covering(h, p.kh, p.sh, p.ph, p.oh, ylo, yhi);
    covering(w, p.kw, p.sw, p.pw, p.ow, xlo, xhi);
    int64_t target = h * p.W + w;
    A acc = 0;
    for (int64_t y = ylo; y <= yhi; y++)
      for (int64_t x = xlo; x <= xhi; x++) {
        int64_t o = (pl * p.oh + y) * p.ow + x;
        if (idx[o] == target) acc += D::ld(g + o);
      }
    D::st(gx + i, acc);
  }
}

// ---------------------------------------------------------------- max unpool
// pass 1: the last input position (1-based) that targets each output position
__global__ void unpool_winner(const int64_t *idx, unsigned *win, int64_t is, int64_t os, int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t pl = i / is, k = i - pl * is;
    atomicMax(win + pl * os + idx[i], (unsigned)(k + 1));
  }
}
template <class D>
__global__ void unpool_fwd(const typename D::S *x, const int64_t *idx, typename D::S *y, const unsigned *win,
                           int64_t is, int64_t os, int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t pl = i / is, k = i - pl * is, o = pl * os + idx[i];
    if (!win || win[o] == (unsigned)(k + 1)) y[o] = x[i];
  }
}
template <class D>
__global__ void unpool_backward(const typename D::S *g, const int64_t *idx, typename D::S *gx, int64_t is, int64_t os,
                           int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t pl = i / is;
    gx[i] = g[pl * os + idx[i]];
  }
}

// ---------------------------------------------------------------- average pools
struct Win {
  int64_t h0, h1, w0, w1;
  double div;
};

// engine/backend_ref/pool.c's window_of
__device__ __forceinline__ Win window_of(const sgk_pool &p, int64_t y, int64_t x) {
  Win r;
  if (p.adaptive) {
    r.h0 = y * p.H / p.oh;
    r.h1 = ((y + 1) * p.H + p.oh - 1) / p.oh;
    r.w0 = x * p.W / p.ow;
    r.w1 = ((x + 1) * p.W + p.ow - 1) / p.ow;
    r.div = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
    return r;
  }
  r.h0 = y * p.sh - p.ph;
  r.w0 = x * p.sw - p.pw;
  r.h1 = imin(r.h0 + p.kh, p.H + p.ph);
  r.w1 = imin(r.w0 + p.kw, p.W + p.pw);
  double full = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  r.h0 = imax(r.h0, 0);
  r.w0 = imax(r.w0, 0);
  r.h1 = imin(r.h1, p.H);
  r.w1 = imin(r.w1, p.W);
  r.div = p.cip ? full : (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}

// small windows: one thread per output
template <class D>
__global__ void avg_pool_fwd_thread(const typename D::S *x, typename D::S *y, sgk_pool p, int64_t n) {
  using A = typename D::A;
  SGK_GRID_STRIDE(i, n) {
    int64_t xo = i % p.ow, t = i / p.ow, yo = t % p.oh, pl = t / p.oh;
    Win r = window_of(p, yo, xo);
    const typename D::S *xp = x + pl * p.H * p.W;
    double s = 0;
    for (int64_t h = r.h0; h < r.h1; h++)
      for (int64_t w = r.w0; w < r.w1; w++) s += (double)D::ld(xp + h * p.W + w);
    D::st(y + i, (A)(r.div > 0 ? s / r.div : 0.0));
  }
}

// large windows (global pooling): one warp per output, lanes stride over the window
template <class D>
__global__ void avg_pool_fwd_warp(const typename D::S *x, typename D::S *y, sgk_pool p, int64_t n) {
  using A = typename D::A;
  int lane = threadIdx.x & 31;
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t i = warp; i < n; i += nwarps) { // uniform per warp: every lane takes the same trips
    int64_t xo = i % p.ow, t = i / p.ow, yo = t % p.oh, pl = t / p.oh;
    Win r = window_of(p, yo, xo);
    const typename D::S *xp = x + pl * p.H * p.W;
    int64_t wn = r.w1 - r.w0, area = (r.h1 - r.h0) * wn;
    double s = 0;
    for (int64_t e = lane; e < area; e += 32) s += (double)D::ld(xp + (r.h0 + e / wn) * p.W + r.w0 + e % wn);
    s = warp_sum(s);
    if (lane == 0) D::st(y + i, (A)(r.div > 0 ? s / r.div : 0.0));
  }
}

// one thread per input position: the outputs whose window contains it
template <class D>
__global__ void avg_pool_backward(const typename D::S *g, typename D::S *gx, sgk_pool p, int64_t n) {
  using A = typename D::A;
  SGK_GRID_STRIDE(i, n) {
    int64_t w = i % p.W, t = i / p.W, h = t % p.H, pl = t / p.H;
    int64_t ylo, yhi, xlo, xhi;
    if (p.adaptive) {
      ylo = h * p.oh / p.H;
      yhi = imin(((h + 1) * p.oh + p.H - 1) / p.H - 1, p.oh - 1);
      xlo = w * p.ow / p.W;
      xhi = imin(((w + 1) * p.ow + p.W - 1) / p.W - 1, p.ow - 1);
    } else {
      covering(h, p.kh, p.sh, p.ph, p.oh, ylo, yhi);
      covering(w, p.kw, p.sw, p.pw, p.ow, xlo, xhi);
    }
    double acc = 0;
    for (int64_t y = ylo; y <= yhi; y++)
      for (int64_t x = xlo; x <= xhi; x++) {
        Win r = window_of(p, y, x);
        if (h < r.h0 || h >= r.h1 || w < r.w0 || w >= r.w1 || !(r.div > 0)) continue;
        acc += (double)D::ld(g + (pl * p.oh + y) * p.ow + x) / r.div;
      }
    D::st(gx + i, (A)acc);
  }
}

// ---------------------------------------------------------------- launchers
template <class D>
int launch_max_pool(const void *x, void *y, int64_t *idx, const sgk_pool *p, cudaStream_t s) {
  int64_t n = p->planes * p->oh * p->ow;
  if (n <= 0) return 0;
  max_pool_fwd<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)x, (typename D::S *)y, idx, *p, n);
  return (int)cudaGetLastError();
}
template <class D>
int launch_max_pool_backward(const void *g, const int64_t *idx, void *gx, const sgk_pool *p, cudaStream_t s) {
  int64_t n = p->planes * p->H * p->W;
  if (n <= 0) return 0;
  max_pool_backward<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)g, idx, (typename D::S *)gx, *p, n);
  return (int)cudaGetLastError();
}
template <class D>
int launch_unpool(const void *x, const int64_t *idx, void *y, unsigned *win, int64_t planes, int64_t is, int64_t os,
                  cudaStream_t s) {
  int64_t n = planes * is;
  if (n <= 0) return 0;
  if (win) {
    unpool_winner<<<blocks_for(n), kThreads, 0, s>>>(idx, win, is, os, n);
    int e = (int)cudaGetLastError();
    if (e) return e;
  }
  unpool_fwd<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)x, idx, (typename D::S *)y, win, is, os, n);
  return (int)cudaGetLastError();
}
template <class D>
int launch_unpool_backward(const void *g, const int64_t *idx, void *gx, int64_t planes, int64_t is, int64_t os,
                      cudaStream_t s) {
  int64_t n = planes * is;
  if (n <= 0) return 0;
  unpool_backward<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)g, idx, (typename D::S *)gx, is, os, n);
  return (int)cudaGetLastError();
}
template <class D>
int launch_avg_pool(const void *x, void *y, const sgk_pool *p, cudaStream_t s) {
  int64_t n = p->planes * p->oh * p->ow;
  if (n <= 0) return 0;
  // the largest window area (adaptive windows are at most ceil(H/oh) + 1 rows)
  int64_t wh = p->adaptive ? p->H / p->oh + 2 : p->kh, ww = p->adaptive ? p->W / p->ow + 2 : p->kw;
  if (wh * ww >= 64) {
    int64_t threads = n * 32;
    avg_pool_fwd_warp<D><<<blocks_for(threads), kThreads, 0, s>>>((const typename D::S *)x, (typename D::S *)y, *p,
                                                                   n);
  } else {
    avg_pool_fwd_thread<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)x, (typename D::S *)y, *p, n);
  }
  return (int)cudaGetLastError();
}
template <class D>
int launch_avg_pool_backward(const void *g, void *gx, const sgk_pool *p, cudaStream_t s) {
  int64_t n = p->planes * p->H * p->W;
  if (n <= 0) return 0;
  avg_pool_backward<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)g, (typename D::S *)gx, *p, n);
  return (int)cudaGetLastError();
}

} // namespace

SGK_API int sgk_max_pool2d(const void *x, int dt, void *y, int64_t *idx, const sgk_pool *p, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_max_pool, x, y, idx, p, s);
}
SGK_API int sgk_max_pool2d_backward(const void *g, const int64_t *idx, int dt, void *gx, const sgk_pool *p,
                                    sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_max_pool_backward, g, idx, gx, p, s);
}
SGK_API int sgk_max_unpool2d(const void *x, const int64_t *idx, int dt, void *y, unsigned *win, int64_t planes,
                             int64_t is, int64_t os, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_unpool, x, idx, y, win, planes, is, os, s);
}
SGK_API int sgk_max_unpool2d_backward(const void *g, const int64_t *idx, int dt, void *gx, int64_t planes, int64_t is,
                                      int64_t os, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_unpool_backward, g, idx, gx, planes, is, os, s);
}
SGK_API int sgk_avg_pool2d(const void *x, int dt, void *y, const sgk_pool *p, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_avg_pool, x, y, p, s);
}
SGK_API int sgk_avg_pool2d_backward(const void *g, int dt, void *gx, const sgk_pool *p, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_avg_pool_backward, g, gx, p, s);
}
