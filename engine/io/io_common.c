/* What the image codecs share: the sample types and option defaults of
 * image_io.h, sample <-> tensor copies, opening and classifying a file,
 * atomic temporary files, and errors that name the file. Nothing here knows
 * libpng or libtiff. */
#include "io_common.h"
#include "../ops/ops.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sg_io_error(const char *op, const char *path, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  sg_error_set("%s: %s: %s", op, path, why);
}

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
      sg_io_error(op, path, "value %lld does not fit %s samples (range %lld..%lld)%s", (long long)v,
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
      sg_io_error(op, path, "scale=true needs a float dtype (got %s)", sg_dtype_name((sg_dtype)dt));
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

int sg_io_check_writable(const char *op, const char *path, const sg_tensor *t) {
  if (t->dtype == SG_BOOL) {
    sg_io_error(op, path, "unsupported dtype bool (convert to u8 first)");
    return -1;
  }
  if (t->storage->device != SG_CPU) {
    sg_io_error(op, path, "the tensor must be on the CPU");
    return -1;
  }
  return 0;
}

/* ================================================================ files */
FILE *sg_io_open_read(const char *op, const char *path, sg_magic *magic, int64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sg_io_error(op, path, "%s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0) {
    sg_io_error(op, path, "%s", strerror(errno));
    fclose(f);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    sg_io_error(op, path, "%s", S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    fclose(f);
    return NULL;
  }
  if (st.st_size == 0) {
    sg_io_error(op, path, "empty file");
    fclose(f);
    return NULL;
  }
  unsigned char b[8] = {0};
  size_t n = fread(b, 1, sizeof b, f);
  rewind(f);
  *size = (int64_t)st.st_size;
  *magic = SG_MAGIC_NONE;
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 8 && memcmp(b, png_sig, 8) == 0) *magic = SG_MAGIC_PNG;
  else if (n >= 4 && ((b[0] == 'I' && b[1] == 'I' && (b[2] == 42 || b[2] == 43) && b[3] == 0) ||
                      (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && (b[3] == 42 || b[3] == 43))))
    *magic = SG_MAGIC_TIFF;
  return f;
}

int sg_io_tmp_create(const char *op, const char *path, char *tmp, size_t n) {
  if ((size_t)snprintf(tmp, n, "%s.tmp-XXXXXX", path) >= n) {
    sg_io_error(op, path, "path too long");
    return -1;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    sg_io_error(op, path, "cannot create a temporary file: %s", strerror(errno));
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
      sg_io_error(op, path, "fsync failed: %s", strerror(errno));
      sg_io_tmp_abort(tmp, fd);
      return -1;
    }
    if (close(fd) != 0) {
      sg_io_error(op, path, "close failed: %s", strerror(errno));
      sg_io_tmp_abort(tmp, -1);
      return -1;
    }
  }
  if (rename(tmp, path) != 0) {
    sg_io_error(op, path, "%s", strerror(errno));
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
