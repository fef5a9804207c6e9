/* Which implementation ran an op family's last call on this thread ("dnnl",
 * "kernel", "blas", "loops", "reference", "cudnn", the device's name ...):
 * backends note it, tests read it (F._conv_path() and the like) to check that a
 * fast path really ran. A trace, not a switch: nothing reads it to decide. */
#include "tensor.h"

static _Thread_local const char *last[SG_NPATHS];

void sg_path_note(sg_path_family f, const char *what) {
  if ((unsigned)f < SG_NPATHS) last[f] = what;
}

const char *sg_path_last(sg_path_family f) {
  return (unsigned)f < SG_NPATHS && last[f] ? last[f] : "none";
}
