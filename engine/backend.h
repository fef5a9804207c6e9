/* The device table: what a backend (cpu, cuda, ...) gives the engine.
 *
 * Ops (engine/ops) check arguments, plan shapes and record autograd nodes,
 * then call the entry of the table of their tensors' device through
 * SG_BACKEND_OP; core reaches memory and copies through the same table. No
 * file above a backend names one: a device is a registry slot
 * (engine/core/device.c), and the CUDA table comes from a module loaded on
 * first use.
 *
 * Conventions as in core/tensor.h: entries return 0 (or a new reference),
 * -1 (or NULL) with the sg error set. Every tensor handed to an entry is on
 * the table's device; "(c)" marks arguments that must be contiguous.
 * Entries marked "optional" may be NULL: the op then takes another route or
 * fails with an error naming the op and the device (sg_backend_missing). */
#ifndef SG_BACKEND_H
#define SG_BACKEND_H
#include "core/tensor.h"

/* ---- parameter blocks shared by ops and backends ---- */
typedef struct { double lr, momentum, dampening, weight_decay; bool nesterov; } sg_sgd_hyper;
typedef struct { double lr, beta1, beta2, eps, weight_decay; bool decoupled; } sg_adam_hyper;
typedef struct { double lr, alpha, eps, weight_decay, momentum; } sg_rmsprop_hyper;

/* Convolution geometry: a "big" image [N,Cb,Hb,Wb] (conv2d input, transposed
 * conv output), a "small" grid [N,Cs,Hs,Ws] and the weight [Cs,Cb/G,kh,kw];
 * ph/pw the top/left padding (the bottom/right padding is whatever makes the
 * sizes agree: 'same' with an odd total, output_padding).
 *   FWD:         small = conv(big, w)
 *   BWD_DATA:    big   = adjoint conv(small, w)
 *   BWD_FILTER:  w     = gradient of the weight from big and small */
typedef enum { SG_CONV_FWD = 0, SG_CONV_BWD_DATA = 1, SG_CONV_BWD_FILTER = 2 } sg_conv_kind;
typedef struct { int64_t N, G, Cb, Hb, Wb, Cs, Hs, Ws, kh, kw, sh, sw, ph, pw, dh, dw; } sg_conv_geom;

/* One matrix operand of a (batched) product: element (r, c) at data + r*rs + c*cs. */
typedef struct {
  const void *data;
  int64_t rs, cs;
  bool trans;
  int64_t ld;
} sg_mat;

/* What index.gather_scatter does. */
typedef enum { SG_GS_GATHER = 0, SG_GS_SCATTER = 1, SG_GS_SCATTER_ADD = 2 } sg_gs_mode;

/* Elementwise op codes (elementwise.binary / unary / unary_backward); kernels/k_elementwise.h mirrors them. */
typedef enum {
  SG_ADD, SG_SUB, SG_MUL, SG_DIV, SG_POW, SG_MINIMUM, SG_MAXIMUM,
  SG_EQ, SG_NE, SG_LT, SG_LE, SG_GT, SG_GE, SG_AND, SG_OR, SG_NBINOPS
} sg_binop;
typedef enum {
  SG_NEG, SG_ABS, SG_EXP, SG_LOG, SG_LOG1P, SG_SQRT, SG_RSQRT, SG_SIGMOID, SG_TANH, SG_RELU,
  SG_NOT, SG_SIGN, SG_SQUARE, SG_GELU, SG_GELU_TANH, SG_NUNOPS
} sg_unop; /* SG_GELU: x * Phi(x) (erf); SG_GELU_TANH: PyTorch's approximate = "tanh" */

/* Reductions (reduce.reduce); kernels/k_reduce.h mirrors these values. */
typedef enum { R_SUM, R_PROD, R_MAX, R_MIN, R_ALL, R_ANY, R_NONZERO, R_ARGMAX, R_ARGMIN } sg_reduce_kind;

/* Allocator statistics of a device (the fields a backend does not track stay 0). */
typedef struct {
  int64_t allocated, peak_allocated; /* bytes handed out to tensors */
  int64_t reserved, peak_reserved;   /* bytes obtained from the driver */
  int64_t allocations, cache_hits, segments, driver_allocs, ooms;
  int64_t pinned_bytes;              /* pinned host memory held */
} sg_alloc_stats;

/* Convolution algorithm cache statistics (optional entry conv.cache_stats). */
typedef struct { int64_t entries, finds, heuristics, hits; } sg_conv_cache_stats;

typedef struct sg_backend {
  const char *name;

  /* ---- runtime ---- */
  bool (*available)(void);              /* a usable device is present */
  const char *(*why_unavailable)(void); /* the driver's answer when not */
  const char *(*device_name)(void);
  int (*device_count)(void);
  int (*synchronize)(void);             /* waits for queued work; reports asynchronous errors */

  /* ---- memory ---- */
  void *(*malloc)(size_t nbytes);       /* NULL + error (asked, in use) after the backend's own retry */
  void (*free)(void *p);
  void (*empty_cache)(void);            /* gives cached blocks back to the driver */
  sg_alloc_stats (*alloc_stats)(void);
  void (*reset_peak_stats)(void);
  void *(*host_malloc)(size_t nbytes);  /* optional: page-locked host memory for asynchronous copies */
  void (*host_free)(void *p, size_t nbytes);

  /* ---- copies ---- */
  int (*copy_)(sg_tensor *dst, sg_tensor *src); /* either side on this device; any dtypes, src broadcast */
  int (*fill_)(sg_tensor *t, double v);
  int (*zero_)(sg_tensor *t);                   /* the whole storage */
  int (*get_bytes)(const sg_tensor *t, int64_t elem_offset, void *out); /* one element */
  int (*set_bytes)(sg_tensor *t, int64_t elem_offset, const void *in);

  /* ---- op families ---- */
  struct {
    /* op: an sg_binop / sg_unop (above); ct the compute dtype */
    int (*binary)(int op, sg_tensor *out, sg_tensor *a, sg_tensor *b, sg_dtype ct);
    int (*unary)(int op, sg_tensor *out, sg_tensor *a, sg_dtype ct, double lo, double hi);
    int (*unary_backward)(int op, sg_tensor *out, sg_tensor *g, sg_tensor *x, sg_tensor *y);
    int (*where)(sg_tensor *out, sg_tensor *cond, sg_tensor *a, sg_tensor *b);
  } elementwise;
  struct {
    /* kind: an sg_reduce_kind. a, any dtype, strided (read in place), seen through perm: the nkeep kept dims
     * first, then the reduced ones; out (c) of the kept sizes in that order, in the kind's result dtype
     * (sum/prod: the float dtype or i64, all/any: bool, count and arg*: i64). Each output element reduces its
     * row in the row-major order of the permuted dims; a NaN wins max/min and their positions, else the first
     * extreme. */
    int (*reduce)(int kind, sg_tensor *a, const int *perm, int nkeep, sg_tensor *out);
    /* d, rows (c) f64 [outer, row]: d = the product of the other elements of each row (exact with zeros) */
    int (*prod_backward_rows)(sg_tensor *d, sg_tensor *rows, int64_t outer, int64_t row);
  } reduce;
  struct {
    /* C (c) [bat.., n, m] of dtype dt (operands already in dt) = A [.., n, k] * B [.., k, m] for each batch of
     * bat[nbat], A's and B's matrices at per-batch element offsets sa/sb (0 where broadcast); n, m, k and the
     * batch nonzero. blas: trans and ld of A and B are valid and a floating dt may go to the device's BLAS
     * (a dtype it has none for runs its plain loops); false: the plain loops (integers, sg_matmul_reference). */
    int (*matmul)(sg_dtype dt, bool blas, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, void *C, int nbat,
                  const int64_t *bat, const int64_t *sa, const int64_t *sb);
  } matmul;
  struct {
    /* all (c), one dtype; the kind's output is overwritten. bias (c) [Cs] or NULL: FWD adds it to small (oneDNN
     * fuses it), BWD_FILTER also writes into it the bias gradient, small summed over all but dim 1; BWD_DATA
     * takes NULL */
    int (*conv)(sg_conv_kind kind, const sg_conv_geom *g, sg_tensor *big, sg_tensor *w, sg_tensor *small,
                sg_tensor *bias);
    int (*bias_add_)(sg_tensor *out, sg_tensor *bias);  /* out (c) [N,C,...] += bias[c] */
    int (*bias_backward)(sg_tensor *gout, sg_tensor *gb); /* gb[c] = sum of gout over all but dim 1 */
    /* optional: the calls between share_begin and share_end (this thread) read inputs that do not change, so
     * an input read twice (the backward's output gradient) may be transformed once */
    void (*share_begin)(void);
    void (*share_end)(void);
    sg_conv_cache_stats (*cache_stats)(void);           /* optional */
    void (*cache_clear)(void);                          /* optional */
    const char *(*last_algo)(void);                     /* optional */
  } conv;
  struct {
    /* NCHW planes; every tensor (c); outputs (values, out, gx) are overwritten whole. par: kh kw sh sw ph pw
     * (and count_include_pad for average pooling; unused when adaptive: PyTorch's adaptive windows from the
     * sizes). indices: i64, the flat position in the H*W input plane of each window's first maximum in
     * row-major order (a NaN wins and ends the search; a window of -inf gives its first position); NULL in
     * max_pool2d when no one needs them. max_unpool2d scatters x by indices into a zeroed out (the last of
     * repeated positions wins) and fails naming an index outside the output plane. */
    int (*max_pool2d)(sg_tensor *x, const int64_t par[6], sg_tensor *values, sg_tensor *indices);
    int (*max_pool2d_backward)(sg_tensor *g, sg_tensor *indices, const int64_t par[6], sg_tensor *gx);
    int (*max_unpool2d)(sg_tensor *x, sg_tensor *indices, sg_tensor *out);
    int (*max_unpool2d_backward)(sg_tensor *g, sg_tensor *indices, sg_tensor *gx);
    int (*avg_pool2d)(sg_tensor *x, const int64_t par[7], bool adaptive, sg_tensor *out);
    int (*avg_pool2d_backward)(sg_tensor *g, const int64_t par[7], bool adaptive, sg_tensor *gx);
  } pool;
  struct {
    /* x [N,C,...] (c); w, b [C] (c) or NULL, any float dtype; rm, rv [C] or NULL (1-d, strided, any float
     * dtype), read in evaluation, updated in place when training. *stats receives a new tensor of the
     * backend's own making (the cpu and the reference share one layout) that the backward reads; gx, gw,
     * gb are NULL when not wanted. */
    int (*batch_norm)(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                      double momentum, double eps, sg_tensor *out, sg_tensor **stats);
    int (*batch_norm_backward)(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, bool training,
                               sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);
    /* optional: out = max(batch_norm, 0) (NaN kept) in one pass; the backward takes that output y and
     * counts g only where y > 0. Left NULL, sg_batch_norm_relu runs batch_norm and then the ReLU op. */
    int (*batch_norm_relu)(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *w, sg_tensor *b, bool training,
                           double momentum, double eps, sg_tensor *out, sg_tensor **stats);
    int (*batch_norm_relu_backward)(sg_tensor *x, sg_tensor *g, sg_tensor *y, sg_tensor *w, sg_tensor *stats,
                                    bool training, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);
    /* x viewed as [N, C, L] in G groups of C/G channels (layer norm: N rows, C = the normalised size,
     * G = L = 1); w, b [C] (c) or NULL; stats as for batch_norm */
    int (*group_norm)(sg_tensor *x, sg_tensor *w, sg_tensor *b, int64_t N, int64_t C, int64_t G, int64_t L,
                      double eps, sg_tensor *out, sg_tensor **stats);
    int (*group_norm_backward)(sg_tensor *x, sg_tensor *g, sg_tensor *w, sg_tensor *stats, int64_t N, int64_t C,
                               int64_t G, int64_t L, sg_tensor *gx, sg_tensor *gw, sg_tensor *gb);
  } norm;
  struct {
    int (*upsample)(sg_tensor *x, sg_tensor *out, double scale_h, double scale_w, int mode, bool align);
    int (*upsample_backward)(sg_tensor *g, sg_tensor *gx, double scale_h, double scale_w, int mode, bool align);
  } upsample;
  struct {
    /* Index maps (flip, roll, pad, repeat, index_select): out (c) of nd dims and out_size, element (j0..jnd-1)
     * reads a at sum_d map_d[j_d] * astride[d] (a's strides right-aligned to the nd dims, 0 for the missing
     * ones); maps[d] NULL is the identity, an entry -1 writes fill (in a's dtype). maps[d] point into map_data
     * (map_len entries in all, host memory). Any dtype. */
    int (*index_map)(sg_tensor *out, const sg_tensor *a, int nd, const int64_t *out_size, const int64_t *astride,
                     int64_t *const *maps, const int64_t *map_data, int64_t map_len, double fill);
    /* its adjoint: ga (c, the input's shape right-aligned to nd dims, f32/f64) overwritten with the sum of g
     * (c, out_size, ga's dtype) over the output positions reading each input element, in ascending order */
    int (*index_map_backward)(sg_tensor *ga, const sg_tensor *g, int nd, const int64_t *out_size,
                              int64_t *const *maps);
    /* mode an sg_gs_mode; ix (c) i64 of dst's (gather) or src's (scatter) rank, values checked. GATHER:
     * dst (index shape) <- src along dim; SCATTER / SCATTER_ADD: dst along dim <- / += src at the index
     * positions, in index order (the last repeated position wins, sums added in order). dst and src strided,
     * one dtype (any). */
    int (*gather_scatter)(int mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix);
    /* ix (c) i64: 0 when every value is in [0, hi); 1 with *pos the first position outside and *val its value */
    int (*index_check)(const sg_tensor *ix, int64_t hi, int64_t *pos, int64_t *val);
    int (*index_max)(const sg_tensor *ix, int64_t *mx); /* ix (c) i64, not empty */
    /* out (c) i64 [.., classes] overwritten whole: 1 at each checked value of ix (c, i64), 0 elsewhere */
    int (*one_hot)(sg_tensor *out, const sg_tensor *ix, int64_t classes);
  } index;
  struct {
    /* Binary cross-entropy with logits, fused: x, t (c) of one shape and float dtype; out a 0-dim tensor of
     * that dtype <- the sum over elements (mean: divided by their number, NaN when there are none) of
     * max(x, 0) - x t + log1p(exp(-|x|)), in double. Optional: without it the op fails naming the device
     * (sg.loss.bce_with_logits then runs its composite of elementwise ops). */
    int (*bce_with_logits)(sg_tensor *x, sg_tensor *t, bool mean, sg_tensor *out);
    /* gx (c, x's shape and dtype) <- scale * (sigmoid(x) - t) */
    int (*bce_with_logits_backward)(sg_tensor *x, sg_tensor *t, double scale, sg_tensor *gx);
  } loss;
  struct {
    /* Confusion counts: pred, target (c) i64 of n elements in n_groups equal consecutive chunks; out (c) i64
     * [n_groups, nclasses, nclasses] (row = target class, column = predicted class) += the counts of each
     * chunk, skipping the targets equal to ignore_index when has_ignore. Every class is checked first: a
     * class outside 0..nclasses-1 is an error naming it and its position, and nothing is added. */
    int (*confusion)(const sg_tensor *pred, const sg_tensor *target, int64_t n_groups, int64_t nclasses,
                     bool has_ignore, int64_t ignore_index, sg_tensor *out);
  } metrics;
  struct {
    /* in place on p and its state (c, the parameter's f32/f64); g (c) of p's shape in any float dtype */
    int (*sgd_step)(sg_tensor *p, sg_tensor *g, sg_tensor *buf, const sg_sgd_hyper *h, bool first);
    int (*adam_step)(sg_tensor *p, sg_tensor *g, sg_tensor *m, sg_tensor *v, sg_tensor *vmax, const sg_adam_hyper *h,
                     double bc2, double step_size);
    int (*rmsprop_step)(sg_tensor *p, sg_tensor *g, sg_tensor *sq, sg_tensor *buf, sg_tensor *gavg,
                        const sg_rmsprop_hyper *h);
    /* the gradient norm's sum of |x|^p over tensors (c) (p = inf: the largest |x|, a NaN sticks) */
    int (*norm_sum)(int n, sg_tensor *const *xs, double p, double *out);
  } optim;
  struct {
    /* kind: an SG_RAND_* of ops/ops.h; counter-based, the same numbers on every device */
    int (*fill)(sg_tensor *t, int kind, uint64_t base, uint64_t key, int64_t lo, uint64_t range);
  } random;
  struct {
    int (*unscale_)(sg_tensor *const *grads, int n, double inv_scale, sg_tensor *found_inf);
  } amp;
} sg_backend;

/* Which implementation ran the last convolution computation on this thread ("dnnl", "blas", "reference",
 * "cudnn" or "none"): each backend's conv entry notes it (F._conv_path; defined in backend_cpu/dnnl_conv.c). */

/* ---- the registry (engine/core/device.c) ---- */
/* The table of a device, loading its module on first use; NULL with an error
 * naming the device and the reason when it cannot be used. */
const sg_backend *sg_backend_get(sg_device dev);
/* The table when the backend is loaded, else NULL (no error, loads nothing). */
const sg_backend *sg_backend_loaded(sg_device dev);
/* Whether the backend of dev can be loaded (cpu always; cuda when its module loads). */
bool sg_backend_present(sg_device dev);
/* Why the backend of dev cannot be loaded ("" when it can). */
const char *sg_backend_why_missing(sg_device dev);
/* Called by a backend (or its module's entry point) to fill its slot. */
void sg_backend_register(sg_device dev, const sg_backend *be);
/* The reference backend (engine/backend_ref): plain loops on host memory that every other backend is tested
 * against. With sg_config.reference set, the cpu device runs on it instead of the cpu table. */
void sg_backend_register_reference(const sg_backend *ref);
const sg_backend *sg_backend_reference(void);
/* dst's NULL entries taken from src (a backend with no fast path for an op runs the reference one) */
void sg_backend_fill_missing(sg_backend *dst, const sg_backend *src);
/* Sets "<op>: not supported on device '<dev>'" and returns -1. */
int sg_backend_missing(const char *op, sg_device dev);

/* The entry `entry` (e.g. pool.max_pool2d) of dev's table, or NULL with an
 * error naming op and device when the device is unusable or lacks it. */
#define SG_BACKEND_OP(dev, entry, op)                                                                  \
  __extension__({                                                                                      \
    const sg_backend *be_ = sg_backend_get(dev);                                                       \
    __typeof__(be_->entry) fn_ = be_ ? be_->entry : NULL;                                              \
    if (be_ && !fn_) sg_backend_missing(op, dev);                                                      \
    fn_;                                                                                               \
  })

/* Calls an int-returning entry on dev's table; -1 with the error set when the device or the entry is missing. */
#define SG_BACKEND_CALL(dev, entry, op, ...)                                                           \
  __extension__({                                                                                      \
    __typeof__(((sg_backend *)0)->entry) call_ = SG_BACKEND_OP(dev, entry, op);                        \
    call_ ? call_(__VA_ARGS__) : -1;                                                                   \
  })

#define SG_DEVICE_OF(t) ((t)->storage->device)

/* The name of the symbol a backend module exports: void SG_BACKEND_ENTRY(void) registers its tables. */
#define SG_BACKEND_ENTRY sg_backend_module_init
#define SG_BACKEND_ENTRY_NAME "sg_backend_module_init"

#endif
