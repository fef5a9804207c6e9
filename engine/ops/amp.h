/* Mixed-precision support outside the ops: the gradient unscale and
 * non-finite check behind sg.amp.GradScaler (lua/semseg/amp.lua). The
 * autocast state itself is engine/core/autocast.h. */
#ifndef SG_AMP_H
#define SG_AMP_H
#include "../core/tensor.h"

/* For each of the n gradients (contiguous, floating point, on found_inf's
 * device): g <- g * inv_scale in place (computed in f32, f64 for f64
 * gradients), and found_inf (a one-element f32 tensor) set to 1 when any
 * element was inf or NaN before scaling. found_inf is never reset here: the
 * caller zeroes it, so one flag can collect several calls. Not
 * differentiable; bumps the gradients' versions. On the GPU everything is
 * queued on the stream: reading found_inf is the only synchronisation. */
int sg_amp_unscale_(sg_tensor *const *grads, int n, double inv_scale, sg_tensor *found_inf);

#endif
