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
}
#define threadIdx emu::thread_idx
#define blockIdx emu::block_idx
#define blockDim emu::block_dim
#define gridDim emu::grid_dim
inline void __syncthreads() { emu::syncthreads(); }
inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
inline float __uint_as_float(unsigned v) { float f; memcpy(&f, &v, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned v; memcpy(&v, &f, 4); return v; }
