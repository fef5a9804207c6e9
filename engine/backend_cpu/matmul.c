/* Matrix products on the cpu: f32 and f64 through OpenBLAS (sgemm / dgemm,
 * one call per batch, reading each operand in the layout the op prepared:
 * row-major, or column-major through CblasTrans); f16, bf16, integers and the
 * forced plain path (blas false) run the reference loops. */
#include "../backend_ref/ref.h"
#include <cblas.h>

static int matmul(sg_dtype dt, bool blas, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, void *C, int nbat,
                  const int64_t *bat, const int64_t *sa, const int64_t *sb) {
  if (!blas || (dt != SG_F32 && dt != SG_F64)) return sg_ref_matmul(dt, blas, n, m, k, A, B, C, nbat, bat, sa, sb);
  enum CBLAS_TRANSPOSE TA = A.trans ? CblasTrans : CblasNoTrans, TB = B.trans ? CblasTrans : CblasNoTrans;
  int ldc = m > 1 ? (int)m : 1;
  int64_t es = (int64_t)sg_dtype_size(dt), nbatch = 1;
  for (int d = 0; d < nbat; d++) nbatch *= bat[d];
  for (int64_t t = 0; t < nbatch; t++) {
    int64_t oa, ob;
    sg_ref_batch_offsets(nbat, bat, sa, sb, t, &oa, &ob);
    const char *a = (const char *)A.data + oa * es, *b = (const char *)B.data + ob * es;
    char *c = (char *)C + t * n * m * es;
    if (dt == SG_F32)
      cblas_sgemm(CblasRowMajor, TA, TB, (int)n, (int)m, (int)k, 1.0f, (const float *)a, (int)A.ld,
                  (const float *)b, (int)B.ld, 0.0f, (float *)c, ldc);
    else
      cblas_dgemm(CblasRowMajor, TA, TB, (int)n, (int)m, (int)k, 1.0, (const double *)a, (int)A.ld,
                  (const double *)b, (int)B.ld, 0.0, (double *)c, ldc);
  }
  return 0;
}

void sg_cpu_fill_matmul(sg_backend *t);
void sg_cpu_fill_matmul(sg_backend *t) { t->matmul.matmul = matmul; }
