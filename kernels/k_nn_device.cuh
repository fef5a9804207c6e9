// Device helpers of the CNN kernels (pool.cu, norm.cu, upsample.cu,
// conv.cu): dtype traits for the four floating types (storage type,
// accumulation type, loads and stores that round like the CPU), the dispatch
// over them, per-channel vector access and fixed-order block reductions.
#pragma once
#include "k_device.cuh"
#include "k_nn.h"

namespace sgk {

// S: storage type; A: the type elementwise arithmetic runs in.
struct F32 {
  using S = float;
  using A = float;
  static __device__ __forceinline__ float ld(const S *p) { return *p; }
  static __device__ __forceinline__ void st(S *p, float v) { *p = v; }
};
struct F64 {
  using S = double;
  using A = double;
  static __device__ __forceinline__ double ld(const S *p) { return *p; }
  static __device__ __forceinline__ void st(S *p, double v) { *p = v; }
};
struct BF16 {
  using S = uint16_t;
  using A = float;
  static __device__ __forceinline__ float ld(const S *p) { return bf16_to_f32(*p); }
  static __device__ __forceinline__ void st(S *p, float v) { *p = f32_to_bf16(v); }
};
struct F16 {
  using S = uint16_t;
  using A = float;
  static __device__ __forceinline__ float ld(const S *p) { return f16_to_f32(*p); }
  static __device__ __forceinline__ void st(S *p, float v) { *p = f32_to_f16(v); }
};

// fn<Traits>(args...) for the dtype code dt; cudaErrorInvalidValue for a non-float dtype.
#define SGK_FLOAT_DISPATCH(dt, fn, ...)                                                                   \
  ((dt) == SG_F32    ? fn<sgk::F32>(__VA_ARGS__)                                                           \
   : (dt) == SG_F64  ? fn<sgk::F64>(__VA_ARGS__)                                                           \
   : (dt) == SG_BF16 ? fn<sgk::BF16>(__VA_ARGS__)                                                          \
   : (dt) == SG_F16  ? fn<sgk::F16>(__VA_ARGS__)                                                           \
                     : (int)cudaErrorInvalidValue)

// element c of a per-channel vector (any dtype, strided); def when absent
__device__ __forceinline__ double vec_ld(const sgk_vec &v, int64_t c, double def) {
  if (!v.p) return def;
  return load_f64((const char *)v.p + c * v.stride * dtype_size(v.dt), v.dt);
}
__device__ __forceinline__ void vec_st(const sgk_vec &v, int64_t c, double x) {
  store_f64((char *)v.p + c * v.stride * dtype_size(v.dt), v.dt, x);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum of a and of b over the block (blockDim.x a multiple of 32, at most
// 1024), in a fixed order; every thread gets the totals. shm: 64 doubles.
__device__ __forceinline__ void block_sum2(double &a, double &b, double *shm) {
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (int)(blockDim.x >> 5);
  a = warp_sum(a);
  b = warp_sum(b);
  __syncthreads(); // shm may still be read from a previous call
  if (lane == 0) { shm[wid] = a; shm[32 + wid] = b; }
  __syncthreads();
  if (wid == 0) {
    a = lane < nw ? shm[lane] : 0.0;
    b = lane < nw ? shm[32 + lane] : 0.0;
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) { shm[0] = a; shm[32] = b; }
  }
  __syncthreads();
  a = shm[0];
  b = shm[32];
}

} // namespace sgk

namespace sgk {

// Elementwise work over rows x L (rows = N * C planes of L contiguous values):
// f(row, flat index) for every element. Long rows run as a 2-d grid (no
// division per element), short ones flat.
template <class F>
__global__ void rows_kernel(F f, int64_t rows, int64_t L) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t l = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; l < L; l += (int64_t)gridDim.x * blockDim.x)
      f(r, r * L + l);
}
template <class F>
__global__ void flat_rows_kernel(F f, int64_t rows, int64_t L) {
  SGK_GRID_STRIDE(i, rows * L) f(i / L, i);
}
template <class F>
int launch_rows(const F &f, int64_t rows, int64_t L, cudaStream_t s) {
  if (rows <= 0 || L <= 0) return 0;
  if (L >= 128) {
    int64_t bx = (L + kThreads - 1) / kThreads;
    dim3 grid((unsigned)(bx < 1024 ? bx : 1024), (unsigned)(rows < 65535 ? rows : 65535));
    rows_kernel<F><<<grid, kThreads, 0, s>>>(f, rows, L);
  } else {
    flat_rows_kernel<F><<<blocks_for(rows * L), kThreads, 0, s>>>(f, rows, L);
  }
  return (int)cudaGetLastError();
}

} // namespace sgk
