/* Reference matrix products: C = A * B for each batch by the textbook loops
 * over the strided operand views (the BLAS layouts, trans and ld, are not
 * needed). Floats accumulate in double, integers in uint64 (wrapping like
 * PyTorch), each sum in k order, and are stored in the dtype. */
#include "ref.h"
#include <stdlib.h>

/* C[n,m] (contiguous) = A[n,k] * B[k,m]; acc: m accumulators */
static void gemm(sg_dtype dt, int64_t n, int64_t m, int64_t k, const char *a, sg_mat A, const char *b, sg_mat B,
                 char *C, void *acc) {
  int64_t es = (int64_t)sg_dtype_size(dt);
  if (sg_dtype_is_float(dt)) {
    double *s = acc;
    for (int64_t i = 0; i < n; i++) {
      for (int64_t j = 0; j < m; j++) s[j] = 0;
      for (int64_t l = 0; l < k; l++) {
        double av = sg_load_f64(a + (i * A.rs + l * A.cs) * es, dt);
        const char *brow = b + l * B.rs * es;
        for (int64_t j = 0; j < m; j++) s[j] += av * sg_load_f64(brow + j * B.cs * es, dt);
      }
      for (int64_t j = 0; j < m; j++) sg_store_f64(C + (i * m + j) * es, dt, s[j]);
    }
  } else {
    uint64_t *s = acc; /* unsigned: overflow wraps instead of being undefined */
    for (int64_t i = 0; i < n; i++) {
      for (int64_t j = 0; j < m; j++) s[j] = 0;
      for (int64_t l = 0; l < k; l++) {
        uint64_t av = (uint64_t)sg_load_i64(a + (i * A.rs + l * A.cs) * es, dt);
        const char *brow = b + l * B.rs * es;
        for (int64_t j = 0; j < m; j++) s[j] += av * (uint64_t)sg_load_i64(brow + j * B.cs * es, dt);
      }
      for (int64_t j = 0; j < m; j++) sg_store_i64(C + (i * m + j) * es, dt, (int64_t)s[j]);
    }
  }
}

void sg_ref_batch_offsets(int nbat, const int64_t *bat, const int64_t *sa, const int64_t *sb, int64_t t,
                          int64_t *oa, int64_t *ob) {
  *oa = *ob = 0;
  for (int d = nbat - 1; d >= 0; d--) {
    int64_t i = t % bat[d];
    *oa += i * sa[d];
    *ob += i * sb[d];
    t /= bat[d];
  }
}

int sg_ref_matmul(sg_dtype dt, bool blas, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, void *C, int nbat,
                  const int64_t *bat, const int64_t *sa, const int64_t *sb) {
  (void)blas;
  void *acc = malloc((size_t)m * 8);
  if (!acc) {
    sg_error_set("matmul: out of memory");
    return -1;
  }
  int64_t es = (int64_t)sg_dtype_size(dt);
  int64_t nbatch = 1;
  for (int d = 0; d < nbat; d++) nbatch *= bat[d];
  for (int64_t t = 0; t < nbatch; t++) {
    int64_t oa, ob;
    sg_ref_batch_offsets(nbat, bat, sa, sb, t, &oa, &ob);
    gemm(dt, n, m, k, (const char *)A.data + oa * es, A, (const char *)B.data + ob * es, B,
         (char *)C + t * n * m * es, acc);
  }
  free(acc);
  return 0;
}

void sg_ref_fill_matmul(sg_backend *t);
void sg_ref_fill_matmul(sg_backend *t) { t->matmul.matmul = sg_ref_matmul; }
