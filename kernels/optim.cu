// Fused optimizer updates and the gradient norm. The update kernels do the
// CPU loops' arithmetic (engine/ops/optim.c) operation for operation through
// round-to-nearest intrinsics, which nvcc never fuses into FMAs, so a step
// on the GPU gives the CPU's bits.
#include "k_device.cuh"
#include "k_optim.h"

using namespace sgk;

namespace {

__device__ inline float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float add(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add(double a, double b) { return __dadd_rn(a, b); }
__device__ inline float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ inline double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ inline float dvd(float a, float b) { return __fdiv_rn(a, b); }
__device__ inline double dvd(double a, double b) { return __ddiv_rn(a, b); }
// (T)sqrt((double)x), as the CPU writes it
template <typename T> __device__ inline T sqrt_via_double(T x) { return (T)__dsqrt_rn((double)x); }

// the gradient element as T, through the CPU's conversion (exact widening, or f64 -> f32 rounding)
template <typename T> __device__ inline T grad_at(const void *g, int gdt, int64_t i) {
  switch (gdt) {
  case SG_F32: return (T)((const float *)g)[i];
  case SG_F64: return (T)((const double *)g)[i];
  case SG_BF16: return (T)bf16_to_f32(((const uint16_t *)g)[i]);
  default: return (T)f16_to_f32(((const uint16_t *)g)[i]);
  }
}

template <typename T>
__global__ void sgd_kernel(T *p, const void *g, int gdt, T *buf, sgk_sgd h, int64_t n) {
  const T wd = (T)h.wd, mom = (T)h.momentum, omd = (T)h.one_minus_damp, lr = (T)h.lr;
  SGK_GRID_STRIDE(i, n) {
    T pi = p[i];
    T d = add(grad_at<T>(g, gdt, i), mul(wd, pi));
    if (buf) {
      T b = h.first ? d : add(mul(mom, buf[i]), mul(omd, d));
      buf[i] = b;
      d = h.nesterov ? add(d, mul(mom, b)) : b;
    }
    p[i] = sub(pi, mul(lr, d));
  }
}

template <typename T>
__global__ void adam_kernel(T *p, const void *g, int gdt, T *m, T *v, T *vmax, sgk_adam h, int64_t n) {
  const T decay = (T)h.decay, wd = (T)h.wd, b1 = (T)h.b1, omb1 = (T)h.one_minus_b1, b2 = (T)h.b2,
          omb2 = (T)h.one_minus_b2, sbc2 = (T)h.sqrt_bc2, eps = (T)h.eps, ss = (T)h.step_size;
  SGK_GRID_STRIDE(i, n) {
    T gi = grad_at<T>(g, gdt, i), pi = p[i];
    if (h.decoupled) pi = mul(pi, decay);
    else gi = add(gi, mul(wd, pi));
    T mi = add(mul(b1, m[i]), mul(omb1, gi));
    T vi = add(mul(b2, v[i]), mul(mul(omb2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    T vhat = vi;
    if (vmax) {
      T vm = vmax[i];
      if (vhat > vm) vm = vhat;
      vmax[i] = vm;
      vhat = vm;
    }
    T denom = add(dvd(sqrt_via_double(vhat), sbc2), eps);
    p[i] = sub(pi, dvd(mul(ss, mi), denom));
  }
}

template <typename T>
__global__ void rmsprop_kernel(T *p, const void *g, int gdt, T *sq, T *buf, T *gavg, sgk_rmsprop h, int64_t n) {
  const T wd = (T)h.wd, alpha = (T)h.alpha, oma = (T)h.one_minus_alpha, eps = (T)h.eps, mom = (T)h.momentum,
          lr = (T)h.lr;
  SGK_GRID_STRIDE(i, n) {
    T pi = p[i];
    T gi = add(grad_at<T>(g, gdt, i), mul(wd, pi));
    T s = add(mul(alpha, sq[i]), mul(mul(oma, gi), gi));
    sq[i] = s;
    T avg = s;
    if (gavg) {
      T a = add(mul(alpha, gavg[i]), mul(oma, gi));
      gavg[i] = a;
      avg = sub(avg, mul(a, a));
    }
    T denom = add(sqrt_via_double(avg), eps);
    if (buf) {
      T b = add(mul(mom, buf[i]), dvd(gi, denom));
      buf[i] = b;
      p[i] = sub(pi, mul(lr, b));
    } else {
      p[i] = sub(pi, dvd(mul(lr, gi), denom));
    }
  }
}

// ---------------------------------------------------------------- norms
constexpr int kMaxNormBlocks = 1024;

__device__ inline double norm_term(double a, double p, bool max_mode) {
  a = fabs(a);
  if (max_mode || p == 1.0) return a;
  if (p == 2.0) return __dmul_rn(a, a);
  return pow(a, p);
}

__device__ inline double combine(double a, double b, bool max_mode) {
  if (max_mode) return a > b || a != a ? a : b; // NaN sticks
  return __dadd_rn(a, b);
}

// tree reduction of one value per thread; result in thread 0
__device__ double block_combine(double v, bool max_mode) {
  __shared__ double buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if ((int)threadIdx.x < w) buf[threadIdx.x] = combine(buf[threadIdx.x], buf[threadIdx.x + w], max_mode);
    __syncthreads();
  }
  return buf[0];
}

__global__ void norm_partials_kernel(const char *x, int dt, int64_t n, double p, double *partials) {
  bool max_mode = isinf(p);
  int es = dtype_size(dt);
  double acc = 0;
  SGK_GRID_STRIDE(i, n) acc = combine(acc, norm_term(load_f64(x + i * es, dt), p, max_mode), max_mode);
  double r = block_combine(acc, max_mode);
  if (threadIdx.x == 0) partials[blockIdx.x] = r;
}

__global__ void norm_finish_kernel(const double *partials, int64_t count, int max_mode, double *out) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc = combine(acc, partials[i], max_mode);
  double r = block_combine(acc, max_mode);
  if (threadIdx.x == 0) *out = r;
}

} // namespace

SGK_API int sgk_sgd_step(int f64, void *p, const void *g, int gdt, void *buf, const sgk_sgd *h, int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  if (f64) sgd_kernel<double><<<blocks_for(n, 4), kThreads, 0, s>>>((double *)p, g, gdt, (double *)buf, *h, n);
  else sgd_kernel<float><<<blocks_for(n, 4), kThreads, 0, s>>>((float *)p, g, gdt, (float *)buf, *h, n);
  return (int)cudaGetLastError();
}

SGK_API int sgk_adam_step(int f64, void *p, const void *g, int gdt, void *m, void *v, void *vmax, const sgk_adam *h,
                          int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  if (f64)
    adam_kernel<double><<<blocks_for(n, 4), kThreads, 0, s>>>((double *)p, g, gdt, (double *)m, (double *)v,
                                                              (double *)vmax, *h, n);
  else
    adam_kernel<float><<<blocks_for(n, 4), kThreads, 0, s>>>((float *)p, g, gdt, (float *)m, (float *)v, (float *)vmax,
                                                             *h, n);
  return (int)cudaGetLastError();
}

SGK_API int sgk_rmsprop_step(int f64, void *p, const void *g, int gdt, void *sq, void *buf, void *gavg,
                             const sgk_rmsprop *h, int64_t n, sgk_stream s) {
  if (n <= 0) return 0;
  if (f64)
    rmsprop_kernel<double><<<blocks_for(n, 4), kThreads, 0, s>>>((double *)p, g, gdt, (double *)sq, (double *)buf,
                                                                 (double *)gavg, *h, n);
  else
    rmsprop_kernel<float><<<blocks_for(n, 4), kThreads, 0, s>>>((float *)p, g, gdt, (float *)sq, (float *)buf,
                                                                (float *)gavg, *h, n);
  return (int)cudaGetLastError();
}

SGK_API int sgk_norm_blocks(int64_t n) {
  unsigned b = blocks_for(n, 4);
  return b > (unsigned)kMaxNormBlocks ? kMaxNormBlocks : (int)b;
}

SGK_API int sgk_norm_partials(const void *x, int dtype, int64_t n, double p, double *partials, sgk_stream s) {
  norm_partials_kernel<<<sgk_norm_blocks(n), kThreads, 0, s>>>((const char *)x, dtype, n, p, partials);
  return (int)cudaGetLastError();
}

SGK_API int sgk_norm_finish(const double *partials, int64_t count, int max_mode, double *out, sgk_stream s) {
  norm_finish_kernel<<<1, kThreads, 0, s>>>(partials, count, max_mode, out);
  return (int)cudaGetLastError();
}
