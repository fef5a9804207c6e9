/* Launchers of kernels/elementwise.cu: binary and unary ops with broadcasting,
 * clamp, where and the unary-op gradients, for engine/backend_cuda/elementwise.c.
 *
 * Conventions as in k_common.h. Every operand layout has the output's sizes
 * (inputs broadcast by zero strides); `n` is the number of output elements.
 * Inputs are read in their own dtype and converted in the kernel exactly as
 * engine/ops/elementwise.c converts them on the CPU (a cast to the compute
 * type `ct`, then double math for float compute types, int64 math for the
 * others); the result is stored with the CPU's rounding (dtype.c). */
#ifndef SG_K_ELEMENTWISE_H
#define SG_K_ELEMENTWISE_H
#include "k_common.h"

/* Op codes: the engine's sg_binop / sg_unop values (engine/ops/ops.h; the
 * glue checks the two lists agree). SGK_CLAMP is run_unary's clamp (-1). */
enum {
  SGK_ADD, SGK_SUB, SGK_MUL, SGK_DIV, SGK_POW, SGK_MINIMUM, SGK_MAXIMUM,
  SGK_EQ, SGK_NE, SGK_LT, SGK_LE, SGK_GT, SGK_GE, SGK_AND, SGK_OR, SGK_NBINOPS
};
enum {
  SGK_NEG, SGK_ABS, SGK_EXP, SGK_LOG, SGK_LOG1P, SGK_SQRT, SGK_RSQRT, SGK_SIGMOID, SGK_TANH, SGK_RELU,
  SGK_NOT, SGK_SIGN, SGK_SQUARE, SGK_GELU, SGK_GELU_TANH, SGK_NUNOPS
};
#define SGK_CLAMP (-1)

/* out = op(a, b), computed in ct (f32/f64 for floats; f16/bf16 operands
 * arrive with ct f32 as on the CPU; an integer type or bool otherwise). */
SGK_API int sgk_binary(int op, void *out, int ot, const sgk_layout *ol, const void *a, int at, const sgk_layout *al,
                       const void *b, int bt, const sgk_layout *bl, int ct, int64_t n, sgk_stream s);

/* out = op(a) (op SGK_CLAMP: min(max(a, lo), hi) in double). ct is the
 * dtype the CPU casts a to before its row kernel (run_unary's ac). */
SGK_API int sgk_unary(int op, void *out, int ot, const sgk_layout *ol, const void *a, int at, const sgk_layout *al,
                      int ct, double lo, double hi, int64_t n, sgk_stream s);

/* out = d op(x)/dx * g from the input x and the forward output y; out, g, x
 * and y all of dtype dt (unary_backward casts g and x first). */
SGK_API int sgk_unary_backward(int op, void *out, const sgk_layout *ol, const void *g, const sgk_layout *gl,
                               const void *x, const sgk_layout *xl, const void *y, const sgk_layout *yl, int dt,
                               int64_t n, sgk_stream s);

/* out = cond ? a : b; cond is bool, out, a and b are all of dtype dt. */
SGK_API int sgk_where(void *out, const sgk_layout *ol, const void *cond, const sgk_layout *cl, const void *a,
                      const sgk_layout *al, const void *b, const sgk_layout *bl, int dt, int64_t n, sgk_stream s);

#endif
