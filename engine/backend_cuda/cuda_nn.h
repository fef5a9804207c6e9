/* The CNN ops of engine/ops/nn_ops.h on the GPU: the compute parts that
 * ops/conv.c, pool.c, norm.c, group_norm.c and upsample.c dispatch to when
 * their tensors are on the device. Plain C types only (any engine file may
 * include it); compiled only with SG_HAVE_CUDA.
 *
 * The op files keep the argument checks, output allocation and autograd
 * recording; every tensor given here is on the GPU, and contiguous where
 * marked (c). Floating dtypes: f16, bf16, f32, f64. Functions return 0, or
 * -1 with the sg error set (a failing CUDA/cuDNN call names itself). */
#ifndef SG_CUDA_NN_H
#define SG_CUDA_NN_H
#include "../backend.h"

/* ---- convolution (cuda_conv.c), through cuDNN ----
 * conv.c's geometry: a "big" image [N,Cb,Hb,Wb] (conv2d input, transposed
 * conv output), a "small" grid [N,Cs,Hs,Ws] and the weight [Cs,Cb/G,kh,kw];
 * ph/pw the top/left padding (the bottom/right padding is whatever makes the
 * sizes agree, as on the CPU: 'same' with an odd total, output_padding).
 *   FWD:         small = conv(big, w)
 *   BWD_DATA:    big   = adjoint conv(small, w)
 *   BWD_FILTER:  w     = gradient of the weight from big and small
 * The kind's output is overwritten. All three (c), one dtype. bias [Cs] or
 * NULL: FWD adds it to small, BWD_FILTER writes the bias gradient into it. */
int sg_cuda_conv(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big, sg_tensor *w, sg_tensor *small,
                 sg_tensor *bias);
/* out (c) [N,C,...] += bias[c] (bias: any float dtype, any stride) */
int sg_cuda_bias_add_(sg_tensor *out, sg_tensor *bias);
/* gb[c] = sum of gout (c) [N,C,...] over all but dim 1, stored in gb's dtype (deterministic) */
int sg_cuda_bias_backward(sg_tensor *gout, sg_tensor *gb);
/* The algorithm cache: one entry per (direction, dtype, shapes, parameters,
 * policy); benchmark mode times the candidates (cudnnFind*Ex) once per entry,
 * otherwise cuDNN's heuristics choose; deterministic mode keeps only
 * deterministic algorithms. f32 runs without TF32 unless allowed here. */
sg_conv_cache_stats sg_cuda_conv_cache_stats(void);
void sg_cuda_conv_cache_clear(void);
void sg_cuda_conv_set_tf32(bool on);
bool sg_cuda_conv_tf32(void);
/* "fwd algo 1 (math 3, workspace 0 B)": what the last convolution call ran (this thread) */
const char *sg_cuda_conv_last_algo(void);

/* ---- pooling (cuda_nn.c) ----
 * par: kh kw sh sw ph pw (and count_include_pad for average pooling). */
int sg_cuda_max_pool2d(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices); /* x (c) */
int sg_cuda_max_pool2d_bwd(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx); /* all (c) */
/* out (c, overwritten) from x (c) and indices (c); indices outside the output plane are an error */
int sg_cuda_max_unpool2d(sg_tensor *x, sg_tensor *indices, sg_tensor *out);
int sg_cuda_max_unpool2d_bwd(sg_tensor *g, sg_tensor *indices, sg_tensor *gx);
/* adaptive: par unused (windows from the sizes) */
int sg_cuda_avg_pool2d(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out);
int sg_cuda_avg_pool2d_bwd(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx);

/* ---- batch norm (cuda_nn.c) ----
 * x (c) [N,C,...]; weight/bias/running stats [C] of any float dtype and
 * stride, or NULL. stats: a new f64 tensor [4C] (mean, invstd, scale, shift)
 * for the backward. Training updates the running statistics in place. */
int sg_cuda_batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                       double momentum, double eps, sg_tensor *out, sg_tensor **stats);
/* gx (c, or NULL), gw/gb ([C] contiguous, or NULL) from x (c), g (c) */
int sg_cuda_batch_norm_bwd(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training, sg_tensor *gx,
                           sg_tensor *gw, sg_tensor *gb);

/* ---- group / layer norm (cuda_nn.c) ----
 * x (c) viewed as [N, C, L] in G groups; w/b (c) with C elements or NULL.
 * stats: a new f64 tensor [2*N*G] (mean, invstd per row). */
int sg_cuda_group_norm(sg_tensor *x, sg_tensor *w, sg_tensor *b, int64_t N, int64_t C, int64_t G, int64_t L,
                       double eps, sg_tensor *out, sg_tensor **stats);
int sg_cuda_group_norm_bwd(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                           int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);

/* ---- upsampling (cuda_nn.c) ----
 * scale_h/scale_w and the mode as sg_upsample takes them (mode 0 nearest, 1 bilinear). */
int sg_cuda_upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align);
int sg_cuda_upsample_bwd(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align);

#endif
