/* Autocast state: one type per device. */
#include "autocast.h"

static sg_dtype state[SG_NDEVICES] = {SG_F32, SG_F32};

void sg_autocast_set(sg_device dev, sg_dtype dt) {
  if ((unsigned)dev >= SG_NDEVICES) return;
  state[dev] = dt == SG_BF16 || dt == SG_F16 ? dt : SG_F32;
}

sg_dtype sg_autocast_get(sg_device dev) { return (unsigned)dev < SG_NDEVICES ? state[dev] : SG_F32; }

sg_dtype sg_autocast_compute_type(sg_device dev, sg_dtype natural) {
  sg_dtype a = sg_autocast_get(dev);
  return a != SG_F32 && natural == SG_F32 ? a : natural; /* f64 work stays f64, as in PyTorch */
}
