// The convolution bias add (the convolutions themselves are cuDNN's,
// engine/backend_cuda/conv.c; the bias backward is the channel reduction
// of norm.cu).
#include "k_nn_device.cuh"

using namespace sgk;

namespace {

template <class D>
struct BiasAdd {
  typename D::S *y;
  sgk_vec b;
  int64_t C;
  __device__ void operator()(int64_t row, int64_t i) const {
    using A = typename D::A;
    D::st(y + i, D::ld(y + i) + (A)vec_ld(b, row % C, 0.0));
  }
};

template <class D>
int launch_bias_add(void *y, sgk_vec b, int64_t N, int64_t C, int64_t L, cudaStream_t s) {
  BiasAdd<D> f{(typename D::S *)y, b, C};
  return launch_rows(f, N * C, L, s);
}

} // namespace

SGK_API int sgk_bias_add(void *y, int dt, sgk_vec b, int64_t N, int64_t C, int64_t L, sgk_stream s) {
  return SGK_FLOAT_DISPATCH(dt, launch_bias_add, y, b, N, C, L, s);
}
