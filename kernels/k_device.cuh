// Device-side helpers shared by the kernels: dtype loads and stores that
// round exactly like the CPU (engine/core/dtype.c), index arithmetic over a
// layout, and the launch geometry.
#pragma once
#include "k_common.h"
extern "C" {
#include "core/dtype.h"
}
#include <cuda_runtime.h>
#include <stdint.h>

namespace sgk {

constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n, int per_thread = 1) {
  int64_t b = (n + (int64_t)kThreads * per_thread - 1) / ((int64_t)kThreads * per_thread);
  if (b < 1) b = 1;
  if (b > 65535 * 32) b = 65535 * 32; // grid-stride loops cover the rest
  return (unsigned)b;
}

__device__ inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else { float f = ldexpf((float)man, -24); return sign ? -f : f; }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  return __uint_as_float(bits);
}
__device__ inline uint16_t f32_to_f16(float f) {
  uint32_t x = __float_as_uint(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (ax >= 0x477ff000u) return sign | 0x7c00;
  if (ax < 0x38800000u) return sign | (uint16_t)rintf(__uint_as_float(ax) * 16777216.0f);
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
  return sign | (uint16_t)((r - 0x38000000u) >> 13);
}
__device__ inline float bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ inline uint16_t f32_to_bf16(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

// Float -> integer casts truncate and saturate, as on the CPU.
__device__ inline int64_t sat(double v, double lo, double hi) {
  if (v != v) return 0;
  if (v <= lo) return (int64_t)lo;
  if (v >= hi) return (int64_t)hi;
  return (int64_t)v;
}

__device__ inline double load_f64(const void *p, int t) {
  switch (t) {
  case SG_BOOL: return *(const uint8_t *)p ? 1.0 : 0.0;
  case SG_U8: return *(const uint8_t *)p;
  case SG_I32: return *(const int32_t *)p;
  case SG_I64: return (double)*(const int64_t *)p;
  case SG_F16: return f16_to_f32(*(const uint16_t *)p);
  case SG_BF16: return bf16_to_f32(*(const uint16_t *)p);
  case SG_F32: return *(const float *)p;
  default: return *(const double *)p;
  }
}
__device__ inline int64_t load_i64(const void *p, int t) {
  switch (t) {
  case SG_BOOL: return *(const uint8_t *)p != 0;
  case SG_U8: return *(const uint8_t *)p;
  case SG_I32: return *(const int32_t *)p;
  case SG_I64: return *(const int64_t *)p;
  default: return (int64_t)load_f64(p, t);
  }
}
__device__ inline void store_f64(void *p, int t, double v) {
  switch (t) {
  case SG_BOOL: *(uint8_t *)p = v != 0; break;
  case SG_U8: *(uint8_t *)p = (uint8_t)sat(v, 0, 255); break;
  case SG_I32: *(int32_t *)p = (int32_t)sat(v, -2147483648.0, 2147483647.0); break;
  case SG_I64: *(int64_t *)p = sat(v, -9223372036854775808.0, 9223372036854774784.0); break;
  case SG_F16: *(uint16_t *)p = f32_to_f16((float)v); break;
  case SG_BF16: *(uint16_t *)p = f32_to_bf16((float)v); break;
  case SG_F32: *(float *)p = (float)v; break;
  default: *(double *)p = v; break;
  }
}
__device__ inline void store_i64(void *p, int t, int64_t v) {
  switch (t) {
  case SG_BOOL: *(uint8_t *)p = v != 0; break;
  case SG_U8: *(uint8_t *)p = (uint8_t)v; break;
  case SG_I32: *(int32_t *)p = (int32_t)v; break;
  case SG_I64: *(int64_t *)p = v; break;
  default: store_f64(p, t, (double)v); break;
  }
}
__device__ inline bool is_float(int t) { return t == SG_F16 || t == SG_BF16 || t == SG_F32 || t == SG_F64; }

__host__ __device__ inline int dtype_size(int t) {
  return t == SG_I64 || t == SG_F64 ? 8 : t == SG_I32 || t == SG_F32 ? 4 : t == SG_F16 || t == SG_BF16 ? 2 : 1;
}

// Element offset of logical (row-major) position i in a layout.
__device__ inline int64_t offset_of(const sgk_layout &l, int64_t i) {
  int64_t off = 0;
  for (int d = l.ndim - 1; d >= 0; d--) {
    int64_t sz = l.size[d];
    off += (i % sz) * l.stride[d];
    i /= sz;
  }
  return off;
}

// True when the layout is plain row-major (offset == i).
inline bool is_contiguous(const sgk_layout &l) {
  int64_t expect = 1;
  for (int d = l.ndim - 1; d >= 0; d--) {
    if (l.size[d] != 1 && l.stride[d] != expect) return false;
    expect *= l.size[d];
  }
  return true;
}

#define SGK_GRID_STRIDE(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

} // namespace sgk
