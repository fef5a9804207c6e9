/* Storage: a refcounted block of memory on one device, with the version
 * counter autograd checks. Where its bytes come from is memory.c's business. */
#include "tensor.h"
#include <stdlib.h>

static sg_storage *wrap_storage(sg_device dev, size_t nbytes, void *data, bool pinned) {
  sg_storage *s = malloc(sizeof *s);
  if (!s) return NULL;
  atomic_init(&s->refcount, 1);
  atomic_init(&s->version, 0);
  s->device = dev;
  s->nbytes = nbytes;
  s->data = data;
  s->pinned = pinned;
  sg_mem_account(dev, (long long)nbytes, 1);
  return s;
}

sg_storage *sg_storage_new(sg_device dev, size_t nbytes) {
  void *data = sg_mem_alloc(dev, nbytes);
  if (!data) return NULL;
  sg_storage *s = wrap_storage(dev, nbytes, data, false);
  if (!s) { sg_mem_free(dev, false, data, nbytes); sg_error_set("out of memory"); }
  return s;
}

sg_storage *sg_storage_new_pinned(size_t nbytes) {
  void *data = sg_mem_alloc_pinned(nbytes);
  if (!data) return sg_storage_new(SG_CPU, nbytes); /* no GPU: plain memory serves as well */
  sg_storage *s = wrap_storage(SG_CPU, nbytes, data, true);
  if (!s) { sg_mem_free(SG_CPU, true, data, nbytes); sg_error_set("out of memory"); }
  return s;
}

void sg_storage_incref(sg_storage *s) { atomic_fetch_add(&s->refcount, 1); }

void sg_storage_decref(sg_storage *s) {
  if (!s || atomic_fetch_sub(&s->refcount, 1) != 1) return;
  sg_mem_account(s->device, -(long long)s->nbytes, -1);
  sg_mem_free(s->device, s->pinned, s->data, s->nbytes);
  free(s);
}
