/* Image files: PNG (libpng) and TIFF (libtiff) to and from tensors.
 *
 * Same conventions as tensor.h: readers return a NEW reference or NULL after
 * sg_error_set(); writers return 0 or -1 after sg_error_set(). Every message
 * reads "<op>: <path>: <reason>". No library message ever reaches stderr:
 * libpng errors and warnings go through per-call handlers, libtiff ones through
 * per-open handlers (TIFFOpenOptions) plus silent global fallbacks.
 *
 * Layouts: a single image reads as C x H x W (gray is 1 x H x W) or H x W x C;
 * a TIFF stack reads as D x C x H x W (D x H x W when C == 1) or D x H x W x C.
 *
 * Native dtypes of samples: 1..8-bit unsigned -> u8, 8-bit signed, 16-bit
 * (un)signed and 32-bit signed -> i32, 32-bit unsigned and 64-bit signed ->
 * i64, 16/32-bit float -> f32, 64-bit float -> f64.
 *
 * Writes are atomic: the data goes to "<path>.tmp-XXXXXX" in the same
 * directory, is fsync'ed and renamed over <path>; on failure the temporary
 * file is removed and an existing <path> is left untouched.
 *
 * Files: png.c and tiff.c are one codec each and know nothing of each other;
 * image.c dispatches between them; io_common.c holds what they share (and the
 * sample and option helpers below). */
#ifndef SG_IMAGE_IO_H
#define SG_IMAGE_IO_H
#include "../core/tensor.h"

/* Sample types as stored in a file. */
typedef enum {
  SG_SAMPLE_U8, SG_SAMPLE_I8, SG_SAMPLE_U16, SG_SAMPLE_I16, SG_SAMPLE_U32, SG_SAMPLE_I32,
  SG_SAMPLE_I64, SG_SAMPLE_F16, SG_SAMPLE_F32, SG_SAMPLE_F64, SG_NSAMPLES
} sg_sample;
const char *sg_sample_name(sg_sample s);         /* "u8", "u16", ..., "f64" */
int sg_sample_from_name(const char *name);       /* -1 when unknown */
size_t sg_sample_size(sg_sample s);
sg_dtype sg_sample_dtype(sg_sample s);           /* dtype a reader gives */
bool sg_sample_is_float(sg_sample s);

typedef struct {
  bool hwc;          /* H x W x C instead of C x H x W */
  int dtype;         /* -1: the native dtype; else convert (values kept) */
  bool scale;        /* map integer samples to [0,1] (f32 unless dtype is f64) */
  bool palette_index;/* PNG palette images: the indices instead of RGB(A) */
  bool stack;        /* TIFF: all pages */
  int page;          /* TIFF: 0-based page (ignored with stack) */
} sg_read_opts;
void sg_read_opts_init(sg_read_opts *o);

typedef enum { SG_TIFF_NONE, SG_TIFF_LZW, SG_TIFF_DEFLATE, SG_TIFF_PACKBITS } sg_tiff_compression;

typedef struct {
  bool hwc;          /* the tensor is H x W x C (D x H x W x C) */
  bool scale;        /* float values in [0,1] scale to the full integer range */
  int sample;        /* sg_sample to store, -1 = from the tensor's dtype */
  /* PNG */
  int level;         /* zlib level 0..9, -1 default */
  int npalette;      /* > 0: write a palette image from a 2-D index tensor */
  uint8_t palette[256][4];
  bool palette_alpha;
  /* TIFF */
  bool stack;        /* a 3-D tensor is D x H x W (pages), not C x H x W */
  sg_tiff_compression compression;
  int tile_w, tile_h;/* 0: strips */
  int byteorder;     /* 0 native, 'b' big, 'l' little */
  bool separate;     /* planar configuration 2 */
  bool predictor;    /* horizontal (integers) / floating point predictor */
} sg_write_opts;
void sg_write_opts_init(sg_write_opts *o);

sg_tensor *sg_read_png(const char *path, const sg_read_opts *o);
int sg_write_png(const char *path, sg_tensor *t, const sg_write_opts *o);
sg_tensor *sg_read_tiff(const char *path, const sg_read_opts *o);
int sg_write_tiff(const char *path, sg_tensor *t, const sg_write_opts *o);
/* image.c: PNG or TIFF by the magic bytes, whatever the extension. */
sg_tensor *sg_read_image(const char *path, const sg_read_opts *o);

typedef struct {
  char format[8];       /* "png" or "tiff" */
  int64_t width, height;
  int channels;         /* as the reader returns them (palette expanded) */
  int bits;             /* bits per sample in the file */
  int64_t pages;
  sg_sample sample;     /* sample type as read */
  char color[16];       /* "gray", "gray+alpha", "rgb", "rgba", "palette", ... */
  char compression[16]; /* TIFF: "none", "lzw", "deflate", "packbits", ... */
  bool tiled;
  bool big_endian;
  bool separate;
  bool interlaced;
} sg_image_info;
int sg_image_info_get(const char *path, sg_image_info *info); /* image.c: by the magic bytes */
int sg_png_info(const char *path, sg_image_info *info);
int sg_tiff_info(const char *path, sg_image_info *info);

#endif
