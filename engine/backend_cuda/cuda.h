/* The functions of the CUDA backend (semseg_cuda.so): what the device table
 * in backend.c points at, and what the files of this folder call on each
 * other (runtime, allocator, workspace, index checks). One file per op
 * family, named as on the other floors (engine/ops, backend_ref,
 * backend_cpu, kernels). Plain C types only (engine/backend.h); the vendor
 * headers, checked-call macros and shared helpers are in common.h. (Not the
 * CUDA driver API's <cuda.h>: this one is included as "cuda.h" from this
 * folder only.) Compiled only when the build found nvcc and cuDNN.
 *
 * Conventions as in tensor.h: new references out, NULL (or -1) with the sg
 * error set on failure. Every CUDA, cuBLAS and cuDNN call is checked and its
 * failure becomes an error naming the call, file and line. All work runs on
 * one stream (sg_cuda_stream), so memory freed by the host can be reused by
 * the next kernel without events. */
#ifndef SG_BACKEND_CUDA_H
#define SG_BACKEND_CUDA_H
#include "../backend.h"

#define SG_ON_CUDA(t) ((t)->storage->device == SG_CUDA)

/* ---- runtime (runtime.c) ---- */
int sg_cuda_device_count(void);          /* 0 when there is no driver or device; never fails */
bool sg_cuda_available(void);
const char *sg_cuda_why_unavailable(void); /* the driver's answer when no device is usable */
const char *sg_cuda_device_name(void);
int sg_cuda_synchronize(void);           /* waits for the stream; reports asynchronous kernel errors */
/* cuDNN algorithm choice: benchmark times the candidates once per shape;
 * deterministic restricts to deterministic algorithms (and kernels). */
void sg_cuda_set_benchmark(bool on);
bool sg_cuda_benchmark(void);
void sg_cuda_set_deterministic(bool on);
bool sg_cuda_deterministic(void);

/* ---- memory (alloc.c): a caching allocator ----
 * Small requests (<= 1 MiB) are carved from 2 MiB segments, large ones from
 * segments of their own rounded size; freed blocks go back to their pool,
 * are found again best-fit and split when much larger than asked for;
 * neighbours merge when both are free. */
void *sg_cuda_malloc(size_t nbytes);     /* NULL + error (asked, in use) after empty_cache + retry */
void sg_cuda_free(void *p);
void sg_cuda_empty_cache(void);          /* gives every wholly free segment back to the driver */
sg_alloc_stats sg_cuda_memory_stats(void);
void sg_cuda_reset_peak_stats(void);
/* One growing scratch buffer for cuDNN/cuBLAS workspaces (valid until the next call). */
void *sg_cuda_workspace(size_t nbytes);
/* Page-locked host memory (cached) for loader batches and asynchronous copies. */
void *sg_cuda_host_malloc(size_t nbytes);
void sg_cuda_host_free(void *p, size_t nbytes);

/* ---- copies (copy.c) ---- */
/* dst <- src where either is on the GPU (any dtypes, src broadcast to dst). */
int sg_cuda_copy_(sg_tensor *dst, sg_tensor *src);
int sg_cuda_fill_(sg_tensor *t, double v);
int sg_cuda_zero_(sg_tensor *t); /* whole storage */
/* one element to/from the host, for item(), indexing and printing */
int sg_cuda_get_bytes(const sg_tensor *t, int64_t elem_offset, void *out);
int sg_cuda_set_bytes(sg_tensor *t, int64_t elem_offset, const void *in);

/* The CNN ops of engine/ops/nn_ops.h (conv, pool, norm, upsample) on the GPU:
 * the compute parts that ops/conv.c, pool.c, norm.c, group_norm.c and
 * upsample.c dispatch to when their tensors are on the device. The op files
 * keep the argument checks, output allocation and autograd recording; every
 * tensor given here is on the GPU, and contiguous where marked (c). Floating dtypes: f16, bf16, f32, f64. Functions return 0, or
 * -1 with the sg error set (a failing CUDA/cuDNN call names itself). */
/* ---- convolution (conv.c), through cuDNN ----
 * conv.c's geometry: a "big" image [N,Cb,Hb,Wb] (conv2d input, transposed
 * conv output), a "small" grid [N,Cs,Hs,Ws] and the weight [Cs,Cb/G,kh,kw];
 * ph/pw the top/left padding (the bottom/right padding is whatever makes the
 * sizes agree, as on the CPU: 'same' with an odd total, output_padding).
 *   FWD:         small = conv(big, w)
 *   BWD_DATA:    big   = adjoint conv(small, w)
 *   BWD_FILTER:  w     = gradient of the weight from big and small
 * The kind's output is overwritten. All three (c), one dtype. */
/* bias [Cs] or NULL: FWD adds it to small, BWD_FILTER writes the bias gradient into it */
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

/* ---- pooling (pool.c) ----
 * par: kh kw sh sw ph pw (and count_include_pad for average pooling). */
int sg_cuda_max_pool2d(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices); /* x (c) */
int sg_cuda_max_pool2d_backward(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx); /* all (c) */
/* out (c, overwritten) from x (c) and indices (c); indices outside the output plane are an error */
int sg_cuda_max_unpool2d(sg_tensor *x, sg_tensor *indices, sg_tensor *out);
int sg_cuda_max_unpool2d_backward(sg_tensor *g, sg_tensor *indices, sg_tensor *gx);
/* adaptive: par unused (windows from the sizes) */
int sg_cuda_avg_pool2d(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out);
int sg_cuda_avg_pool2d_backward(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx);

/* ---- batch norm (norm.c) ----
 * x (c) [N,C,...]; weight/bias/running stats [C] of any float dtype and
 * stride, or NULL. stats: a new f64 tensor [4C] (mean, invstd, scale, shift)
 * for the backward. Training updates the running statistics in place. */
int sg_cuda_batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                       double momentum, double eps, sg_tensor *out, sg_tensor **stats);
/* gx (c, or NULL), gw/gb ([C] contiguous, or NULL) from x (c), g (c) */
int sg_cuda_batch_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training,
                                sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);

/* ---- group / layer norm (norm.c) ----
 * x (c) viewed as [N, C, L] in G groups; w/b (c) with C elements or NULL.
 * stats: a new f64 tensor [2*N*G] (mean, invstd per row). */
int sg_cuda_group_norm(sg_tensor *x, sg_tensor *w, sg_tensor *b, int64_t N, int64_t C, int64_t G, int64_t L,
                       double eps, sg_tensor *out, sg_tensor **stats);
int sg_cuda_group_norm_backward(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                                int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);

/* ---- upsampling (upsample.c) ----
 * scale_h/scale_w and the mode as sg_upsample takes them (mode 0 nearest, 1 bilinear). */
int sg_cuda_upsample(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align);
int sg_cuda_upsample_backward(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align);

/* ---- elementwise (elementwise.c) ----
 * The compute part of the elementwise ops (engine/ops/elementwise.c) on the
 * GPU: the public ops check arguments, promote types, allocate the output and
 * record autograd; these run kernels/elementwise.cu over the tensors'
 * strided views. Inputs are converted in the kernel exactly as the CPU's
 * casts would convert them, so no cast copies are made. 0 or -1 with the sg
 * error set. */
/* out = op(a, b) (op: sg_binop) computed in ct (compute_type's answer); a and
 * b broadcast to out's shape; out may be a itself (in place). */
int sg_cuda_binary(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct);
/* out = op(a) (op: sg_unop, or -1 for clamp to [lo, hi]); ct is the dtype
 * run_unary casts a to before its row kernel. out may be a itself. */
int sg_cuda_unary(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi);
/* out = d op(x)/dx * g from x and the forward's output y (unary_backward); out, g,
 * x and y share y's dtype and shape. */
int sg_cuda_unary_backward(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y);
/* out = cond ? a : b; cond bool, a and b of out's dtype, all broadcast to out. */
int sg_cuda_where(sg_tensor *out, sg_tensor *cond, sg_tensor *a, sg_tensor *b);

/* ---- reduce (reduce.c) ----
 * The compute part of the reductions (engine/ops/reduce.c) on the GPU: the
 * public ops plan the reduction, allocate the output and record autograd;
 * these run kernels/reduce.cu directly over the input's strided view (no
 * permuted copy). 0 or -1 with the sg error set. */
/* out (contiguous, numel = product of the kept sizes) = reduction `kind`
 * (an sg_reduce_kind of backend.h; the same order as SGK_R_* in kernels/k_reduce.h) of a
 * over the dims perm[nkeep..ndim), keeping perm[0..nkeep) in that order. */
int sg_cuda_reduce(int kind, sg_tensor *a, const int *perm, int nkeep, sg_tensor *out);
/* prod backward: d = product of the other elements of each row of `rows`
 * (contiguous f64 [outer, row]); d is a contiguous f64 tensor of the same shape. */
int sg_cuda_prod_backward_rows(sg_tensor *d, sg_tensor *rows, int64_t outer, int64_t row);

/* ---- matmul (matmul.c) ----
 * Matrix products on the GPU (engine/ops/matmul.c dispatches here).
 * One operand's matrices: element (i, j) at data + i*rs + j*cs elements. For
 * the cuBLAS path also how BLAS reads it: row-major (trans false, leading
 * dimension ld = rs) or column-major (trans true, ld = cs). */

/* C [bat.., n, m] (contiguous, dtype dt) = A [.., n, k] * B [.., k, m] with
 * batch dims bat[nbat] and per-batch strides sa/sb (0 where broadcast).
 * blas: f16/bf16/f32/f64 through cublasGemmStridedBatchedEx (f32 and 16-bit
 * types accumulate in f32, f64 in f64; batch dims merged into as few strided
 * calls as their strides allow); otherwise the plain kernel (integers, and
 * sg_matmul_reference). n, m, k and the batch are nonzero. 0, or -1 with the
 * error set. */
int sg_cuda_matmul(sg_dtype dt, bool blas, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, void *C,
                   int nbat, const int64_t *bat, const int64_t *sa, const int64_t *sb);

/* f32 products on TF32 tensor cores (faster, about 10 mantissa bits); off by
 * default so f32 results match the CPU closely. */
void sg_cuda_set_allow_tf32(bool on);
bool sg_cuda_allow_tf32(void);

/* ---- index (index.c) ----
 * Indexing ops on the GPU (engine/ops/shape.c and index.c dispatch here). */
/* out (contiguous CUDA, nd dims of out_size, a's dtype) <- a through the per-dim
 * maps: maps[d] a host array of out_size[d] input positions (-1: the fill
 * value) or NULL for the identity. a is right-aligned to the nd dims;
 * astride[d] its element strides so aligned (0 for leading dims). All maps
 * lie in the host block map_data[map_len] (uploaded in one copy). */
int sg_cuda_index_map(sg_tensor *out, const sg_tensor *a, int nd, const int64_t *out_size, const int64_t *astride,
                      int64_t *const *maps, const int64_t *map_data, int64_t map_len, double fill);
/* The adjoint: ga (contiguous CUDA f32/f64, the input's shape) <- the sum of g
 * (contiguous, out_size, ga's dtype) over the output positions reading each
 * element, in the CPU's order (bit-identical sums). Every element is written. */
int sg_cuda_index_map_backward(sg_tensor *ga, const sg_tensor *g, int nd, const int64_t *out_size,
                               int64_t *const *maps);

/* mode 0 gather: dst (index shape) <- src along dim; 1 scatter, 2 scatter_add:
 * dst along dim <- src (index shape). dst and src: same dtype and rank as ix;
 * ix: contiguous i64 CUDA tensor with checked values. */
int sg_cuda_gather_scatter(int mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix);
/* ix: contiguous i64 CUDA tensor. 0 when every value is in [0, hi); 1 with the
 * first offending position and value; -1 on error. Waits for the device. */
int sg_cuda_index_check(const sg_tensor *ix, int64_t hi, int64_t *pos, int64_t *val);
/* The largest value of a non-empty contiguous i64 CUDA tensor. Waits. */
int sg_cuda_index_max(const sg_tensor *ix, int64_t *mx);
/* out [.., classes] contiguous i64 <- one_hot(ix) (values checked). */
int sg_cuda_one_hot(sg_tensor *out, const sg_tensor *ix, int64_t classes);

/* ---- optim (optim.c) ----
 * Optimizer updates and the gradient norm on the GPU (engine/ops/optim.c
 * dispatches here after its checks). */
/* p and state: contiguous CUDA tensors of p's dtype (f32/f64); g: contiguous,
 * f16/bf16/f32/f64. One kernel each; 0, or -1 with the error set. */
int sg_cuda_sgd_step(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first);
int sg_cuda_adam_step(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                      double bc2, double step_size);
int sg_cuda_rmsprop_step(sg_tensor *p, sg_tensor *g, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                         const sg_rmsprop_hyper *h);
/* sum over the (contiguous CUDA) tensors of sum |x|^p, or max |x| when p is
 * infinite: one kernel per tensor, one to combine, one read. */
int sg_cuda_norm_sum(int n, sg_tensor *const *xs, double p, double *out);

/* ---- random (random.c) ----
 * Random numbers on the GPU (engine/ops/random.c dispatches here). */
/* Fills the fresh contiguous CUDA tensor t: kind 0 uniform, 1 normal, 2
 * integers in [lo, lo + range); the counter blocks from `base` were reserved
 * by the caller. 0, or -1 with the error set. */
int sg_cuda_random(sg_tensor *t, int kind, uint64_t base, uint64_t key, int64_t lo, uint64_t range);

/* ---- amp (amp.c) ----
 * GPU side of engine/ops/amp.h (arguments already checked there). */
int sg_cuda_amp_unscale_(sg_tensor *const *grads, int n, double inv_scale, sg_tensor *found_inf);

#endif
