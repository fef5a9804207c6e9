/* The image format dispatcher: picks the codec by the file's magic bytes, so
 * a PNG named .tif (or a file without an extension) still reads. The codecs
 * stay unaware of each other; only this file knows both. */
#include "io_common.h"
#include <stdio.h>

/* 0 and the format in *m, or -1 after the error naming the file. */
static int classify(const char *op, const char *path, sg_magic *m) {
  int64_t size;
  FILE *f = sg_io_open_read(op, path, m, &size);
  if (!f) return -1;
  fclose(f);
  if (*m == SG_MAGIC_NONE) {
    sg_io_error(op, path, "unknown image format (neither PNG nor TIFF)");
    return -1;
  }
  return 0;
}

sg_tensor *sg_read_image(const char *path, const sg_read_opts *o) {
  sg_magic m;
  if (classify("read_image", path, &m) != 0) return NULL;
  return m == SG_MAGIC_PNG ? sg_read_png(path, o) : sg_read_tiff(path, o);
}

int sg_image_info_get(const char *path, sg_image_info *info) {
  sg_magic m;
  if (classify("info", path, &m) != 0) return -1;
  return m == SG_MAGIC_PNG ? sg_png_info(path, info) : sg_tiff_info(path, info);
}
