/* Host emulation of the CUDA C++ kernel language subset semseg's kernels use:
 * blocks run one after another, the threads of a block as fibers that switch
 * at __syncthreads (testing only). */
#pragma once
#include "cuda_runtime_api.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <functional>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
namespace emu {
extern uint3 thread_idx, block_idx;
extern dim3 block_dim, grid_dim;
void launch(dim3 grid, dim3 block, std::function<void()> body);
void syncthreads();
int syncthreads_or(int pred);
/* the warp's lanes exchange 8-byte values: returns the value lane src_lane
   (of this thread's warp) gave; out-of-warp lanes give the caller's own */
unsigned long long warp_exchange(unsigned mask, unsigned long long v, int src_lane);
}
#define threadIdx emu::thread_idx
#define blockIdx emu::block_idx
#define blockDim emu::block_dim
#define gridDim emu::grid_dim
inline void __syncthreads() { emu::syncthreads(); }
inline int __syncthreads_or(int pred) { return emu::syncthreads_or(pred); }
template <typename T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
  unsigned long long b = 0;
  memcpy(&b, &v, sizeof(T));
  int lane = (int)((threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y) & 31);
  b = emu::warp_exchange(mask, b, lane + (int)delta);
  T r;
  memcpy(&r, &b, sizeof(T));
  return r;
}
template <typename T> inline T __shfl_sync(unsigned mask, T v, int src) {
  unsigned long long b = 0;
  memcpy(&b, &v, sizeof(T));
  b = emu::warp_exchange(mask, b, src & 31);
  T r;
  memcpy(&r, &b, sizeof(T));
  return r;
}
/* fibers of a block run one at a time and blocks one after another, so the
   atomics are plain read-modify-writes (returning the old value) */
template <typename T> inline T atomicAdd(T *p, T v) { T o = *p; *p = o + v; return o; }
template <typename T> inline T atomicMax(T *p, T v) { T o = *p; if (v > o) *p = v; return o; }
template <typename T> inline T atomicMin(T *p, T v) { T o = *p; if (v < o) *p = v; return o; }
template <typename T> inline T atomicExch(T *p, T v) { T o = *p; *p = v; return o; }
template <typename T> inline T atomicCAS(T *p, T cmp, T v) { T o = *p; if (o == cmp) *p = v; return o; }
/* IEEE round-to-nearest arithmetic without contraction (x86-64 SSE has no FMA by default) */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
inline float __uint_as_float(unsigned v) { float f; memcpy(&f, &v, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned v; memcpy(&v, &f, 4); return v; }
