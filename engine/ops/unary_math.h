/* The scalar math of the unary elementwise ops and their derivatives: in double
 * for float compute types, in wrapping int64 for the others. This is the
 * reference's definition (backend_ref/elementwise.c), and the CUDA kernels
 * (kernels/elementwise.cu) compile the same lines, like philox.h, so each
 * formula and each limit (gelu at -inf, relu of NaN ...) is written once.
 * Op codes are kernels/k_elementwise.h's SGK_* (backend.h's sg_unop values;
 * backend_ref/elementwise.c checks that they agree). C and CUDA C++. */
#ifndef SG_UNARY_MATH_H
#define SG_UNARY_MATH_H
#include "../../kernels/k_elementwise.h"
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define SG_UM __host__ __device__ __forceinline__
#else
#define SG_UM static inline
#endif

#define SG_UM_SQRT1_2 0.70710678118654752440     /* 1/sqrt(2) */
#define SG_UM_INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */
#define SG_UM_GELU_K 0.79788456080286535588      /* sqrt(2/pi) */
#define SG_UM_GELU_C 0.044715

/* no overflow of exp on either side */
SG_UM double sg_um_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

/* x * Phi(x); erfc keeps the left tail accurate, and at -inf the limit 0 replaces -inf * 0 */
SG_UM double sg_um_gelu(double x) {
  double cdf = 0.5 * erfc(-x * SG_UM_SQRT1_2);
  return cdf == 0 ? 0 : x * cdf;
}

SG_UM double sg_um_gelu_tanh(double x) {
  double h = 1 + tanh(SG_UM_GELU_K * (x + SG_UM_GELU_C * x * x * x));
  return h == 0 ? 0 : 0.5 * x * h;
}

/* Phi(x) + x phi(x); phi == 0 (|x| huge or infinite) drops the term instead of inf * 0 */
SG_UM double sg_um_gelu_grad(double x) {
  double pdf = exp(-0.5 * x * x) * SG_UM_INV_SQRT_2PI;
  return 0.5 * erfc(-x * SG_UM_SQRT1_2) + (pdf == 0 ? 0 : x * pdf);
}

/* 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2) with t = tanh(k (x + c x^3)); the second term is dropped once
 * 1 - t^2 rounds to 0, where x^2 may already be infinite */
SG_UM double sg_um_gelu_tanh_grad(double x) {
  double t = tanh(SG_UM_GELU_K * (x + SG_UM_GELU_C * x * x * x)), s = 1 - t * t;
  return 0.5 * (1 + t) + (s == 0 ? 0 : 0.5 * x * s * SG_UM_GELU_K * (1 + 3 * SG_UM_GELU_C * x * x));
}

SG_UM double sg_um_unary_f(int op, double x) {
  switch (op) {
  case SGK_NEG: return -x;
  case SGK_ABS: return fabs(x);
  case SGK_EXP: return exp(x);
  case SGK_LOG: return log(x);
  case SGK_LOG1P: return log1p(x);
  case SGK_SQRT: return sqrt(x);
  case SGK_RSQRT: return 1 / sqrt(x);
  case SGK_SIGMOID: return sg_um_sigmoid(x);
  case SGK_TANH: return tanh(x);
  case SGK_RELU: return x > 0 ? x : (x != x ? x : 0);
  case SGK_NOT: return x == 0;
  case SGK_SIGN: return (x > 0) - (x < 0);
  case SGK_SQUARE: return x * x;
  case SGK_GELU: return sg_um_gelu(x);
  case SGK_GELU_TANH: return sg_um_gelu_tanh(x);
  default: return 0;
  }
}

SG_UM int64_t sg_um_unary_i(int op, int64_t x) {
  switch (op) {
  case SGK_NEG: return (int64_t)(0 - (uint64_t)x);
  case SGK_ABS: return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
  case SGK_RELU: return x > 0 ? x : 0;
  case SGK_NOT: return x == 0;
  case SGK_SIGN: return (x > 0) - (x < 0);
  case SGK_SQUARE: return (int64_t)((uint64_t)x * (uint64_t)x);
  default: return 0;
  }
}

/* d op(x)/dx * g, from the input x and the forward output y */
SG_UM double sg_um_unary_grad(int op, double g, double x, double y) {
  switch (op) {
  case SGK_NEG: return -g;
  case SGK_ABS: return g * ((x > 0) - (x < 0));
  case SGK_EXP: return g * y;
  case SGK_LOG: return g / x;
  case SGK_LOG1P: return g / (1 + x);
  case SGK_SQRT: return g / (2 * y);
  case SGK_RSQRT: return -0.5 * g * y * y * y;
  case SGK_SIGMOID: return g * y * (1 - y);
  case SGK_TANH: return g * (1 - y * y);
  case SGK_RELU: return y > 0 ? g : 0;
  case SGK_SQUARE: return 2 * g * x;
  case SGK_GELU: return g * sg_um_gelu_grad(x);
  case SGK_GELU_TANH: return g * sg_um_gelu_tanh_grad(x);
  default: return 0;
  }
}

#endif
