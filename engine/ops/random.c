/* Counter-based random numbers: Philox 4x32-10 keyed by the seed.
 * Element i of a draw uses counter (offset + i / 4, lane i % 4), so values do
 * not depend on how work is split between threads or devices, and a CUDA
 * kernel can produce the same numbers. */
#include "ops.h"
#include <math.h>
#include <string.h>

static _Atomic uint64_t g_seed = 0x5eed5eedULL, g_offset = 0; /* offset in 128-bit blocks */

void sg_manual_seed(uint64_t seed) { g_seed = seed; g_offset = 0; }
sg_rng_state sg_rng_get(void) { sg_rng_state s = {g_seed, g_offset}; return s; }
void sg_rng_set(sg_rng_state s) { g_seed = s.seed; g_offset = s.offset; }

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

/* One Philox4x32-10 block for a 128-bit counter and 64-bit key. */
static void philox(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)ctr_lo, c1 = (uint32_t)(ctr_lo >> 32), c2 = (uint32_t)ctr_hi, c3 = (uint32_t)(ctr_hi >> 32);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0), lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* uniform in [0,1) with 24 random bits (exact in f32) */
static inline float u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* Reserves `blocks` counter blocks and returns the first. */
static uint64_t reserve(uint64_t blocks) { return atomic_fetch_add(&g_offset, blocks); }

void sg_rng_uniform_f32(float *out, int64_t n) {
  uint64_t base = reserve((uint64_t)(n + 3) / 4);
  for (int64_t b = 0; b * 4 < n; b++) {
    uint32_t r[4];
    philox(base + (uint64_t)b, 0, g_seed, r);
    for (int k = 0; k < 4 && b * 4 + k < n; k++) out[b * 4 + k] = u01(r[k]);
  }
}

static sg_tensor *draw(int kind, int64_t lo, int64_t hi, int ndim, const int64_t *size, sg_dtype dt) {
  sg_tensor *t = sg_empty(ndim, size, dt, SG_CPU);
  if (!t) return NULL;
  int64_t n = sg_numel(t);
  size_t es = sg_dtype_size(dt);
  char *p = t->storage->data;
  uint64_t base = reserve((uint64_t)(n + 3) / 4);
  uint64_t key = g_seed;
  for (int64_t b = 0; b * 4 < n; b++) {
    uint32_t r[4];
    philox(base + (uint64_t)b, 0, key, r);
    double v[4];
    if (kind == 0) /* as many random bits as the dtype holds, so rounding never reaches 1.0 */
      for (int k = 0; k < 4; k++)
        v[k] = dt == SG_F16 ? (double)(r[k] >> 21) * (1.0 / 2048) : dt == SG_BF16 ? (double)(r[k] >> 24) * (1.0 / 256) : u01(r[k]);
    else if (kind == 1) { /* Box-Muller on lanes (0,1) and (2,3) */
      for (int k = 0; k < 4; k += 2) {
        double u1 = ((double)r[k] + 1.0) / 4294967296.0, u2 = (double)r[k + 1] / 4294967296.0;
        double rad = sqrt(-2.0 * log(u1));
        v[k] = rad * cos(2 * M_PI * u2);
        v[k + 1] = rad * sin(2 * M_PI * u2);
      }
    } else {
      uint64_t range = (uint64_t)hi - (uint64_t)lo;
      for (int k = 0; k < 4 && b * 4 + k < n; k++) { /* integers are stored exactly, not through double */
        uint64_t x = ((uint64_t)r[k] << 32) | r[(k + 1) & 3];
        sg_store_i64(p + (b * 4 + k) * (int64_t)es, dt, (int64_t)((uint64_t)lo + x % range));
      }
      continue;
    }
    for (int k = 0; k < 4 && b * 4 + k < n; k++) sg_store_f64(p + (b * 4 + k) * (int64_t)es, dt, v[k]);
  }
  return t;
}

sg_tensor *sg_rand(int ndim, const int64_t *size, sg_dtype dt) { return draw(0, 0, 0, ndim, size, dt); }
sg_tensor *sg_randn(int ndim, const int64_t *size, sg_dtype dt) { return draw(1, 0, 0, ndim, size, dt); }
sg_tensor *sg_randint(int64_t lo, int64_t hi, int ndim, const int64_t *size, sg_dtype dt) {
  if (hi <= lo) { sg_error_set("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi); return NULL; }
  if (!sg_dtype_is_float(dt)) { /* the range must fit the dtype, as in PyTorch */
    double mx = dt == SG_U8 ? 256 : dt == SG_I32 ? 2147483648.0 : dt == SG_BOOL ? 2 : 9.3e18;
    double mn = dt == SG_U8 || dt == SG_BOOL ? 0 : dt == SG_I32 ? -2147483648.0 : -9.3e18;
    if ((double)lo < mn || (double)hi > mx) {
      sg_error_set("randint: range [%lld, %lld) does not fit dtype %s", (long long)lo, (long long)hi, sg_dtype_name(dt));
      return NULL;
    }
  }
  return draw(2, lo, hi, ndim, size, dt);
}
