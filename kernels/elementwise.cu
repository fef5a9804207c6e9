// Elementwise kernels: binary and unary ops with broadcasting, clamp, where
// and the unary-op gradients (launchers in k_elementwise.h).
//
// The scalar math is the reference's own (engine/ops/elementwise_math.h,
// compiled here for the device); the f32 row loops mirror the cpu backend's,
// and inputs are converted the way the CPU's casts convert them, so the GPU
// computes what the CPU computes: float compute types in double (f32
// arithmetic and the f32 activations in float, as the CPU's typed loops),
// integer types in wrapping int64.
//
// Three paths each: for operands of one float dtype (f32, bf16, f16, f64) a
// flat one when they are contiguous (an input may also be a single broadcast
// element) with 16-byte vector loads, and a typed strided one otherwise; for
// mixed or integer dtypes a generic strided one. Strided kernels index up to 8
// dims with per-operand strides (zero for broadcast dims), with 32-bit index
// arithmetic when the element count allows.
#include "k_device.cuh"
#include "k_elementwise.h"
#include "ops/elementwise_math.h"
#include <type_traits>

using namespace sgk;

namespace {

// ------------------------------------------------------------------ scalar math
// the reference's scalar math (ops/elementwise_math.h), compiled for the device
__device__ inline double bin_f(int op, double a, double b) { return sg_um_binary_f(op, a, b); }
__device__ inline int64_t bin_i(int op, int64_t a, int64_t b) { return sg_um_binary_i(op, a, b); }

__device__ inline float sigmoid_f(float x) { return x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)); }

__device__ inline double un_f(int op, double x) { return sg_um_unary_f(op, x); }

// The ops the CPU's f32 row loop computes in float; false for the others
// (which it computes in double and rounds).
__device__ inline bool un_f32(int op, float x, float &r) {
  switch (op) {
  case SGK_NEG: r = -x; return true;
  case SGK_EXP: r = expf(x); return true;
  case SGK_LOG: r = logf(x); return true;
  case SGK_SQRT: r = sqrtf(x); return true;
  case SGK_SIGMOID: r = sigmoid_f(x); return true;
  case SGK_TANH: r = tanhf(x); return true;
  case SGK_RELU: r = x > 0 ? x : (x != x ? x : 0.0f); return true;
  case SGK_SQUARE: r = x * x; return true;
  case SGK_ABS: r = fabsf(x); return true;
  default: return false;
  }
}

__device__ inline int64_t un_i(int op, int64_t x) { return sg_um_unary_i(op, x); }

__device__ inline double clamp_d(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

// d op(x) / dx * g, from the input x and the output y
__device__ inline double un_grad(int op, double g, double x, double y) { return sg_um_unary_grad(op, g, x, y); }

// the f32 backward loop (ungrad_row_f32): four ops in float, the rest in double
__device__ inline float un_grad_f32(int op, float g, float x, float y) {
  switch (op) {
  case SGK_RELU: return y > 0 ? g : 0.0f;
  case SGK_SIGMOID: return g * y * (1 - y);
  case SGK_TANH: return g * (1 - y * y);
  case SGK_EXP: return g * y;
  default: return (float)un_grad(op, g, x, y);
  }
}

// ------------------------------------------------------------------ loads as the CPU's casts convert
// A value of dtype t cast to the float type ct (dtype.c: through double,
// rounded to ct), as double.
__device__ inline double load_cf(const char *p, int t, int ct) {
  double v = load_f64(p, t);
  if (t == ct) return v;
  switch (ct) {
  case SG_F32: return (double)(float)v;
  case SG_F16: return f16_to_f32(f32_to_f16((float)v));
  case SG_BF16: return bf16_to_f32(f32_to_bf16((float)v));
  default: return v;
  }
}

// A value of dtype t cast to the integer type (or bool) ct, as int64:
// floats truncate and saturate, integers wrap to ct's width.
__device__ inline int64_t load_ci(const char *p, int t, int ct) {
  if (is_float(t)) {
    double v = load_f64(p, t);
    switch (ct) {
    case SG_BOOL: return v != 0;
    case SG_U8: return sat(v, 0, 255);
    case SG_I32: return sat(v, -2147483648.0, 2147483647.0);
    default: return sat(v, -9223372036854775808.0, 9223372036854774784.0);
    }
  }
  int64_t v = load_i64(p, t);
  switch (ct) {
  case SG_BOOL: return v != 0;
  case SG_U8: return (uint8_t)v;
  case SG_I32: return (int32_t)v;
  default: return v;
  }
}

// ------------------------------------------------------------------ strided offsets
// N operands over one shape; st[k][d] is operand k's element stride.
template <int N>
struct Lay {
  int ndim;
  int64_t size[SG_KDIMS];
  int64_t st[N][SG_KDIMS];
};

template <int N>
Lay<N> make_lay(const sgk_layout *const *ls) {
  Lay<N> l{};
  l.ndim = ls[0]->ndim;
  for (int d = 0; d < l.ndim; d++) {
    l.size[d] = ls[0]->size[d];
    for (int k = 0; k < N; k++) l.st[k][d] = ls[k]->stride[d];
  }
  return l;
}

// Element offsets of logical (row-major) position i; I is the index type of
// the division chain (32-bit when the element count allows).
template <typename I, int N>
__device__ inline void offsets(const Lay<N> &l, int64_t i, bool contig, int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; k++) off[k] = contig ? i : 0;
  if (contig) return;
  I r = (I)i;
  for (int d = l.ndim - 1; d >= 0; d--) {
    I sz = (I)l.size[d], q = r / sz, idx = r - q * sz;
#pragma unroll
    for (int k = 0; k < N; k++) off[k] += (int64_t)idx * l.st[k][d];
    r = q;
  }
}

inline bool all_zero(const sgk_layout &l) {
  for (int d = 0; d < l.ndim; d++)
    if (l.size[d] != 1 && l.stride[d] != 0) return false;
  return true;
}
inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }
inline bool fits32(int64_t n) { return n <= 0x7fffffff; }

// ------------------------------------------------------------------ float storage types of the flat path
// S: storage type; C: compute type of the binary ops (float unless f64);
// ld/st convert S <-> C; st_d stores a double result as sg_store_f64 does.
struct F32T {
  using S = float; using C = float;
  __device__ static float ld(float v) { return v; }
  __device__ static float st(float v) { return v; }
  __device__ static float st_d(double v) { return (float)v; }
};
struct BF16T {
  using S = uint16_t; using C = float;
  __device__ static float ld(uint16_t v) { return bf16_to_f32(v); }
  __device__ static uint16_t st(float v) { return f32_to_bf16(v); }
  __device__ static uint16_t st_d(double v) { return f32_to_bf16((float)v); }
};
struct F16T {
  using S = uint16_t; using C = float;
  __device__ static float ld(uint16_t v) { return f16_to_f32(v); }
  __device__ static uint16_t st(float v) { return f32_to_f16(v); }
  __device__ static uint16_t st_d(double v) { return f32_to_f16((float)v); }
};
struct F64T {
  using S = double; using C = double;
  __device__ static double ld(double v) { return v; }
  __device__ static double st(double v) { return v; }
  __device__ static double st_d(double v) { return v; }
};

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Binary arithmetic in C. For f32/f16/bf16 the CPU computes add/sub/mul/div in
// double and rounds to float; with operands that are floats this equals the
// float operation (double has more than 2*24+2 bits), so float is exact here.
template <typename C>
__device__ inline C bin_fast(int op, C a, C b) {
  switch (op) {
  case SGK_ADD: return a + b;
  case SGK_SUB: return a - b;
  case SGK_MUL: return a * b;
  case SGK_DIV: return a / b;
  default: return (C)bin_f(op, (double)a, (double)b); // pow, minimum, maximum: as the CPU, in double
  }
}

template <typename Tag>
__device__ inline typename Tag::S bin_apply(int op, typename Tag::S a, typename Tag::S b) {
  return Tag::st(bin_fast<typename Tag::C>(op, Tag::ld(a), Tag::ld(b)));
}

// Unary op of the flat path: f32 through the CPU's float loop where it has
// one, everything else in double rounded once (f16/bf16 via f32, as
// sg_store_f64 rounds).
template <typename Tag>
__device__ inline typename Tag::S un_apply(int op, typename Tag::S xs, double lo, double hi) {
  if constexpr (std::is_same<Tag, F32T>::value) {
    float r;
    if (op != SGK_CLAMP && un_f32(op, xs, r)) return r;
  }
  double x = (double)Tag::ld(xs);
  return Tag::st_d(op == SGK_CLAMP ? clamp_d(x, lo, hi) : un_f(op, x));
}

// ------------------------------------------------------------------ binary kernels
// a or b may be one broadcast element (sa / sb): read once per thread.
template <typename Tag, int V>
__global__ void binary_vec(int op, typename Tag::S *o, const typename Tag::S *a, const typename Tag::S *b, int64_t nv,
                           bool sa, bool sb) {
  using S = typename Tag::S;
  using P = Pack<S, V>;
  const S a0 = sa ? a[0] : S(0), b0 = sb ? b[0] : S(0);
  SGK_GRID_STRIDE(i, nv) {
    P pa = {}, pb = {}, po;
    if (!sa) pa = reinterpret_cast<const P *>(a)[i];
    if (!sb) pb = reinterpret_cast<const P *>(b)[i];
#pragma unroll
    for (int k = 0; k < V; k++) po.v[k] = bin_apply<Tag>(op, sa ? a0 : pa.v[k], sb ? b0 : pb.v[k]);
    reinterpret_cast<P *>(o)[i] = po;
  }
}

template <typename Tag>
__global__ void binary_flat(int op, typename Tag::S *o, const typename Tag::S *a, const typename Tag::S *b, int64_t n,
                            bool sa, bool sb) {
  SGK_GRID_STRIDE(i, n) o[i] = bin_apply<Tag>(op, a[sa ? 0 : i], b[sb ? 0 : i]);
}

template <typename Tag>
int binary_fast(int op, void *out, const void *a, const void *b, int64_t n, bool sa, bool sb, cudaStream_t s) {
  using S = typename Tag::S;
  constexpr int V = 16 / sizeof(S);
  S *o = (S *)out;
  const S *pa = (const S *)a, *pb = (const S *)b;
  bool vec = aligned16(o) && (sa || aligned16(pa)) && (sb || aligned16(pb));
  int64_t nv = vec ? n / V : 0, done = nv * V;
  if (nv > 0) binary_vec<Tag, V><<<blocks_for(nv), kThreads, 0, s>>>(op, o, pa, pb, nv, sa, sb);
  if (done < n)
    binary_flat<Tag><<<blocks_for(n - done), kThreads, 0, s>>>(op, o + done, sa ? pa : pa + done, sb ? pb : pb + done,
                                                               n - done, sa, sb);
  return (int)cudaGetLastError();
}

// one float dtype, strided or broadcast operands (bias adds, views)
template <typename Tag, typename I>
__global__ void binary_strided(int op, typename Tag::S *o, const typename Tag::S *a, const typename Tag::S *b, Lay<3> l,
                               int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t off[3];
    offsets<I, 3>(l, i, false, off);
    o[off[0]] = bin_apply<Tag>(op, a[off[1]], b[off[2]]);
  }
}

template <typename Tag>
int binary_typed(int op, void *out, const void *a, const void *b, const Lay<3> &l, int64_t n, cudaStream_t s) {
  using S = typename Tag::S;
  if (fits32(n))
    binary_strided<Tag, uint32_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (S *)out, (const S *)a, (const S *)b, l, n);
  else
    binary_strided<Tag, int64_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (S *)out, (const S *)a, (const S *)b, l, n);
  return (int)cudaGetLastError();
}

template <typename I>
__global__ void binary_generic(int op, char *out, int ot, const char *a, int at, const char *b, int bt, int ct,
                               Lay<3> l, int64_t n, bool contig) {
  const int os = dtype_size(ot), as = dtype_size(at), bs = dtype_size(bt);
  const bool fl = is_float(ct);
  SGK_GRID_STRIDE(i, n) {
    int64_t off[3];
    offsets<I, 3>(l, i, contig, off);
    char *po = out + off[0] * os;
    const char *pa = a + off[1] * as, *pb = b + off[2] * bs;
    if (fl) store_f64(po, ot, bin_f(op, load_cf(pa, at, ct), load_cf(pb, bt, ct)));
    else store_i64(po, ot, bin_i(op, load_ci(pa, at, ct), load_ci(pb, bt, ct)));
  }
}

// ------------------------------------------------------------------ unary kernels
template <typename Tag, int V>
__global__ void unary_vec(int op, typename Tag::S *o, const typename Tag::S *a, int64_t nv, double lo, double hi) {
  using P = Pack<typename Tag::S, V>;
  SGK_GRID_STRIDE(i, nv) {
    P pa = reinterpret_cast<const P *>(a)[i], po;
#pragma unroll
    for (int k = 0; k < V; k++) po.v[k] = un_apply<Tag>(op, pa.v[k], lo, hi);
    reinterpret_cast<P *>(o)[i] = po;
  }
}

template <typename Tag>
__global__ void unary_flat(int op, typename Tag::S *o, const typename Tag::S *a, int64_t n, double lo, double hi) {
  SGK_GRID_STRIDE(i, n) o[i] = un_apply<Tag>(op, a[i], lo, hi);
}

template <typename Tag>
int unary_fast(int op, void *out, const void *a, int64_t n, double lo, double hi, cudaStream_t s) {
  using S = typename Tag::S;
  constexpr int V = 16 / sizeof(S);
  S *o = (S *)out;
  const S *pa = (const S *)a;
  int64_t nv = aligned16(o) && aligned16(pa) ? n / V : 0, done = nv * V;
  if (nv > 0) unary_vec<Tag, V><<<blocks_for(nv), kThreads, 0, s>>>(op, o, pa, nv, lo, hi);
  if (done < n) unary_flat<Tag><<<blocks_for(n - done), kThreads, 0, s>>>(op, o + done, pa + done, n - done, lo, hi);
  return (int)cudaGetLastError();
}

// run_unary's row kernel (un_row): ct is the dtype the CPU casts the input to.
template <typename Tag, typename I>
__global__ void unary_strided(int op, typename Tag::S *o, const typename Tag::S *a, double lo, double hi, Lay<2> l,
                              int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t off[2];
    offsets<I, 2>(l, i, false, off);
    o[off[0]] = un_apply<Tag>(op, a[off[1]], lo, hi);
  }
}

template <typename Tag>
int unary_typed(int op, void *out, const void *a, double lo, double hi, const Lay<2> &l, int64_t n, cudaStream_t s) {
  using S = typename Tag::S;
  if (fits32(n))
    unary_strided<Tag, uint32_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (S *)out, (const S *)a, lo, hi, l, n);
  else
    unary_strided<Tag, int64_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (S *)out, (const S *)a, lo, hi, l, n);
  return (int)cudaGetLastError();
}

template <typename I>
__global__ void unary_generic(int op, char *out, int ot, const char *a, int at, int ct, double lo, double hi,
                              Lay<2> l, int64_t n, bool contig) {
  const int os = dtype_size(ot), as = dtype_size(at);
  const bool fl = is_float(ct);
  SGK_GRID_STRIDE(i, n) {
    int64_t off[2];
    offsets<I, 2>(l, i, contig, off);
    char *po = out + off[0] * os;
    const char *pa = a + off[1] * as;
    float r;
    if (op == SGK_CLAMP) store_f64(po, ot, clamp_d(fl ? load_cf(pa, at, ct) : (double)load_ci(pa, at, ct), lo, hi));
    else if (ct == SG_F32 && ot == SG_F32 && un_f32(op, (float)load_cf(pa, at, ct), r)) *(float *)po = r;
    else if (fl) store_f64(po, ot, un_f(op, load_cf(pa, at, ct)));
    else store_i64(po, ot, un_i(op, load_ci(pa, at, ct)));
  }
}

// ------------------------------------------------------------------ unary gradient
template <typename I>
__global__ void ungrad_kernel(int op, char *out, const char *g, const char *x, const char *y, int dt, Lay<4> l,
                              int64_t n, bool contig) {
  const int es = dtype_size(dt);
  SGK_GRID_STRIDE(i, n) {
    int64_t off[4];
    offsets<I, 4>(l, i, contig, off);
    char *po = out + off[0] * es;
    const char *pg = g + off[1] * es, *px = x + off[2] * es, *py = y + off[3] * es;
    if (dt == SG_F32) *(float *)po = un_grad_f32(op, *(const float *)pg, *(const float *)px, *(const float *)py);
    else store_f64(po, dt, un_grad(op, load_f64(pg, dt), load_f64(px, dt), load_f64(py, dt)));
  }
}

// ------------------------------------------------------------------ where
template <typename T, typename I>
__global__ void where_kernel(T *out, const uint8_t *c, const T *a, const T *b, Lay<4> l, int64_t n, bool contig) {
  SGK_GRID_STRIDE(i, n) {
    int64_t off[4];
    offsets<I, 4>(l, i, contig, off);
    out[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

template <typename T>
int where_as(void *out, const void *c, const void *a, const void *b, const Lay<4> &l, int64_t n, bool contig,
             cudaStream_t s) {
  if (fits32(n))
    where_kernel<T, uint32_t><<<blocks_for(n, 4), kThreads, 0, s>>>((T *)out, (const uint8_t *)c, (const T *)a,
                                                                    (const T *)b, l, n, contig);
  else
    where_kernel<T, int64_t><<<blocks_for(n, 4), kThreads, 0, s>>>((T *)out, (const uint8_t *)c, (const T *)a,
                                                                   (const T *)b, l, n, contig);
  return (int)cudaGetLastError();
}

bool all_contiguous(int k, const sgk_layout *const *ls) {
  for (int i = 0; i < k; i++)
    if (!is_contiguous(*ls[i])) return false;
  return true;
}

} // namespace

// ------------------------------------------------------------------ launchers
SGK_API int sgk_binary(int op, void *out, int ot, const sgk_layout *ol, const void *a, int at, const sgk_layout *al,
                       const void *b, int bt, const sgk_layout *bl, int ct, int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  bool sa = all_zero(*al), sb = all_zero(*bl);
  // one float dtype and an arithmetic op: typed kernels (flat when contiguous, else strided)
  int tag = op > SGK_MAXIMUM || ot != at || ot != bt ? -1
            : ot == SG_F32 && ct == SG_F32  ? 0
            : ot == SG_BF16 && ct == SG_F32 ? 1
            : ot == SG_F16 && ct == SG_F32  ? 2
            : ot == SG_F64 && ct == SG_F64  ? 3
                                            : -1;
  const sgk_layout *ls[3] = {ol, al, bl};
  Lay<3> l = make_lay<3>(ls);
  if (tag >= 0 && is_contiguous(*ol) && (sa || is_contiguous(*al)) && (sb || is_contiguous(*bl))) switch (tag) {
    case 0: return binary_fast<F32T>(op, out, a, b, n, sa, sb, s);
    case 1: return binary_fast<BF16T>(op, out, a, b, n, sa, sb, s);
    case 2: return binary_fast<F16T>(op, out, a, b, n, sa, sb, s);
    default: return binary_fast<F64T>(op, out, a, b, n, sa, sb, s);
    }
  if (tag >= 0) switch (tag) {
    case 0: return binary_typed<F32T>(op, out, a, b, l, n, s);
    case 1: return binary_typed<BF16T>(op, out, a, b, l, n, s);
    case 2: return binary_typed<F16T>(op, out, a, b, l, n, s);
    default: return binary_typed<F64T>(op, out, a, b, l, n, s);
    }
  bool contig = all_contiguous(3, ls);
  if (fits32(n))
    binary_generic<uint32_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (char *)out, ot, (const char *)a, at,
                                                                   (const char *)b, bt, ct, l, n, contig);
  else
    binary_generic<int64_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (char *)out, ot, (const char *)a, at,
                                                                  (const char *)b, bt, ct, l, n, contig);
  return (int)cudaGetLastError();
}

SGK_API int sgk_unary(int op, void *out, int ot, const sgk_layout *ol, const void *a, int at, const sgk_layout *al,
                      int ct, double lo, double hi, int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  // one float dtype: typed kernels (flat when contiguous, else strided)
  int tag = op == SGK_NOT || ot != at     ? -1
            : ot == SG_F32 && ct == SG_F32  ? 0
            : ot == SG_BF16 && ct == SG_F32 ? 1
            : ot == SG_F16 && ct == SG_F32  ? 2
            : ot == SG_F64 && ct == SG_F64  ? 3
                                            : -1;
  const sgk_layout *ls[2] = {ol, al};
  Lay<2> l = make_lay<2>(ls);
  if (tag >= 0 && is_contiguous(*ol) && is_contiguous(*al)) switch (tag) {
    case 0: return unary_fast<F32T>(op, out, a, n, lo, hi, s);
    case 1: return unary_fast<BF16T>(op, out, a, n, lo, hi, s);
    case 2: return unary_fast<F16T>(op, out, a, n, lo, hi, s);
    default: return unary_fast<F64T>(op, out, a, n, lo, hi, s);
    }
  if (tag >= 0) switch (tag) {
    case 0: return unary_typed<F32T>(op, out, a, lo, hi, l, n, s);
    case 1: return unary_typed<BF16T>(op, out, a, lo, hi, l, n, s);
    case 2: return unary_typed<F16T>(op, out, a, lo, hi, l, n, s);
    default: return unary_typed<F64T>(op, out, a, lo, hi, l, n, s);
    }
  bool contig = all_contiguous(2, ls);
  if (fits32(n))
    unary_generic<uint32_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (char *)out, ot, (const char *)a, at, ct, lo,
                                                                  hi, l, n, contig);
  else
    unary_generic<int64_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (char *)out, ot, (const char *)a, at, ct, lo, hi,
                                                                 l, n, contig);
  return (int)cudaGetLastError();
}

SGK_API int sgk_unary_backward(int op, void *out, const sgk_layout *ol, const void *g, const sgk_layout *gl,
                               const void *x, const sgk_layout *xl, const void *y, const sgk_layout *yl, int dt,
                               int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  const sgk_layout *ls[4] = {ol, gl, xl, yl};
  Lay<4> l = make_lay<4>(ls);
  bool contig = all_contiguous(4, ls);
  if (fits32(n))
    ungrad_kernel<uint32_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (char *)out, (const char *)g, (const char *)x,
                                                                  (const char *)y, dt, l, n, contig);
  else
    ungrad_kernel<int64_t><<<blocks_for(n, 4), kThreads, 0, s>>>(op, (char *)out, (const char *)g, (const char *)x,
                                                                 (const char *)y, dt, l, n, contig);
  return (int)cudaGetLastError();
}

SGK_API int sgk_where(void *out, const sgk_layout *ol, const void *cond, const sgk_layout *cl, const void *a,
                      const sgk_layout *al, const void *b, const sgk_layout *bl, int dt, int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  const sgk_layout *ls[4] = {ol, cl, al, bl};
  Lay<4> l = make_lay<4>(ls);
  bool contig = all_contiguous(4, ls);
  switch (dtype_size(dt)) {
  case 1: return where_as<uint8_t>(out, cond, a, b, l, n, contig, s);
  case 2: return where_as<uint16_t>(out, cond, a, b, l, n, contig, s);
  case 4: return where_as<uint32_t>(out, cond, a, b, l, n, contig, s);
  default: return where_as<uint64_t>(out, cond, a, b, l, n, contig, s);
  }
}
