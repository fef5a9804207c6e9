#define _GNU_SOURCE /* mremap */
/* Memory policy, in one place: the host allocator (a cache of mapped blocks
 * within a resident budget), device memory through the device table, the
 * per-device accounting, the out-of-memory policy (give cached blocks back,
 * let the owner of the collector free what is dead, retry) and empty_cache.
 * When the Lua collector steps is the binding's business (engine/lua/
 * lua_memory.c): it reads the accounting between ops, never from inside one.
 * The measurements behind the constants are in scripts/bench/HISTORY.md. */
#include "../backend.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static struct {
  atomic_llong live_tensors, live_storages, bytes, peak;
} mem[SG_NDEVICES];

static sg_oom_fn oom_fn;
static void *oom_ud;

void sg_set_oom_hook(sg_oom_fn fn, void *ud) { oom_fn = fn; oom_ud = ud; }

sg_memstats sg_memory_stats(sg_device dev) {
  sg_memstats s = {mem[dev].live_tensors, mem[dev].live_storages, mem[dev].bytes, mem[dev].peak};
  return s;
}

void sg_memstats_tensor_delta(sg_device dev, int d) { mem[dev].live_tensors += d; }

/* Large blocks (64 KiB and up: blocks of a few hundred KB with interleaved lifetimes fragment glibc's
 * heap) are mapped from the kernel directly, in whole pages, with transparent huge pages asked for
 * (fewer faults, fewer TLB misses in the kernels). A fresh mapping is faulted in and zeroed by the
 * kernel page by page, a large share of a training step when every activation and gradient is fresh,
 * so released blocks go on a list and serve later requests (see cpu_alloc). Resident memory is
 * bounded by accounting: what is handed out (whole blocks) plus what is cached stays within the peak
 * of what was handed out plus SLACK, the oldest cached blocks unmapped first, and at most CACHE_SLOTS
 * blocks and CACHE_BYTES bytes are cached. SLACK trades the page faults left per step against peak
 * memory; sizes are not rounded to classes (their unused tails cost more than they saved).
 * sg_mem_alloc empties the list before giving up on an allocation.
 * Off under AddressSanitizer (plain malloc) so that it still sees every use after free. */
#if defined(__SANITIZE_ADDRESS__)
#define SG_BLOCK_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_BLOCK_CACHE 0
#endif
#endif
#ifndef SG_BLOCK_CACHE
#define SG_BLOCK_CACHE 1
#endif
#define CACHE_MIN ((size_t)64 << 10)
#define CACHE_SLOTS 512
#define CACHE_BYTES ((size_t)1 << 30)
#define SLACK ((long long)64 << 20)
#define PAGE ((size_t)4096)
static struct { void *p; size_t n; } cache[CACHE_SLOTS]; /* oldest first */
static int cache_count;
static size_t cache_bytes;
/* the bytes of the large blocks handed out, whole (a cached block up to twice the size asked for goes
 * out whole, and its tail may be resident from an earlier use), and their peak; under cache_lock */
static long long held_bytes, held_peak;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t round64(size_t n) { size_t r = (n + 63) & ~(size_t)63; return r ? r : 64; }

static bool is_large(size_t rounded) { return SG_BLOCK_CACHE && rounded >= CACHE_MIN; }

/* A large block is a private anonymous mapping of `size` bytes whose first HDR bytes record that size
 * (a block handed out again may be larger than asked for) and whether it is one: when the kernel
 * refuses a mapping (vm.max_map_count reached by very many live blocks) it comes from malloc instead
 * and is freed, not cached. The data starts after the HDR bytes. */
#define HDR ((size_t)64)
static size_t block_size(void *data) { return ((size_t *)((char *)data - HDR))[0]; }
static bool block_mapped(void *data) { return ((size_t *)((char *)data - HDR))[1] == 0; }

static void *map_block(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  size_t mapped = 1;
  if (p == MAP_FAILED) {
    if (!(p = aligned_alloc(64, size))) return NULL;
    mapped = 0;
  }
#ifdef MADV_HUGEPAGE
  else madvise(p, size, MADV_HUGEPAGE);
#endif
  ((size_t *)p)[0] = size;
  ((size_t *)p)[1] = !mapped;
  return (char *)p + HDR;
}

static void unmap_block(void *data) {
  if (block_mapped(data)) munmap((char *)data - HDR, block_size(data));
  else free((char *)data - HDR);
}

/* removes entry k, keeping the order; caller holds the lock */
static void cache_take(int k) {
  cache_bytes -= cache[k].n;
  memmove(&cache[k], &cache[k + 1], sizeof cache[0] * (size_t)(cache_count - k - 1));
  cache_count--;
}

/* takes the oldest blocks off the list until `bytes` are released (or none is left) into out[] (at
 * most CACHE_SLOTS); the caller unmaps them outside the lock */
static int cache_evict(size_t bytes, void **out) {
  int n = 0;
  size_t got = 0;
  while (cache_count > 0 && got < bytes) {
    out[n++] = cache[0].p;
    got += cache[0].n;
    cache_take(0);
  }
  return n;
}

/* A larger cached block goes out whole when the excess is small enough to leave resident (a tensor
 * that lives long keeps it): twice the size for blocks under 32 MiB, 25 % above. Cutting blocks down
 * more eagerly costs page faults when the next step needs them whole again; less eagerly, the peak
 * grows with the big models' activations. */
static bool too_large(size_t have, size_t want) {
  return have >= ((size_t)32 << 20) ? have / 5 > want / 4 : have / 2 > want;
}

/* A request is served, in this order, by: a cached block of its size; the smallest cached block
 * up to twice as large; a fresh mapping, while what is resident stays within the peak of the memory
 * in use plus SLACK; and only near that peak, the smallest larger cached block (cut down to size, its
 * tail unmapped, when too_large) or the largest smaller one grown to size. Cutting and growing away
 * from the peak churned: a small request cut a large block that the next large request grew back,
 * and every grown page is faulted in and zeroed again. */
static void *cpu_alloc(size_t n) {
  size_t rounded = round64(n);
  if (!is_large(rounded)) return aligned_alloc(64, rounded);
  size_t want = (rounded + HDR + PAGE - 1) & ~(PAGE - 1);
  void *p = NULL;
  size_t have = 0;
  pthread_mutex_lock(&cache_lock);
  int exact = -1, fit = -1, big = -1;
  for (int k = cache_count - 1; k >= 0 && exact < 0; k--) {
    size_t c = cache[k].n;
    if (c == want) exact = k;
    else if (c > want && (fit < 0 || c < cache[fit].n)) fit = k;
    else if (c < want && (big < 0 || c > cache[big].n)) big = k;
  }
  long long live = held_bytes + (long long)want, peak = held_peak;
  long long room = (peak > live ? peak : live) + SLACK - live - (long long)cache_bytes;
  bool close_fit = fit >= 0 && cache[fit].n / 2 <= want;
  if (exact < 0 && !close_fit && room >= 0) fit = big = -1; /* a fresh mapping */
  int k = exact >= 0 ? exact : fit >= 0 ? fit : big;
  if (k >= 0) {
    p = cache[k].p;
    have = cache[k].n;
    cache_take(k);
  }
  /* Near the peak of the memory in use, what is resident must stay within that peak plus SLACK: new
   * memory about to be faulted in first unmaps the oldest cached blocks beyond it, and a larger
   * cached block is cut down to size rather than handed out whole. Away from the peak the cache keeps
   * what it has and larger blocks go out whole (both save faults). */
  void *gone[CACHE_SLOTS];
  int ngone = 0;
  bool tight = room < (long long)(have > want ? have - want : 0);
  if (have < want && room < 0) ngone = cache_evict((size_t)-room, gone);
  bool resize = p && have != want && (have < want || too_large(have, want) || tight);
  held_bytes += (long long)(p && !resize ? have : want);
  if (held_bytes > held_peak) held_peak = held_bytes;
  pthread_mutex_unlock(&cache_lock);
  for (int j = 0; j < ngone; j++) unmap_block(gone[j]);
  if (resize) {
    char *base = (char *)p - HDR;
    void *q = mremap(base, have, want, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
      munmap(base, have);
      p = NULL;
    } else {
      ((size_t *)q)[0] = want;
      p = (char *)q + HDR;
    }
  }
  if (!p && !(p = map_block(want))) {
    pthread_mutex_lock(&cache_lock);
    held_bytes -= (long long)want;
    pthread_mutex_unlock(&cache_lock);
  }
  return p;
}

static void cpu_free(void *p, size_t n) {
  size_t rounded = round64(n);
  if (!p) return;
  if (!is_large(rounded)) {
    free(p);
    return;
  }
  size_t size = block_size(p);
  pthread_mutex_lock(&cache_lock);
  held_bytes -= (long long)size;
  pthread_mutex_unlock(&cache_lock);
  if (size > CACHE_BYTES || !block_mapped(p)) {
    unmap_block(p);
    return;
  }
  void *gone[CACHE_SLOTS];
  int ngone = 0;
  pthread_mutex_lock(&cache_lock);
  if (cache_count == CACHE_SLOTS || cache_bytes + size > CACHE_BYTES)
    ngone = cache_evict(cache_count == CACHE_SLOTS ? 1 : cache_bytes + size - CACHE_BYTES, gone);
  cache[cache_count].p = p;
  cache[cache_count].n = size;
  cache_count++;
  cache_bytes += size;
  pthread_mutex_unlock(&cache_lock);
  for (int k = 0; k < ngone; k++) unmap_block(gone[k]);
}

/* Host memory is core's own (the allocator above); other devices' comes from their table, which is
 * loaded whenever one of their storages exists. */
void sg_mem_free(sg_device dev, bool pinned, void *data, size_t nbytes) {
  const sg_backend *be = dev != SG_CPU || pinned ? sg_backend_loaded(pinned ? SG_CUDA : dev) : NULL;
  if (dev != SG_CPU) { be->free(data); return; }
  if (pinned) { be->host_free(data, nbytes ? nbytes : 1); return; }
  cpu_free(data, nbytes);
}

/* releases every cached block (before retrying a failed allocation) */
static void cpu_cache_flush(void) {
  pthread_mutex_lock(&cache_lock);
  for (int k = 0; k < cache_count; k++) unmap_block(cache[k].p);
  cache_count = 0;
  cache_bytes = 0;
  pthread_mutex_unlock(&cache_lock);
}

/* Unmaps the cached blocks and restarts the resident budget (the peak of what is handed out, plus a
 * slack) from what is in use now: after a transient peak such as building a model. */
static void cpu_empty_cache(void) {
  cpu_cache_flush();
  pthread_mutex_lock(&cache_lock);
  held_peak = held_bytes;
  pthread_mutex_unlock(&cache_lock);
}

static void *dev_alloc(const sg_backend *be, sg_device dev, size_t n) {
  return dev == SG_CPU ? cpu_alloc(n) : be->malloc(n);
}

static void dev_cache_flush(const sg_backend *be, sg_device dev) {
  if (dev == SG_CPU) cpu_cache_flush();
  else if (be->empty_cache) be->empty_cache();
}

void sg_mem_account(sg_device dev, long long bytes, int storages) {
  long long now = (mem[dev].bytes += bytes);
  if (now > mem[dev].peak) mem[dev].peak = now;
  mem[dev].live_storages += storages;
}

void *sg_mem_alloc(sg_device dev, size_t nbytes) {
  if ((unsigned)dev >= SG_NDEVICES) { sg_error_set("bad device %d", (int)dev); return NULL; }
  const sg_backend *be = NULL;
  if (dev != SG_CPU) {
    if (!(be = sg_backend_get(dev))) return NULL;
    if (!be->malloc) { sg_backend_missing("allocate", dev); return NULL; }
  }
  void *data = dev_alloc(be, dev, nbytes);
  if (!data) { /* give the cached blocks back, then retry */
    dev_cache_flush(be, dev);
    data = dev_alloc(be, dev, nbytes);
  }
  if (!data && oom_fn) { /* let the owner of the collector free what is dead, then retry once */
    oom_fn(oom_ud, nbytes);
    dev_cache_flush(be, dev);
    data = dev_alloc(be, dev, nbytes);
  }
  if (!data && dev == SG_CPU)
    sg_error_set("out of memory: cannot allocate %zu bytes on %s (%lld bytes in use)", nbytes, sg_device_name(dev),
                 (long long)mem[dev].bytes);
  /* (a device allocator's own message says what was asked and what is in use) */
  return data;
}

void *sg_mem_alloc_pinned(size_t nbytes) {
  /* pinning is asked for only ahead of GPU copies, so loading the GPU backend here costs nothing extra */
  const sg_backend *be = sg_device_available(SG_CUDA) ? sg_backend_loaded(SG_CUDA) : NULL;
  return be && be->host_malloc ? be->host_malloc(nbytes ? nbytes : 1) : NULL;
}

void sg_memory_empty_cache(sg_device dev) {
  if (dev == SG_CPU) {
    cpu_empty_cache();
    return;
  }
  const sg_backend *be = sg_backend_loaded(dev); /* a backend never loaded holds nothing */
  if (be && be->empty_cache && (!be->available || be->available())) be->empty_cache();
}
