/* Reference GradScaler unscale: every gradient (c) multiplied in place by
 * inv_scale; found_inf (a one-element f32) set to 1 when any value was inf or
 * NaN before scaling. f32 and f64 directly, f16/bf16 through float like the
 * kernels. */
#include "ref.h"
#include <math.h>

static bool unscale_one(sg_tensor *g, double inv) {
  int64_t n = sg_numel(g);
  bool bad = false;
  if (g->dtype == SG_F32) {
    float *p = sg_data_ptr(g), s = (float)inv;
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(p[i])) bad = true;
      p[i] *= s;
    }
  } else if (g->dtype == SG_F64) {
    double *p = sg_data_ptr(g);
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(p[i])) bad = true;
      p[i] *= inv;
    }
  } else {
    char *p = sg_data_ptr(g);
    size_t es = sg_dtype_size(g->dtype);
    float s = (float)inv;
    for (int64_t i = 0; i < n; i++) {
      float v = (float)sg_load_f64(p + i * (int64_t)es, g->dtype);
      if (!isfinite(v)) bad = true;
      sg_store_f64(p + i * (int64_t)es, g->dtype, (double)(v * s));
    }
  }
  return bad;
}

static int unscale_(sg_tensor *const *grads, int n, double inv_scale, sg_tensor *found_inf) {
  bool bad = false;
  for (int k = 0; k < n; k++)
    if (unscale_one(grads[k], inv_scale)) bad = true;
  if (bad) *(float *)sg_data_ptr(found_inf) = 1.0f;
  return 0;
}

void sg_ref_fill_amp(sg_backend *t);
void sg_ref_fill_amp(sg_backend *t) { t->amp.unscale_ = unscale_; }
