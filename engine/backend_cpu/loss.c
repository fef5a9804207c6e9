/* Fused losses on the cpu: binary cross-entropy with logits on OpenMP threads.
 * The sum is taken in fixed chunks added in order, so it does not depend on
 * the thread count. */
#include "../backend_ref/ref.h"
#include <math.h>
#include <stdlib.h>

#define CHUNK 16384

static inline double bce(double x, double t) { return (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x))); }

static int cpu_bce_with_logits(sg_tensor *x, sg_tensor *t, bool mean, sg_tensor *out) {
  bool f64 = x->dtype == SG_F64;
  int64_t N = sg_numel(x), nchunks = (N + CHUNK - 1) / CHUNK;
  double *part = malloc(sizeof(double) * (size_t)(nchunks + 1));
  if (!part) {
    sg_error_set("bce_with_logits: out of memory");
    return -1;
  }
  const void *xp = sg_data_ptr(x), *tp = sg_data_ptr(t);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nchunks >= 4)
#endif
  for (int64_t c = 0; c < nchunks; c++) {
    double s = 0;
    for (int64_t i = c * CHUNK, e = i + CHUNK < N ? i + CHUNK : N; i < e; i++)
      s += bce(SG_REF_LD(xp, f64, i), SG_REF_LD(tp, f64, i));
    part[c] = s;
  }
  double total = 0;
  for (int64_t c = 0; c < nchunks; c++) total += part[c];
  if (mean) total = N ? total / (double)N : NAN;
  free(part);
  SG_REF_ST(sg_data_ptr(out), f64, 0, total);
  return 0;
}

static int cpu_bce_with_logits_backward(sg_tensor *x, sg_tensor *t, double scale, sg_tensor *gx) {
  bool f64 = x->dtype == SG_F64;
  int64_t N = sg_numel(x);
  const void *xp = sg_data_ptr(x), *tp = sg_data_ptr(t);
  void *op = sg_data_ptr(gx);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (N >= 4 * CHUNK)
#endif
  for (int64_t i = 0; i < N; i++) {
    double v = SG_REF_LD(xp, f64, i), s = v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v));
    SG_REF_ST(op, f64, i, scale * (s - SG_REF_LD(tp, f64, i)));
  }
  return 0;
}

void sg_cpu_fill_loss(sg_backend *t);
void sg_cpu_fill_loss(sg_backend *t) {
  t->loss.bce_with_logits = cpu_bce_with_logits;
  t->loss.bce_with_logits_backward = cpu_bce_with_logits_backward;
}
