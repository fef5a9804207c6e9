/* Reference random fills: Philox 4x32-10 (ops/philox.h), element i from
 * counter (base + i / 4, lane i % 4) under the key, so the numbers depend
 * neither on threads nor on the device (the CUDA kernel runs the same code).
 * kind 0: uniform [0, 1) with as many random bits as the dtype holds; 1: normal
 * (Box-Muller on lane pairs); 2: integers in [lo, lo + range), stored exactly. */
#include "ref.h"
#include "../ops/philox.h"

static int fill(sg_tensor *t, int kind, uint64_t base, uint64_t key, int64_t lo, uint64_t range) {
  int64_t n = sg_numel(t);
  sg_dtype dt = t->dtype;
  size_t es = sg_dtype_size(dt);
  char *p = sg_data_ptr(t);
  for (int64_t b = 0; b * 4 < n; b++) {
    uint32_t r[4];
    sg_philox(base + (uint64_t)b, 0, key, r);
    if (kind == 2) {
      for (int k = 0; k < 4 && b * 4 + k < n; k++) sg_store_i64(p + (b * 4 + k) * (int64_t)es, dt, sg_philox_int(r, k, lo, range));
      continue;
    }
    double v[4];
    if (kind == 0) /* rounding never reaches 1.0 */
      for (int k = 0; k < 4; k++) v[k] = sg_philox_uniform(r[k], dt == SG_F16, dt == SG_BF16);
    else {
      sg_philox_normal2(r[0], r[1], &v[0], &v[1]);
      sg_philox_normal2(r[2], r[3], &v[2], &v[3]);
    }
    for (int k = 0; k < 4 && b * 4 + k < n; k++) sg_store_f64(p + (b * 4 + k) * (int64_t)es, dt, v[k]);
  }
  return 0;
}

void sg_ref_fill_random(sg_backend *t);
void sg_ref_fill_random(sg_backend *t) { t->random.fill = fill; }
