// Random numbers on the GPU: one thread per Philox block of four values,
// running the very code the CPU runs (engine/ops/philox.h), so both devices
// give the same bits for the same seed and offset.
#include "k_device.cuh"
#include "k_random.h"
#include "ops/philox.h"

using namespace sgk;

namespace {

__global__ void random_kernel(char *dst, int dt, int64_t n, int kind, uint64_t base, uint64_t key, int64_t lo,
                              uint64_t range) {
  int64_t nblocks = (n + 3) / 4;
  int es = dtype_size(dt);
  SGK_GRID_STRIDE(b, nblocks) {
    uint32_t r[4];
    sg_philox(base + (uint64_t)b, 0, key, r);
    int64_t first = b * 4;
    int cnt = n - first < 4 ? (int)(n - first) : 4;
    if (kind == 2) {
      for (int k = 0; k < cnt; k++) store_i64(dst + (first + k) * es, dt, sg_philox_int(r, k, lo, range));
      continue;
    }
    double v[4];
    if (kind == 0) {
      for (int k = 0; k < 4; k++) v[k] = sg_philox_uniform(r[k], dt == SG_F16, dt == SG_BF16);
    } else {
      sg_philox_normal2(r[0], r[1], &v[0], &v[1]);
      sg_philox_normal2(r[2], r[3], &v[2], &v[3]);
    }
    for (int k = 0; k < cnt; k++) store_f64(dst + (first + k) * es, dt, v[k]);
  }
}

} // namespace

SGK_API int sgk_random(void *dst, int dtype, int64_t n, int kind, uint64_t base, uint64_t key, int64_t lo,
                       uint64_t range, sgk_stream s) {
  if (n <= 0) return 0;
  random_kernel<<<blocks_for((n + 3) / 4), kThreads, 0, s>>>((char *)dst, dtype, n, kind, base, key, lo, range);
  return (int)cudaGetLastError();
}
