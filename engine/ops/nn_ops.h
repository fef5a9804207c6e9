/* CNN ops on NCHW tensors (f32 or f64 on the cpu; f16, bf16, f32 or f64 on
 * cuda, through engine/backend_cuda/{conv,pool,norm,upsample}.c): convolution, pooling, batch,
 * group and layer norm, upsampling. All differentiable (hand-written backward).
 * On cuda, convolutions follow autocast (core/autocast.h).
 * Same conventions as tensor.h: new references out, NULL (or -1) + sg_error
 * on failure, arguments checked before anything is allocated. */
#ifndef SG_NN_OPS_H
#define SG_NN_OPS_H
#include "../core/tensor.h"

/* ---- convolution (ops/conv.c) ----
 * Pairs are {h, w}. `same` asks for PyTorch's padding="same" (stride 1; any
 * odd total padding goes to the bottom/right). `reference` runs the forward
 * and backward on the reference loops (engine/backend_ref; cpu tensors, for
 * testing). */
typedef struct {
  int64_t stride[2], padding[2], dilation[2], output_padding[2];
  int64_t groups;
  bool same;
  bool reference;
} sg_conv_opts;
/* defaults: stride 1, padding 0, dilation 1, output_padding 0, groups 1 */
sg_conv_opts sg_conv_defaults(void);
/* x [N,C,H,W], w [O,C/groups,kh,kw], bias [O] or NULL */
sg_tensor *sg_conv2d(sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o);
/* x [N,C,H,W], w [C,O/groups,kh,kw], bias [O] or NULL; the adjoint of conv2d */
sg_tensor *sg_conv_transpose2d(sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o);

/* ---- pooling (ops/pool.c) ---- */
/* values and i64 indices (flat position in each input H*W plane, as PyTorch); indices may be NULL
 * when the caller does not want them: then they are computed only if autograd needs them */
int sg_max_pool2d(sg_tensor *x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                  sg_tensor **values, sg_tensor **indices);
sg_tensor *sg_max_unpool2d(sg_tensor *x, sg_tensor *indices, int64_t oh, int64_t ow);
sg_tensor *sg_avg_pool2d(sg_tensor *x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                         bool count_include_pad);
sg_tensor *sg_adaptive_avg_pool2d(sg_tensor *x, int64_t oh, int64_t ow);

/* ---- batch norm (ops/norm.c) ----
 * x [N,C,...]; running stats [C] (may be NULL when training; updated in place
 * when training), weight/bias [C] or NULL. */
sg_tensor *sg_batch_norm(sg_tensor *x, sg_tensor *running_mean, sg_tensor *running_var, sg_tensor *weight,
                         sg_tensor *bias, bool training, double momentum, double eps);
/* relu(batch_norm(...)) as one op (one pass on f32 cpu tensors, and its
 * backward masks the gradient with the saved output) */
sg_tensor *sg_batch_norm_relu(sg_tensor *x, sg_tensor *running_mean, sg_tensor *running_var, sg_tensor *weight,
                              sg_tensor *bias, bool training, double momentum, double eps);

/* ---- group and layer norm (ops/norm.c) ----
 * group_norm: x [N,C,...], statistics per sample over each of `groups`
 * groups of C/groups channels (groups == C: instance norm); weight/bias [C]
 * or NULL. layer_norm: statistics over the last k dims of x; weight/bias of
 * the shape of those k dims, or NULL. Mean and biased variance in double,
 * y = (x - mean) / sqrt(var + eps) * weight + bias. */
sg_tensor *sg_group_norm(sg_tensor *x, int64_t groups, sg_tensor *weight, sg_tensor *bias, double eps);
sg_tensor *sg_layer_norm(sg_tensor *x, int k, sg_tensor *weight, sg_tensor *bias, double eps);

/* ---- upsampling (ops/upsample.c) ----
 * Output size oh x ow; scale_h/scale_w are the user's scale factors when the
 * size came from them (PyTorch then maps indices with 1/scale), else 0. */
typedef enum { SG_UPSAMPLE_NEAREST, SG_UPSAMPLE_BILINEAR } sg_upsample_mode;
sg_tensor *sg_upsample(sg_tensor *x, int64_t oh, int64_t ow, double scale_h, double scale_w, sg_upsample_mode mode,
                       bool align_corners);

/* ---- fused losses (ops/loss.c) ----
 * Binary cross-entropy with logits x against a target t of x's shape (not
 * differentiated), the mean (or sum) over all elements, as a 0-dim tensor. */
sg_tensor *sg_bce_with_logits(sg_tensor *x, sg_tensor *t, bool mean);

/* ---- helpers shared by the nn op files (not API) ---- */
#define SG_NN_LD(p, f64, i) ((f64) ? ((const double *)(p))[i] : (double)((const float *)(p))[i])
#define SG_NN_ST(p, f64, i, v) \
  do { if (f64) ((double *)(p))[i] = (v); else ((float *)(p))[i] = (float)(v); } while (0)
/* t as a contiguous tensor of dtype dt, outside autograd (new reference). */
sg_tensor *sg_nn_contig(sg_tensor *t, sg_dtype dt);
/* Checks that t is a cpu f32/f64 tensor; names op and argument in the error. */
bool sg_nn_check_float(const char *op, const char *arg, const sg_tensor *t);
/* The same for ops with a GPU path: also accepts any floating cuda tensor. */
bool sg_nn_check_float_dev(const char *op, const char *arg, const sg_tensor *t);

#endif
