/* GradScaler unscale on the GPU: one kernel per gradient, all on the stream,
 * the inf/NaN flag left on the device for the caller's single read. */
#include "common.h"
#include "../../kernels/k_amp.h"

int sg_cuda_amp_unscale_(sg_tensor *const *grads, int n, double inv_scale, sg_tensor *found_inf) {
  if (!sg_cuda_ensure()) return -1;
  float *found = sg_data_ptr(found_inf);
  for (int k = 0; k < n; k++) {
    sg_tensor *g = grads[k];
    if (!SG_LAUNCH_OK(sgk_amp_unscale(sg_data_ptr(g), g->dtype, sg_numel(g), inv_scale, found, sg_cuda_stream())))
      return -1;
    atomic_fetch_add(&g->storage->version, 1);
  }
  atomic_fetch_add(&found_inf->storage->version, 1);
  return 0;
}
