/* What the oneDNN paths (conv, pool, eltwise) share: one CPU engine,
 * a checked-call macro, the primitive cache each path instantiates (with its
 * own lock and stream), grow-only scratch buffers and one exit hook that
 * releases every cache before the engine goes. Only built with SG_HAVE_DNNL. */
#ifndef SG_DNNL_COMMON_H
#define SG_DNNL_COMMON_H

#ifdef SG_HAVE_DNNL
#include "../core/tensor.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <oneapi/dnnl/dnnl_debug.h>

/* Calls fn args; on failure sets an sg error naming `what` and the call, and jumps to `fail`. */
#define SG_DNNL_CHECK(what, fn, args)                                                \
  do {                                                                               \
    dnnl_status_t st_ = fn args;                                                     \
    if (st_ != dnnl_success) {                                                       \
      sg_error_set("%s (oneDNN): %s failed: %s", what, #fn, dnnl_status2str(st_));   \
      goto fail;                                                                     \
    }                                                                                \
  } while (0)

/* ------------------------------------------------------ primitive cache */

/* Longest key (in int64 words) a cache may use: conv's is the longest. */
#define SG_DNNL_KEY_MAX 24

/* The start of every cached entry: what the cache itself needs and the
 * handles every path holds. A path's entry struct embeds it as its first
 * member and adds its own fields after it. */
typedef struct {
  bool used;
  bool ok;        /* false: oneDNN cannot do this (a remembered refusal) */
  uint64_t stamp; /* LRU clock at the last use */
  int64_t key[SG_DNNL_KEY_MAX];
  dnnl_primitive_desc_t hint, pd; /* hint: the forward pd a backward one is built from */
  dnnl_primitive_t prim;
} sg_dnnl_entry;

/* Fills a fresh entry (key set, everything else zero) from the path's
 * `spec`: 1 built, 0 oneDNN cannot do it, -1 error (sg_error set). On 0 or
 * -1 the cache destroys whatever handles it left. */
typedef int (*sg_dnnl_build_fn)(sg_dnnl_entry *e, const void *spec);

/* A fixed-size LRU cache of entries keyed by `keylen` int64 words, with the
 * lock that serialises a path's calls and the path's engine and stream. A path
 * defines one statically, filling the fields above the line. */
typedef struct {
  void *entries;      /* cap entries of `stride` bytes, each starting with sg_dnnl_entry */
  size_t stride;
  int cap;
  int keylen;
  bool keep_refusals; /* remember "oneDNN cannot do this" instead of asking again */
  void (*free_extra)(sg_dnnl_entry *e); /* destroys the path's own handles in e; may be NULL */
  void (*release_extra)(void);          /* frees the path's other resources at exit; may be NULL */
  pthread_mutex_t lock;
  /* ---- set by dnnl_common.c */
  dnnl_engine_t eng;
  dnnl_stream_t strm;
  uint64_t clock;
} sg_dnnl_cache;

/* The shared engine and the cache's own stream (created once) in c->eng,
 * c->strm; registers c so that its entries are released at exit before the
 * engine is destroyed. Caller holds c->lock. 0, or -1 with an error. */
int sg_dnnl_engine(sg_dnnl_cache *c, const char *what);

/* The entry for key[0..keylen), built by `build` on a miss (evicting the
 * least recently used entry when full). 1: usable entry in *out; 0: oneDNN
 * cannot do it; -1: error. Caller holds c->lock. */
int sg_dnnl_cache_get(sg_dnnl_cache *c, const int64_t *key, sg_dnnl_build_fn build, const void *spec,
                      sg_dnnl_entry **out);

/* Destroys e's handles and zeroes all but its key, use and stamp (a build
 * that starts over under the same key). */
void sg_dnnl_entry_clear(sg_dnnl_cache *c, sg_dnnl_entry *e);

/* Number of usable entries (for tests). Takes c->lock. */
int sg_dnnl_cache_count(sg_dnnl_cache *c);

/* Runs prim on c's stream, argument k being arg[k] over a memory of layout
 * *md[k] wrapping buf[k] (no copy), and waits. At most SG_DNNL_MAX_ARGS
 * arguments. 0, or -1 with an error naming `what`. Caller holds c->lock. */
#define SG_DNNL_MAX_ARGS 8
int sg_dnnl_execute(sg_dnnl_cache *c, dnnl_primitive_t prim, int nargs, const int *arg,
                    const dnnl_memory_desc_t *const *md, void *const *buf, const char *what);

/* A grow-only buffer: calls are serialised by the caller's lock, so steady
 * state allocates nothing. */
typedef struct { void *p; size_t size; } sg_dnnl_scratch;
void *sg_dnnl_scratch_get(sg_dnnl_scratch *s, size_t bytes, const char *what);
void sg_dnnl_scratch_free(sg_dnnl_scratch *s);

/* A buffer for the length of one call (blocked copies, scratchpads): a tensor
 * storage, so it comes from (and goes back to) the allocator's block cache and
 * counts in the memory statistics, and holds no memory between calls.
 * *hold receives the storage to release with sg_storage_decref; NULL with an
 * error when out of memory. */
void *sg_dnnl_transient(size_t bytes, sg_storage **hold, const char *what);
#endif
#endif
