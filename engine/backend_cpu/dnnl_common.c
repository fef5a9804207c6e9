#include "dnnl_common.h"

/* the batch norm path note (see dnnl_common.h), built with or without oneDNN */

#ifdef SG_HAVE_DNNL
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <string.h>

#define MAX_CACHES 8

static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t shared_engine;
static sg_dnnl_cache *caches[MAX_CACHES];
static int ncaches;

static sg_dnnl_entry *entry_at(sg_dnnl_cache *c, int k) {
  return (sg_dnnl_entry *)((char *)c->entries + (size_t)k * c->stride);
}

void sg_dnnl_entry_clear(sg_dnnl_cache *c, sg_dnnl_entry *e) {
  if (c->free_extra) c->free_extra(e);
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->pd) dnnl_primitive_desc_destroy(e->pd);
  if (e->hint) dnnl_primitive_desc_destroy(e->hint);
  e->prim = NULL;
  e->pd = e->hint = NULL;
  e->ok = false;
  memset((char *)e + sizeof *e, 0, c->stride - sizeof *e);
}

static void entry_free(sg_dnnl_cache *c, sg_dnnl_entry *e) {
  sg_dnnl_entry_clear(c, e);
  memset(e, 0, sizeof *e);
}

int sg_dnnl_cache_get(sg_dnnl_cache *c, const int64_t *key, sg_dnnl_build_fn build, const void *spec,
                      sg_dnnl_entry **out) {
  size_t kbytes = (size_t)c->keylen * sizeof *key;
  int victim = 0;
  for (int k = 0; k < c->cap; k++) {
    sg_dnnl_entry *e = entry_at(c, k);
    if (e->used && memcmp(e->key, key, kbytes) == 0) {
      e->stamp = ++c->clock;
      *out = e;
      return e->ok ? 1 : 0;
    }
    if (!e->used) victim = k;
    else if (entry_at(c, victim)->used && e->stamp < entry_at(c, victim)->stamp) victim = k;
  }
  sg_dnnl_entry *e = entry_at(c, victim);
  if (e->used) entry_free(c, e);
  memcpy(e->key, key, kbytes);
  int rc = build(e, spec);
  if (rc < 0 || (rc == 0 && !c->keep_refusals)) {
    entry_free(c, e);
    return rc;
  }
  if (rc == 0) sg_dnnl_entry_clear(c, e); /* remember the refusal; keep nothing else */
  e->used = true;
  e->ok = rc == 1;
  e->stamp = ++c->clock;
  *out = e;
  return rc;
}

int sg_dnnl_cache_count(sg_dnnl_cache *c) {
  int n = 0;
  pthread_mutex_lock(&c->lock);
  for (int k = 0; k < c->cap; k++) n += entry_at(c, k)->used && entry_at(c, k)->ok;
  pthread_mutex_unlock(&c->lock);
  return n;
}

int sg_dnnl_execute(sg_dnnl_cache *c, dnnl_primitive_t prim, int nargs, const int *arg,
                    const dnnl_memory_desc_t *const *md, void *const *buf, const char *what) {
  dnnl_memory_t mem[SG_DNNL_MAX_ARGS] = {0};
  dnnl_exec_arg_t ea[SG_DNNL_MAX_ARGS];
  int rc = -1;
  if (nargs > SG_DNNL_MAX_ARGS) {
    sg_error_set("%s (oneDNN): %d arguments, at most %d", what, nargs, SG_DNNL_MAX_ARGS);
    return -1;
  }
  for (int k = 0; k < nargs; k++) {
    SG_DNNL_CHECK(what, dnnl_memory_create, (&mem[k], md[k], c->eng, buf[k]));
    ea[k].arg = arg[k];
    ea[k].memory = mem[k];
  }
  SG_DNNL_CHECK(what, dnnl_primitive_execute, (prim, c->strm, nargs, ea));
  SG_DNNL_CHECK(what, dnnl_stream_wait, (c->strm));
  rc = 0;
fail:
  for (int k = 0; k < nargs; k++)
    if (mem[k]) dnnl_memory_destroy(mem[k]);
  return rc;
}

static void release_cache(sg_dnnl_cache *c) {
  pthread_mutex_lock(&c->lock);
  for (int k = 0; k < c->cap; k++)
    if (entry_at(c, k)->used) entry_free(c, entry_at(c, k));
  if (c->release_extra) c->release_extra();
  if (c->strm) dnnl_stream_destroy(c->strm);
  c->strm = NULL;
  c->eng = NULL;
  pthread_mutex_unlock(&c->lock);
}

static void release_everything(void) {
  for (int k = ncaches - 1; k >= 0; k--) release_cache(caches[k]);
  pthread_mutex_lock(&engine_lock);
  if (shared_engine) dnnl_engine_destroy(shared_engine);
  shared_engine = NULL;
  pthread_mutex_unlock(&engine_lock);
}

int sg_dnnl_engine(sg_dnnl_cache *c, const char *what) {
  if (c->eng && c->strm) return 0;
  pthread_mutex_lock(&engine_lock);
  int rc = -1;
  if (!shared_engine) {
    SG_DNNL_CHECK(what, dnnl_engine_create, (&shared_engine, dnnl_cpu, 0));
    atexit(release_everything);
  }
  bool known = false;
  for (int k = 0; k < ncaches; k++) known = known || caches[k] == c;
  if (!known && ncaches < MAX_CACHES) caches[ncaches++] = c;
  c->eng = shared_engine;
  SG_DNNL_CHECK(what, dnnl_stream_create, (&c->strm, shared_engine, dnnl_stream_default_flags));
  rc = 0;
fail:
  pthread_mutex_unlock(&engine_lock);
  return rc;
}

void *sg_dnnl_scratch_get(sg_dnnl_scratch *s, size_t bytes, const char *what) {
  if (bytes <= s->size && s->p) return s->p;
  free(s->p);
  s->size = 0;
  size_t sz = (bytes + 63) / 64 * 64;
  if (!(s->p = aligned_alloc(64, sz ? sz : 64))) {
    sg_error_set("%s (oneDNN): out of memory for a %zu-byte buffer", what, bytes);
    return NULL;
  }
  s->size = bytes;
  return s->p;
}

void *sg_dnnl_transient(size_t bytes, sg_storage **hold, const char *what) {
  *hold = sg_storage_new(SG_CPU, bytes ? bytes : 1);
  if (!*hold) {
    sg_error_set("%s (oneDNN): out of memory for a %zu-byte buffer", what, bytes);
    return NULL;
  }
  return (*hold)->data;
}

void sg_dnnl_scratch_free(sg_dnnl_scratch *s) {
  free(s->p);
  s->p = NULL;
  s->size = 0;
}
#endif
