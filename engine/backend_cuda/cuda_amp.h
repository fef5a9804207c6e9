/* GPU side of engine/ops/amp.h (arguments already checked there). */
#ifndef SG_CUDA_AMP_H
#define SG_CUDA_AMP_H
#include "../core/tensor.h"

int sg_cuda_amp_unscale_(sg_tensor *const *grads, int n, double inv_scale, sg_tensor *found_inf);

#endif
