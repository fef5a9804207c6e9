// GradScaler support: unscale a gradient in place and flag inf/NaN, without
// any host synchronisation (the flag stays on the device).
#include "k_amp.h"
#include "k_device.cuh"

using namespace sgk;

namespace {

// Each thread scans a grid-stride share; a block reports once through
// __syncthreads_or, reached by every thread (no early return above it).
template <typename T, typename Acc, typename Load, typename Store>
__global__ void unscale_kernel(T *p, int64_t n, Acc inv, float *found, Load load, Store store) {
  int bad = 0;
  SGK_GRID_STRIDE(i, n) {
    Acc v = load(p[i]);
    if (!isfinite(v)) bad = 1;
    p[i] = store(v * inv);
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) *found = 1.0f; // every writer writes the same value
}

struct LoadF32 { __device__ float operator()(float x) const { return x; } };
struct StoreF32 { __device__ float operator()(float x) const { return x; } };
struct LoadF64 { __device__ double operator()(double x) const { return x; } };
struct StoreF64 { __device__ double operator()(double x) const { return x; } };
struct LoadF16 { __device__ float operator()(uint16_t x) const { return f16_to_f32(x); } };
struct StoreF16 { __device__ uint16_t operator()(float x) const { return f32_to_f16(x); } };
struct LoadBF16 { __device__ float operator()(uint16_t x) const { return bf16_to_f32(x); } };
struct StoreBF16 { __device__ uint16_t operator()(float x) const { return f32_to_bf16(x); } };

} // namespace

SGK_API int sgk_amp_unscale(void *data, int dtype, int64_t n, double inv_scale, float *found, sgk_stream s) {
  if (n <= 0) return 0;
  unsigned blocks = blocks_for(n, 4);
  switch (dtype) {
  case SG_F32:
    unscale_kernel<<<blocks, kThreads, 0, s>>>((float *)data, n, (float)inv_scale, found, LoadF32{}, StoreF32{});
    break;
  case SG_F64:
    unscale_kernel<<<blocks, kThreads, 0, s>>>((double *)data, n, inv_scale, found, LoadF64{}, StoreF64{});
    break;
  case SG_F16:
    unscale_kernel<<<blocks, kThreads, 0, s>>>((uint16_t *)data, n, (float)inv_scale, found, LoadF16{}, StoreF16{});
    break;
  case SG_BF16:
    unscale_kernel<<<blocks, kThreads, 0, s>>>((uint16_t *)data, n, (float)inv_scale, found, LoadBF16{}, StoreBF16{});
    break;
  default: return (int)cudaErrorInvalidValue;
  }
  return (int)cudaGetLastError();
}
