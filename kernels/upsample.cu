// Nearest and bilinear upsampling of NCHW tensors with engine/ops/upsample.c's
// index rules. The per-axis taps (source rows/columns and weights) are
// computed on the device with explicitly rounded IEEE operations (no fused
// multiply-add), so they are bit for bit the CPU's; the backward is a gather:
// each input pixel adds up the outputs that read it, in a fixed order.
#include "k_nn_device.cuh"

using namespace sgk;

namespace {

struct Tap {
  int64_t i0, i1;
  double l0, l1;
};
struct Range {
  int64_t lo, hi; // outputs [lo, hi) may read this input row/column
};

// engine/ops/upsample.c's build_taps for output position d of an axis in -> out
__device__ Tap tap_of(int64_t d, int64_t in, int64_t out, bool bilinear, bool align, float nsc, double bsc) {
  Tap t;
  if (!bilinear) {
    int64_t s;
    if (out == in) s = d;
    else if (out == 2 * in) s = d >> 1;
    else {
      s = (int64_t)floorf(__fmul_rn((float)d, nsc));
      if (s > in - 1) s = in - 1;
    }
    t.i0 = t.i1 = s;
    t.l0 = 1.0;
    t.l1 = 0.0;
    return t;
  }
  double src = align ? __dmul_rn(bsc, (double)d) : __dsub_rn(__dmul_rn(bsc, __dadd_rn((double)d, 0.5)), 0.5);
  if (src < 0) src = 0;
  int64_t i0 = (int64_t)floor(src);
  if (i0 > in - 1) i0 = in - 1;
  double l = __dsub_rn(src, (double)i0);
  if (l < 0) l = 0;
  if (l > 1) l = 1;
  t.i0 = i0;
  t.i1 = i0 + (i0 < in - 1 ? 1 : 0);
  t.l0 = __dsub_rn(1.0, l);
  t.l1 = l;
  return t;
}

// taps: rows [oh] then columns [ow]
__global__ void make_taps(sgk_upsample_geom p, Tap *taps) {
  SGK_GRID_STRIDE(d, p.oh + p.ow) {
    bool row = d < p.oh;
    taps[d] = row ? tap_of(d, p.H, p.oh, p.bilinear, p.align, p.nsh, p.bsh)
                  : tap_of(d - p.oh, p.W, p.ow, p.bilinear, p.align, p.nsw, p.bsw);
  }
}

// first position in [0, n) whose tap has i0 >= v (taps are non-decreasing in i0)
__device__ int64_t lower_bound_i0(const Tap *t, int64_t n, int64_t v) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (t[mid].i0 < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ranges: rows [H] then columns [W]: the outputs whose i0 is h - 1 or h (the only ones that can read h)
__global__ void make_ranges(sgk_upsample_geom p, const Tap *taps, Range *ranges) {
  SGK_GRID_STRIDE(k, p.H + p.W) {
    bool row = k < p.H;
    int64_t h = row ? k : k - p.H, n = row ? p.oh : p.ow;
    const Tap *t = row ? taps : taps + p.oh;
    ranges[k].lo = lower_bound_i0(t, n, h - 1);
    ranges[k].hi = lower_bound_i0(t, n, h + 1);
  }
}

template <class D>
__global__ void upsample_fwd(const typename D::S *x, typename D::S *y, sgk_upsample_geom p, const Tap *taps, int64_t n) {
  using A = typename D::A;
  SGK_GRID_STRIDE(i, n) {
    int64_t xo = i % p.ow, t = i / p.ow, yo = t % p.oh, pl = t / p.oh;
    const Tap a = taps[yo], b = taps[p.oh + xo];
    const typename D::S *xp = x + pl * p.H * p.W;
    if (!p.bilinear) {
      y[i] = xp[a.i0 * p.W + b.i0];
      continue;
    }
    double v = a.l0 * (b.l0 * (double)D::ld(xp + a.i0 * p.W + b.i0) + b.l1 * (double)D::ld(xp + a.i0 * p.W + b.i1)) +
               a.l1 * (b.l0 * (double)D::ld(xp + a.i1 * p.W + b.i0) + b.l1 * (double)D::ld(xp + a.i1 * p.W + b.i1));
    D::st(y + i, (A)v);
  }
}

__device__ __forceinline__ double weight_at(const Tap &t, int64_t h) {
  return (t.i0 == h ? t.l0 : 0.0) + (t.i1 == h ? t.l1 : 0.0);
}

template <class D>
__global__ void upsample_backward(const typename D::S *g, typename D::S *gx, sgk_upsample_geom p, const Tap *taps,
                             const Range *ranges, int64_t n) {
  using A = typename D::A;
  SGK_GRID_STRIDE(i, n) {
    int64_t w = i % p.W, t = i / p.W, h = t % p.H, pl = t / p.H;
    const Range ry = ranges[h], rx = ranges[p.H + w];
    const typename D::S *gp = g + pl * p.oh * p.ow;
    double acc = 0;
    for (int64_t y = ry.lo; y < ry.hi; y++) {
      double wy = weight_at(taps[y], h);
      if (wy == 0) continue;
      for (int64_t x = rx.lo; x < rx.hi; x++) {
        double wx = weight_at(taps[p.oh + x], w);
        if (wx != 0) acc += (double)D::ld(gp + y * p.ow + x) * wy * wx;
      }
    }
    D::st(gx + i, (A)acc);
  }
}

template <class D>
int launch_fwd(const void *x, void *y, const sgk_upsample_geom *p, void *scratch, cudaStream_t s) {
  int64_t n = p->planes * p->oh * p->ow;
  if (n <= 0) return 0;
  Tap *taps = (Tap *)scratch;
  make_taps<<<blocks_for(p->oh + p->ow), kThreads, 0, s>>>(*p, taps);
  int e = (int)cudaGetLastError();
  if (e) return e;
  upsample_fwd<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)x, (typename D::S *)y, *p, taps, n);
  return (int)cudaGetLastError();
}

template <class D>
int launch_backward(const void *g, void *gx, const sgk_upsample_geom *p, void *scratch, cudaStream_t s) {
  int64_t n = p->planes * p->H * p->W;
  if (n <= 0) return 0;
  Tap *taps = (Tap *)scratch;
  Range *ranges = (Range *)(taps + p->oh + p->ow);
  make_taps<<<blocks_for(p->oh + p->ow), kThreads, 0, s>>>(*p, taps);
  int e = (int)cudaGetLastError();
  if (e) return e;
  make_ranges<<<blocks_for(p->H + p->W), kThreads, 0, s>>>(*p, taps, ranges);
  if ((e = (int)cudaGetLastError())) return e;
  upsample_backward<D><<<blocks_for(n), kThreads, 0, s>>>((const typename D::S *)g, (typename D::S *)gx, *p, taps, ranges,
                                                     n);
  return (int)cudaGetLastError();
}

} // namespace

SGK_API int64_t sgk_upsample_scratch_bytes(const sgk_upsample_geom *p) {
  return (int64_t)sizeof(Tap) * (p->oh + p->ow) + (int64_t)sizeof(Range) * (p->H + p->W);
}

SGK_API int sgk_upsample(const void *x, int dt, void *y, const sgk_upsample_geom *p, void *scratch, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_fwd, x, y, p, scratch, s);
}

SGK_API int sgk_upsample_backward(const void *g, int dt, void *gx, const sgk_upsample_geom *p, void *scratch,
                                  sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_backward, g, gx, p, scratch, s);
}
