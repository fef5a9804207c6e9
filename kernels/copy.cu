// Strided copy with dtype conversion, and fill: the kernels behind copy_,
// contiguous, clone, casts and device transfers of non-contiguous views.
#include "k_device.cuh"

using namespace sgk;

namespace {

template <typename T>
__global__ void copy_same_contig(T *dst, const T *src, int64_t n) {
  SGK_GRID_STRIDE(i, n) dst[i] = src[i];
}

template <typename T>
__global__ void copy_same_strided(T *dst, sgk_layout dl, const T *src, sgk_layout sl, int64_t n) {
  SGK_GRID_STRIDE(i, n) dst[offset_of(dl, i)] = src[offset_of(sl, i)];
}

// Any pair of dtypes: through int64 when both are integers (exact), else double.
__global__ void copy_cast(char *dst, int dt, sgk_layout dl, const char *src, int st, sgk_layout sl, int64_t n) {
  int ds = dtype_size(dt), ss = dtype_size(st);
  bool ints = !is_float(dt) && !is_float(st);
  SGK_GRID_STRIDE(i, n) {
    void *d = dst + offset_of(dl, i) * ds;
    const void *s = src + offset_of(sl, i) * ss;
    if (ints) store_i64(d, dt, load_i64(s, st));
    else store_f64(d, dt, load_f64(s, st));
  }
}

template <typename T>
__global__ void fill_kernel(T *dst, sgk_layout dl, T v, int64_t n, bool contig) {
  SGK_GRID_STRIDE(i, n) dst[contig ? i : offset_of(dl, i)] = v;
}

template <typename T>
int copy_same(void *dst, const sgk_layout *dl, const void *src, const sgk_layout *sl, int64_t n, cudaStream_t s) {
  if (is_contiguous(*dl) && is_contiguous(*sl))
    copy_same_contig<T><<<blocks_for(n, 4), kThreads, 0, s>>>((T *)dst, (const T *)src, n);
  else
    copy_same_strided<T><<<blocks_for(n, 4), kThreads, 0, s>>>((T *)dst, *dl, (const T *)src, *sl, n);
  return (int)cudaGetLastError();
}

template <typename T>
int fill_as(void *dst, const sgk_layout *dl, T v, int64_t n, cudaStream_t s) {
  fill_kernel<T><<<blocks_for(n, 4), kThreads, 0, s>>>((T *)dst, *dl, v, n, is_contiguous(*dl));
  return (int)cudaGetLastError();
}

} // namespace

SGK_API int sgk_copy(void *dst, int dst_dtype, const sgk_layout *dl, const void *src, int src_dtype,
                     const sgk_layout *sl, int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  if (dst_dtype == src_dtype) switch (dtype_size(dst_dtype)) {
    case 1: return copy_same<uint8_t>(dst, dl, src, sl, n, s);
    case 2: return copy_same<uint16_t>(dst, dl, src, sl, n, s);
    case 4: return copy_same<uint32_t>(dst, dl, src, sl, n, s);
    default: return copy_same<uint64_t>(dst, dl, src, sl, n, s);
    }
  copy_cast<<<blocks_for(n, 4), kThreads, 0, s>>>((char *)dst, dst_dtype, *dl, (const char *)src, src_dtype, *sl, n);
  return (int)cudaGetLastError();
}

SGK_API int sgk_fill(void *dst, int dtype, const sgk_layout *dl, double v, int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  uint64_t bits = 0; // v in the destination type, rounded and saturated by the CPU's own rules
  sg_store_f64(&bits, (sg_dtype)dtype, v);
  switch (dtype_size(dtype)) {
  case 1: return fill_as<uint8_t>(dst, dl, (uint8_t)bits, n, s);
  case 2: return fill_as<uint16_t>(dst, dl, (uint16_t)bits, n, s);
  case 4: return fill_as<uint32_t>(dst, dl, (uint32_t)bits, n, s);
  default: return fill_as<uint64_t>(dst, dl, bits, n, s);
  }
}
