/* The batch loader: worker threads cut samples out of decoded images, run a
 * compiled augmentation recipe on them and stack them into batches, which a
 * bounded queue hands to the caller in order.
 *
 * The caller (lua/semseg/datasets.lua) plans each epoch: the list of items
 * (source image, crop box, per-sample seed) in delivery order. Every sample
 * depends only on its item, so the batches are the same for any number of
 * workers. Workers never touch Lua.
 *
 * Conventions as in tensor.h. Source tensors are incref'd (read only). */
#ifndef SG_LOADER_H
#define SG_LOADER_H
#include "recipe.h"

typedef struct {
  int64_t src;              /* 0-based source index */
  int64_t top, left, h, w;  /* crop box; may reach outside the image (padded) */
  uint64_t seed;            /* recipe seed of this sample */
} sg_loader_item;

/* One sample: the box cut out of (image, mask) with `pad` filling outside the
 * image (image f32, mask as given, or NULL), then the recipe (NULL = none).
 * NEW references in out. */
int sg_loader_sample(sg_tensor *image, sg_tensor *mask, const sg_loader_item *it, sg_fill pad,
                     const sg_rnode *recipe, sg_pair *out);

typedef struct sg_loader sg_loader;

/* masks may be NULL (no labels) or hold NULL entries only when all do.
 * workers 0: batches are made in the calling thread. prefetch >= 1: how many
 * finished batches may wait in the queue. The recipe must outlive the loader. */
sg_loader *sg_loader_new(int64_t nsrc, sg_tensor *const *images, sg_tensor *const *masks, const sg_rnode *recipe,
                         sg_fill pad, int workers, int prefetch);
/* pin: batches in page-locked host memory (sg_empty_pinned), so that copying
 * them to the GPU runs asynchronously; plain memory when there is no CUDA
 * device. Takes effect from the next sg_loader_start. */
void sg_loader_set_pin_memory(sg_loader *ld, bool pin);
/* Starts an epoch over n items in batches of `batch` (the last may be short);
 * stops a running epoch first. Items are copied. */
int sg_loader_start(sg_loader *ld, const sg_loader_item *items, int64_t n, int64_t batch);
/* Next batch: images f32 N x C x H x W, masks i64 N x H x W (NULL without
 * labels). Returns 1 with a batch, 0 at the end of the epoch, -1 on error (the
 * epoch is then stopped). */
int sg_loader_next(sg_loader *ld, sg_tensor **images, sg_tensor **masks);
/* Ends the epoch early: wakes and joins the workers, drops queued batches. */
void sg_loader_stop(sg_loader *ld);
void sg_loader_free(sg_loader *ld);

#endif
