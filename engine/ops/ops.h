/* Public op API of the engine (all differentiable unless noted).
 * Same conventions as tensor.h: new references out, NULL + sg_error on failure. */
#ifndef SG_OPS_H
#define SG_OPS_H
#include "../backend.h"

/* ---- elementwise (ops/elementwise.c) ---- */
/* sg_binop and sg_unop, the elementwise op codes, are the device table's (backend.h) */

const char *sg_binop_name(sg_binop op);
const char *sg_unop_name(sg_unop op);
sg_tensor *sg_binary(sg_binop op, sg_tensor *a, sg_tensor *b);
sg_tensor *sg_unary(sg_unop op, sg_tensor *a);
/* In place: a <- op(a, b); b broadcast to a's shape; result cast to a's dtype. */
sg_tensor *sg_binary_(sg_binop op, sg_tensor *a, sg_tensor *b);
sg_tensor *sg_unary_(sg_unop op, sg_tensor *a);
sg_tensor *sg_clamp(sg_tensor *a, double lo, double hi); /* +-INFINITY for "none" */
sg_tensor *sg_clamp_(sg_tensor *a, double lo, double hi);
sg_tensor *sg_where(sg_tensor *cond, sg_tensor *a, sg_tensor *b);
sg_tensor *sg_masked_fill(sg_tensor *a, sg_tensor *mask, double v);
#define sg_add(a, b) sg_binary(SG_ADD, (a), (b))
#define sg_sub(a, b) sg_binary(SG_SUB, (a), (b))
#define sg_mul(a, b) sg_binary(SG_MUL, (a), (b))
#define sg_div(a, b) sg_binary(SG_DIV, (a), (b))
#define sg_add_(a, b) sg_binary_(SG_ADD, (a), (b))
/* a * s for a number s (keeps a's dtype) */
sg_tensor *sg_scale(sg_tensor *a, double s);
/* Scalar operand with the dtype PyTorch would give it next to `like`
 * (a Lua integer next to an int tensor stays int; a float makes it f32). */
sg_tensor *sg_scalar_like(double v, bool is_integer, const sg_tensor *like);

/* ---- reductions (ops/reduce.c); dims: mask of reduced dims, NULL = all ---- */
/* Sums a broadcast gradient back to an input's shape (backward functions). New reference. */
sg_tensor *sg_sum_to(sg_tensor *g, const sg_shape *shape);
sg_tensor *sg_sum(sg_tensor *a, const bool *dims, bool keepdim);
sg_tensor *sg_mean(sg_tensor *a, const bool *dims, bool keepdim);
sg_tensor *sg_prod(sg_tensor *a, const bool *dims, bool keepdim);
sg_tensor *sg_amax(sg_tensor *a, const bool *dims, bool keepdim);
sg_tensor *sg_amin(sg_tensor *a, const bool *dims, bool keepdim);
/* values and indices (i64) along one dim */
int sg_max_dim(sg_tensor *a, int dim, bool keepdim, sg_tensor **values, sg_tensor **indices);
int sg_min_dim(sg_tensor *a, int dim, bool keepdim, sg_tensor **values, sg_tensor **indices);
sg_tensor *sg_argmax(sg_tensor *a, int dim, bool keepdim); /* dim SG_ALL_DIMS: flat index */
sg_tensor *sg_argmin(sg_tensor *a, int dim, bool keepdim);
sg_tensor *sg_var(sg_tensor *a, const bool *dims, bool keepdim, double correction);
sg_tensor *sg_std(sg_tensor *a, const bool *dims, bool keepdim, double correction);
sg_tensor *sg_norm(sg_tensor *a, double p, const bool *dims, bool keepdim); /* p may be INFINITY */
sg_tensor *sg_all(sg_tensor *a, const bool *dims, bool keepdim);   /* not differentiable */
sg_tensor *sg_any(sg_tensor *a, const bool *dims, bool keepdim);   /* not differentiable */
sg_tensor *sg_count_nonzero(sg_tensor *a, const bool *dims, bool keepdim);

/* ---- linear algebra (ops/matmul.c) ---- */
sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b);
sg_tensor *sg_bmm(sg_tensor *a, sg_tensor *b);
/* the plain triple loop, for tests of the BLAS path */
sg_tensor *sg_matmul_reference(sg_tensor *a, sg_tensor *b);

/* ---- joining, indexing, shape (ops/shape.c, ops/index.c) ---- */
sg_tensor *sg_cat(int n, sg_tensor **ts, int dim);
sg_tensor *sg_stack(int n, sg_tensor **ts, int dim);
sg_tensor *sg_gather(sg_tensor *a, int dim, sg_tensor *index);
sg_tensor *sg_scatter(sg_tensor *a, int dim, sg_tensor *index, sg_tensor *src);
sg_tensor *sg_scatter_add(sg_tensor *a, int dim, sg_tensor *index, sg_tensor *src);
sg_tensor *sg_index_select(sg_tensor *a, int dim, sg_tensor *index);
sg_tensor *sg_one_hot(sg_tensor *labels, int64_t classes); /* not differentiable; i64 out */
sg_tensor *sg_flip(sg_tensor *a, int ndims, const int *dims);
sg_tensor *sg_roll(sg_tensor *a, int ndims, const int64_t *shifts, const int *dims);
typedef enum { SG_PAD_CONSTANT, SG_PAD_REFLECT, SG_PAD_REPLICATE } sg_pad_mode;
/* pads[2k], pads[2k+1]: before/after amounts for the k-th LAST dim (PyTorch order) */
sg_tensor *sg_pad(sg_tensor *a, int npairs, const int64_t *pads, sg_pad_mode mode, double value);
sg_tensor *sg_repeat(sg_tensor *a, int ndim, const int64_t *reps);

/* ---- random (ops/random.c): counter-based Philox 4x32-10 ---- */
void sg_manual_seed(uint64_t seed);
typedef struct { uint64_t seed, offset; } sg_rng_state;
sg_rng_state sg_rng_get(void);
void sg_rng_set(sg_rng_state s);
sg_tensor *sg_rand(int ndim, const int64_t *size, sg_dtype dt);  /* U[0,1) */
sg_tensor *sg_randn(int ndim, const int64_t *size, sg_dtype dt); /* N(0,1) */
sg_tensor *sg_randint(int64_t lo, int64_t hi, int ndim, const int64_t *size, sg_dtype dt); /* [lo,hi) */
/* The same on a given device: a CUDA draw gives bit for bit the CPU's numbers
 * for the same generator state and advances it the same way. */
sg_tensor *sg_rand_dev(int ndim, const int64_t *size, sg_dtype dt, sg_device dev);
sg_tensor *sg_randn_dev(int ndim, const int64_t *size, sg_dtype dt, sg_device dev);
sg_tensor *sg_randint_dev(int64_t lo, int64_t hi, int ndim, const int64_t *size, sg_dtype dt, sg_device dev);
/* Raw draws for other C code (dropout, augmentation, shuffles): n uniforms. */
void sg_rng_uniform_f32(float *out, int64_t n);

#endif
