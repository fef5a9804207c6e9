/* oneDNN convolution primitives for conv2d / conv_transpose2d (f32 NCHW).
 *
 * Each call looks up a cached entry (the shared oneDNN primitive cache,
 * dnnl_common.h) keyed by (kind, bias, geometry, ...) holding
 * the primitive descriptor the library chose with format_tag_any, the
 * primitive, and for every tensor argument the plain user layout, the
 * layout the primitive wants and a reorder between them when they differ.
 * User buffers are wrapped without a copy; only arguments whose chosen layout
 * is blocked go through a temporary buffer. One cpu engine and one stream are
 * created on first use; everything is released at exit. */
#include "../core/config.h"
#include "dnnl_conv.h"
#include "../backend.h"
#include <stdlib.h>
#include <string.h>

static _Thread_local bool last_winograd;
bool sg_conv_last_winograd(void) { return last_winograd; }

/* The switches live in the runtime configuration (core/config.c); these keep the older entry points. */
void sg_dnnl_set_enabled(int on) {
  if (on < 0) sg_config_reset("dnnl");
  else sg_config.dnnl = on != 0;
}
void sg_conv_set_deterministic(int on) {
  if (on < 0) sg_config_reset("deterministic");
  else sg_config.deterministic = on != 0;
}
bool sg_conv_deterministic(void) { return sg_config.deterministic; }

#ifdef SG_HAVE_DNNL
#include "dnnl_common.h"
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif

bool sg_dnnl_compiled(void) { return true; }

bool sg_dnnl_enabled(void) { return sg_config.dnnl; }

#define MAX_IO 4
#define CACHE_CAP 64
#define NGEOM 16
/* the key: kind, bias, winograd asked for, deterministic mode, the OpenMP
 * threads the entry is built for (oneDNN splits work by it), the geometry */
enum { K_KIND, K_BIAS, K_WINO, K_DET, K_NTHR, K_GEO, NKEY = K_GEO + NGEOM };
_Static_assert(NKEY <= SG_DNNL_KEY_MAX, "conv key too long");

typedef struct {
  int arg;                 /* DNNL_ARG_* */
  int buf;                 /* which caller buffer: 0 big, 1 w, 2 small, 3 bias */
  bool out;                /* written by the primitive */
  dnnl_memory_desc_t user; /* plain layout of the caller's buffer */
  dnnl_memory_desc_t prim; /* layout the primitive wants */
  dnnl_primitive_t reorder; /* user -> prim for inputs, prim -> user for outputs; NULL when equal */
} io_t;

typedef struct {
  sg_dnnl_entry h; /* key, LRU stamp, hint, pd, prim */
  bool wino_ran; /* the primitive is oneDNN's Winograd one (CPUs with AVX-512 have it);
                    winograd asked for (the key) runs direct where oneDNN has none */
  dnnl_memory_desc_t scratch; /* its scratchpad (user-managed) */
  int nio;
  io_t io[MAX_IO];
} entry_t;

#define CK(fn, args) SG_DNNL_CHECK("conv", fn, args)

static void free_reorders(sg_dnnl_entry *h) {
  entry_t *e = (entry_t *)h;
  for (int k = 0; k < e->nio; k++)
    if (e->io[k].reorder) dnnl_primitive_destroy(e->io[k].reorder);
}

/* refusals are not kept: conv asks oneDNN again */
static entry_t entries[CACHE_CAP];
static sg_dnnl_cache cache = {.entries = entries, .stride = sizeof(entry_t), .cap = CACHE_CAP, .keylen = NKEY,
                              .free_extra = free_reorders, .lock = PTHREAD_MUTEX_INITIALIZER};

int sg_dnnl_cache_size(void) { return sg_dnnl_cache_count(&cache); }

static void geo_key(const sg_dnnl_geom *g, int64_t *k) {
  const int64_t v[NGEOM] = {g->N, g->G, g->Cb, g->Hb, g->Wb, g->Cs, g->Hs, g->Ws,
                            g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->dh, g->dw};
  memcpy(k, v, sizeof v);
}

/* Pointwise (1x1, stride 1) convolutions keep the caller's NCHW activations
 * (oneDNN runs them as a GEMM on it) where that beats a blocked kernel with a
 * reorder on each side: the forward pass, and every pass with fewer than 16
 * channels on a side (the 1-channel heads); the backward passes of wider ones
 * win blocked (figures: scripts/bench/HISTORY.md). */
static bool plain_activations(sg_dnnl_kind kind, const sg_dnnl_geom *g) {
  /* not in deterministic mode: oneDNN's GEMM splits small problems' sums over threads */
  return !sg_conv_deterministic() && g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 && g->G == 1 &&
         (kind == SG_DNNL_FWD || g->Cb < 16 || g->Cs < 16);
}

/* The plain descriptors of the four caller buffers (tag) or format_tag_any
 * (plain activations: the NCHW ones even then). */
static dnnl_status_t make_mds(const sg_dnnl_geom *g, bool any, bool plain, dnnl_memory_desc_t *big,
                              dnnl_memory_desc_t *w, dnnl_memory_desc_t *small, dnnl_memory_desc_t *bias) {
  dnnl_dims_t db = {g->N, g->Cb, g->Hb, g->Wb}, ds = {g->N, g->Cs, g->Hs, g->Ws}, dbias = {g->Cs};
  dnnl_dims_t dw4 = {g->Cs, g->Cb, g->kh, g->kw}, dw5 = {g->G, g->Cs / g->G, g->Cb / g->G, g->kh, g->kw};
  dnnl_status_t st;
  dnnl_format_tag_t act = any && !plain ? dnnl_format_tag_any : dnnl_nchw;
  if ((st = dnnl_memory_desc_init_by_tag(big, 4, db, dnnl_f32, act)) != dnnl_success) return st;
  if ((st = dnnl_memory_desc_init_by_tag(small, 4, ds, dnnl_f32, act)) != dnnl_success) return st;
  if (g->G > 1) st = dnnl_memory_desc_init_by_tag(w, 5, dw5, dnnl_f32, any ? dnnl_format_tag_any : dnnl_goihw);
  else st = dnnl_memory_desc_init_by_tag(w, 4, dw4, dnnl_f32, any ? dnnl_format_tag_any : dnnl_oihw);
  if (st != dnnl_success) return st;
  return dnnl_memory_desc_init_by_tag(bias, 1, dbias, dnnl_f32, dnnl_a);
}

/* Winograd F(4x4, 3x3) where oneDNN has it (AVX-512) and it beats the direct
 * kernels: 3x3, stride 1, no dilation, one group, N x output H x W of at least
 * 1024, and enough channels on the side the pass transforms: 32 or more
 * input channels for the forward pass, 32 or more output channels for the data
 * gradient, 16 on both sides for the weight gradient. Narrower or smaller
 * layers (16 channels at 128x128, batch 1 at 16x16, an 8x8 output) run slower
 * under it, so they stay direct (figures: scripts/bench/HISTORY.md). Its results
 * differ from the direct algorithm's by rounding (about 1e-6 relative) and
 * depend on the thread count. Off in deterministic mode and with
 * SEMSEG_WINOGRAD=0. */
static bool use_winograd(sg_dnnl_kind kind, const sg_dnnl_geom *g) {
  if (!sg_config.winograd || sg_conv_deterministic() || g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1 || g->dh != 1 ||
      g->dw != 1 || g->G != 1 || g->Cb < 16 || g->Cs < 16 || g->N * g->Hs * g->Ws < 1024 || g->Hs * g->Ws < 256)
    return false;
  return kind == SG_DNNL_FWD ? g->Cb >= 32 : kind == SG_DNNL_BWD_DATA ? g->Cs >= 32 : true;
}

/* Winograd keeps transformed copies of the data and weights in its scratchpad,
 * several times the layer's size for some shapes. It runs only where the
 * scratchpad (a transient buffer) stays within the layer's own input and
 * output plus 64 MiB; elsewhere the direct kernels need none. */
static size_t wino_budget(const sg_dnnl_geom *g) {
  return ((size_t)(g->N * g->Cb * g->Hb * g->Wb) + (size_t)(g->N * g->Cs * g->Hs * g->Ws)) * sizeof(float) +
         ((size_t)64 << 20);
}

static int max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/* Builds the entry with the winograd or the direct algorithm; returns 1 on
 * success, 0 when oneDNN has no implementation (or rejects the geometry), -1
 * on other failures (the cache destroys what it left on 0 and -1). */
static int build_alg(entry_t *e, sg_dnnl_kind kind, const sg_dnnl_geom *g, bool has_bias, bool wino) {
  dnnl_memory_desc_t ub, uw, us, ubias, ab, aw, as, abias;
  dnnl_convolution_desc_t fd, bd;
  dnnl_dims_t strides = {g->sh, g->sw}, dil = {g->dh - 1, g->dw - 1}, pl = {g->ph, g->pw};
  /* right/bottom padding that makes the last kernel position end in range
   * (may be negative: rows the kernel never reaches, as PyTorch drops them) */
  dnnl_dims_t pr = {(g->Hs - 1) * g->sh + (g->kh - 1) * g->dh + 1 - g->Hb - g->ph,
                    (g->Ws - 1) * g->sw + (g->kw - 1) * g->dw + 1 - g->Wb - g->pw};
  if (pr[0] + g->sh <= 0 || pr[1] + g->sw <= 0) return 0;
  dnnl_status_t st;
  dnnl_alg_kind_t alg = wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
  dnnl_primitive_attr_t attr = NULL;
  if ((st = make_mds(g, false, false, &ub, &uw, &us, &ubias)) != dnnl_success ||
      (st = make_mds(g, true, plain_activations(kind, g), &ab, &aw, &as, &abias)) != dnnl_success) {
    sg_error_set("conv (oneDNN): dnnl_memory_desc_init_by_tag failed: %s", dnnl_status2str(st));
    return -1;
  }
  bool fwd_bias = kind == SG_DNNL_FWD && has_bias;
  st = dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &ab, &aw,
                                                  fwd_bias ? &abias : NULL, &as, strides, dil, pl, pr);
  if (st != dnnl_success) return 0;
  CK(dnnl_primitive_attr_create, (&attr));
  CK(dnnl_primitive_attr_set_scratchpad_mode, (attr, dnnl_scratchpad_mode_user));
  dnnl_primitive_desc_t fpd = NULL;
  st = dnnl_primitive_desc_create(&fpd, &fd, kind == SG_DNNL_FWD ? attr : NULL, cache.eng, NULL);
  if (st != dnnl_success) {
    dnnl_primitive_attr_destroy(attr);
    return 0;
  }
  if (kind == SG_DNNL_FWD) {
    e->h.pd = fpd;
    e->io[0] = (io_t){.arg = DNNL_ARG_SRC, .buf = 0, .user = ub};
    e->io[1] = (io_t){.arg = DNNL_ARG_WEIGHTS, .buf = 1, .user = uw};
    e->io[2] = (io_t){.arg = DNNL_ARG_DST, .buf = 2, .out = true, .user = us};
    e->nio = 3;
    if (has_bias) e->io[e->nio++] = (io_t){.arg = DNNL_ARG_BIAS, .buf = 3, .user = ubias};
  } else {
    e->h.hint = fpd;
    if (kind == SG_DNNL_BWD_DATA)
      st = dnnl_dilated_convolution_backward_data_desc_init(&bd, alg, &ab, &aw, &as, strides, dil, pl, pr);
    else
      st = dnnl_dilated_convolution_backward_weights_desc_init(&bd, alg, &ab, &aw, has_bias ? &abias : NULL, &as,
                                                               strides, dil, pl, pr);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&e->h.pd, &bd, attr, cache.eng, fpd);
    if (st != dnnl_success) {
      dnnl_primitive_attr_destroy(attr);
      return 0;
    }
    if (kind == SG_DNNL_BWD_DATA) {
      e->io[0] = (io_t){.arg = DNNL_ARG_DIFF_DST, .buf = 2, .user = us};
      e->io[1] = (io_t){.arg = DNNL_ARG_WEIGHTS, .buf = 1, .user = uw};
      e->io[2] = (io_t){.arg = DNNL_ARG_DIFF_SRC, .buf = 0, .out = true, .user = ub};
      e->nio = 3;
    } else {
      e->io[0] = (io_t){.arg = DNNL_ARG_SRC, .buf = 0, .user = ub};
      e->io[1] = (io_t){.arg = DNNL_ARG_DIFF_DST, .buf = 2, .user = us};
      e->io[2] = (io_t){.arg = DNNL_ARG_DIFF_WEIGHTS, .buf = 1, .out = true, .user = uw};
      e->nio = 3;
      if (has_bias) e->io[e->nio++] = (io_t){.arg = DNNL_ARG_DIFF_BIAS, .buf = 3, .out = true, .user = ubias};
    }
  }
  dnnl_primitive_attr_destroy(attr);
  attr = NULL;
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(e->h.pd, dnnl_query_scratchpad_md, 0);
  if (smd) e->scratch = *smd;
  if (wino && dnnl_memory_desc_get_size(&e->scratch) > wino_budget(g)) return 0;
  CK(dnnl_primitive_create, (&e->h.prim, e->h.pd));
  for (int k = 0; k < e->nio; k++) {
    io_t *io = &e->io[k];
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(e->h.pd, dnnl_query_exec_arg_md, io->arg);
    if (!md) {
      sg_error_set("conv (oneDNN): dnnl_primitive_desc_query_md found no descriptor for argument %d", io->arg);
      goto fail;
    }
    io->prim = *md;
    if (dnnl_memory_desc_equal(&io->prim, &io->user)) continue;
    dnnl_primitive_desc_t rpd = NULL;
    if (io->out) CK(dnnl_reorder_primitive_desc_create, (&rpd, &io->prim, cache.eng, &io->user, cache.eng, NULL));
    else CK(dnnl_reorder_primitive_desc_create, (&rpd, &io->user, cache.eng, &io->prim, cache.eng, NULL));
    st = dnnl_primitive_create(&io->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success) {
      io->reorder = NULL;
      sg_error_set("conv (oneDNN): dnnl_primitive_create failed: %s", dnnl_status2str(st));
      goto fail;
    }
  }
  return 1;
fail:
  if (attr) dnnl_primitive_attr_destroy(attr);
  return -1;
}

typedef struct {
  sg_dnnl_kind kind;
  const sg_dnnl_geom *g;
  bool bias, wino;
} conv_spec;

static int entry_build(sg_dnnl_entry *h, const void *spec) {
  const conv_spec *s = spec;
  entry_t *e = (entry_t *)h;
  int rc = build_alg(e, s->kind, s->g, s->bias, s->wino);
  e->wino_ran = rc == 1 && s->wino;
  if (rc == 0 && s->wino) { /* no winograd here after all: direct, under the same key */
    sg_dnnl_entry_clear(&cache, h);
    rc = build_alg(e, s->kind, s->g, s->bias, false);
  }
  return rc;
}

/* Blocked copies of the arguments and the primitive's scratchpad are transient
 * buffers (sg_dnnl_transient): held for the call only, so the memory serves
 * other tensors in between (a grow-only buffer would keep the largest
 * winograd scratchpad for good), and taken from the allocator's block cache,
 * so a training step's repeated sizes are not faulted in again (oneDNN's own
 * scratchpad would be allocated afresh on every execution). */
/* Blocked copies of inputs kept for the calls of one sg_dnnl_conv_share_begin /
 * _end bracket (this thread only): the backward's data and weight gradients
 * both read the output gradient in the same blocked layout, reordered once. */
#define MEMO 4
static _Thread_local struct {
  bool on;
  int n;
  struct { const void *user; dnnl_memory_desc_t md; sg_storage *copy; } e[MEMO];
} memo;

void sg_dnnl_conv_share_begin(void) { memo.on = true; }
void sg_dnnl_conv_share_end(void) {
  for (int k = 0; k < memo.n; k++) sg_storage_decref(memo.e[k].copy);
  memset(&memo, 0, sizeof memo);
}

static sg_storage *memo_find(const void *user, const dnnl_memory_desc_t *md) {
  for (int k = 0; memo.on && k < memo.n; k++)
    if (memo.e[k].user == user && dnnl_memory_desc_equal(&memo.e[k].md, md)) return memo.e[k].copy;
  return NULL;
}

static void memo_add(const void *user, const dnnl_memory_desc_t *md, sg_storage *copy) {
  if (!memo.on || memo.n == MEMO) return;
  sg_storage_incref(copy);
  memo.e[memo.n].user = user;
  memo.e[memo.n].md = *md;
  memo.e[memo.n++].copy = copy;
}

static int run(entry_t *e, void *const bufs[4]) {
  dnnl_memory_t user[MAX_IO] = {0}, prim[MAX_IO] = {0}, spad = NULL;
  sg_storage *hold[MAX_IO + 1] = {0};
  dnnl_exec_arg_t args[MAX_IO + 1];
  int rc = -1, nargs = e->nio;
  size_t sbytes = dnnl_memory_desc_get_size(&e->scratch);
  if (sbytes) {
    void *p = sg_dnnl_transient(sbytes, &hold[MAX_IO], "conv");
    if (!p) return -1;
    CK(dnnl_memory_create, (&spad, &e->scratch, cache.eng, p));
    args[nargs].arg = DNNL_ARG_SCRATCHPAD;
    args[nargs++].memory = spad;
  }
  for (int k = 0; k < e->nio; k++) {
    io_t *io = &e->io[k];
    CK(dnnl_memory_create, (&user[k], &io->user, cache.eng, bufs[io->buf]));
    args[k].arg = io->arg;
    args[k].memory = user[k];
    if (!io->reorder) continue;
    sg_storage *have = io->out ? NULL : memo_find(bufs[io->buf], &io->prim);
    if (have) sg_storage_incref(hold[k] = have);
    void *blocked = have ? have->data : sg_dnnl_transient(dnnl_memory_desc_get_size(&io->prim), &hold[k], "conv");
    if (!blocked) goto fail;
    CK(dnnl_memory_create, (&prim[k], &io->prim, cache.eng, blocked));
    args[k].memory = prim[k];
    if (!io->out && !have) {
      dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, user[k]}, {DNNL_ARG_TO, prim[k]}};
      CK(dnnl_primitive_execute, (io->reorder, cache.strm, 2, ra));
      memo_add(bufs[io->buf], &io->prim, hold[k]);
    }
  }
  CK(dnnl_primitive_execute, (e->h.prim, cache.strm, nargs, args));
  for (int k = 0; k < e->nio; k++) {
    io_t *io = &e->io[k];
    if (!io->reorder || !io->out) continue;
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, prim[k]}, {DNNL_ARG_TO, user[k]}};
    CK(dnnl_primitive_execute, (io->reorder, cache.strm, 2, ra));
  }
  CK(dnnl_stream_wait, (cache.strm));
  rc = 0;
fail:
  for (int k = 0; k < e->nio; k++) {
    if (user[k]) dnnl_memory_destroy(user[k]);
    if (prim[k]) dnnl_memory_destroy(prim[k]);
  }
  if (spad) dnnl_memory_destroy(spad);
  for (int k = 0; k <= MAX_IO; k++) sg_storage_decref(hold[k]);
  return rc;
}

int sg_dnnl_conv(sg_dnnl_kind kind, const sg_dnnl_geom *g, float *big, float *w, float *small, float *bias) {
  if (!sg_dnnl_enabled()) return 0;
  int64_t key[NKEY];
  int64_t *v = key + K_GEO;
  geo_key(g, v);
  for (int k = 0; k < NGEOM; k++)
    if (v[k] < 0 || (v[k] == 0 && k != 12 && k != 13)) return 0; /* empty tensors: leave them to the loops */
  if (g->Cb % g->G || g->Cs % g->G) return 0;
  pthread_mutex_lock(&cache.lock);
  /* deterministic mode: the weight gradient (a reduction oneDNN splits by thread count) on one thread */
  int prev = max_threads();
  bool one = kind == SG_DNNL_BWD_WEIGHTS && prev > 1 && sg_conv_deterministic();
#ifdef _OPENMP
  if (one) omp_set_num_threads(1);
#endif
  conv_spec spec = {kind, g, bias != NULL, use_winograd(kind, g)};
  key[K_KIND] = kind;
  key[K_BIAS] = spec.bias;
  key[K_WINO] = spec.wino;
  key[K_DET] = sg_conv_deterministic();
  key[K_NTHR] = max_threads();
  sg_dnnl_entry *h = NULL;
  int rc = sg_dnnl_engine(&cache, "conv");
  if (!rc) rc = sg_dnnl_cache_get(&cache, key, entry_build, &spec, &h);
  entry_t *e = (entry_t *)h;
  last_winograd = rc == 1 && e->wino_ran;
  if (rc == 1) {
    void *const bufs[4] = {big, w, small, bias};
    rc = run(e, bufs) ? -1 : 1;
  }
#ifdef _OPENMP
  if (one) omp_set_num_threads(prev);
#endif
  (void)one;
  pthread_mutex_unlock(&cache.lock);
  return rc;
}

#else /* !SG_HAVE_DNNL */

void sg_dnnl_conv_share_begin(void) {}
void sg_dnnl_conv_share_end(void) {}

bool sg_dnnl_compiled(void) { return false; }
bool sg_dnnl_enabled(void) { return false; }
int sg_dnnl_cache_size(void) { return 0; }
int sg_dnnl_conv(sg_dnnl_kind kind, const sg_dnnl_geom *g, float *big, float *w, float *small, float *bias) {
  (void)kind; (void)g; (void)big; (void)w; (void)small; (void)bias;
  return 0;
}

#endif
