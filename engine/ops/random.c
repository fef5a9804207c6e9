/* Counter-based random numbers: Philox 4x32-10 keyed by the seed.
 * Element i of a draw uses counter (offset + i / 4, lane i % 4), so values do
 * not depend on how work is split between threads or devices. The generator's
 * state (seed, offset) is here; the device table's random.fill draws
 * (backend_ref/random.c; the CUDA kernel runs the same philox.h), so a draw on
 * the GPU gives bit for bit the numbers the CPU gives for the same seed and
 * offset, and advances the offset the same way. */
#include "ops.h"
#include "philox.h"
#include <string.h>
#include "../backend.h"

static _Atomic uint64_t g_seed = 0x5eed5eedULL, g_offset = 0; /* offset in 128-bit blocks */

void sg_manual_seed(uint64_t seed) { g_seed = seed; g_offset = 0; }
sg_rng_state sg_rng_get(void) { sg_rng_state s = {g_seed, g_offset}; return s; }
void sg_rng_set(sg_rng_state s) { g_seed = s.seed; g_offset = s.offset; }

/* Reserves `blocks` counter blocks and returns the first. */
static uint64_t reserve(uint64_t blocks) { return atomic_fetch_add(&g_offset, blocks); }

void sg_rng_uniform_f32(float *out, int64_t n) {
  uint64_t base = reserve((uint64_t)(n + 3) / 4);
  for (int64_t b = 0; b * 4 < n; b++) {
    uint32_t r[4];
    sg_philox(base + (uint64_t)b, 0, g_seed, r);
    for (int k = 0; k < 4 && b * 4 + k < n; k++) out[b * 4 + k] = sg_philox_u01(r[k]);
  }
}

static sg_tensor *draw(int kind, int64_t lo, int64_t hi, int ndim, const int64_t *size, sg_dtype dt, sg_device dev) {
  sg_tensor *t = sg_empty(ndim, size, dt, dev); /* first: a failed allocation consumes no numbers */
  if (!t) return NULL;
  uint64_t base = reserve((uint64_t)(sg_numel(t) + 3) / 4);
  if (SG_BACKEND_CALL(dev, random.fill, "random", t, kind, base, g_seed, lo, (uint64_t)hi - (uint64_t)lo)) {
    sg_tensor_decref(t);
    return NULL;
  }
  return t;
}

sg_tensor *sg_rand_dev(int ndim, const int64_t *size, sg_dtype dt, sg_device dev) {
  return draw(0, 0, 0, ndim, size, dt, dev);
}
sg_tensor *sg_randn_dev(int ndim, const int64_t *size, sg_dtype dt, sg_device dev) {
  return draw(1, 0, 0, ndim, size, dt, dev);
}
sg_tensor *sg_randint_dev(int64_t lo, int64_t hi, int ndim, const int64_t *size, sg_dtype dt, sg_device dev) {
  if (hi <= lo) { sg_error_set("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi); return NULL; }
  if (!sg_dtype_is_float(dt)) { /* the range must fit the dtype, as in PyTorch */
    double mx = dt == SG_U8 ? 256 : dt == SG_I32 ? 2147483648.0 : dt == SG_BOOL ? 2 : 9.3e18;
    double mn = dt == SG_U8 || dt == SG_BOOL ? 0 : dt == SG_I32 ? -2147483648.0 : -9.3e18;
    if ((double)lo < mn || (double)hi > mx) {
      sg_error_set("randint: range [%lld, %lld) does not fit dtype %s", (long long)lo, (long long)hi, sg_dtype_name(dt));
      return NULL;
    }
  }
  return draw(2, lo, hi, ndim, size, dt, dev);
}
sg_tensor *sg_rand(int ndim, const int64_t *size, sg_dtype dt) { return sg_rand_dev(ndim, size, dt, SG_CPU); }
sg_tensor *sg_randn(int ndim, const int64_t *size, sg_dtype dt) { return sg_randn_dev(ndim, size, dt, SG_CPU); }
sg_tensor *sg_randint(int64_t lo, int64_t hi, int ndim, const int64_t *size, sg_dtype dt) {
  return sg_randint_dev(lo, hi, ndim, size, dt, SG_CPU);
}
