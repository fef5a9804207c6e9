/* The caching device allocator, the workspace and pinned host memory.
 *
 * cudaMalloc/cudaFree synchronise the device and cost tens of microseconds,
 * while a training step frees and asks again for the same sizes every
 * iteration. So memory is obtained in segments and handed out as blocks:
 *  - sizes are rounded to 512 bytes;
 *  - requests up to 1 MiB come from 2 MiB segments (the small pool), larger
 *    ones from segments of their own (20 MiB for < 10 MiB, else rounded to
 *    2 MiB) in the large pool;
 *  - a request takes the smallest free block of its pool that fits (best fit)
 *    and splits off the rest when it is worth keeping (>= 512 B small,
 *    > 1 MiB large); a freed block merges with free neighbours of its segment.
 * All kernels run on one stream, so a block freed by the host may be handed
 * out again at once: the next user's kernels queue behind the last user's. */
#include "common.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define ROUND 512u
#define SMALL_MAX ((size_t)1 << 20)
#define SMALL_SEGMENT ((size_t)2 << 20)
#define MID_MAX ((size_t)10 << 20)
#define MID_SEGMENT ((size_t)20 << 20)
#define LARGE_ROUND ((size_t)2 << 20)

typedef struct block {
  char *ptr;
  size_t size;
  bool free, small;
  struct block *prev, *next;   /* neighbours inside the segment (address order) */
  struct block *fprev, *fnext; /* free list of the pool */
} block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static block *free_small, *free_large;
static sg_alloc_stats st;

/* ---- pointer -> block map (open addressing; live blocks only) ---- */
static block **map;
static size_t map_cap, map_used;

static size_t slot_of(const void *p) { return ((uintptr_t)p >> 9) * 0x9E3779B97F4A7C15ull % map_cap; }

static bool map_grow(void);
static bool map_put(block *b) {
  if ((map_used + 1) * 2 > map_cap && !map_grow()) return false;
  size_t i = slot_of(b->ptr);
  while (map[i]) i = (i + 1) % map_cap;
  map[i] = b;
  map_used++;
  return true;
}
static bool map_grow(void) {
  size_t old_cap = map_cap;
  block **old = map;
  size_t cap = old_cap ? old_cap * 2 : 1024;
  block **m = calloc(cap, sizeof *m);
  if (!m) return false;
  map = m; map_cap = cap; map_used = 0;
  for (size_t i = 0; i < old_cap; i++) if (old[i]) map_put(old[i]);
  free(old);
  return true;
}
static block *map_take(const void *p) {
  if (!map_cap) return NULL;
  size_t i = slot_of(p);
  while (map[i] && map[i]->ptr != p) i = (i + 1) % map_cap;
  block *b = map[i];
  if (!b) return NULL;
  map[i] = NULL;
  map_used--;
  /* re-insert the rest of the probe run so later lookups still find them */
  for (size_t j = (i + 1) % map_cap; map[j]; j = (j + 1) % map_cap) {
    block *m = map[j];
    map[j] = NULL;
    map_used--;
    map_put(m);
  }
  return b;
}

/* ---- free lists ---- */
static block **pool_of(const block *b) { return b->small ? &free_small : &free_large; }
static void list_push(block *b) {
  block **head = pool_of(b);
  b->fprev = NULL; b->fnext = *head;
  if (*head) (*head)->fprev = b;
  *head = b;
}
static void list_remove(block *b) {
  if (b->fprev) b->fprev->fnext = b->fnext; else *pool_of(b) = b->fnext;
  if (b->fnext) b->fnext->fprev = b->fprev;
  b->fprev = b->fnext = NULL;
}

static block *best_fit(bool small, size_t size) {
  block *best = NULL;
  for (block *b = small ? free_small : free_large; b; b = b->fnext)
    if (b->size >= size && (!best || b->size < best->size)) best = b;
  return best;
}

static size_t segment_size(size_t size) {
  if (size <= SMALL_MAX) return SMALL_SEGMENT;
  if (size < MID_MAX) return MID_SEGMENT;
  return (size + LARGE_ROUND - 1) / LARGE_ROUND * LARGE_ROUND;
}

static block *new_segment(bool small, size_t seg) {
  void *p = NULL;
  if (cudaMalloc(&p, seg) != cudaSuccess) { (void)cudaGetLastError(); return NULL; }
  block *b = calloc(1, sizeof *b);
  if (!b) { cudaFree(p); return NULL; }
  b->ptr = p; b->size = seg; b->small = small; b->free = true;
  st.reserved += (int64_t)seg;
  if (st.reserved > st.peak_reserved) st.peak_reserved = st.reserved;
  st.segments++;
  st.driver_allocs++;
  list_push(b);
  return b;
}

/* Gives wholly free segments back to the driver. Caller holds the lock. */
static void release_free_segments(void) {
  for (int pool = 0; pool < 2; pool++) {
    block *b = pool ? free_large : free_small;
    while (b) {
      block *nx = b->fnext;
      if (!b->prev && !b->next) { /* a free block that is its whole segment */
        list_remove(b);
        st.reserved -= (int64_t)b->size;
        st.segments--;
        cudaFree(b->ptr);
        free(b);
      }
      b = nx;
    }
  }
}

void *sg_cuda_malloc(size_t nbytes) {
  if (!sg_cuda_ensure()) return NULL;
  size_t size = (nbytes + ROUND - 1) / ROUND * ROUND;
  if (!size) size = ROUND;
  bool small = size <= SMALL_MAX;
  pthread_mutex_lock(&lock);
  block *b = best_fit(small, size);
  if (b) st.cache_hits++;
  else {
    b = new_segment(small, segment_size(size));
    if (!b) { /* the cache may hold enough in pieces of the wrong size */
      release_free_segments();
      b = new_segment(small, segment_size(size));
    }
    if (!b && !small && segment_size(size) > size) b = new_segment(small, size); /* exact, last try */
  }
  if (!b) {
    st.ooms++;
    size_t dev_free = 0, dev_total = 0;
    cudaMemGetInfo(&dev_free, &dev_total);
    (void)cudaGetLastError();
    sg_error_set("cuda: out of memory: cannot allocate %zu bytes (%lld bytes in use by tensors, %lld reserved by "
                 "the cache, %zu of %zu bytes free on the device)",
                 nbytes, (long long)st.allocated, (long long)st.reserved, dev_free, dev_total);
    pthread_mutex_unlock(&lock);
    return NULL;
  }
  list_remove(b);
  size_t rest = b->size - size;
  if ((small && rest >= ROUND) || (!small && rest > SMALL_MAX)) {
    block *r = calloc(1, sizeof *r);
    if (r) { /* without memory for the header the block is simply not split */
      r->ptr = b->ptr + size; r->size = rest; r->small = small; r->free = true;
      r->prev = b; r->next = b->next;
      if (b->next) b->next->prev = r;
      b->next = r;
      b->size = size;
      list_push(r);
    }
  }
  b->free = false;
  if (!map_put(b)) { /* cannot track it: undo */
    b->free = true;
    list_push(b);
    pthread_mutex_unlock(&lock);
    sg_error_set("cuda: out of host memory for the allocator's map");
    return NULL;
  }
  st.allocated += (int64_t)b->size;
  if (st.allocated > st.peak_allocated) st.peak_allocated = st.allocated;
  st.allocations++;
  pthread_mutex_unlock(&lock);
  return b->ptr;
}

static void merge_into(block *dst, block *src) { /* src follows dst, both free */
  list_remove(src);
  dst->size += src->size;
  dst->next = src->next;
  if (src->next) src->next->prev = dst;
  free(src);
}

void sg_cuda_free(void *p) {
  if (!p) return;
  pthread_mutex_lock(&lock);
  block *b = map_take(p);
  if (b) {
    st.allocated -= (int64_t)b->size;
    b->free = true;
    list_push(b);
    if (b->next && b->next->free) merge_into(b, b->next);
    if (b->prev && b->prev->free) { block *pv = b->prev; merge_into(pv, b); }
  }
  pthread_mutex_unlock(&lock);
}

void sg_cuda_empty_cache(void) {
  if (!sg_cuda_available()) return;
  pthread_mutex_lock(&lock);
  release_free_segments();
  pthread_mutex_unlock(&lock);
}

sg_alloc_stats sg_cuda_memory_stats(void) {
  pthread_mutex_lock(&lock);
  sg_alloc_stats s = st;
  pthread_mutex_unlock(&lock);
  return s;
}

void sg_cuda_reset_peak_stats(void) {
  pthread_mutex_lock(&lock);
  st.peak_allocated = st.allocated;
  st.peak_reserved = st.reserved;
  pthread_mutex_unlock(&lock);
}

/* ---- workspace ---- */
static void *ws;
static size_t ws_size;

void *sg_cuda_workspace(size_t nbytes) {
  if (nbytes <= ws_size) return ws;
  size_t want = nbytes + nbytes / 4; /* grow with headroom: the next layer is often a little larger */
  sg_cuda_free(ws); /* safe at once: one stream orders the old user before the new one */
  ws = NULL; ws_size = 0;
  void *p = sg_cuda_malloc(want);
  if (!p) return NULL;
  ws = p; ws_size = want;
  return ws;
}

/* ---- pinned host memory ----
 * A freed block may still be read by an asynchronous copy queued on the
 * stream: it is parked with an event and reused only once the event passed. */
#define PIN_SLOTS 32
static struct { void *p; size_t n; cudaEvent_t done; } parked[PIN_SLOTS];
static int n_parked;

void *sg_cuda_host_malloc(size_t nbytes) {
  if (!sg_cuda_ensure()) return NULL;
  pthread_mutex_lock(&lock);
  for (int k = 0; k < n_parked; k++)
    if (parked[k].n == nbytes && cudaEventQuery(parked[k].done) == cudaSuccess) {
      void *p = parked[k].p;
      cudaEventDestroy(parked[k].done);
      parked[k] = parked[--n_parked];
      pthread_mutex_unlock(&lock);
      return p;
    }
  (void)cudaGetLastError(); /* cudaEventQuery's "not ready" */
  pthread_mutex_unlock(&lock);
  void *p = NULL;
  if (!SG_CUDA_OK(cudaHostAlloc(&p, nbytes, cudaHostAllocDefault))) return NULL;
  pthread_mutex_lock(&lock);
  st.pinned_bytes += (int64_t)nbytes;
  pthread_mutex_unlock(&lock);
  return p;
}

void sg_cuda_host_free(void *p, size_t nbytes) {
  if (!p) return;
  pthread_mutex_lock(&lock);
  cudaEvent_t ev;
  if (n_parked < PIN_SLOTS && cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) == cudaSuccess) {
    cudaEventRecord(ev, sg_cuda_stream());
    parked[n_parked].p = p; parked[n_parked].n = nbytes; parked[n_parked].done = ev;
    n_parked++;
    pthread_mutex_unlock(&lock);
    return;
  }
  st.pinned_bytes -= (int64_t)nbytes;
  pthread_mutex_unlock(&lock);
  cudaStreamSynchronize(sg_cuda_stream()); /* nothing may still read it */
  cudaFreeHost(p);
}
