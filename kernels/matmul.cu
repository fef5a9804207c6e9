// The plain matrix product on the GPU: one thread per output element, any
// strides and dtypes. Integer matmul runs here (cuBLAS has no int64 GEMM);
// for floats it is the reference that the cuBLAS path is tested against.
#include "k_device.cuh"
#include "k_matmul.h"

using namespace sgk;

namespace {

__global__ void matmul_naive(int dt, int64_t n, int64_t m, int64_t k, const char *A, int64_t ars, int64_t acs,
                             sgk_layout abat, const char *B, int64_t brs, int64_t bcs, sgk_layout bbat, char *C,
                             int64_t total) {
  int es = dtype_size(dt);
  bool fl = is_float(dt);
  SGK_GRID_STRIDE(i, total) {
    int64_t nm = n * m, t = i / nm, rem = i - t * nm, r = rem / m, c = rem - r * m;
    const char *a = A + (offset_of(abat, t) + r * ars) * es;
    const char *b = B + (offset_of(bbat, t) + c * bcs) * es;
    if (fl) {
      double acc = 0;
      for (int64_t l = 0; l < k; l++)
        acc = __dadd_rn(acc, __dmul_rn(load_f64(a + l * acs * es, dt), load_f64(b + l * brs * es, dt)));
      store_f64(C + i * es, dt, acc);
    } else {
      uint64_t acc = 0; // unsigned: overflow wraps, as on the CPU
      for (int64_t l = 0; l < k; l++)
        acc += (uint64_t)load_i64(a + l * acs * es, dt) * (uint64_t)load_i64(b + l * brs * es, dt);
      store_i64(C + i * es, dt, (int64_t)acc);
    }
  }
}

} // namespace

SGK_API int sgk_matmul_naive(int dtype, int64_t n, int64_t m, int64_t k, const void *A, int64_t ars, int64_t acs,
                             const sgk_layout *abat, const void *B, int64_t brs, int64_t bcs, const sgk_layout *bbat,
                             void *C, int64_t nbatch, sgk_stream s) {
  int64_t total = nbatch * n * m;
  if (total <= 0) return 0;
  matmul_naive<<<blocks_for(total), kThreads, 0, s>>>(dtype, n, m, k, (const char *)A, ars, acs, *abat,
                                                       (const char *)B, brs, bcs, *bbat, (char *)C, total);
  return (int)cudaGetLastError();
}
