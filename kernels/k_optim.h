/* Launchers of kernels/optim.cu: fused optimizer updates (one kernel per
 * parameter tensor) and the global gradient norm of clip_grad_norm. */
#ifndef SG_K_OPTIM_H
#define SG_K_OPTIM_H
#include "k_common.h"

/* Hyperparameters as the CPU loops use them (engine/ops/optim.c): each value
 * is the double the CPU casts to the parameter type T, computed on the host
 * by the same expression, and cast to T in the kernel. */
typedef struct { double wd, momentum, one_minus_damp, lr; int nesterov, first; } sgk_sgd;
typedef struct { double decay, wd, b1, one_minus_b1, b2, one_minus_b2, sqrt_bc2, eps, step_size; int decoupled; } sgk_adam;
typedef struct { double wd, alpha, one_minus_alpha, eps, momentum, lr; } sgk_rmsprop;

/* p and the state: contiguous, n elements of f32 (f64 when f64 != 0); g:
 * contiguous, n elements of dtype gdt (f16/bf16/f32/f64, converted to T).
 * The arithmetic is the CPU's, operation for operation, with no fused
 * multiply-add, so both devices give the same bits. Optional state: NULL. */
SGK_API int sgk_sgd_step(int f64, void *p, const void *g, int gdt, void *buf, const sgk_sgd *h, int64_t n, sgk_stream s);
SGK_API int sgk_adam_step(int f64, void *p, const void *g, int gdt, void *m, void *v, void *vmax, const sgk_adam *h,
                          int64_t n, sgk_stream s);
SGK_API int sgk_rmsprop_step(int f64, void *p, const void *g, int gdt, void *sq, void *buf, void *gavg,
                             const sgk_rmsprop *h, int64_t n, sgk_stream s);

/* Blocks sgk_norm_partials uses for n elements (the partials it writes). */
SGK_API int sgk_norm_blocks(int64_t n);
/* partials[b] (device) <- over block b's share of the contiguous x (n of
 * dtype): the sum of |x|^p in double (p = 1 and 2 exactly, else pow), or the
 * largest |x| when p is infinite. Fixed geometry and order: deterministic. */
SGK_API int sgk_norm_partials(const void *x, int dtype, int64_t n, double p, double *partials, sgk_stream s);
/* *out (device) <- the sum (or, max_mode, the largest) of count partials, in a fixed order. */
SGK_API int sgk_norm_finish(const double *partials, int64_t count, int max_mode, double *out, sgk_stream s);

#endif
