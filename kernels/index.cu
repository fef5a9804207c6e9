// Indexing kernels: index maps and their adjoint (flip, roll, pad, repeat,
// index_select), gather/scatter/scatter_add, one_hot, index checks.
// Every sum runs in a fixed order (the CPU's), without float atomics, so the
// results are deterministic and match the CPU bit for bit.
#include "k_device.cuh"
#include "k_index.h"
#include <climits>

using namespace sgk;

namespace {

// ---------------------------------------------------------------- index map
template <typename E>
__global__ void index_map_kernel(E *out, const E *in, sgk_idxmap m, E fill, int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t rem = i, off = 0;
    bool hole = false;
    for (int d = m.ndim - 1; d >= 0; d--) {
      int64_t sz = m.size[d], j = rem % sz;
      rem /= sz;
      int64_t src = m.map[d] ? m.map[d][j] : j;
      if (src < 0) hole = true;
      off += src * m.stride[d];
    }
    out[i] = hole ? fill : in[off];
  }
}

template <typename E>
int index_map_as(void *out, const void *in, const sgk_idxmap *m, uint64_t fill_bits, int64_t n, cudaStream_t s) {
  index_map_kernel<E><<<blocks_for(n), kThreads, 0, s>>>((E *)out, (const E *)in, *m, (E)fill_bits, n);
  return (int)cudaGetLastError();
}

// ---------------------------------------------------------------- adjoint
// One thread per input element: the output positions that read it form a
// product of per-dim lists, visited in lexicographic (= row-major) order.
template <typename T>
__global__ void index_adjoint_kernel(T *ga, const T *g, sgk_idxadj a, int64_t n_in) {
  SGK_GRID_STRIDE(q, n_in) {
    int64_t lo[SG_KDIMS], hi[SG_KDIMS], cur[SG_KDIMS];
    int64_t rem = q;
    bool empty = false;
    for (int d = a.ndim - 1; d >= 0; d--) {
      int64_t p = rem % a.in_size[d];
      rem /= a.in_size[d];
      if (a.kind[d] == 0) { lo[d] = p; hi[d] = p + 1; }
      else if (a.kind[d] == 1) { lo[d] = 0; hi[d] = a.out_size[d]; }
      else { lo[d] = a.off[d][p]; hi[d] = a.off[d][p + 1]; }
      if (lo[d] >= hi[d]) empty = true;
      cur[d] = lo[d];
    }
    T acc = 0;
    if (!empty) {
      for (;;) {
        int64_t o = 0;
        for (int d = 0; d < a.ndim; d++) o = o * a.out_size[d] + (a.kind[d] == 2 ? a.ent[d][cur[d]] : cur[d]);
        acc += g[o];
        int d = a.ndim - 1;
        for (; d >= 0; d--) {
          if (++cur[d] < hi[d]) break;
          cur[d] = lo[d];
        }
        if (d < 0) break;
      }
    }
    ga[q] = acc;
  }
}

// ---------------------------------------------------------------- gather, scatter
__device__ inline void copy_elem(char *d, const char *s, int es) {
  switch (es) {
  case 1: *(uint8_t *)d = *(const uint8_t *)s; break;
  case 2: *(uint16_t *)d = *(const uint16_t *)s; break;
  case 4: *(uint32_t *)d = *(const uint32_t *)s; break;
  default: *(uint64_t *)d = *(const uint64_t *)s; break;
  }
}

__global__ void gather_kernel(sgk_gs g, char *dst, const char *src, int es, const int64_t *ix, int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t rem = i, od = 0, os = ix[i] * g.sstride[g.dim];
    for (int d = g.ndim - 1; d >= 0; d--) {
      int64_t p = rem % g.size[d];
      rem /= g.size[d];
      od += p * g.dstride[d];
      if (d != g.dim) os += p * g.sstride[d];
    }
    copy_elem(dst + od * es, src + os * es, es);
  }
}

// dst (indexed) <- src: one thread per line along dim, positions in order
__global__ void scatter_lines(sgk_gs g, int add, char *dst, const char *src, int dt, const int64_t *ix, int64_t lines) {
  int es = dtype_size(dt);
  int64_t J = g.size[g.dim];
  SGK_GRID_STRIDE(l, lines) {
    int64_t rem = l, bi = 0, bd = 0, bs = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
      if (d == g.dim) continue;
      int64_t p = rem % g.size[d];
      rem /= g.size[d];
      bi += p * g.istride[d];
      bd += p * g.dstride[d];
      bs += p * g.sstride[d];
    }
    for (int64_t j = 0; j < J; j++) {
      int64_t v = ix[bi + j * g.istride[g.dim]];
      char *dp = dst + (bd + v * g.dstride[g.dim]) * es;
      const char *sp = src + (bs + j * g.sstride[g.dim]) * es;
      if (!add) copy_elem(dp, sp, es);
      else if (dt == SG_F32) *(float *)dp = __fadd_rn(*(float *)dp, *(const float *)sp);
      else if (dt == SG_F64) *(double *)dp = __dadd_rn(*(double *)dp, *(const double *)sp);
      else if (is_float(dt)) store_f64(dp, dt, load_f64(dp, dt) + load_f64(sp, dt));
      else store_i64(dp, dt, (int64_t)((uint64_t)load_i64(dp, dt) + (uint64_t)load_i64(sp, dt)));
    }
  }
}

// i32/i64 scatter_add: one thread per index element, integer atomics (exact, so the order does not matter)
__global__ void scatter_add_atomic(sgk_gs g, char *dst, const char *src, int dt, const int64_t *ix, int64_t n) {
  SGK_GRID_STRIDE(i, n) {
    int64_t rem = i, od = ix[i] * g.dstride[g.dim], os = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
      int64_t p = rem % g.size[d];
      rem /= g.size[d];
      os += p * g.sstride[d];
      if (d != g.dim) od += p * g.dstride[d];
    }
    if (dt == SG_I64)
      atomicAdd((unsigned long long *)(dst + od * 8), (unsigned long long)*(const int64_t *)(src + os * 8));
    else
      atomicAdd((unsigned int *)(dst + od * 4), (unsigned int)*(const int32_t *)(src + os * 4));
  }
}

// ---------------------------------------------------------------- checks, one_hot
template <bool kMax>
__device__ void block_reduce_atomic(long long v, long long *target_max, unsigned long long *target_min) {
  __shared__ long long buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if ((int)threadIdx.x < w) {
      long long o = buf[threadIdx.x + w];
      if (kMax ? o > buf[threadIdx.x] : (unsigned long long)o < (unsigned long long)buf[threadIdx.x])
        buf[threadIdx.x] = o;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (kMax) atomicMax(target_max, buf[0]);
    else atomicMin(target_min, (unsigned long long)buf[0]);
  }
}

__global__ void index_check_kernel(const int64_t *v, int64_t n, int64_t hi, unsigned long long *bad) {
  unsigned long long first = ~0ull;
  SGK_GRID_STRIDE(k, n) {
    int64_t x = v[k];
    if ((x < 0 || x >= hi) && (unsigned long long)k < first) first = (unsigned long long)k;
  }
  block_reduce_atomic<false>((long long)first, nullptr, bad);
}

__global__ void index_max_kernel(const int64_t *v, int64_t n, long long *mx) {
  long long best = LLONG_MIN;
  SGK_GRID_STRIDE(k, n) if (v[k] > best) best = v[k];
  block_reduce_atomic<true>(best, mx, nullptr);
}

__global__ void set_ll(long long *p, long long v) { *p = v; }

__global__ void one_hot_kernel(int64_t *out, const int64_t *v, int64_t total, int64_t classes) {
  SGK_GRID_STRIDE(i, total) out[i] = v[i / classes] == i % classes ? 1 : 0;
}

} // namespace

SGK_API int sgk_index_map(void *out, const void *in, int elem_size, const sgk_idxmap *m, uint64_t fill_bits,
                          int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  switch (elem_size) {
  case 1: return index_map_as<uint8_t>(out, in, m, fill_bits, n, s);
  case 2: return index_map_as<uint16_t>(out, in, m, fill_bits, n, s);
  case 4: return index_map_as<uint32_t>(out, in, m, fill_bits, n, s);
  default: return index_map_as<uint64_t>(out, in, m, fill_bits, n, s);
  }
}

SGK_API int sgk_index_adjoint(void *ga, const void *g, int f64, const sgk_idxadj *a, int64_t n_in, sgk_stream s) {
  if (n_in <= 0) return 0;
  if (f64) index_adjoint_kernel<double><<<blocks_for(n_in), kThreads, 0, s>>>((double *)ga, (const double *)g, *a, n_in);
  else index_adjoint_kernel<float><<<blocks_for(n_in), kThreads, 0, s>>>((float *)ga, (const float *)g, *a, n_in);
  return (int)cudaGetLastError();
}

SGK_API int sgk_gather(const sgk_gs *g, void *dst, const void *src, int elem_size, const int64_t *ix, int64_t n,
                       sgk_stream s) {
  if (n <= 0) return 0;
  gather_kernel<<<blocks_for(n), kThreads, 0, s>>>(*g, (char *)dst, (const char *)src, elem_size, ix, n);
  return (int)cudaGetLastError();
}

SGK_API int sgk_scatter(const sgk_gs *g, int add, void *dst, const void *src, int dtype, const int64_t *ix, int64_t n,
                        sgk_stream s) {
  int64_t J = g->size[g->dim];
  if (n <= 0 || J <= 0) return 0;
  if (add && (dtype == SG_I64 || dtype == SG_I32))
    scatter_add_atomic<<<blocks_for(n), kThreads, 0, s>>>(*g, (char *)dst, (const char *)src, dtype, ix, n);
  else
    scatter_lines<<<blocks_for(n / J), kThreads, 0, s>>>(*g, add, (char *)dst, (const char *)src, dtype, ix, n / J);
  return (int)cudaGetLastError();
}

SGK_API int sgk_index_check(const int64_t *v, int64_t n, int64_t hi, unsigned long long *bad, sgk_stream s) {
  set_ll<<<1, 1, 0, s>>>((long long *)bad, -1); // all ones: "none"
  if (n > 0) index_check_kernel<<<blocks_for(n, 4), kThreads, 0, s>>>(v, n, hi, bad);
  return (int)cudaGetLastError();
}

SGK_API int sgk_index_max(const int64_t *v, int64_t n, long long *mx, sgk_stream s) {
  set_ll<<<1, 1, 0, s>>>(mx, LLONG_MIN);
  if (n > 0) index_max_kernel<<<blocks_for(n, 4), kThreads, 0, s>>>(v, n, mx);
  return (int)cudaGetLastError();
}

SGK_API int sgk_one_hot(int64_t *out, const int64_t *v, int64_t n, int64_t classes, sgk_stream s) {
  int64_t total = n * classes;
  if (total <= 0) return 0;
  one_hot_kernel<<<blocks_for(total, 4), kThreads, 0, s>>>(out, v, total, classes);
  return (int)cudaGetLastError();
}
