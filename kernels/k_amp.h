/* Launchers of kernels/amp.cu (see k_common.h for the conventions). */
#ifndef SG_K_AMP_H
#define SG_K_AMP_H
#include "k_common.h"

/* data[i] *= inv_scale for n contiguous elements of dtype (f16, bf16, f32
 * computed in f32; f64 in f64); *found = 1.0f when any element was inf or
 * NaN before scaling (found is not cleared). */
SGK_API int sgk_amp_unscale(void *data, int dtype, int64_t n, double inv_scale, float *found, sgk_stream s);

#endif
