/* Reductions on the cpu. f32 sums, the hot ones (bias and broadcast
 * gradients, losses): a block of dims ahead of the last of a contiguous input
 * through the threaded sg_cpu_sum_mid below, any other f32 sum in
 * a tight double loop over the rows in place; the rest runs the reference
 * loops. Every path adds in the reference's order, so the results are the
 * reference's bits for any thread count. */
#include "../backend_ref/ref.h"

/* OpenMP only pays off above this many elements of work */
#define PAR_MIN 32768
#ifdef _OPENMP
#include <omp.h>
#endif

/* out[a, b] = sum over r of x[a, r, b] for x [A, R, B] f32 contiguous, added in double in r order (the
 * loops' order), threaded over (a, block of b). */
#define SUM_BLOCK 512
static void sg_cpu_sum_mid(int64_t A, int64_t R, int64_t B, const float *restrict x, float *restrict out) {
  int64_t nb = (B + SUM_BLOCK - 1) / SUM_BLOCK;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (A * R * B >= PAR_MIN)
#endif
  for (int64_t t = 0; t < A * nb; t++) {
    int64_t a = t / nb, b0 = (t % nb) * SUM_BLOCK, n = B - b0 < SUM_BLOCK ? B - b0 : SUM_BLOCK;
    double acc[SUM_BLOCK];
    for (int64_t j = 0; j < n; j++) acc[j] = 0.0;
    for (int64_t r = 0; r < R; r++) {
      const float *row = x + (a * R + r) * B + b0;
      for (int64_t j = 0; j < n; j++) acc[j] += row[j];
    }
    for (int64_t j = 0; j < n; j++) out[a * B + b0 + j] = (float)acc[j];
  }
}


/* a [A, R, B] with the reduced dims forming the middle block R (B not empty) and the kept dims in order */
static bool middle_block(const sg_tensor *a, const int *perm, int nkeep, int64_t *A, int64_t *R, int64_t *B) {
  int nd = a->ndim;
  if (nkeep == nd || !sg_is_contiguous(a)) return false;
  int d0 = perm[nkeep], d1 = perm[nd - 1];
  if (d1 - d0 != nd - 1 - nkeep || d1 >= nd - 1) return false;
  /* kept: 0..d0-1 then d1+1..nd-1; reduced: d0..d1 */
  for (int k = 0; k < nkeep; k++)
    if (perm[k] != (k < d0 ? k : k + (d1 - d0 + 1))) return false;
  for (int k = nkeep; k < nd; k++)
    if (perm[k] != d0 + (k - nkeep)) return false;
  *A = *R = *B = 1;
  for (int d = 0; d < nd; d++) *(d < d0 ? A : d <= d1 ? R : B) *= a->size[d];
  return true;
}

/* the f32 sum of each row, added in double in row order */
static void sum_rows_f32(sg_tensor *a, const int *perm, int nkeep, sg_tensor *out) {
  sg_ref_dims keep = sg_ref_reduce_dims(a, perm, 0, nkeep), row = sg_ref_reduce_dims(a, perm, nkeep, a->ndim);
  int64_t outer = sg_numel(out), lines = sg_ref_dims_lines(&row);
  int64_t inner = row.ndim ? row.size[row.ndim - 1] : 1, st = row.ndim ? row.stride[row.ndim - 1] : 0;
  const float *x = sg_data_ptr(a);
  float *o = sg_data_ptr(out);
  for (int64_t i = 0; i < outer; i++) {
    const float *r = x + sg_ref_dims_offset(&keep, keep.ndim, i);
    double s = 0;
    for (int64_t l = 0; l < lines; l++) {
      const float *p = r + sg_ref_dims_offset(&row, row.ndim - 1, l);
      if (st == 1)
        for (int64_t j = 0; j < inner; j++) s += p[j];
      else
        for (int64_t j = 0; j < inner; j++) s += p[j * st];
    }
    o[i] = (float)s;
  }
}

static int reduce(int kind, sg_tensor *a, const int *perm, int nkeep, sg_tensor *out) {
  if (kind != R_SUM || a->dtype != SG_F32) return sg_ref_reduce(kind, a, perm, nkeep, out);
  int64_t A, R, B;
  if (middle_block(a, perm, nkeep, &A, &R, &B)) sg_cpu_sum_mid(A, R, B, sg_data_ptr(a), sg_data_ptr(out));
  else sum_rows_f32(a, perm, nkeep, out);
  return 0;
}

void sg_cpu_fill_reduce(sg_backend *t);
void sg_cpu_fill_reduce(sg_backend *t) { t->reduce.reduce = reduce; }
