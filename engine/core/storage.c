/* Storage allocation and per-device memory accounting. */
#include "tensor.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char err_buf[1024];

void sg_error_set(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
}
const char *sg_error_get(void) { return err_buf[0] ? err_buf : "unknown error"; }

const char *sg_device_name(sg_device d) { return d == SG_CUDA ? "cuda" : "cpu"; }

static struct {
  atomic_llong live_tensors, live_storages, bytes, peak;
} mem[SG_NDEVICES];

static sg_pressure_fn pressure_fn;
static void *pressure_ud;

void sg_set_pressure_hook(sg_pressure_fn fn, void *ud) { pressure_fn = fn; pressure_ud = ud; }

sg_memstats sg_memory_stats(sg_device dev) {
  sg_memstats s = {mem[dev].live_tensors, mem[dev].live_storages, mem[dev].bytes, mem[dev].peak};
  return s;
}

void sg_memstats_tensor_delta(sg_device dev, int d); /* used by tensor.c */
void sg_memstats_tensor_delta(sg_device dev, int d) { mem[dev].live_tensors += d; }

static void *cpu_alloc(size_t n) {
  size_t rounded = (n + 63) & ~(size_t)63;
  return aligned_alloc(64, rounded ? rounded : 64);
}

sg_storage *sg_storage_new(sg_device dev, size_t nbytes) {
  if (dev != SG_CPU) { sg_error_set("device '%s' is not available in this build", sg_device_name(dev)); return NULL; }
  if (pressure_fn) pressure_fn(pressure_ud, nbytes, false);
  void *data = cpu_alloc(nbytes);
  if (!data && pressure_fn) { /* let the Lua side collect garbage, then retry once */
    pressure_fn(pressure_ud, nbytes, true);
    data = cpu_alloc(nbytes);
  }
  if (!data) {
    sg_error_set("out of memory: cannot allocate %zu bytes on %s (%lld bytes in use)", nbytes,
                 sg_device_name(dev), (long long)mem[dev].bytes);
    return NULL;
  }
  sg_storage *s = malloc(sizeof *s);
  if (!s) { free(data); sg_error_set("out of memory"); return NULL; }
  atomic_init(&s->refcount, 1);
  atomic_init(&s->version, 0);
  s->device = dev;
  s->nbytes = nbytes;
  s->data = data;
  long long now = (mem[dev].bytes += (long long)nbytes);
  if (now > mem[dev].peak) mem[dev].peak = now;
  mem[dev].live_storages++;
  return s;
}

void sg_storage_incref(sg_storage *s) { atomic_fetch_add(&s->refcount, 1); }

void sg_storage_decref(sg_storage *s) {
  if (!s || atomic_fetch_sub(&s->refcount, 1) != 1) return;
  mem[s->device].bytes -= (long long)s->nbytes;
  mem[s->device].live_storages--;
  free(s->data);
  free(s);
}
