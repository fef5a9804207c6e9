/* Mixed precision (autocast): while it is on for a device, convolutions and
 * matrix products on that device cast their floating inputs (f32) to the
 * autocast type (bf16 or f16) and run in it, accumulating in f32, as
 * PyTorch's autocast does; every other op runs in its inputs' types, and
 * parameters stay f32 (master weights). The casts are differentiable, so
 * gradients reach the f32 leaves in f32. Per process, set from Lua
 * (sg.amp.autocast). */
#ifndef SG_AUTOCAST_H
#define SG_AUTOCAST_H
#include "tensor.h"

void sg_autocast_set(sg_device dev, sg_dtype dt); /* SG_F32 (or any non-16-bit type) turns it off */
sg_dtype sg_autocast_get(sg_device dev);          /* SG_F32 when off */
/* The type a conv/matmul whose inputs promote to `natural` should run in on `dev`. */
sg_dtype sg_autocast_compute_type(sg_device dev, sg_dtype natural);

#endif
