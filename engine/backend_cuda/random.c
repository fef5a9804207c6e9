/* Random numbers on the GPU: the glue of kernels/random.cu. */
#include "common.h"
#include "../../kernels/k_random.h"

int sg_cuda_random(sg_tensor *t, int kind, uint64_t base, uint64_t key, int64_t lo, uint64_t range) {
  if (!sg_cuda_ensure()) return -1;
  if (!sg_is_contiguous(t)) { sg_error_set("random: internal error, the output must be contiguous"); return -1; }
  int64_t n = sg_numel(t);
  if (n == 0) return 0;
  return SG_LAUNCH_OK(sgk_random(sg_data_ptr(t), t->dtype, n, kind, base, key, lo, range, sg_cuda_stream())) ? 0 : -1;
}
