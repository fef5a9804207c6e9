/* The CUDA backend's device table: what semseg_cuda.so registers when the
 * engine loads it on first use of the GPU (engine/core/device.c). The entries
 * are the host glue of the files beside this one. */
#include "cuda_backend.h"
#include "cuda_amp.h"
#include "cuda_elementwise.h"
#include "cuda_index.h"
#include "cuda_matmul.h"
#include "cuda_nn.h"
#include "cuda_optim.h"
#include "cuda_random.h"
#include "cuda_reduce.h"

static const sg_backend cuda_backend = {
  .name = "cuda",
  .available = sg_cuda_available,
  .why_unavailable = sg_cuda_why_unavailable,
  .device_name = sg_cuda_device_name,
  .device_count = sg_cuda_device_count,
  .synchronize = sg_cuda_synchronize,
  .malloc = sg_cuda_malloc,
  .free = sg_cuda_free,
  .empty_cache = sg_cuda_empty_cache,
  .alloc_stats = sg_cuda_memory_stats,
  .reset_peak_stats = sg_cuda_reset_peak_stats,
  .host_malloc = sg_cuda_host_malloc,
  .host_free = sg_cuda_host_free,
  .copy_ = sg_cuda_copy_,
  .fill_ = sg_cuda_fill_,
  .zero_ = sg_cuda_zero_,
  .get_bytes = sg_cuda_get_bytes,
  .set_bytes = sg_cuda_set_bytes,
  .elementwise = {.binary = sg_cuda_binary, .unary = sg_cuda_unary, .unary_backward = sg_cuda_unary_grad,
                  .where = sg_cuda_where},
  .reduce = {.reduce = sg_cuda_reduce, .prod_backward_rows = sg_cuda_prod_grad_rows, .norm_sum = sg_cuda_norm_sum},
  .matmul = {.matmul = sg_cuda_matmul},
  .conv = {.conv = sg_cuda_conv, .bias_add_ = sg_cuda_bias_add_, .bias_backward = sg_cuda_bias_backward,
           .cache_stats = sg_cuda_conv_cache_stats, .cache_clear = sg_cuda_conv_cache_clear,
           .last_algo = sg_cuda_conv_last_algo},
  .pool = {.max_pool2d = sg_cuda_max_pool2d, .max_pool2d_backward = sg_cuda_max_pool2d_bwd,
           .max_unpool2d = sg_cuda_max_unpool2d, .max_unpool2d_backward = sg_cuda_max_unpool2d_bwd,
           .avg_pool2d = sg_cuda_avg_pool2d, .avg_pool2d_backward = sg_cuda_avg_pool2d_bwd},
  .norm = {.batch_norm = sg_cuda_batch_norm, .batch_norm_backward = sg_cuda_batch_norm_bwd,
           .group_norm = sg_cuda_group_norm, .group_norm_backward = sg_cuda_group_norm_bwd},
  .upsample = {.upsample = sg_cuda_upsample, .upsample_backward = sg_cuda_upsample_bwd},
  .index = {.index_map = sg_cuda_index_map, .index_map_backward = sg_cuda_index_adjoint,
            .gather_scatter = sg_cuda_gather_scatter, .index_check = sg_cuda_index_check,
            .index_max = sg_cuda_index_max, .one_hot = sg_cuda_one_hot},
  .optim = {.sgd_step = sg_cuda_sgd_step, .adam_step = sg_cuda_adam_step, .rmsprop_step = sg_cuda_rmsprop_step},
  .random = {.fill = sg_cuda_random},
  .amp = {.unscale_ = sg_cuda_amp_unscale_},
};

void SG_BACKEND_ENTRY(void);
void SG_BACKEND_ENTRY(void) { sg_backend_register(SG_CUDA, &cuda_backend); }
