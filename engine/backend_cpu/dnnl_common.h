/* What the oneDNN paths (conv, pool, eltwise) share: one CPU engine,
 * a checked-call macro, grow-only scratch buffers and one exit hook that
 * releases every path's cache before the engine goes. Each path keeps its
 * own lock, stream and primitive cache. Only built with SG_HAVE_DNNL (but for
 * the batch norm path note below). */
#ifndef SG_DNNL_COMMON_H
#define SG_DNNL_COMMON_H

/* Which implementation ran the last batch norm (forward or backward) on this
 * thread: "kernel" (backend_cpu/cpu_kernels.c), "loops", "cuda" or "none"
 * (ops/norm.c notes it; tests read it through F._bn_path). Here until batch
 * norm has a cpu table file of its own; built with or without oneDNN. */
const char *sg_bn_last_path(void);
void sg_bn_note_path(const char *path);

#ifdef SG_HAVE_DNNL
#include "../core/tensor.h"
#include <oneapi/dnnl/dnnl.h>
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

/* The shared engine and a stream of the caller's own (*strm, created once).
 * `release` (the caller's cache cleanup) runs at exit before the engine is
 * destroyed. The caller holds its own lock. 0, or -1 with an error. */
int sg_dnnl_engine(const char *what, void (*release)(void), dnnl_engine_t *eng, dnnl_stream_t *strm);

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
