/* The compute part of the elementwise ops (engine/ops/elementwise.c) on the
 * GPU: the public ops check arguments, promote types, allocate the output and
 * record autograd; these run kernels/elementwise.cu over the tensors'
 * strided views. Inputs are converted in the kernel exactly as the CPU's
 * casts would convert them, so no cast copies are made. 0 or -1 with the sg
 * error set. */
#ifndef SG_CUDA_ELEMENTWISE_H
#define SG_CUDA_ELEMENTWISE_H
#include "cuda_backend.h"

/* out = op(a, b) (op: sg_binop) computed in ct (compute_type's answer); a and
 * b broadcast to out's shape; out may be a itself (in place). */
int sg_cuda_binary(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct);
/* out = op(a) (op: sg_unop, or -1 for clamp to [lo, hi]); ct is the dtype
 * run_unary casts a to before its row kernel. out may be a itself. */
int sg_cuda_unary(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi);
/* out = d op(x)/dx * g from x and the forward's output y (unary_bw); out, g,
 * x and y share y's dtype and shape. */
int sg_cuda_unary_grad(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y);
/* out = cond ? a : b; cond bool, a and b of out's dtype, all broadcast to out. */
int sg_cuda_where(sg_tensor *out, sg_tensor *cond, sg_tensor *a, sg_tensor *b);

#endif
