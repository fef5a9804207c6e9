/* Helpers the image codecs (png.c, tiff.c) and the dispatcher (image.c) share;
 * not part of the public API (that is image_io.h). Errors follow image_io.h:
 * sg_error_set() with "<op>: <path>: <reason>", then NULL or -1. */
#ifndef SG_IO_COMMON_H
#define SG_IO_COMMON_H
#include "image_io.h"
#include <stdio.h>

/* Sets the error "op: path: reason", so every message names the file. */
void sg_io_error(const char *op, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef enum { SG_MAGIC_NONE, SG_MAGIC_PNG, SG_MAGIC_TIFF } sg_magic;
/* Opens path for reading and classifies it by its first bytes; NULL + error
 * for a missing, non-regular or empty file. *size gets the file size. */
FILE *sg_io_open_read(const char *op, const char *path, sg_magic *magic, int64_t *size);

/* Atomic writes: create "<path>.tmp-XXXXXX" next to path (tmp gets its name,
 * n bytes at most; returns its fd or -1), write it, then commit: fsync fd,
 * close it, rename tmp over path and sync the directory, so a crash leaves
 * either the old file or the new one. fd < 0: only rename (the caller synced
 * and closed). Commit removes tmp on failure; abort closes fd and removes tmp. */
int sg_io_tmp_create(const char *op, const char *path, char *tmp, size_t n);
int sg_io_tmp_commit(const char *op, const char *path, const char *tmp, int fd);
void sg_io_tmp_abort(const char *tmp, int fd);

/* A tensor either format can store: not bool, on the CPU. */
int sg_io_check_writable(const char *op, const char *path, const sg_tensor *t);

/* Converts samples of type s at src (native byte order) to the dtype of dst
 * (contiguous), writing element (y, x, c) of the source, found at
 * y*ssy + x*ssx + c*ssc, to dst element off + y*dsy + x*dsx + c*dsc. */
void sg_io_unpack(const void *src, sg_sample s, int64_t ssy, int64_t ssx, int64_t ssc, sg_tensor *dst, int64_t off,
                  int64_t dsy, int64_t dsx, int64_t dsc, int64_t h, int64_t w, int64_t c);
/* Packs a contiguous tensor that passed sg_io_check_writable into samples of type s (native byte order):
 * integers must fit (else an error), floats are clamped and rounded (after
 * scaling by the type's maximum when scale). */
int sg_io_pack(const char *op, const char *path, const sg_tensor *t, sg_sample s, bool scale, void *out);
/* Applies sg_read_opts.dtype / scale to a freshly read tensor (steals t);
 * bits < 8 scales u8 samples by their real maximum. */
sg_tensor *sg_io_finish(const char *op, const char *path, sg_tensor *t, sg_sample s, int bits, const sg_read_opts *o);

#endif
