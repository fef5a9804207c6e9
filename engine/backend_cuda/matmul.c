/* Matrix products on the GPU: cuBLAS for floating point, the plain kernel of
 * kernels/matmul.cu for integers and for the reference path.
 *
 * cuBLAS is column-major: the row-major product C[n,m] = A[n,k] B[k,m] is the
 * column-major C^T[m,n] = B^T A^T, so the operands go in swapped. A row-major
 * operand (unit column stride) read column-major is its own transpose, hence
 * op N; a column-major one needs op T. */
#include "../core/config.h"
#include "common.h"
#include "../../kernels/k_matmul.h"
#include <limits.h>
#include <string.h>

void sg_cuda_set_allow_tf32(bool on) { sg_config.allow_tf32 = on; }
bool sg_cuda_allow_tf32(void) { return sg_config.allow_tf32; }

static int gemm(sg_dtype dt, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, char *C, int nbat,
                const int64_t *bat, const int64_t *sa, const int64_t *sb) {
  static const float f_one = 1.0f, f_zero = 0.0f;
  static const double d_one = 1.0, d_zero = 0.0;
  cudaDataType_t ty;
  cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
  const void *one = &f_one, *zero = &f_zero;
  switch (dt) {
  case SG_F32: ty = CUDA_R_32F; ct = sg_config.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F; break;
  case SG_F64: ty = CUDA_R_64F; ct = CUBLAS_COMPUTE_64F; one = &d_one; zero = &d_zero; break;
  case SG_BF16: ty = CUDA_R_16BF; break;
  case SG_F16: ty = CUDA_R_16F; break;
  default: sg_error_set("matmul: internal error, no cuBLAS path for %s", sg_dtype_name(dt)); return -1;
  }
  if (n > INT_MAX || m > INT_MAX || k > INT_MAX || A.ld > INT_MAX || B.ld > INT_MAX) {
    sg_error_set("matmul: matrices of %lldx%lld by %lldx%lld are too large for cuBLAS", (long long)n, (long long)k,
                 (long long)k, (long long)m);
    return -1;
  }
  cublasHandle_t h = sg_cublas_handle();
  if (!h || !SG_CUBLAS_OK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST))) return -1;

  /* batch dims without the size-1 ones; then the longest suffix whose strides
     nest (stride[d] == stride[d+1] * size[d+1] for A and for B) becomes the
     batch of one strided call, the dims before it a loop of calls */
  int nd = 0;
  int64_t bs[SG_MAX_DIMS], as[SG_MAX_DIMS], bbs[SG_MAX_DIMS];
  for (int d = 0; d < nbat; d++)
    if (bat[d] != 1) { bs[nd] = bat[d]; as[nd] = sa[d]; bbs[nd] = sb[d]; nd++; }
  int first = nd;
  int64_t count = 1, sA = 0, sB = 0;
  if (nd > 0) {
    first = nd - 1;
    count = bs[first]; sA = as[first]; sB = bbs[first];
    while (first > 0 && as[first - 1] == sA * count && bbs[first - 1] == sB * count) {
      first--;
      count *= bs[first];
    }
  }
  int64_t outer = 1;
  for (int d = 0; d < first; d++) outer *= bs[d];
  int64_t es = (int64_t)sg_dtype_size(dt), nm = n * m;
  cublasOperation_t opA = A.trans ? CUBLAS_OP_T : CUBLAS_OP_N, opB = B.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  int64_t idx[SG_MAX_DIMS] = {0};
  for (int64_t o = 0; o < outer; o++) {
    int64_t oa = 0, ob = 0;
    for (int d = 0; d < first; d++) { oa += idx[d] * as[d]; ob += idx[d] * bbs[d]; }
    const char *a0 = (const char *)A.data + oa * es, *b0 = (const char *)B.data + ob * es;
    char *c0 = C + o * count * nm * es;
    for (int64_t s0 = 0; s0 < count; s0 += INT_MAX) {
      int cnt = (int)(count - s0 < INT_MAX ? count - s0 : INT_MAX);
      if (!SG_CUBLAS_OK(cublasGemmStridedBatchedEx(h, opB, opA, (int)m, (int)n, (int)k, one, b0 + s0 * sB * es, ty,
                                                   (int)B.ld, sB, a0 + s0 * sA * es, ty, (int)A.ld, sA, zero,
                                                   c0 + s0 * nm * es, ty, (int)m, nm, cnt, ct, CUBLAS_GEMM_DEFAULT)))
        return -1;
    }
    for (int d = first - 1; d >= 0; d--) {
      if (++idx[d] < bs[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

int sg_cuda_matmul(sg_dtype dt, bool blas, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, void *C,
                   int nbat, const int64_t *bat, const int64_t *sa, const int64_t *sb) {
  if (!sg_cuda_ensure()) return -1;
  if (nbat < 0 || nbat > SG_KDIMS) { sg_error_set("matmul: %d batch dims", nbat); return -1; }
  if (blas) return gemm(dt, n, m, k, A, B, C, nbat, bat, sa, sb);
  sgk_layout al, bl;
  memset(&al, 0, sizeof al);
  memset(&bl, 0, sizeof bl);
  al.ndim = bl.ndim = nbat;
  for (int d = 0; d < nbat; d++) {
    al.size[d] = bl.size[d] = bat[d];
    al.stride[d] = sa[d];
    bl.stride[d] = sb[d];
  }
  int64_t nbatch = sg_shape_numel(nbat, bat);
  return SG_LAUNCH_OK(sgk_matmul_naive(dt, n, m, k, A.data, A.rs, A.cs, &al, B.data, B.rs, B.cs, &bl, C, nbatch,
                                       sg_cuda_stream()))
             ? 0 : -1;
}
