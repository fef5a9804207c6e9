/* The scalar math of the elementwise ops (binary, unary and the unary ops'
 * derivatives): in double for float compute types, in wrapping int64 for the
 * others. This is the
 * reference's definition (backend_ref/elementwise.c), and the CUDA kernels
 * (kernels/elementwise.cu) compile the same lines, like philox.h, so each
 * formula and each limit (gelu at -inf, relu of NaN ...) is written once.
 * Op codes are kernels/k_elementwise.h's SGK_* (backend.h's sg_binop / sg_unop values;
 * backend_ref/elementwise.c checks that they agree). C and CUDA C++. */
#ifndef SG_ELEMENTWISE_MATH_H
#define SG_ELEMENTWISE_MATH_H
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

/* a quiet NaN in double on either side */
SG_UM double sg_um_nan(void) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(0x7ff8000000000000LL);
#else
  return NAN;
#endif
}

/* min and max propagate NaN, as PyTorch's minimum/maximum */
SG_UM double sg_um_binary_f(int op, double a, double b) {
  switch (op) {
  case SGK_ADD: return a + b;
  case SGK_SUB: return a - b;
  case SGK_MUL: return a * b;
  case SGK_DIV: return a / b;
  case SGK_POW: return pow(a, b);
  case SGK_MINIMUM: return (a != a || b != b) ? sg_um_nan() : (a < b ? a : b);
  case SGK_MAXIMUM: return (a != a || b != b) ? sg_um_nan() : (a > b ? a : b);
  case SGK_EQ: return a == b;
  case SGK_NE: return a != b;
  case SGK_LT: return a < b;
  case SGK_LE: return a <= b;
  case SGK_GT: return a > b;
  case SGK_GE: return a >= b;
  case SGK_AND: return (a != 0) && (b != 0);
  case SGK_OR: return (a != 0) || (b != 0);
  default: return 0;
  }
}

/* b^e in wrapping int64; a negative exponent gives 0 but for b = +-1 */
SG_UM int64_t sg_um_ipow(int64_t b, int64_t e) {
  if (e < 0) return b == 1 ? 1 : (b == -1 ? ((e & 1) ? -1 : 1) : 0);
  int64_t r = 1;
  while (e) {
    if (e & 1) r = (int64_t)((uint64_t)r * (uint64_t)b);
    b = (int64_t)((uint64_t)b * (uint64_t)b);
    e >>= 1;
  }
  return r;
}

/* integer arithmetic wraps like C unsigned (and PyTorch) instead of being undefined */
SG_UM int64_t sg_um_binary_i(int op, int64_t a, int64_t b) {
  switch (op) {
  case SGK_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
  case SGK_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
  case SGK_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
  case SGK_POW: return sg_um_ipow(a, b);
  case SGK_MINIMUM: return a < b ? a : b;
  case SGK_MAXIMUM: return a > b ? a : b;
  case SGK_EQ: return a == b;
  case SGK_NE: return a != b;
  case SGK_LT: return a < b;
  case SGK_LE: return a <= b;
  case SGK_GT: return a > b;
  case SGK_GE: return a >= b;
  case SGK_AND: return a && b;
  case SGK_OR: return a || b;
  default: return 0; /* DIV never runs in integer math */
  }
}

#endif
