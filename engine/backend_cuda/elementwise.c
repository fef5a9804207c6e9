/* Elementwise ops on the GPU: host glue of kernels/elementwise.cu. */
#include "common.h"
#include "../ops/ops.h"
#include "../../kernels/k_elementwise.h"
#include <string.h>

/* the kernels' op codes are the engine's */
#define SAME(a, b) _Static_assert((int)(a) == (int)(b), #a " != " #b);
SAME(SGK_ADD, SG_ADD) SAME(SGK_SUB, SG_SUB) SAME(SGK_MUL, SG_MUL) SAME(SGK_DIV, SG_DIV) SAME(SGK_POW, SG_POW)
SAME(SGK_MINIMUM, SG_MINIMUM) SAME(SGK_MAXIMUM, SG_MAXIMUM) SAME(SGK_EQ, SG_EQ) SAME(SGK_NE, SG_NE)
SAME(SGK_LT, SG_LT) SAME(SGK_LE, SG_LE) SAME(SGK_GT, SG_GT) SAME(SGK_GE, SG_GE) SAME(SGK_AND, SG_AND)
SAME(SGK_OR, SG_OR) SAME(SGK_NBINOPS, SG_NBINOPS)
SAME(SGK_NEG, SG_NEG) SAME(SGK_ABS, SG_ABS) SAME(SGK_EXP, SG_EXP) SAME(SGK_LOG, SG_LOG) SAME(SGK_LOG1P, SG_LOG1P)
SAME(SGK_SQRT, SG_SQRT) SAME(SGK_RSQRT, SG_RSQRT) SAME(SGK_SIGMOID, SG_SIGMOID) SAME(SGK_TANH, SG_TANH)
SAME(SGK_RELU, SG_RELU) SAME(SGK_NOT, SG_NOT) SAME(SGK_SIGN, SG_SIGN) SAME(SGK_SQUARE, SG_SQUARE)
SAME(SGK_GELU, SG_GELU) SAME(SGK_GELU_TANH, SG_GELU_TANH)
SAME(SGK_NUNOPS, SG_NUNOPS)
#undef SAME

/* every operand on the GPU (the public ops check devices; this keeps a CPU
 * pointer from ever reaching a kernel) */
static bool on_gpu(const char *op, int n, sg_tensor *const *t) {
  for (int k = 0; k < n; k++)
    if (!SG_ON_CUDA(t[k])) {
      sg_error_set("%s: expected all tensors on cuda, argument %d is on %s", op, k + 1,
                   sg_device_name(t[k]->storage->device));
      return false;
    }
  return true;
}

/* Drops size-1 dims and merges neighbouring dims that are contiguous in every
 * operand (as sg_iter_init does), so the kernels' index arithmetic runs over
 * as few dims as possible. All layouts share their sizes. */
static void collapse(int nops, sgk_layout *l) {
  sgk_layout r[4];
  memset(r, 0, sizeof r);
  int nd = 0;
  for (int d = 0; d < l[0].ndim; d++) {
    int64_t sz = l[0].size[d];
    if (sz == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < nops && merge; k++)
      if (r[k].stride[nd - 1] != l[k].stride[d] * sz) merge = false;
    if (merge) {
      for (int k = 0; k < nops; k++) {
        r[k].size[nd - 1] *= sz;
        r[k].stride[nd - 1] = l[k].stride[d];
      }
      continue;
    }
    for (int k = 0; k < nops; k++) {
      r[k].size[nd] = sz;
      r[k].stride[nd] = l[k].stride[d];
    }
    nd++;
  }
  for (int k = 0; k < nops; k++) {
    r[k].ndim = nd;
    l[k] = r[k];
  }
}

/* An input that shares the output's storage but is not the very same view
 * (same first element, same strides over the output's shape) could be read
 * after another thread wrote the output: it is copied first. */
static int unalias(sg_tensor *out, sg_tensor **in, sg_tensor **hold) {
  if ((*in)->storage != out->storage) return 0;
  if (sg_data_ptr(*in) == sg_data_ptr(out) && (*in)->dtype == out->dtype) {
    sgk_layout lo = sg_cuda_layout(out), li = sg_cuda_layout_as(*in, out->ndim, out->size);
    bool same = true;
    for (int d = 0; d < out->ndim; d++)
      if (lo.size[d] != 1 && lo.stride[d] != li.stride[d]) same = false;
    if (same) return 0;
  }
  sg_tensor *c = sg_empty((*in)->ndim, (*in)->size, (*in)->dtype, SG_CUDA);
  if (!c || sg_cuda_copy_(c, *in)) {
    sg_tensor_decref(c);
    return -1;
  }
  *hold = c;
  *in = c;
  return 0;
}

int sg_cuda_binary(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct) {
  sg_tensor *t[3] = {out, a, b}, *ha = NULL, *hb = NULL;
  if (!on_gpu(sg_binop_name((sg_binop)op), 3, t) || !sg_cuda_ensure()) return -1;
  int64_t n = sg_numel(out);
  if (n == 0) return 0;
  int rc = -1;
  if (unalias(out, &a, &ha) || unalias(out, &b, &hb)) goto done;
  sgk_layout l[3] = {sg_cuda_layout(out), sg_cuda_layout_as(a, out->ndim, out->size),
                     sg_cuda_layout_as(b, out->ndim, out->size)};
  collapse(3, l);
  if (SG_LAUNCH_OK(sgk_binary(op, sg_data_ptr(out), out->dtype, &l[0], sg_data_ptr(a), a->dtype, &l[1],
                              sg_data_ptr(b), b->dtype, &l[2], ct, n, sg_cuda_stream())))
    rc = 0;
done:
  sg_tensor_decref(ha);
  sg_tensor_decref(hb);
  return rc;
}

int sg_cuda_unary(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi) {
  sg_tensor *t[2] = {out, a}, *ha = NULL;
  if (!on_gpu(op < 0 ? "clamp" : sg_unop_name((sg_unop)op), 2, t) || !sg_cuda_ensure()) return -1;
  int64_t n = sg_numel(out);
  if (n == 0) return 0;
  int rc = -1;
  if (unalias(out, &a, &ha)) goto done;
  sgk_layout l[2] = {sg_cuda_layout(out), sg_cuda_layout_as(a, out->ndim, out->size)};
  collapse(2, l);
  if (SG_LAUNCH_OK(sgk_unary(op, sg_data_ptr(out), out->dtype, &l[0], sg_data_ptr(a), a->dtype, &l[1], ct, lo, hi, n,
                             sg_cuda_stream())))
    rc = 0;
done:
  sg_tensor_decref(ha);
  return rc;
}

int sg_cuda_unary_backward(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y) {
  sg_tensor *t[4] = {out, g, x, y};
  if (!on_gpu(sg_unop_name((sg_unop)op), 4, t) || !sg_cuda_ensure()) return -1;
  if (g->dtype != out->dtype || x->dtype != out->dtype || y->dtype != out->dtype) {
    sg_error_set("%s backward: gradient, input and output must share one dtype", sg_unop_name((sg_unop)op));
    return -1;
  }
  int64_t n = sg_numel(out);
  if (n == 0) return 0;
  sgk_layout l[4] = {sg_cuda_layout(out), sg_cuda_layout_as(g, out->ndim, out->size),
                     sg_cuda_layout_as(x, out->ndim, out->size), sg_cuda_layout_as(y, out->ndim, out->size)};
  collapse(4, l);
  return SG_LAUNCH_OK(sgk_unary_backward(op, sg_data_ptr(out), &l[0], sg_data_ptr(g), &l[1], sg_data_ptr(x), &l[2],
                                         sg_data_ptr(y), &l[3], out->dtype, n, sg_cuda_stream()))
             ? 0 : -1;
}

int sg_cuda_where(sg_tensor *out, sg_tensor *cond, sg_tensor *a, sg_tensor *b) {
  sg_tensor *t[4] = {out, cond, a, b};
  if (!on_gpu("where", 4, t) || !sg_cuda_ensure()) return -1;
  if (cond->dtype != SG_BOOL || a->dtype != out->dtype || b->dtype != out->dtype) {
    sg_error_set("where: expected a bool condition and values of the result's dtype");
    return -1;
  }
  int64_t n = sg_numel(out);
  if (n == 0) return 0;
  sgk_layout l[4] = {sg_cuda_layout(out), sg_cuda_layout_as(cond, out->ndim, out->size),
                     sg_cuda_layout_as(a, out->ndim, out->size), sg_cuda_layout_as(b, out->ndim, out->size)};
  collapse(4, l);
  return SG_LAUNCH_OK(sgk_where(sg_data_ptr(out), &l[0], sg_data_ptr(cond), &l[1], sg_data_ptr(a), &l[2],
                                sg_data_ptr(b), &l[3], out->dtype, n, sg_cuda_stream()))
             ? 0 : -1;
}
