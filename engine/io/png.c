/* PNG through libpng, plus the helpers both image formats share: opening and
 * classifying a file, atomic temporary files, and sample <-> tensor copies.
 *
 * libpng reports errors by calling our handler, which records the message and
 * longjmps back into the function that called setjmp. Every setjmp below sits
 * in a small "inner" function whose state all lives in a context struct owned
 * by its caller, so nothing the jump skips is lost and the caller frees
 * everything in one place. */
#include "image_io.h"
#include "../ops/ops.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================================ samples */
static const struct { const char *name; size_t size; sg_dtype dtype; bool is_float; } SAMPLES[SG_NSAMPLES] = {
    [SG_SAMPLE_U8] = {"u8", 1, SG_U8, false},     [SG_SAMPLE_I8] = {"i8", 1, SG_I32, false},
    [SG_SAMPLE_U16] = {"u16", 2, SG_I32, false},  [SG_SAMPLE_I16] = {"i16", 2, SG_I32, false},
    [SG_SAMPLE_U32] = {"u32", 4, SG_I64, false},  [SG_SAMPLE_I32] = {"i32", 4, SG_I32, false},
    [SG_SAMPLE_I64] = {"i64", 8, SG_I64, false},  [SG_SAMPLE_F16] = {"f16", 2, SG_F32, true},
    [SG_SAMPLE_F32] = {"f32", 4, SG_F32, true},   [SG_SAMPLE_F64] = {"f64", 8, SG_F64, true},
};
const char *sg_sample_name(sg_sample s) { return (unsigned)s < SG_NSAMPLES ? SAMPLES[s].name : "?"; }
size_t sg_sample_size(sg_sample s) { return SAMPLES[s].size; }
sg_dtype sg_sample_dtype(sg_sample s) { return SAMPLES[s].dtype; }
bool sg_sample_is_float(sg_sample s) { return SAMPLES[s].is_float; }
int sg_sample_from_name(const char *name) {
  for (int i = 0; i < SG_NSAMPLES; i++)
    if (strcmp(name, SAMPLES[i].name) == 0) return i;
  return -1;
}

void sg_read_opts_init(sg_read_opts *o) {
  memset(o, 0, sizeof *o);
  o->dtype = -1;
}
void sg_write_opts_init(sg_write_opts *o) {
  memset(o, 0, sizeof *o);
  o->sample = -1;
  o->level = -1;
}

/* Integer range of a sample type. */
static void sample_range(sg_sample s, int64_t *lo, int64_t *hi) {
  switch (s) {
  case SG_SAMPLE_U8: *lo = 0; *hi = UINT8_MAX; break;
  case SG_SAMPLE_I8: *lo = INT8_MIN; *hi = INT8_MAX; break;
  case SG_SAMPLE_U16: *lo = 0; *hi = UINT16_MAX; break;
  case SG_SAMPLE_I16: *lo = INT16_MIN; *hi = INT16_MAX; break;
  case SG_SAMPLE_U32: *lo = 0; *hi = UINT32_MAX; break;
  case SG_SAMPLE_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
  default: *lo = INT64_MIN; *hi = INT64_MAX; break;
  }
}

#define UNPACK_LOOP(ST, DT, CONV)                                                                        \
  do {                                                                                                   \
    const ST *s_ = (const ST *)src;                                                                      \
    DT *d_ = (DT *)sg_data_ptr(dst) + off;                                                               \
    for (int64_t y = 0; y < h; y++)                                                                      \
      for (int64_t x = 0; x < w; x++)                                                                    \
        for (int64_t k = 0; k < c; k++) d_[y * dsy + x * dsx + k * dsc] = CONV(s_[y * ssy + x * ssx + k * ssc]); \
  } while (0)
#define AS_IS(v) (v)
#define F16(v) sg_f16_to_f32(v)

void sg_io_unpack(const void *src, sg_sample s, int64_t ssy, int64_t ssx, int64_t ssc, sg_tensor *dst, int64_t off,
                  int64_t dsy, int64_t dsx, int64_t dsc, int64_t h, int64_t w, int64_t c) {
  switch (s) {
  case SG_SAMPLE_U8:
    if (c == 1 && ssx == 1 && dsx == 1 && ssy == w && dsy == w) { /* one plane, both dense */
      memcpy((uint8_t *)sg_data_ptr(dst) + off, src, (size_t)(h * w));
      return;
    }
    UNPACK_LOOP(uint8_t, uint8_t, AS_IS); break;
  case SG_SAMPLE_I8: UNPACK_LOOP(int8_t, int32_t, AS_IS); break;
  case SG_SAMPLE_U16: UNPACK_LOOP(uint16_t, int32_t, AS_IS); break;
  case SG_SAMPLE_I16: UNPACK_LOOP(int16_t, int32_t, AS_IS); break;
  case SG_SAMPLE_U32: UNPACK_LOOP(uint32_t, int64_t, AS_IS); break;
  case SG_SAMPLE_I32: UNPACK_LOOP(int32_t, int32_t, AS_IS); break;
  case SG_SAMPLE_I64: UNPACK_LOOP(int64_t, int64_t, AS_IS); break;
  case SG_SAMPLE_F16: UNPACK_LOOP(uint16_t, float, F16); break;
  case SG_SAMPLE_F32: UNPACK_LOOP(float, float, AS_IS); break;
  case SG_SAMPLE_F64: UNPACK_LOOP(double, double, AS_IS); break;
  default: break;
  }
}

static void store_sample(void *out, int64_t i, sg_sample s, int64_t iv, double fv) {
  switch (s) {
  case SG_SAMPLE_U8: ((uint8_t *)out)[i] = (uint8_t)iv; break;
  case SG_SAMPLE_I8: ((int8_t *)out)[i] = (int8_t)iv; break;
  case SG_SAMPLE_U16: ((uint16_t *)out)[i] = (uint16_t)iv; break;
  case SG_SAMPLE_I16: ((int16_t *)out)[i] = (int16_t)iv; break;
  case SG_SAMPLE_U32: ((uint32_t *)out)[i] = (uint32_t)iv; break;
  case SG_SAMPLE_I32: ((int32_t *)out)[i] = (int32_t)iv; break;
  case SG_SAMPLE_I64: ((int64_t *)out)[i] = iv; break;
  case SG_SAMPLE_F16: ((uint16_t *)out)[i] = sg_f32_to_f16((float)fv); break;
  case SG_SAMPLE_F32: ((float *)out)[i] = (float)fv; break;
  case SG_SAMPLE_F64: ((double *)out)[i] = fv; break;
  default: break;
  }
}

int sg_io_pack(const char *op, const char *path, const sg_tensor *t, sg_sample s, bool scale, void *out) {
  int64_t n = sg_numel(t);
  sg_dtype dt = t->dtype;
  const char *data = sg_data_ptr(t);
  size_t es = sg_dtype_size(dt);
  if (dt == SG_BOOL) {
    sg_error_set("%s: %s: unsupported dtype bool (convert to u8 first)", op, path);
    return -1;
  }
  if (dt == SG_U8 && s == SG_SAMPLE_U8) {
    memcpy(out, data, (size_t)n);
    return 0;
  }
  if (SAMPLES[s].is_float) {
    for (int64_t i = 0; i < n; i++) store_sample(out, i, s, 0, sg_load_f64(data + i * es, dt));
    return 0;
  }
  int64_t lo, hi;
  sample_range(s, &lo, &hi);
  if (sg_dtype_is_float(dt)) {
    double mul = scale ? (double)hi : 1.0;
    for (int64_t i = 0; i < n; i++) {
      double v = sg_load_f64(data + i * es, dt) * mul;
      if (isnan(v)) v = 0;
      v = round(v);
      int64_t iv = v <= (double)lo ? lo : v >= (double)hi ? hi : (int64_t)v;
      store_sample(out, i, s, iv, 0);
    }
    return 0;
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t v = sg_load_i64(data + i * es, dt);
    if (v < lo || v > hi) {
      sg_error_set("%s: %s: value %lld does not fit %s samples (range %lld..%lld)%s", op, path, (long long)v,
                   SAMPLES[s].name, (long long)lo, (long long)hi,
                   s == SG_SAMPLE_U8 ? "; write 16-bit samples with {bits=16}" : "");
      return -1;
    }
    store_sample(out, i, s, v, 0);
  }
  return 0;
}

sg_tensor *sg_io_finish(const char *op, const char *path, sg_tensor *t, sg_sample s, int bits, const sg_read_opts *o) {
  if (!t) return NULL;
  if (o->scale) {
    int dt = o->dtype >= 0 ? o->dtype : (t->dtype == SG_F64 ? SG_F64 : SG_F32);
    if (!sg_dtype_is_float((sg_dtype)dt)) {
      sg_tensor_decref(t);
      sg_error_set("%s: %s: scale=true needs a float dtype (got %s)", op, path, sg_dtype_name((sg_dtype)dt));
      return NULL;
    }
    sg_tensor *f = sg_to_dtype(t, (sg_dtype)dt);
    sg_tensor_decref(t);
    if (!f || SAMPLES[s].is_float) return f;
    int64_t lo, hi;
    sample_range(s, &lo, &hi);
    if (s == SG_SAMPLE_U8 && bits > 0 && bits < 8) hi = ((int64_t)1 << bits) - 1;
    sg_tensor *m = sg_scalar((double)hi, (sg_dtype)dt, SG_CPU);
    sg_tensor *r = m ? sg_div(f, m) : NULL;
    sg_tensor_decref(f);
    if (m) sg_tensor_decref(m);
    return r;
  }
  if (o->dtype >= 0 && o->dtype != (int)t->dtype) {
    sg_tensor *r = sg_to_dtype(t, (sg_dtype)o->dtype);
    sg_tensor_decref(t);
    return r;
  }
  return t;
}

/* ================================================================ files */
FILE *sg_io_open_read(const char *op, const char *path, sg_magic *magic, int64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sg_error_set("%s: %s: %s", op, path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    sg_error_set("%s: %s: %s", op, path, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    fclose(f);
    return NULL;
  }
  if (st.st_size == 0) {
    sg_error_set("%s: %s: empty file", op, path);
    fclose(f);
    return NULL;
  }
  unsigned char b[8] = {0};
  size_t n = fread(b, 1, sizeof b, f);
  rewind(f);
  *size = (int64_t)st.st_size;
  *magic = SG_MAGIC_NONE;
  if (n >= 8 && png_sig_cmp(b, 0, 8) == 0) *magic = SG_MAGIC_PNG;
  else if (n >= 4 && ((b[0] == 'I' && b[1] == 'I' && (b[2] == 42 || b[2] == 43) && b[3] == 0) ||
                      (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && (b[3] == 42 || b[3] == 43))))
    *magic = SG_MAGIC_TIFF;
  return f;
}

int sg_io_tmp_create(const char *op, const char *path, char *tmp, size_t n) {
  if ((size_t)snprintf(tmp, n, "%s.tmp-XXXXXX", path) >= n) {
    sg_error_set("%s: %s: path too long", op, path);
    return -1;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    sg_error_set("%s: %s: cannot create a temporary file: %s", op, path, strerror(errno));
    return -1;
  }
  mode_t mask = umask(0);
  umask(mask);
  (void)fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600 */
  return fd;
}

void sg_io_tmp_abort(const char *tmp, int fd) {
  if (fd >= 0) close(fd);
  unlink(tmp);
}

int sg_io_tmp_commit(const char *op, const char *path, const char *tmp, int fd) {
  if (fd >= 0) {
    if (fsync(fd) != 0) {
      sg_error_set("%s: %s: fsync failed: %s", op, path, strerror(errno));
      sg_io_tmp_abort(tmp, fd);
      return -1;
    }
    if (close(fd) != 0) {
      sg_error_set("%s: %s: close failed: %s", op, path, strerror(errno));
      sg_io_tmp_abort(tmp, -1);
      return -1;
    }
  }
  if (rename(tmp, path) != 0) {
    sg_error_set("%s: %s: %s", op, path, strerror(errno));
    sg_io_tmp_abort(tmp, -1);
    return -1;
  }
  /* make the rename durable */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return 0;
}

sg_tensor *sg_read_image(const char *path, const sg_read_opts *o) {
  sg_magic m;
  int64_t size;
  FILE *f = sg_io_open_read("read_image", path, &m, &size);
  if (!f) return NULL;
  fclose(f);
  if (m == SG_MAGIC_PNG) return sg_read_png(path, o);
  if (m == SG_MAGIC_TIFF) return sg_read_tiff(path, o);
  sg_error_set("read_image: %s: unknown image format (neither PNG nor TIFF)", path);
  return NULL;
}

int sg_image_info_get(const char *path, sg_image_info *info) {
  sg_magic m;
  int64_t size;
  FILE *f = sg_io_open_read("info", path, &m, &size);
  if (!f) return -1;
  fclose(f);
  if (m == SG_MAGIC_PNG) return sg_png_info(path, info);
  if (m == SG_MAGIC_TIFF) return sg_tiff_info(path, info);
  sg_error_set("info: %s: unknown image format (neither PNG nor TIFF)", path);
  return -1;
}

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
    sg_error_set("%s: %s: %s", c->op, c->path, c->err);
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
  if (t->dtype == SG_BOOL) {
    sg_error_set("%s: %s: unsupported dtype bool (convert to u8 first)", op, path);
    return -1;
  }
  int64_t H, W, C;
  if (t->ndim == 2) { H = t->size[0]; W = t->size[1]; C = 1; }
  else if (t->ndim == 3 && o->hwc) { H = t->size[0]; W = t->size[1]; C = t->size[2]; }
  else if (t->ndim == 3) { C = t->size[0]; H = t->size[1]; W = t->size[2]; }
  else {
    sg_error_set("%s: %s: expected a H x W or %s tensor, got shape %s", op, path, o->hwc ? "H x W x C" : "C x H x W",
                 SG_SHAPE_STR(t));
    return -1;
  }
  if (C < 1 || C > 4) {
    sg_error_set("%s: %s: %lld channels (a PNG has 1 to 4)", op, path, (long long)C);
    return -1;
  }
  if (H < 1 || W < 1 || H > PNG_UINT_31_MAX || W > PNG_UINT_31_MAX) {
    sg_error_set("%s: %s: image size %lldx%lld is not allowed in a PNG", op, path, (long long)W, (long long)H);
    return -1;
  }
  sg_sample s = o->sample < 0 ? SG_SAMPLE_U8 : (sg_sample)o->sample;
  if (s != SG_SAMPLE_U8 && s != SG_SAMPLE_U16) {
    sg_error_set("%s: %s: PNG samples are 8 or 16 bit unsigned (asked for %s)", op, path, sg_sample_name(s));
    return -1;
  }
  if (t->storage->device != SG_CPU) {
    sg_error_set("%s: %s: the tensor must be on the CPU", op, path);
    return -1;
  }
  int color;
  if (o->npalette > 0) {
    if (C != 1 || sg_dtype_is_float(t->dtype) || s != SG_SAMPLE_U8) {
      sg_error_set("%s: %s: a palette image needs a 1-channel integer tensor of indices and 8-bit samples", op, path);
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
    sg_error_set("%s: %s: out of memory", op, path);
    return -1;
  }
  int rc = sg_io_pack(op, path, ct, s, o->scale, buf);
  sg_tensor_decref(ct);
  if (rc == 0 && o->npalette > 0) {
    for (int64_t i = 0; i < H * W; i++)
      if (buf[i] >= o->npalette) {
        sg_error_set("%s: %s: index %d is past the end of the %d-color palette", op, path, buf[i], o->npalette);
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
    sg_error_set("%s: %s: %s", op, path, strerror(errno));
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
    sg_error_set("%s: %s: %s", op, path, c.err);
    sg_io_tmp_abort(tmp, -1);
    return -1;
  }
  return sg_io_tmp_commit(op, path, tmp, -1);
}
