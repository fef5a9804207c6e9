/* PNG through libpng.
 *
 * libpng reports errors by calling our handler, which records the message and
 * longjmps back into the function that called setjmp. Every setjmp below sits
 * in a small "inner" function whose state all lives in a context struct owned
 * by its caller, so nothing the jump skips is lost and the caller frees
 * everything in one place. */
#include "image_io.h"
#include "io_common.h"
#include <errno.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool host_little_endian(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

/* ================================================================ PNG read */
typedef struct {
  const char *op, *path;
  FILE *f;
  png_structp png;
  png_infop info;
  char err[256];
  const sg_read_opts *o;
  sg_image_info *meta; /* header only when set */
  uint8_t *buf;
  png_bytep *rows;
  sg_tensor *out;
  sg_sample sample;
  int bits;
  bool own; /* the message being raised is ours, not libpng's */
  int64_t fsize;
} png_ctx;

static void png_on_error(png_structp p, png_const_charp msg) {
  png_ctx *c = png_get_error_ptr(p);
  if (c->own) snprintf(c->err, sizeof c->err, "%s", msg);
  else snprintf(c->err, sizeof c->err, "corrupt or unsupported file (libpng: %s)", msg);
  png_longjmp(p, 1);
}
static void png_on_warning(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

static void png_on_read(png_structp p, png_bytep data, size_t n) {
  png_ctx *c = png_get_io_ptr(p);
  if (fread(data, 1, n, c->f) != n) {
    c->own = true;
    png_error(p, ferror(c->f) ? "read error" : "truncated file");
  }
}

static const char *png_color_name(int ct) {
  switch (ct) {
  case PNG_COLOR_TYPE_GRAY: return "gray";
  case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
  case PNG_COLOR_TYPE_RGB: return "rgb";
  case PNG_COLOR_TYPE_RGB_ALPHA: return "rgba";
  case PNG_COLOR_TYPE_PALETTE: return "palette";
  default: return "?";
  }
}

static int png_read_inner(png_ctx *c) {
  if (setjmp(png_jmpbuf(c->png))) return -1;
  png_set_read_fn(c->png, c, png_on_read);
  png_read_info(c->png, c->info);
  png_uint_32 w, h;
  int depth, ct, interlace;
  png_get_IHDR(c->png, c->info, &w, &h, &depth, &ct, &interlace, NULL, NULL);
  bool palette = ct == PNG_COLOR_TYPE_PALETTE;
  bool has_trns = png_get_valid(c->png, c->info, PNG_INFO_tRNS) != 0;
  bool index = palette && c->o && c->o->palette_index;
  int channels = png_get_channels(c->png, c->info);
  if (palette && !index) channels = has_trns ? 4 : 3;
  c->bits = depth;
  c->sample = depth == 16 ? SG_SAMPLE_U16 : SG_SAMPLE_U8;
  if (c->meta) {
    snprintf(c->meta->format, sizeof c->meta->format, "png");
    c->meta->width = w;
    c->meta->height = h;
    c->meta->channels = channels;
    c->meta->bits = depth;
    c->meta->pages = 1;
    c->meta->sample = c->sample;
    snprintf(c->meta->color, sizeof c->meta->color, "%s", png_color_name(ct));
    snprintf(c->meta->compression, sizeof c->meta->compression, "deflate");
    c->meta->big_endian = true;
    c->meta->interlaced = interlace != PNG_INTERLACE_NONE;
    return 0;
  }
  if (palette) {
    if (index) {
      if (depth < 8) png_set_packing(c->png);
    } else {
      png_set_palette_to_rgb(c->png);
      if (has_trns) png_set_tRNS_to_alpha(c->png);
      c->bits = 8;
    }
  } else if (depth < 8) {
    png_set_packing(c->png); /* one byte per sample, values kept */
  }
  if (depth == 16 && host_little_endian()) png_set_swap(c->png);
  if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(c->png);
  png_read_update_info(c->png, c->info);
  size_t rowbytes = png_get_rowbytes(c->png, c->info);
  int got = png_get_channels(c->png, c->info);
  size_t bytes = depth == 16 ? 2 : 1;
  if (got != channels || rowbytes != (size_t)w * (size_t)channels * bytes) {
    snprintf(c->err, sizeof c->err, "unexpected row layout after transformations");
    return -1;
  }
  int64_t H = h, W = w, C = channels;
  if ((double)rowbytes * h > (double)c->fsize * 1100 + (1 << 20)) { /* deflate expands 1032:1 at most */
    snprintf(c->err, sizeof c->err, "truncated or corrupt file: a %ux%u image cannot come from %lld bytes", w, h,
             (long long)c->fsize);
    return -1;
  }
  bool hwc = c->o->hwc;
  int64_t shape_chw[3] = {C, H, W}, shape_hwc[3] = {H, W, C};
  c->out = sg_empty(3, hwc ? shape_hwc : shape_chw, sg_sample_dtype(c->sample), SG_CPU);
  if (!c->out) {
    snprintf(c->err, sizeof c->err, "%s", sg_error_get());
    return -1;
  }
  c->buf = malloc(rowbytes * (size_t)h);
  c->rows = malloc(sizeof *c->rows * (size_t)h);
  if (!c->buf || !c->rows) {
    snprintf(c->err, sizeof c->err, "out of memory");
    return -1;
  }
  for (png_uint_32 y = 0; y < h; y++) c->rows[y] = c->buf + (size_t)y * rowbytes;
  png_read_image(c->png, c->rows);
  png_read_end(c->png, NULL); /* checks the file through IEND */
  if (hwc) sg_io_unpack(c->buf, c->sample, W * C, C, 1, c->out, 0, W * C, C, 1, H, W, C);
  else sg_io_unpack(c->buf, c->sample, W * C, C, 1, c->out, 0, W, 1, H * W, H, W, C);
  return 0;
}

static int png_read_common(png_ctx *c) {
  sg_magic m;
  c->f = sg_io_open_read(c->op, c->path, &m, &c->fsize);
  if (!c->f) return -1;
  int rc = -1;
  if (m != SG_MAGIC_PNG) {
    snprintf(c->err, sizeof c->err, "not a PNG file");
  } else {
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning);
    if (c->png) c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info) snprintf(c->err, sizeof c->err, "out of memory");
    else rc = png_read_inner(c);
  }
  if (c->png) png_destroy_read_struct(&c->png, c->info ? &c->info : NULL, NULL);
  free(c->buf);
  free(c->rows);
  fclose(c->f);
  if (rc != 0) {
    if (c->out) sg_tensor_decref(c->out);
    c->out = NULL;
    sg_io_error(c->op, c->path, "%s", c->err);
  }
  return rc;
}

sg_tensor *sg_read_png(const char *path, const sg_read_opts *o) {
  sg_read_opts def;
  if (!o) { sg_read_opts_init(&def); o = &def; }
  png_ctx c = {.op = "read_png", .path = path, .o = o};
  if (png_read_common(&c) != 0) return NULL;
  return sg_io_finish(c.op, path, c.out, c.sample, c.bits, o);
}

int sg_png_info(const char *path, sg_image_info *info) {
  memset(info, 0, sizeof *info);
  sg_read_opts def;
  sg_read_opts_init(&def);
  png_ctx c = {.op = "info", .path = path, .o = &def, .meta = info};
  return png_read_common(&c);
}

/* ================================================================ PNG write */
typedef struct {
  const char *op, *path;
  FILE *f;
  png_structp png;
  png_infop info;
  char err[256];
  const uint8_t *data;
  int64_t h, w, c;
  int depth, color;
  const sg_write_opts *o;
} png_wctx;

static void png_on_write(png_structp p, png_bytep data, size_t n) {
  png_wctx *c = png_get_io_ptr(p);
  if (fwrite(data, 1, n, c->f) != n) png_error(p, strerror(errno));
}
static void png_on_flush(png_structp p) {
  png_wctx *c = png_get_io_ptr(p);
  if (fflush(c->f) != 0) png_error(p, strerror(errno));
}
static void png_on_werror(png_structp p, png_const_charp msg) {
  png_wctx *c = png_get_error_ptr(p);
  snprintf(c->err, sizeof c->err, "%s", msg);
  png_longjmp(p, 1);
}

static int png_write_inner(png_wctx *c) {
  if (setjmp(png_jmpbuf(c->png))) return -1;
  png_set_write_fn(c->png, c, png_on_write, png_on_flush);
  png_set_IHDR(c->png, c->info, (png_uint_32)c->w, (png_uint_32)c->h, c->depth, c->color, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (c->o->level >= 0) png_set_compression_level(c->png, c->o->level);
  if (c->color == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[256];
    png_byte alpha[256];
    for (int i = 0; i < c->o->npalette; i++) {
      pal[i].red = c->o->palette[i][0];
      pal[i].green = c->o->palette[i][1];
      pal[i].blue = c->o->palette[i][2];
      alpha[i] = c->o->palette[i][3];
    }
    png_set_PLTE(c->png, c->info, pal, c->o->npalette);
    if (c->o->palette_alpha) png_set_tRNS(c->png, c->info, alpha, c->o->npalette, NULL);
  }
  png_write_info(c->png, c->info);
  if (c->depth == 16 && host_little_endian()) png_set_swap(c->png);
  size_t rowbytes = (size_t)(c->w * c->c * (c->depth == 16 ? 2 : 1));
  for (int64_t y = 0; y < c->h; y++) png_write_row(c->png, c->data + (size_t)y * rowbytes);
  png_write_end(c->png, c->info);
  return 0;
}

int sg_write_png(const char *path, sg_tensor *t, const sg_write_opts *o) {
  const char *op = "write_png";
  sg_write_opts def;
  if (!o) { sg_write_opts_init(&def); o = &def; }
  if (sg_io_check_writable(op, path, t) != 0) return -1;
  int64_t H, W, C;
  if (t->ndim == 2) { H = t->size[0]; W = t->size[1]; C = 1; }
  else if (t->ndim == 3 && o->hwc) { H = t->size[0]; W = t->size[1]; C = t->size[2]; }
  else if (t->ndim == 3) { C = t->size[0]; H = t->size[1]; W = t->size[2]; }
  else {
    sg_io_error(op, path, "expected a H x W or %s tensor, got shape %s", o->hwc ? "H x W x C" : "C x H x W",
                 SG_SHAPE_STR(t));
    return -1;
  }
  if (C < 1 || C > 4) {
    sg_io_error(op, path, "%lld channels (a PNG has 1 to 4)", (long long)C);
    return -1;
  }
  if (H < 1 || W < 1 || H > PNG_UINT_31_MAX || W > PNG_UINT_31_MAX) {
    sg_io_error(op, path, "image size %lldx%lld is not allowed in a PNG", (long long)W, (long long)H);
    return -1;
  }
  sg_sample s = o->sample < 0 ? SG_SAMPLE_U8 : (sg_sample)o->sample;
  if (s != SG_SAMPLE_U8 && s != SG_SAMPLE_U16) {
    sg_io_error(op, path, "PNG samples are 8 or 16 bit unsigned (asked for %s)", sg_sample_name(s));
    return -1;
  }
  int color;
  if (o->npalette > 0) {
    if (C != 1 || sg_dtype_is_float(t->dtype) || s != SG_SAMPLE_U8) {
      sg_io_error(op, path, "a palette image needs a 1-channel integer tensor of indices and 8-bit samples");
      return -1;
    }
    color = PNG_COLOR_TYPE_PALETTE;
  } else {
    static const int colors[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                  PNG_COLOR_TYPE_RGB_ALPHA};
    color = colors[C - 1];
  }
  /* samples in H x W x C order */
  sg_tensor *v = NULL;
  if (t->ndim == 3 && !o->hwc) {
    const int perm[3] = {1, 2, 0};
    v = sg_permute(t, perm);
  } else {
    v = sg_tensor_incref(t);
  }
  sg_tensor *ct = v ? sg_contiguous(v) : NULL;
  if (v) sg_tensor_decref(v);
  if (!ct) return -1;
  size_t nbytes = (size_t)(H * W * C) * sg_sample_size(s);
  uint8_t *buf = malloc(nbytes);
  if (!buf) {
    sg_tensor_decref(ct);
    sg_io_error(op, path, "out of memory");
    return -1;
  }
  int rc = sg_io_pack(op, path, ct, s, o->scale, buf);
  sg_tensor_decref(ct);
  if (rc == 0 && o->npalette > 0) {
    for (int64_t i = 0; i < H * W; i++)
      if (buf[i] >= o->npalette) {
        sg_io_error(op, path, "index %d is past the end of the %d-color palette", buf[i], o->npalette);
        rc = -1;
        break;
      }
  }
  if (rc != 0) { free(buf); return -1; }

  char tmp[PATH_MAX + 16];
  int fd = sg_io_tmp_create(op, path, tmp, sizeof tmp);
  if (fd < 0) { free(buf); return -1; }
  png_wctx c = {.op = op, .path = path, .data = buf, .h = H, .w = W, .c = C, .o = o, .color = color,
                .depth = s == SG_SAMPLE_U16 ? 16 : 8};
  c.f = fdopen(fd, "wb");
  if (!c.f) {
    sg_io_error(op, path, "%s", strerror(errno));
    sg_io_tmp_abort(tmp, fd);
    free(buf);
    return -1;
  }
  c.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, png_on_werror, png_on_warning);
  if (c.png) c.info = png_create_info_struct(c.png);
  if (!c.png || !c.info) {
    snprintf(c.err, sizeof c.err, "out of memory");
    rc = -1;
  } else {
    rc = png_write_inner(&c);
  }
  if (c.png) png_destroy_write_struct(&c.png, c.info ? &c.info : NULL);
  free(buf);
  if (rc == 0 && (fflush(c.f) != 0 || fsync(fileno(c.f)) != 0)) {
    snprintf(c.err, sizeof c.err, "%s", strerror(errno));
    rc = -1;
  }
  if (fclose(c.f) != 0 && rc == 0) {
    snprintf(c.err, sizeof c.err, "%s", strerror(errno));
    rc = -1;
  }
  if (rc != 0) {
    sg_io_error(op, path, "%s", c.err);
    sg_io_tmp_abort(tmp, -1);
    return -1;
  }
  return sg_io_tmp_commit(op, path, tmp, -1);
}
