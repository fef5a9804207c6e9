/* Reference fused losses: binary cross-entropy with logits, element by
 * element in double, the sum in one running total. */
#include "ref.h"
#include <math.h>

int sg_ref_bce_with_logits(sg_tensor *x, sg_tensor *t, bool mean, sg_tensor *out) {
  bool f64 = x->dtype == SG_F64;
  const void *xp = sg_data_ptr(x), *tp = sg_data_ptr(t);
  int64_t n = sg_numel(x);
  double total = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = SG_REF_LD(xp, f64, i), y = SG_REF_LD(tp, f64, i);
    /* log(1 + exp(-|v|)) + max(v, 0) - v y: log(1 + exp(v)) - v y without overflow */
    total += (v > 0 ? v : 0) - v * y + log1p(exp(-fabs(v)));
  }
  if (mean) total = n ? total / (double)n : NAN;
  SG_REF_ST(sg_data_ptr(out), f64, 0, total);
  return 0;
}

int sg_ref_bce_with_logits_backward(sg_tensor *x, sg_tensor *t, double scale, sg_tensor *gx) {
  bool f64 = x->dtype == SG_F64;
  const void *xp = sg_data_ptr(x), *tp = sg_data_ptr(t);
  void *gp = sg_data_ptr(gx);
  for (int64_t i = 0, n = sg_numel(x); i < n; i++) {
    double v = SG_REF_LD(xp, f64, i);
    double sig = v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v)); /* no overflow on either side */
    SG_REF_ST(gp, f64, i, scale * (sig - SG_REF_LD(tp, f64, i)));
  }
  return 0;
}

void sg_ref_fill_loss(sg_backend *t);
void sg_ref_fill_loss(sg_backend *t) {
  t->loss.bce_with_logits = sg_ref_bce_with_logits;
  t->loss.bce_with_logits_backward = sg_ref_bce_with_logits_backward;
}
