#include "dnnl_common.h"

/* the batch norm path note (see dnnl_common.h), built with or without oneDNN */
static _Thread_local const char *bn_path = "none";
const char *sg_bn_last_path(void) { return bn_path; }
void sg_bn_note_path(const char *path) { bn_path = path; }

#ifdef SG_HAVE_DNNL
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define MAX_USERS 8

static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t shared_engine;
static void (*releases[MAX_USERS])(void);
static int nreleases;

static void release_everything(void) {
  for (int k = nreleases - 1; k >= 0; k--) releases[k]();
  pthread_mutex_lock(&engine_lock);
  if (shared_engine) dnnl_engine_destroy(shared_engine);
  shared_engine = NULL;
  pthread_mutex_unlock(&engine_lock);
}

int sg_dnnl_engine(const char *what, void (*release)(void), dnnl_engine_t *eng, dnnl_stream_t *strm) {
  if (*eng && *strm) return 0;
  pthread_mutex_lock(&engine_lock);
  int rc = -1;
  if (!shared_engine) {
    SG_DNNL_CHECK(what, dnnl_engine_create, (&shared_engine, dnnl_cpu, 0));
    atexit(release_everything);
  }
  bool known = false;
  for (int k = 0; k < nreleases; k++) known = known || releases[k] == release;
  if (!known && nreleases < MAX_USERS) releases[nreleases++] = release;
  *eng = shared_engine;
  SG_DNNL_CHECK(what, dnnl_stream_create, (strm, shared_engine, dnnl_stream_default_flags));
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
