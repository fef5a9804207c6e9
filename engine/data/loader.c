/* The threaded batch loader (see loader.h).
 *
 * Queue: batch b goes to slot b % prefetch. A worker claims the next batch
 * number only while it is less than consumed + prefetch, so a slot is always
 * free when its batch is claimed; the consumer takes batches strictly in
 * order. One mutex guards the counters and the slots; `ready` wakes the
 * consumer, `space` wakes the workers. */
#include "loader.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sg_loader_sample(sg_tensor *image, sg_tensor *mask, const sg_loader_item *it, sg_fill pad,
                     const sg_rnode *recipe, sg_pair *out) {
  out->image = out->mask = NULL;
  sg_warp_map m = {{1, 0, (double)it->left, 0, 1, (double)it->top}, NULL, NULL};
  sg_pair c;
  if (sg_aug_warp("loader crop", image, mask, &m, it->h, it->w, pad, &c)) return -1;
  if (!recipe) { *out = c; return 0; }
  int rc = sg_recipe_apply(recipe, it->seed, c.image, c.mask, out);
  sg_tensor_decref(c.image);
  sg_tensor_decref(c.mask);
  return rc;
}

typedef struct {
  int64_t b;
  bool ready;
  sg_tensor *img, *mask;
  char *err;
} slot;

struct sg_loader {
  int64_t nsrc;
  sg_tensor **images, **masks;
  const sg_rnode *recipe;
  sg_fill pad;
  int workers, prefetch;
  bool pin;                 /* batches in pinned host memory */
  sg_loader_item *items;
  int64_t n, batch, nb;
  pthread_mutex_t mu;
  pthread_cond_t ready, space;
  int64_t claim, consumed;
  bool stop;
  slot *slots;
  pthread_t *threads;
  int nthreads;
};

/* Makes batch b (any thread). */
static int make_batch(sg_loader *ld, int64_t b, sg_tensor **pimg, sg_tensor **pmask) {
  *pimg = *pmask = NULL;
  int64_t i0 = b * ld->batch, i1 = i0 + ld->batch;
  if (i1 > ld->n) i1 = ld->n;
  int64_t N = i1 - i0, C = 0, H = 0, W = 0;
  sg_tensor *bi = NULL, *bm = NULL;
  for (int64_t i = i0; i < i1; i++) {
    const sg_loader_item *it = &ld->items[i];
    sg_tensor *mask = ld->masks ? ld->masks[it->src] : NULL;
    sg_pair p;
    if (sg_loader_sample(ld->images[it->src], mask, it, ld->pad, ld->recipe, &p)) goto fail;
    sg_tensor *img = p.image, *mk = p.mask;
    int64_t c = img->ndim == 3 ? img->size[0] : 1, h = img->size[img->ndim - 2], w = img->size[img->ndim - 1];
    if (i == i0) {
      C = c; H = h; W = w;
      int64_t is[4] = {N, C, H, W}, ms[3] = {N, H, W};
      bi = ld->pin ? sg_empty_pinned(4, is, SG_F32) : sg_empty(4, is, SG_F32, SG_CPU);
      if (bi && mk) bm = ld->pin ? sg_empty_pinned(3, ms, SG_I64) : sg_empty(3, ms, SG_I64, SG_CPU);
      if (!bi || (mk && !bm)) { sg_tensor_decref(img); sg_tensor_decref(mk); goto fail; }
    }
    if (c != C || h != H || w != W || (!mk) != (!bm)) {
      sg_error_set("loader: sample %lld came out %lldx%lldx%lld but sample %lld %lldx%lldx%lld (the samples of a "
                   "batch must have one size)", (long long)(i + 1), (long long)c, (long long)h, (long long)w,
                   (long long)(i0 + 1), (long long)C, (long long)H, (long long)W);
      sg_tensor_decref(img); sg_tensor_decref(mk);
      goto fail;
    }
    sg_tensor *fi = sg_to_dtype(img, SG_F32), *ci = fi ? sg_contiguous(fi) : NULL;
    sg_tensor *fm = NULL, *cm = NULL;
    if (mk) { fm = sg_to_dtype(mk, SG_I64); cm = fm ? sg_contiguous(fm) : NULL; }
    bool ok = ci && (!mk || cm);
    if (ok) {
      memcpy((float *)sg_data_ptr(bi) + (i - i0) * C * H * W, sg_data_ptr(ci), sizeof(float) * (size_t)(C * H * W));
      if (mk) memcpy((int64_t *)sg_data_ptr(bm) + (i - i0) * H * W, sg_data_ptr(cm), sizeof(int64_t) * (size_t)(H * W));
    }
    sg_tensor_decref(ci); sg_tensor_decref(fi); sg_tensor_decref(cm); sg_tensor_decref(fm);
    sg_tensor_decref(img); sg_tensor_decref(mk);
    if (!ok) goto fail;
  }
  *pimg = bi;
  *pmask = bm;
  return 0;
fail:
  sg_tensor_decref(bi);
  sg_tensor_decref(bm);
  return -1;
}

static void *worker(void *arg) {
  sg_loader *ld = arg;
  pthread_mutex_lock(&ld->mu);
  for (;;) {
    while (!ld->stop && ld->claim < ld->nb && ld->claim >= ld->consumed + ld->prefetch)
      pthread_cond_wait(&ld->space, &ld->mu);
    if (ld->stop || ld->claim >= ld->nb) break;
    int64_t b = ld->claim++;
    pthread_mutex_unlock(&ld->mu);
    sg_tensor *img, *mask;
    char *err = NULL;
    if (make_batch(ld, b, &img, &mask)) {
      err = strdup(sg_error_get());
      if (!err) err = (char *)"loader: out of memory"; /* never freed: see take_error */
    }
    pthread_mutex_lock(&ld->mu);
    slot *s = &ld->slots[b % ld->prefetch];
    s->b = b;
    s->img = img;
    s->mask = mask;
    s->err = err;
    s->ready = true;
    pthread_cond_broadcast(&ld->ready);
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

static void free_err(char *e) {
  if (e && strcmp(e, "loader: out of memory") != 0) free(e);
}

void sg_loader_stop(sg_loader *ld) {
  if (!ld) return;
  pthread_mutex_lock(&ld->mu);
  ld->stop = true;
  pthread_cond_broadcast(&ld->space);
  pthread_mutex_unlock(&ld->mu);
  for (int i = 0; i < ld->nthreads; i++) pthread_join(ld->threads[i], NULL);
  ld->nthreads = 0;
  for (int i = 0; i < ld->prefetch; i++) {
    slot *s = &ld->slots[i];
    if (s->ready) { sg_tensor_decref(s->img); sg_tensor_decref(s->mask); free_err(s->err); }
    memset(s, 0, sizeof *s);
  }
  free(ld->items);
  ld->items = NULL;
  ld->n = ld->nb = ld->claim = ld->consumed = 0;
  ld->stop = false;
}

void sg_loader_free(sg_loader *ld) {
  if (!ld) return;
  sg_loader_stop(ld);
  for (int64_t i = 0; i < ld->nsrc; i++) {
    sg_tensor_decref(ld->images[i]);
    if (ld->masks) sg_tensor_decref(ld->masks[i]);
  }
  free(ld->images);
  free(ld->masks);
  free(ld->slots);
  free(ld->threads);
  pthread_mutex_destroy(&ld->mu);
  pthread_cond_destroy(&ld->ready);
  pthread_cond_destroy(&ld->space);
  free(ld);
}

sg_loader *sg_loader_new(int64_t nsrc, sg_tensor *const *images, sg_tensor *const *masks, const sg_rnode *recipe,
                         sg_fill pad, int workers, int prefetch) {
  if (nsrc < 1 || !images) { sg_error_set("loader: no images"); return NULL; }
  if (workers < 0 || workers > 256) { sg_error_set("loader: workers must be in 0..256 (got %d)", workers); return NULL; }
  if (prefetch < 1 || prefetch > 4096) { sg_error_set("loader: prefetch must be in 1..4096 (got %d)", prefetch); return NULL; }
  for (int64_t i = 0; i < nsrc; i++) {
    if (!images[i] || (masks && !masks[i])) { sg_error_set("loader: source %lld is missing", (long long)(i + 1)); return NULL; }
    if (images[i]->storage->device != SG_CPU || (masks && masks[i]->storage->device != SG_CPU)) {
      sg_error_set("loader: source %lld is not on the cpu", (long long)(i + 1));
      return NULL;
    }
  }
  sg_loader *ld = calloc(1, sizeof *ld);
  if (!ld) { sg_error_set("loader: out of memory"); return NULL; }
  ld->images = calloc((size_t)nsrc, sizeof *ld->images);
  ld->masks = masks ? calloc((size_t)nsrc, sizeof *ld->masks) : NULL;
  ld->slots = calloc((size_t)prefetch, sizeof *ld->slots);
  ld->threads = calloc((size_t)(workers > 0 ? workers : 1), sizeof *ld->threads);
  if (!ld->images || (masks && !ld->masks) || !ld->slots || !ld->threads) {
    free(ld->images); free(ld->masks); free(ld->slots); free(ld->threads); free(ld);
    sg_error_set("loader: out of memory");
    return NULL;
  }
  ld->nsrc = nsrc;
  for (int64_t i = 0; i < nsrc; i++) {
    ld->images[i] = sg_tensor_incref(images[i]);
    if (masks) ld->masks[i] = sg_tensor_incref(masks[i]);
  }
  ld->recipe = recipe;
  ld->pad = pad;
  ld->workers = workers;
  ld->prefetch = prefetch;
  pthread_mutex_init(&ld->mu, NULL);
  pthread_cond_init(&ld->ready, NULL);
  pthread_cond_init(&ld->space, NULL);
  return ld;
}

void sg_loader_set_pin_memory(sg_loader *ld, bool pin) {
  sg_loader_stop(ld); /* no worker may be reading the flag */
  ld->pin = pin;
}

int sg_loader_start(sg_loader *ld, const sg_loader_item *items, int64_t n, int64_t batch) {
  sg_loader_stop(ld);
  if (batch < 1) { sg_error_set("loader: batch must be >= 1 (got %lld)", (long long)batch); return -1; }
  if (n < 0) { sg_error_set("loader: bad item count"); return -1; }
  for (int64_t i = 0; i < n; i++) {
    const sg_loader_item *it = &items[i];
    if (it->src < 0 || it->src >= ld->nsrc || it->h < 1 || it->w < 1 || it->h > (1 << 20) || it->w > (1 << 20)) {
      sg_error_set("loader: item %lld: bad source %lld or box %lldx%lld", (long long)(i + 1), (long long)(it->src + 1),
                   (long long)it->h, (long long)it->w);
      return -1;
    }
  }
  ld->items = malloc(sizeof *items * (size_t)(n > 0 ? n : 1));
  if (!ld->items) { sg_error_set("loader: out of memory"); return -1; }
  if (n > 0) memcpy(ld->items, items, sizeof *items * (size_t)n);
  ld->n = n;
  ld->batch = batch;
  ld->nb = (n + batch - 1) / batch;
  ld->claim = ld->consumed = 0;
  ld->stop = false;
  for (int i = 0; i < ld->workers; i++) {
    if (pthread_create(&ld->threads[i], NULL, worker, ld) != 0) {
      sg_loader_stop(ld);
      sg_error_set("loader: cannot start worker thread %d", i + 1);
      return -1;
    }
    ld->nthreads = i + 1;
  }
  return 0;
}

int sg_loader_next(sg_loader *ld, sg_tensor **images, sg_tensor **masks) {
  *images = *masks = NULL;
  if (!ld->items || ld->consumed >= ld->nb) return 0;
  if (ld->workers == 0) {
    if (make_batch(ld, ld->consumed, images, masks)) { sg_loader_stop(ld); return -1; }
    ld->consumed++;
    return 1;
  }
  pthread_mutex_lock(&ld->mu);
  slot *s = &ld->slots[ld->consumed % ld->prefetch];
  while (!(s->ready && s->b == ld->consumed)) pthread_cond_wait(&ld->ready, &ld->mu);
  *images = s->img;
  *masks = s->mask;
  char *err = s->err;
  memset(s, 0, sizeof *s);
  ld->consumed++;
  pthread_cond_broadcast(&ld->space);
  pthread_mutex_unlock(&ld->mu);
  if (err) {
    sg_error_set("%s", err);
    free_err(err);
    sg_loader_stop(ld);
    return -1;
  }
  return 1;
}
