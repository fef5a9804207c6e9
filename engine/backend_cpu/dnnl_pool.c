/* oneDNN average-pooling primitives (f32, plain NCHW) for the cpu table's
 * pool entries (backend_cpu/pool.c).
 *
 * Each call finds a cached entry (the shared oneDNN primitive cache,
 * dnnl_common.h) keyed by (kind, algorithm, geometry) holding
 * the primitive descriptor and the primitive; the caller's buffers are wrapped
 * without a copy or reordered to a blocked layout (see entry_t). One cpu
 * engine and stream are created on first use, calls are serialized by a
 * lock, and everything is released at exit. The on/off switch is the conv
 * path's (sg_dnnl_enabled: SEMSEG_DNNL=0 or F._dnnl(false)). */
#include "dnnl_pool.h"
#include "dnnl_conv.h"
#include "../core/tensor.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef SG_HAVE_DNNL
#include "dnnl_common.h"
#include <pthread.h>

enum { K_POOL_FWD, K_POOL_BWD };
#define CACHE_CAP 64
#define NKEY 14 /* kind, algorithm, 12 geometry values */
_Static_assert(NKEY <= SG_DNNL_KEY_MAX, "pool key too long");
#define NSCRATCH 2 /* the blocked copies of the reorders: input, output */

typedef struct {
  sg_dnnl_entry h; /* key, LRU stamp, hint, pd, prim */
  /* pooling: the layouts the primitive runs on (a blocked one when oneDNN
   * has a jit kernel for it: its plain-NCHW kernel is far slower than the
   * two reorders) and the reorders from/to the caller's plain buffers */
  dnnl_memory_desc_t big, small; /* big: src / diff_src; small: dst / diff_dst */
  dnnl_primitive_t r_big, r_small; /* NULL when the layout is plain */
} entry_t;

#define CK(what, fn, args) SG_DNNL_CHECK(what, fn, args)

static sg_dnnl_scratch scratch[NSCRATCH]; /* grow-only */

static void free_reorders(sg_dnnl_entry *h) {
  entry_t *e = (entry_t *)h;
  if (e->r_big) dnnl_primitive_destroy(e->r_big);
  if (e->r_small) dnnl_primitive_destroy(e->r_small);
}

static void free_scratch(void) {
  for (int k = 0; k < NSCRATCH; k++) sg_dnnl_scratch_free(&scratch[k]);
}

/* refusals are kept (ok = false): the loops run without asking oneDNN again */
static entry_t entries[CACHE_CAP];
static sg_dnnl_cache cache = {.entries = entries, .stride = sizeof(entry_t), .cap = CACHE_CAP, .keylen = NKEY,
                              .keep_refusals = true, .free_extra = free_reorders, .release_extra = free_scratch,
                              .lock = PTHREAD_MUTEX_INITIALIZER};

int sg_dnnl_pool_cache_size(void) { return sg_dnnl_cache_count(&cache); }

/* scratch buffer k of at least `bytes`, or NULL with an error */
static void *scratch_get(int k, size_t bytes, const char *what) { return sg_dnnl_scratch_get(&scratch[k], bytes, what); }

/* runs reorder r: from (md, buf) to (md, buf) */
static int run_reorder(dnnl_primitive_t r, const dnnl_memory_desc_t *fm, void *fb, const dnnl_memory_desc_t *tm,
                       void *tb, const char *what) {
  const int args[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
  const dnnl_memory_desc_t *const md[2] = {fm, tm};
  void *const bufs[2] = {fb, tb};
  return sg_dnnl_execute(&cache, r, 2, args, md, bufs, what);
}

static dnnl_status_t plain(dnnl_memory_desc_t *md, int nd, const int64_t *dims, dnnl_data_type_t dt) {
  dnnl_dims_t d;
  for (int k = 0; k < nd; k++) d[k] = dims[k];
  return dnnl_memory_desc_init_by_tag(md, nd, d, dt, nd == 1 ? dnnl_a : dnnl_nchw);
}

/* ---------------------------------------------------------------- pooling */
typedef struct {
  sg_dnnl_pool_alg alg;
  const sg_dnnl_pool_geom *g;
} pool_spec;

static dnnl_alg_kind_t pool_alg(sg_dnnl_pool_alg a) {
  return a == SG_DNNL_POOL_AVG_INCL ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
}

/* reorder primitive from -> to, or -1 with an error */
static int make_reorder(dnnl_primitive_t *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                        const char *what) {
  dnnl_primitive_desc_t rpd = NULL;
  CK(what, dnnl_reorder_primitive_desc_create, (&rpd, from, cache.eng, to, cache.eng, NULL));
  dnnl_status_t st = dnnl_primitive_create(r, rpd);
  dnnl_primitive_desc_destroy(rpd);
  if (st != dnnl_success) {
    *r = NULL;
    sg_error_set("%s (oneDNN): dnnl_primitive_create failed: %s", what, dnnl_status2str(st));
    return -1;
  }
  return 0;
fail:
  return -1;
}

/* pooling primitive descriptors on layout `tag`; 1 built, 0 not available */
static int pool_pd(entry_t *e, const pool_spec *s, bool backward, dnnl_format_tag_t tag) {
  const sg_dnnl_pool_geom *g = s->g;
  dnnl_dims_t ds = {g->N, g->C, g->H, g->W}, dd = {g->N, g->C, g->oh, g->ow};
  if (dnnl_memory_desc_init_by_tag(&e->big, 4, ds, dnnl_f32, tag) != dnnl_success ||
      dnnl_memory_desc_init_by_tag(&e->small, 4, dd, dnnl_f32, tag) != dnnl_success)
    return 0;
  /* pool.c's floor-mode output size equals oneDNN's with symmetric padding */
  dnnl_dims_t strides = {g->sh, g->sw}, kernel = {g->kh, g->kw}, pad = {g->ph, g->pw};
  dnnl_pooling_desc_t fd, bd;
  dnnl_prop_kind_t prop = backward ? dnnl_forward_training : dnnl_forward_inference;
  if (dnnl_pooling_forward_desc_init(&fd, prop, pool_alg(s->alg), &e->big, &e->small, strides, kernel, pad, pad) !=
      dnnl_success)
    return 0;
  dnnl_primitive_desc_t fpd = NULL;
  if (dnnl_primitive_desc_create(&fpd, &fd, NULL, cache.eng, NULL) != dnnl_success) return 0;
  if (!backward) {
    e->h.pd = fpd;
    return 1;
  }
  e->h.hint = fpd;
  if (dnnl_pooling_backward_desc_init(&bd, pool_alg(s->alg), &e->big, &e->small, strides, kernel, pad, pad) !=
          dnnl_success ||
      dnnl_primitive_desc_create(&e->h.pd, &bd, NULL, cache.eng, fpd) != dnnl_success)
    return 0;
  return 1;
}

static bool is_jit(const entry_t *e) {
  const char *impl = NULL;
  return dnnl_primitive_desc_query(e->h.pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
         strncmp(impl, "jit", 3) == 0;
}

static int pool_build(entry_t *e, const void *spec, bool backward) {
  const pool_spec *s = spec;
  const sg_dnnl_pool_geom *g = s->g;
  int64_t dd[4] = {g->N, g->C, g->oh, g->ow};
  const char *what = "pooling";
  /* a blocked layout with a jit kernel when there are enough channels to
   * fill the blocks, else plain NCHW */
  const dnnl_format_tag_t tags[3] = {dnnl_nChw16c, dnnl_nChw8c, dnnl_nchw};
  int rc = 0;
  for (int t = g->C >= 16 ? 0 : g->C >= 8 ? 1 : 2; t < 3 && rc != 1; t++) {
    if (e->h.pd) dnnl_primitive_desc_destroy(e->h.pd);
    if (e->h.hint) dnnl_primitive_desc_destroy(e->h.hint);
    e->h.pd = e->h.hint = NULL;
    rc = pool_pd(e, s, backward, tags[t]);
    if (rc == 1 && t < 2 && !is_jit(e)) rc = 0;
  }
  if (rc != 1) return 0;
  dnnl_memory_desc_t pb, ps;
  int64_t ds[4] = {g->N, g->C, g->H, g->W};
  plain(&pb, 4, ds, dnnl_f32);
  plain(&ps, 4, dd, dnnl_f32);
  if (!dnnl_memory_desc_equal(&pb, &e->big)) {
    /* forward: src in, dst out; backward: diff_dst in, diff_src out */
    if (backward ? make_reorder(&e->r_big, &e->big, &pb, what) || make_reorder(&e->r_small, &ps, &e->small, what)
                 : make_reorder(&e->r_big, &pb, &e->big, what) || make_reorder(&e->r_small, &e->small, &ps, what))
      return -1;
  }
  CK(what, dnnl_primitive_create, (&e->h.prim, e->h.pd));
  return 1;
fail:
  return -1;
}
static int pool_build_fwd(sg_dnnl_entry *e, const void *spec) { return pool_build((entry_t *)e, spec, false); }
static int pool_build_backward(sg_dnnl_entry *e, const void *spec) { return pool_build((entry_t *)e, spec, true); }

static bool pool_geom_ok(const sg_dnnl_pool_geom *g) {
  const int64_t v[12] = {g->N, g->C, g->H, g->W, g->oh, g->ow, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw};
  for (int k = 0; k < 12; k++)
    if (v[k] < 0 || (v[k] == 0 && k < 10)) return false;
  return (g->H + 2 * g->ph - g->kh) / g->sh + 1 == g->oh && (g->W + 2 * g->pw - g->kw) / g->sw + 1 == g->ow &&
         g->H + 2 * g->ph >= g->kh && g->W + 2 * g->pw >= g->kw;
}

static void pool_key(int kind, int alg, const sg_dnnl_pool_geom *g, int64_t *key) {
  const int64_t v[NKEY] = {kind, alg, g->N, g->C, g->H, g->W, g->oh, g->ow, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw};
  memcpy(key, v, sizeof v);
}

/* Runs a cached pooling entry: forward (in = src, out = dst) or backward
 * (in = diff_dst, out = diff_src), going through the blocked layout when the
 * entry has one. */
static int pool_run(entry_t *e, bool backward, const sg_dnnl_pool_geom *g, const float *in, float *out,
                    const char *what) {
  int64_t ds[4] = {g->N, g->C, g->H, g->W}, dd[4] = {g->N, g->C, g->oh, g->ow};
  dnnl_memory_desc_t pb, ps;
  plain(&pb, 4, ds, dnnl_f32);
  plain(&ps, 4, dd, dnnl_f32);
  const dnnl_memory_desc_t *pin = backward ? &ps : &pb, *pout = backward ? &pb : &ps;
  const dnnl_memory_desc_t *min = backward ? &e->small : &e->big, *mout = backward ? &e->big : &e->small;
  dnnl_primitive_t rin = backward ? e->r_small : e->r_big, rout = backward ? e->r_big : e->r_small;
  void *bin = (void *)in, *bout = out;
  if (rin) {
    if (!(bin = scratch_get(0, dnnl_memory_desc_get_size(min), what)) ||
        !(bout = scratch_get(1, dnnl_memory_desc_get_size(mout), what)) ||
        run_reorder(rin, pin, (void *)in, min, bin, what))
      return -1;
  }
  int args[2] = {backward ? DNNL_ARG_DIFF_DST : DNNL_ARG_SRC, backward ? DNNL_ARG_DIFF_SRC : DNNL_ARG_DST};
  const dnnl_memory_desc_t *const md[2] = {min, mout};
  void *const bufs[2] = {bin, bout};
  if (sg_dnnl_execute(&cache, e->h.prim, 2, args, md, bufs, what)) return -1;
  if (rout && run_reorder(rout, mout, bout, pout, out, what)) return -1;
  return 0;
}

/* forward: in = src, out = dst; backward: in = diff_dst, out = diff_src */
static int pool_call(bool backward, sg_dnnl_pool_alg alg, const sg_dnnl_pool_geom *g, const float *in, float *out) {
  if (!sg_dnnl_enabled() || !pool_geom_ok(g)) return 0;
  const char *what = backward ? "avg_pool2d backward" : "avg_pool2d";
  int64_t key[NKEY];
  pool_key(backward ? K_POOL_BWD : K_POOL_FWD, alg, g, key);
  pool_spec spec = {alg, g};
  pthread_mutex_lock(&cache.lock);
  sg_dnnl_entry *e = NULL;
  int rc = sg_dnnl_engine(&cache, what);
  if (!rc) rc = sg_dnnl_cache_get(&cache, key, backward ? pool_build_backward : pool_build_fwd, &spec, &e);
  if (rc == 1 && pool_run((entry_t *)e, backward, g, in, out, what)) rc = -1;
  pthread_mutex_unlock(&cache.lock);
  return rc;
}

int sg_dnnl_pool_fwd(sg_dnnl_pool_alg alg, const sg_dnnl_pool_geom *g, const float *src, float *dst) {
  return pool_call(false, alg, g, src, dst);
}

int sg_dnnl_pool_backward(sg_dnnl_pool_alg alg, const sg_dnnl_pool_geom *g, const float *diff_dst, float *diff_src) {
  return pool_call(true, alg, g, diff_dst, diff_src);
}

#else /* !SG_HAVE_DNNL */
int sg_dnnl_pool_fwd(sg_dnnl_pool_alg alg, const sg_dnnl_pool_geom *g, const float *src, float *dst) {
  (void)alg; (void)g; (void)src; (void)dst;
  return 0;
}
int sg_dnnl_pool_backward(sg_dnnl_pool_alg alg, const sg_dnnl_pool_geom *g, const float *diff_dst, float *diff_src) {
  (void)alg; (void)g; (void)diff_dst; (void)diff_src;
  return 0;
}
int sg_dnnl_pool_cache_size(void) { return 0; }

#endif
