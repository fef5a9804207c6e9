// Reductions (launchers in k_reduce.h): sum, prod, amax/amin, all/any,
// count_nonzero and argmax/argmin over an [outer, row] view of the input.
//
// Every block has kThreads threads arranged as O output lanes x R row lanes
// (R * O = kThreads, powers of two). Either consecutive threads take
// consecutive row elements (row_fast: the reduced elements are contiguous in
// memory, or nothing is) or consecutive outputs (the kept elements are
// contiguous and the reduced ones are not, e.g. a sum over the batch dim), so
// loads coalesce in both cases. A row lane combines its elements i = start +
// lane, start + lane + R, ... in order, then the lanes of one output combine
// in a fixed shared-memory tree. When there are too few outputs to fill the
// GPU and rows are long, each row is cut into `nsplit` chunks (gridDim.y):
// the chunks write partial results and a second pass combines them in the
// same fixed tree. The plan depends only on the sizes and strides, never on
// timing, and no float atomics are used: results are deterministic.
//
// Accumulation as engine/ops/reduce.c (reduce_rows): floats in double,
// integers and bool in wrapping int64; max/min/argmax/argmin take the first
// NaN if there is one, else the extreme value at its first index.
#include "k_device.cuh"
#include "k_reduce.h"
#include <type_traits>

using namespace sgk;

namespace {

template <typename A>
struct Acc {
  A v;
  int64_t i; // row index of v for max/min/arg (-1: nothing seen yet)
};
static_assert(sizeof(Acc<double>) == 16 && sizeof(Acc<int64_t>) == 16, "partials are 16 bytes");

template <typename A>
__device__ inline bool is_nan(A v) {
  if constexpr (std::is_floating_point<A>::value) return v != v;
  else return false;
}
template <typename A>
__device__ inline A add(A a, A b) {
  if constexpr (std::is_floating_point<A>::value) return a + b;
  else return (A)((uint64_t)a + (uint64_t)b);
}
template <typename A>
__device__ inline A mul(A a, A b) {
  if constexpr (std::is_floating_point<A>::value) return a * b;
  else return (A)((uint64_t)a * (uint64_t)b);
}
template <typename A>
__device__ inline A load_as(const char *p, int t) {
  if constexpr (std::is_floating_point<A>::value) return load_f64(p, t);
  else return load_i64(p, t);
}

template <typename A>
__device__ inline Acc<A> identity(int kind) {
  Acc<A> r;
  r.v = kind == SGK_R_PROD || kind == SGK_R_ALL ? A(1) : A(0);
  r.i = -1;
  return r;
}

// The CPU's rule as an order-free choice: the NaN of lowest index if any,
// else the largest (smallest) value, the lowest index among equal values.
template <typename A>
__device__ inline Acc<A> pick(bool largest, const Acc<A> &a, const Acc<A> &b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  bool an = is_nan(a.v), bn = is_nan(b.v);
  if (an || bn) return an && bn ? (a.i < b.i ? a : b) : (an ? a : b);
  if (largest ? b.v > a.v : b.v < a.v) return b;
  if (largest ? a.v > b.v : a.v < b.v) return a;
  return a.i <= b.i ? a : b;
}

template <typename A>
__device__ inline Acc<A> combine(int kind, Acc<A> a, const Acc<A> &b) {
  switch (kind) {
  case SGK_R_SUM:
  case SGK_R_NONZERO: a.v = add(a.v, b.v); return a;
  case SGK_R_PROD: a.v = mul(a.v, b.v); return a;
  case SGK_R_ALL: a.v = a.v != A(0) && b.v != A(0) ? A(1) : A(0); return a;
  case SGK_R_ANY: a.v = a.v != A(0) || b.v != A(0) ? A(1) : A(0); return a;
  case SGK_R_MAX:
  case SGK_R_ARGMAX: return pick(true, a, b);
  default: return pick(false, a, b);
  }
}

// input element x at row index i as a partial result
template <typename A>
__device__ inline Acc<A> element(int kind, A x, int64_t i) {
  Acc<A> r;
  r.i = i;
  r.v = kind == SGK_R_ALL || kind == SGK_R_ANY || kind == SGK_R_NONZERO ? (x != A(0) ? A(1) : A(0)) : x;
  return r;
}

template <typename A>
__device__ inline void store_result(int kind, char *p, int ot, const Acc<A> &r) {
  switch (kind) {
  case SGK_R_ARGMAX:
  case SGK_R_ARGMIN: *(int64_t *)p = r.i; break;
  case SGK_R_ALL:
  case SGK_R_ANY: *(uint8_t *)p = r.v != A(0); break;
  case SGK_R_NONZERO: *(int64_t *)p = (int64_t)r.v; break;
  default:
    if constexpr (std::is_floating_point<A>::value) store_f64(p, ot, r.v);
    else store_i64(p, ot, r.v);
  }
}

// element offset of row-major position i (32-bit division chain when small)
__device__ inline int64_t off_of(const sgk_layout &l, int64_t i, bool small) {
  if (l.ndim == 1) return i * l.stride[0];
  int64_t off = 0;
  if (small) {
    uint32_t r = (uint32_t)i;
    for (int d = l.ndim - 1; d >= 0; d--) {
      uint32_t sz = (uint32_t)l.size[d], q = r / sz;
      off += (int64_t)(r - q * sz) * l.stride[d];
      r = q;
    }
  } else {
    for (int d = l.ndim - 1; d >= 0; d--) {
      int64_t sz = l.size[d], q = i / sz;
      off += (i - q * sz) * l.stride[d];
      i = q;
    }
  }
  return off;
}

struct Plan {
  int R, O;      // row lanes x output lanes per block (R * O = kThreads)
  bool row_fast; // consecutive threads take consecutive row elements (else consecutive outputs)
  int64_t nout, nrow;
  int64_t chunk; // row elements per split
  int nsplit;    // splits per row (gridDim.y)
};

struct Args {
  int kind, it, ot;
  const char *in; // the tensor (first pass) ...
  sgk_layout outer, row;
  bool outer_small, row_small;
  const void *part_in; // ... or partial results [nout, nrow] (second pass)
  void *out;           // the result (contiguous, dtype ot) ...
  void *part_out;      // ... or partial results [nout, nsplit]
  Plan p;
};

template <typename A, bool PARTIAL_IN>
__global__ void __launch_bounds__(kThreads) reduce_kernel(Args g) {
  __shared__ Acc<A> sh[kThreads];
  const int R = g.p.R, O = g.p.O, tid = threadIdx.x;
  const int rl = g.p.row_fast ? tid % R : tid / O, ol = g.p.row_fast ? tid / R : tid % O;
  const int slot = ol * R + rl;
  const int64_t c = blockIdx.y, start = c * g.p.chunk;
  const int64_t end = start + g.p.chunk < g.p.nrow ? start + g.p.chunk : g.p.nrow;
  const int es = dtype_size(g.it);
  for (int64_t ob = blockIdx.x; ob * O < g.p.nout; ob += gridDim.x) {
    const int64_t o = ob * O + ol;
    Acc<A> acc = identity<A>(g.kind);
    if (o < g.p.nout) {
      if constexpr (PARTIAL_IN) {
        const Acc<A> *src = (const Acc<A> *)g.part_in + o * g.p.nrow;
        for (int64_t i = start + rl; i < end; i += R) acc = combine(g.kind, acc, src[i]);
      } else {
        const char *base = g.in + off_of(g.outer, o, g.outer_small) * es;
        int64_t i = start + rl;
        // four loads in flight, combined in the same order as one at a time
        for (; i + 3 * (int64_t)R < end; i += 4 * (int64_t)R) {
          A x[4];
#pragma unroll
          for (int u = 0; u < 4; u++) x[u] = load_as<A>(base + off_of(g.row, i + u * (int64_t)R, g.row_small) * es, g.it);
#pragma unroll
          for (int u = 0; u < 4; u++) acc = combine(g.kind, acc, element(g.kind, x[u], i + u * (int64_t)R));
        }
        for (; i < end; i += R)
          acc = combine(g.kind, acc, element(g.kind, load_as<A>(base + off_of(g.row, i, g.row_small) * es, g.it), i));
      }
    }
    sh[slot] = acc;
    for (int st = R / 2; st > 0; st >>= 1) { // fixed tree over the row lanes of each output
      __syncthreads();
      if (rl < st) sh[slot] = combine(g.kind, sh[slot], sh[slot + st]);
    }
    __syncthreads();
    if (rl == 0 && o < g.p.nout) {
      if (g.part_out) ((Acc<A> *)g.part_out)[o * g.p.nsplit + c] = sh[slot];
      else store_result(g.kind, (char *)g.out + o * dtype_size(g.ot), g.ot, sh[slot]);
    }
    __syncthreads(); // sh is written again for the next outputs
  }
}

int64_t numel_of(const sgk_layout &l) {
  int64_t n = 1;
  for (int d = 0; d < l.ndim; d++) n *= l.size[d];
  return n;
}

int pow2_at_least(int64_t n, int cap) {
  int p = 1;
  while (p < n && p < cap) p <<= 1;
  return p;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kFillBlocks = 528; // enough blocks in flight for a large GPU (4 per SM on 132 SMs)
constexpr int64_t kMinPerThread = 16; // row elements a thread should at least get when rows are split
constexpr int64_t kMaxSplit = 1024;
constexpr int64_t kMinPerLane = 4; // row elements per lane at least, when rows are short

Plan make_plan(const sgk_layout &outer, const sgk_layout &row) {
  Plan p{};
  p.nout = numel_of(outer);
  p.nrow = numel_of(row);
  int64_t rs = row.ndim ? row.stride[row.ndim - 1] : 1, os = outer.ndim ? outer.stride[outer.ndim - 1] : 0;
  p.row_fast = !(outer.ndim > 0 && os == 1 && rs != 1);
  if (p.row_fast) { // short rows: several elements per lane before the tree (fewer barrier levels)
    p.R = pow2_at_least(ceil_div(p.nrow, kMinPerLane), kThreads);
    p.O = kThreads / p.R;
  } else {
    p.O = pow2_at_least(p.nout, 32);
    p.R = kThreads / p.O;
  }
  p.nsplit = 1;
  p.chunk = p.nrow;
  int64_t blocks_out = ceil_div(p.nout, p.O);
  if (p.nrow > 0 && blocks_out < kFillBlocks / 2) {
    int64_t ns = ceil_div(kFillBlocks, blocks_out), by_work = ceil_div(p.nrow, (int64_t)p.R * kMinPerThread);
    if (ns > by_work) ns = by_work;
    if (ns > kMaxSplit) ns = kMaxSplit;
    if (ns > 1) {
      p.chunk = ceil_div(p.nrow, ns);
      p.nsplit = (int)ceil_div(p.nrow, p.chunk);
    }
  }
  return p;
}

bool fits32(const sgk_layout &l) { return numel_of(l) <= 0xffffffffLL; }

template <typename A>
int launch(Args g, cudaStream_t s) {
  const Plan p = g.p;
  dim3 grid((unsigned)(ceil_div(p.nout, p.O) < (1 << 20) ? ceil_div(p.nout, p.O) : (1 << 20)), (unsigned)p.nsplit);
  if (p.nsplit == 1) {
    reduce_kernel<A, false><<<grid, kThreads, 0, s>>>(g);
    return (int)cudaGetLastError();
  }
  // pass 1: partial results per chunk into the scratch ...
  void *out = g.out;
  g.out = nullptr;
  reduce_kernel<A, false><<<grid, kThreads, 0, s>>>(g);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return (int)e;
  // ... pass 2: each output combines its nsplit partials (contiguous rows) in a fixed tree
  Args h = g;
  h.part_in = g.part_out;
  h.part_out = nullptr;
  h.out = out;
  h.p.nrow = p.nsplit;
  h.p.chunk = p.nsplit;
  h.p.nsplit = 1;
  h.p.row_fast = true;
  h.p.R = pow2_at_least(p.nsplit, kThreads);
  h.p.O = kThreads / h.p.R;
  int64_t b2 = ceil_div(p.nout, h.p.O);
  reduce_kernel<A, true><<<(unsigned)(b2 < (1 << 20) ? b2 : (1 << 20)), kThreads, 0, s>>>(h);
  return (int)cudaGetLastError();
}

__global__ void prod_grad_kernel(double *d, const double *x, int64_t outer, int64_t row) {
  SGK_GRID_STRIDE(o, outer) {
    const double *xr = x + o * row;
    double *dr = d + o * row, acc = 1;
    for (int64_t i = 0; i < row; i++) {
      dr[i] = acc;
      acc *= xr[i];
    }
    acc = 1;
    for (int64_t i = row - 1; i >= 0; i--) {
      dr[i] *= acc;
      acc *= xr[i];
    }
  }
}

} // namespace

SGK_API size_t sgk_reduce_scratch(const sgk_layout *outer, const sgk_layout *row) {
  Plan p = make_plan(*outer, *row);
  return p.nsplit > 1 ? (size_t)p.nout * (size_t)p.nsplit * sizeof(Acc<double>) : 0;
}

SGK_API int sgk_reduce(int kind, void *out, int ot, const void *in, int it, const sgk_layout *outer,
                       const sgk_layout *row, void *scratch, sgk_stream s) {
  Args g{};
  g.kind = kind;
  g.it = it;
  g.ot = ot;
  g.in = (const char *)in;
  g.outer = *outer;
  g.row = *row;
  g.outer_small = fits32(*outer);
  g.row_small = fits32(*row);
  g.out = out;
  g.p = make_plan(*outer, *row);
  if (g.p.nout == 0) return 0;
  if (g.p.nsplit > 1) {
    if (!scratch) return (int)cudaErrorInvalidValue;
    g.part_out = scratch;
  }
  bool fl = it == SG_F16 || it == SG_BF16 || it == SG_F32 || it == SG_F64;
  return fl ? launch<double>(g, s) : launch<int64_t>(g, s);
}

SGK_API int sgk_prod_backward_rows(double *d, const double *x, int64_t outer, int64_t row, sgk_stream s) {
  if (outer <= 0 || row <= 0) return 0;
  prod_grad_kernel<<<blocks_for(outer), kThreads, 0, s>>>(d, x, outer, row);
  return (int)cudaGetLastError();
}
