/* oneDNN eltwise primitives (f32, one flat dimension).
 *
 * A cached entry per (direction, algorithm, element count) (the shared
 * oneDNN primitive cache, dnnl_common.h) holds the
 * primitive descriptor and the primitive; the caller's buffers are wrapped
 * without a copy. Activations whose derivative the engine writes in terms of
 * the output (relu, sigmoid, tanh, exp, sqrt) use oneDNN's *_use_dst_for_bwd
 * algorithms so that backward reads the saved output as the loops do; abs
 * and square differentiate from the input. Where oneDNN's answer for NaN or
 * infinite values differs from the loops' (relu and exp turn a NaN input into
 * 0 and inf, abs's derivative takes NaN for negative, relu's backward turns
 * 0 * inf or 0 * NaN gradients into NaN where the loops give 0, gelu's -inf * 0
 * is the loops' limit 0), the operand is
 * scanned first and such calls are left to the loops. One cpu engine and stream are
 * created on first use, calls are serialized by a lock, and everything is
 * released at exit. The on/off switch is the conv path's (sg_dnnl_enabled). */
#include "dnnl_eltwise.h"
#include "dnnl_conv.h"
#include "../core/tensor.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>


int sg_dnnl_eltwise_uses_dst(sg_dnnl_elt alg) {
  return alg != SG_DNNL_ELT_ABS && alg != SG_DNNL_ELT_SQUARE && alg != SG_DNNL_ELT_GELU_ERF &&
         alg != SG_DNNL_ELT_GELU_TANH;
}

#ifdef SG_HAVE_DNNL
#include "dnnl_common.h"
#include <pthread.h>

static bool is_gelu(sg_dnnl_elt alg) { return alg == SG_DNNL_ELT_GELU_ERF || alg == SG_DNNL_ELT_GELU_TANH; }

#define CACHE_CAP 48
enum { K_BACKWARD, K_ALG, K_N, NKEY };

#define CK(what, fn, args) SG_DNNL_CHECK(what, fn, args)

/* entries are the common header alone; refusals are kept (ok = false) */
static sg_dnnl_entry entries[CACHE_CAP];
static sg_dnnl_cache cache = {.entries = entries, .stride = sizeof(sg_dnnl_entry), .cap = CACHE_CAP, .keylen = NKEY,
                              .keep_refusals = true, .lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const NAMES[SG_DNNL_ELT_COUNT] = {"relu", "sigmoid", "tanh", "exp", "sqrt", "abs", "square",
                                                     "gelu", "gelu_tanh"};

static dnnl_alg_kind_t alg_kind(sg_dnnl_elt a) {
  switch (a) {
  case SG_DNNL_ELT_RELU: return dnnl_eltwise_relu_use_dst_for_bwd;
  case SG_DNNL_ELT_SIGMOID: return dnnl_eltwise_logistic_use_dst_for_bwd;
  case SG_DNNL_ELT_TANH: return dnnl_eltwise_tanh_use_dst_for_bwd;
  case SG_DNNL_ELT_EXP: return dnnl_eltwise_exp_use_dst_for_bwd;
  case SG_DNNL_ELT_SQRT: return dnnl_eltwise_sqrt_use_dst_for_bwd;
  case SG_DNNL_ELT_ABS: return dnnl_eltwise_abs;
  case SG_DNNL_ELT_SQUARE: return dnnl_eltwise_square;
  case SG_DNNL_ELT_GELU_ERF: return dnnl_eltwise_gelu_erf;
  case SG_DNNL_ELT_GELU_TANH: return dnnl_eltwise_gelu_tanh;
  default: return dnnl_alg_kind_undef;
  }
}

int sg_dnnl_eltwise_cache_size(void) { return sg_dnnl_cache_count(&cache); }

static dnnl_status_t flat_md(dnnl_memory_desc_t *md, int64_t n) {
  dnnl_dims_t d = {n};
  return dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_a);
}

typedef struct {
  bool backward;
  sg_dnnl_elt alg;
  int64_t n;
  const char *what;
} elt_spec;

/* builds the descriptors and primitive of e; 1 built, 0 not available, -1 error */
static int build(sg_dnnl_entry *e, const void *spec) {
  const elt_spec *s = spec;
  const char *what = s->what;
  dnnl_memory_desc_t md;
  dnnl_eltwise_desc_t fd, bd;
  dnnl_alg_kind_t a = alg_kind(s->alg);
  if (flat_md(&md, s->n) != dnnl_success) return 0;
  dnnl_prop_kind_t prop = s->backward ? dnnl_forward_training : dnnl_forward_inference;
  if (dnnl_eltwise_forward_desc_init(&fd, prop, a, &md, 0.0f, 0.0f) != dnnl_success) return 0;
  dnnl_primitive_desc_t fpd = NULL;
  if (dnnl_primitive_desc_create(&fpd, &fd, NULL, cache.eng, NULL) != dnnl_success) return 0;
  if (!s->backward) {
    e->pd = fpd;
  } else {
    e->hint = fpd;
    if (dnnl_eltwise_backward_desc_init(&bd, a, &md, &md, 0.0f, 0.0f) != dnnl_success ||
        dnnl_primitive_desc_create(&e->pd, &bd, NULL, cache.eng, fpd) != dnnl_success)
      return 0;
  }
  CK(what, dnnl_primitive_create, (&e->prim, e->pd));
  return 1;
fail:
  return -1;
}

/* Runs the cached entry for (direction, alg, n), built on a miss, on (arg,
 * buffer) pairs, all flat [n] f32: 1, 0 or -1 as the entry points. */
static int run(bool backward, sg_dnnl_elt alg, int64_t n, int nargs, const int *arg, void *const *buf) {
  const char *what = NAMES[alg];
  const int64_t key[NKEY] = {backward, alg, n};
  const elt_spec spec = {backward, alg, n, what};
  pthread_mutex_lock(&cache.lock);
  sg_dnnl_entry *e = NULL;
  int rc = sg_dnnl_engine(&cache, what);
  if (!rc) rc = sg_dnnl_cache_get(&cache, key, build, &spec, &e);
  if (rc == 1) {
    dnnl_memory_desc_t md;
    const dnnl_memory_desc_t *const mds[3] = {&md, &md, &md};
    dnnl_status_t st = flat_md(&md, n);
    if (st != dnnl_success) {
      sg_error_set("%s (oneDNN): flat_md failed: %s", what, dnnl_status2str(st));
      rc = -1;
    } else if (sg_dnnl_execute(&cache, e->prim, nargs, arg, mds, buf, what)) {
      rc = -1;
    }
  }
  pthread_mutex_unlock(&cache.lock);
  return rc;
}

/* true when x[0..n) holds a NaN (or, with inf_too, an infinity); an exact
 * yes/no, the same on any number of threads */
static bool has_special(const float *x, int64_t n, bool inf_too) {
  int bad = 0;
  if (inf_too) {
#ifdef _OPENMP
#pragma omp parallel for reduction(| : bad) schedule(static) if (n >= 262144)
#endif
    for (int64_t k = 0; k < n; k++) {
      float d = x[k] - x[k]; /* NaN for NaN and +-inf */
      bad |= d != d;
    }
  } else {
#ifdef _OPENMP
#pragma omp parallel for reduction(| : bad) schedule(static) if (n >= 262144)
#endif
    for (int64_t k = 0; k < n; k++) bad |= x[k] != x[k];
  }
  return bad != 0;
}

static bool wanted(sg_dnnl_elt alg, int64_t n) {
  return alg >= 0 && alg < SG_DNNL_ELT_COUNT && n >= SG_DNNL_ELTWISE_MIN && sg_dnnl_enabled();
}

int sg_dnnl_eltwise_fwd(sg_dnnl_elt alg, int64_t n, const float *x, float *y) {
  if (!wanted(alg, n)) return 0;
  if ((alg == SG_DNNL_ELT_RELU || alg == SG_DNNL_ELT_EXP) && has_special(x, n, false)) return 0;
  if (is_gelu(alg) && has_special(x, n, true)) return 0;
  const int args[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
  void *const bufs[2] = {(void *)x, y};
  return run(false, alg, n, 2, args, bufs);
}

int sg_dnnl_eltwise_backward(sg_dnnl_elt alg, int64_t n, const float *dy, const float *x, const float *y, float *dx) {
  if (!wanted(alg, n)) return 0;
  bool dst = sg_dnnl_eltwise_uses_dst(alg);
  const float *data = dst ? y : x;
  if (!data) return 0;
  if ((alg == SG_DNNL_ELT_ABS && has_special(x, n, false)) || (alg == SG_DNNL_ELT_RELU && has_special(dy, n, true)) ||
      (is_gelu(alg) && has_special(x, n, true)))
    return 0;
  const int args[3] = {dst ? DNNL_ARG_DST : DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
  void *const bufs[3] = {(void *)data, (void *)dy, dx};
  return run(true, alg, n, 3, args, bufs);
}

#else /* !SG_HAVE_DNNL */

int sg_dnnl_eltwise_fwd(sg_dnnl_elt alg, int64_t n, const float *x, float *y) {
  (void)alg; (void)n; (void)x; (void)y;
  return 0;
}
int sg_dnnl_eltwise_backward(sg_dnnl_elt alg, int64_t n, const float *dy, const float *x, const float *y, float *dx) {
  (void)alg; (void)n; (void)dy; (void)x; (void)y; (void)dx;
  return 0;
}
int sg_dnnl_eltwise_cache_size(void) { return 0; }

#endif
