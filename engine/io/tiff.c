/* TIFF through libtiff: 8/16/32/64-bit integer and 16/32/64-bit float
 * samples, any number of samples per pixel (palette images expand to RGB),
 * contiguous or separate planes, strips or tiles, either byte order, every
 * codec the library was built with; multi-page stacks.
 *
 * Messages: each TIFF is opened with TIFFOpenOptions carrying per-open error
 * and warning handlers that record the first error in the call's context and
 * swallow warnings. The global handlers (used by libtiff for the few messages
 * not tied to an open file) are replaced once by silent ones that keep the
 * last message in a thread-local buffer. */
#include "image_io.h"
#include "io_common.h"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

typedef struct {
  const char *op, *path;
  char lib[400]; /* first libtiff error of this call */
  bool have_lib;
  int64_t fsize;
} tctx;

static _Thread_local char global_msg[400];
static void global_error(const char *module, const char *fmt, va_list ap) {
  (void)module;
  vsnprintf(global_msg, sizeof global_msg, fmt, ap);
}
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;
static void install_global_handlers(void) {
  TIFFSetErrorHandler(global_error);
  TIFFSetWarningHandler(NULL);
}

static int on_error(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap) {
  (void)tif;
  (void)module;
  tctx *c = ud;
  if (c && !c->have_lib) {
    vsnprintf(c->lib, sizeof c->lib, fmt, ap);
    c->have_lib = true;
  }
  return 1; /* handled: the global handlers are not called */
}
static int on_warning(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap) {
  (void)tif; (void)ud; (void)module; (void)fmt; (void)ap;
  return 1;
}

/* Error "op: path: what[: libtiff message]". */
static void fail(tctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(tctx *c, const char *fmt, ...) {
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  sg_io_error(c->op, c->path, "%s", what);
}
/* A libtiff call failed: report what it said. While reading, a failure of
 * libtiff means a file that is cut short or corrupt (unsupported features are
 * caught before decoding). */
static void report_lib(tctx *c, const char *prefix, const char *what) {
  const char *m = c->have_lib ? c->lib : global_msg[0] ? global_msg : "";
  if (*m) fail(c, "%s%s (libtiff: %s)", prefix, what, m);
  else fail(c, "%s%s", prefix, what);
}
static void fail_lib(tctx *c, const char *what) { report_lib(c, "", what); }
static void fail_corrupt(tctx *c, const char *what) { report_lib(c, "truncated or corrupt file: ", what); }

static TIFF *topen(tctx *c, int fd, const char *mode) {
  pthread_once(&handlers_once, install_global_handlers);
  global_msg[0] = 0;
  TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
  if (!opts) return NULL;
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, c);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, c);
  TIFF *tif = TIFFFdOpenExt(fd, c->path, mode, opts);
  TIFFOpenOptionsFree(opts);
  return tif;
}

static const char *compression_name(uint16_t comp) {
  switch (comp) {
  case COMPRESSION_NONE: return "none";
  case COMPRESSION_LZW: return "lzw";
  case COMPRESSION_ADOBE_DEFLATE: case COMPRESSION_DEFLATE: return "deflate";
  case COMPRESSION_PACKBITS: return "packbits";
  case COMPRESSION_JPEG: return "jpeg";
  case COMPRESSION_LZMA: return "lzma";
  case COMPRESSION_ZSTD: return "zstd";
  case COMPRESSION_WEBP: return "webp";
  case COMPRESSION_CCITTFAX3: return "ccitt-g3";
  case COMPRESSION_CCITTFAX4: return "ccitt-g4";
  default: return NULL;
  }
}

/* ================================================================ read */
typedef struct {
  uint32_t w, h, tw, th, rps;
  uint16_t spp, bps, sf, planar, photo, comp;
  bool tiled, expand_palette;
  sg_sample sample;
  int channels; /* as returned */
} tpage;

static int describe(tctx *c, TIFF *tif, tpage *p, bool palette_index, int page) {
  memset(p, 0, sizeof *p);
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &p->w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &p->h)) {
    fail(c, "page %d has no image size", page + 1);
    return -1;
  }
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &p->spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &p->bps);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &p->sf);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &p->planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &p->comp);
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &p->photo))
    p->photo = p->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
  p->tiled = TIFFIsTiled(tif) != 0;
  if (p->tiled) {
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &p->tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &p->th);
    if (p->tw == 0 || p->th == 0) {
      fail(c, "page %d has a zero tile size", page + 1);
      return -1;
    }
  } else {
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &p->rps);
    if (p->rps == 0 || p->rps > p->h) p->rps = p->h;
  }
  if (p->w == 0 || p->h == 0) {
    fail(c, "page %d is empty (%ux%u)", page + 1, p->w, p->h);
    return -1;
  }
  if (p->spp < 1) {
    fail(c, "unsupported samples per pixel %u", p->spp);
    return -1;
  }
  int s = -1;
  if (p->sf == SAMPLEFORMAT_UINT || p->sf == SAMPLEFORMAT_VOID) {
    s = p->bps == 8 ? SG_SAMPLE_U8 : p->bps == 16 ? SG_SAMPLE_U16 : p->bps == 32 ? SG_SAMPLE_U32 : -1;
    if (p->bps == 64) {
      fail(c, "unsupported 64-bit unsigned samples");
      return -1;
    }
  } else if (p->sf == SAMPLEFORMAT_INT) {
    s = p->bps == 8 ? SG_SAMPLE_I8 : p->bps == 16 ? SG_SAMPLE_I16 : p->bps == 32 ? SG_SAMPLE_I32
      : p->bps == 64 ? SG_SAMPLE_I64 : -1;
  } else if (p->sf == SAMPLEFORMAT_IEEEFP) {
    s = p->bps == 16 ? SG_SAMPLE_F16 : p->bps == 32 ? SG_SAMPLE_F32 : p->bps == 64 ? SG_SAMPLE_F64 : -1;
  } else {
    fail(c, "unsupported sample format %u (complex numbers?)", p->sf);
    return -1;
  }
  if (s < 0) {
    fail(c, "unsupported bit depth %u", p->bps);
    return -1;
  }
  p->sample = (sg_sample)s;
  switch (p->photo) {
  case PHOTOMETRIC_MINISBLACK: case PHOTOMETRIC_MINISWHITE: case PHOTOMETRIC_RGB: case PHOTOMETRIC_SEPARATED:
    break;
  case PHOTOMETRIC_PALETTE:
    if (p->spp != 1 || p->sample != SG_SAMPLE_U8) {
      fail(c, "unsupported palette image (%u samples of %u bits)", p->spp, p->bps);
      return -1;
    }
    p->expand_palette = !palette_index;
    break;
  default:
    fail(c, "unsupported photometric interpretation %u", p->photo);
    return -1;
  }
  if (!TIFFIsCODECConfigured(p->comp)) {
    const char *n = compression_name(p->comp);
    if (n) fail(c, "unsupported compression %s", n);
    else fail(c, "unsupported compression %u", p->comp);
    return -1;
  }
  p->channels = p->expand_palette ? 3 : p->spp;
  return 0;
}

/* The most bytes a file of fsize bytes can plausibly decode to: a corrupt
 * header must not make us allocate terabytes before the decoder fails. */
static double max_decoded(uint16_t comp, int64_t fsize) {
  double ratio = comp == COMPRESSION_NONE ? 1 : comp == COMPRESSION_PACKBITS ? 64
               : comp == COMPRESSION_ADOBE_DEFLATE || comp == COMPRESSION_DEFLATE ? 1100
               : comp == COMPRESSION_LZW ? 3000 : 1e5;
  return (double)fsize * ratio + (1 << 20);
}

static bool same_format(const tpage *a, const tpage *b) {
  return a->w == b->w && a->h == b->h && a->channels == b->channels && a->sample == b->sample;
}

static int check_strile(tctx *c, TIFF *tif, uint32_t i, const char *kind) {
  int err = 0;
  uint64_t off = TIFFGetStrileOffsetWithErr(tif, i, &err);
  uint64_t n = err ? 0 : TIFFGetStrileByteCountWithErr(tif, i, &err);
  if (err) {
    fail_corrupt(c, "cannot read the strip/tile offsets");
    return -1;
  }
  if (n == 0) return 0;
  if (off > (uint64_t)c->fsize || n > (uint64_t)c->fsize - off) {
    fail(c, "truncated file (%s %u ends at byte %llu, the file has %lld bytes)", kind, i,
         (unsigned long long)(off + n), (long long)c->fsize);
    return -1;
  }
  return 0;
}

/* Decodes the current page into buf: H x W x spp samples (contiguous
 * planes) or spp x H x W (separate planes). */
static int decode_page(tctx *c, TIFF *tif, const tpage *p, uint8_t *buf) {
  size_t bytes = sg_sample_size(p->sample);
  bool sep = p->planar == PLANARCONFIG_SEPARATE && p->spp > 1;
  size_t px = sep ? bytes : bytes * p->spp; /* bytes per pixel in one plane */
  size_t planebytes = (size_t)p->w * p->h * bytes;
  int planes = sep ? p->spp : 1;
  if (p->tiled) {
    tmsize_t tsize = TIFFTileSize(tif);
    if (tsize <= 0 || (uint64_t)tsize < (uint64_t)p->tw * p->th * px) {
      fail_corrupt(c, "bad tile size");
      return -1;
    }
    uint8_t *tb = malloc((size_t)tsize);
    if (!tb) {
      fail(c, "out of memory");
      return -1;
    }
    for (int pl = 0; pl < planes; pl++)
      for (uint32_t ty = 0; ty < p->h; ty += p->th)
        for (uint32_t tx = 0; tx < p->w; tx += p->tw) {
          uint32_t tile = TIFFComputeTile(tif, tx, ty, 0, (uint16_t)pl);
          if (check_strile(c, tif, tile, "tile") != 0) { free(tb); return -1; }
          if (TIFFReadEncodedTile(tif, tile, tb, tsize) < 0) {
            free(tb);
            fail_corrupt(c, "cannot decode a tile");
            return -1;
          }
          uint32_t rows = p->h - ty < p->th ? p->h - ty : p->th;
          uint32_t cols = p->w - tx < p->tw ? p->w - tx : p->tw;
          uint8_t *dst = buf + (size_t)pl * (sep ? planebytes : 0);
          for (uint32_t r = 0; r < rows; r++)
            memcpy(dst + ((size_t)(ty + r) * p->w + tx) * px, tb + (size_t)r * p->tw * px, (size_t)cols * px);
        }
    free(tb);
    return 0;
  }
  uint32_t nstrips = (p->h + p->rps - 1) / p->rps;
  if (TIFFNumberOfStrips(tif) < nstrips * (uint32_t)planes) {
    fail(c, "corrupt file (%u strips, expected %u)", TIFFNumberOfStrips(tif), nstrips * planes);
    return -1;
  }
  for (int pl = 0; pl < planes; pl++)
    for (uint32_t i = 0; i < nstrips; i++) {
      uint32_t strip = (uint32_t)pl * nstrips + i;
      uint32_t y0 = i * p->rps, rows = p->h - y0 < p->rps ? p->h - y0 : p->rps;
      if (check_strile(c, tif, strip, "strip") != 0) return -1;
      tmsize_t want = (tmsize_t)((size_t)rows * p->w * px);
      uint8_t *dst = buf + (size_t)pl * (sep ? planebytes : 0) + (size_t)y0 * p->w * px;
      tmsize_t got = TIFFReadEncodedStrip(tif, strip, dst, want);
      if (got < 0) {
        fail_corrupt(c, "cannot decode a strip");
        return -1;
      }
      if (got < want) {
        fail(c, "truncated or corrupt file (strip %u decodes to %lld bytes, expected %lld)", strip, (long long)got,
             (long long)want);
        return -1;
      }
    }
  return 0;
}

/* Reads the current page into out at element offset off. */
static int read_page(tctx *c, TIFF *tif, const tpage *p, bool hwc, sg_tensor *out, int64_t off) {
  size_t bytes = sg_sample_size(p->sample);
  size_t n = (size_t)p->w * p->h * p->spp;
  uint8_t *buf = malloc(n * bytes);
  if (!buf) {
    fail(c, "out of memory");
    return -1;
  }
  if (decode_page(c, tif, p, buf) != 0) {
    free(buf);
    return -1;
  }
  int64_t H = p->h, W = p->w, C = p->channels, S = p->spp;
  if (p->expand_palette) {
    uint16_t *cm[3];
    if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &cm[0], &cm[1], &cm[2])) {
      free(buf);
      fail(c, "palette image without a colormap");
      return -1;
    }
    bool wide = false; /* 16-bit entries (the standard) or old 8-bit ones */
    for (int i = 0; i < 256 && !wide; i++) wide = cm[0][i] > 255 || cm[1][i] > 255 || cm[2][i] > 255;
    uint8_t *rgb = malloc((size_t)H * W * 3);
    if (!rgb) {
      free(buf);
      fail(c, "out of memory");
      return -1;
    }
    for (int64_t i = 0; i < H * W; i++)
      for (int k = 0; k < 3; k++) rgb[i * 3 + k] = (uint8_t)(wide ? cm[k][buf[i]] >> 8 : cm[k][buf[i]]);
    free(buf);
    buf = rgb;
    S = 3;
  }
  bool sep = p->planar == PLANARCONFIG_SEPARATE && p->spp > 1 && !p->expand_palette;
  int64_t ssy = sep ? W : W * S, ssx = sep ? 1 : S, ssc = sep ? H * W : 1;
  if (hwc) sg_io_unpack(buf, p->sample, ssy, ssx, ssc, out, off, W * C, C, 1, H, W, C);
  else sg_io_unpack(buf, p->sample, ssy, ssx, ssc, out, off, W, 1, H * W, H, W, C);
  free(buf);
  return 0;
}

/* Opens path for reading; NULL after the error is set. */
static TIFF *open_read(tctx *c) {
  sg_magic m;
  FILE *f = sg_io_open_read(c->op, c->path, &m, &c->fsize);
  if (!f) return NULL;
  if (m != SG_MAGIC_TIFF) {
    fclose(f);
    fail(c, "not a TIFF file");
    return NULL;
  }
  int fd = dup(fileno(f));
  fclose(f);
  if (fd < 0) {
    fail(c, "%s", strerror(errno));
    return NULL;
  }
  TIFF *tif = topen(c, fd, "rm"); /* m: no memory mapping (a file cut short under us must not SIGBUS) */
  if (!tif) {
    close(fd);
    fail_corrupt(c, "cannot open");
    return NULL;
  }
  return tif;
}

sg_tensor *sg_read_tiff(const char *path, const sg_read_opts *o) {
  sg_read_opts def;
  if (!o) { sg_read_opts_init(&def); o = &def; }
  tctx c = {.op = "read_tiff", .path = path};
  TIFF *tif = open_read(&c);
  if (!tif) return NULL;
  sg_tensor *out = NULL;
  tpage first = {0}, p;
  int64_t npages = TIFFNumberOfDirectories(tif);
  if (npages < 1 || c.have_lib) { /* a page directory that cannot be read: cut short or corrupt */
    fail_corrupt(&c, npages < 1 ? "no image in the file" : "cannot read the list of pages");
    goto bad;
  }
  int64_t p0 = o->stack ? 0 : o->page, p1 = o->stack ? npages : o->page + 1;
  if (p0 < 0 || p0 >= npages) {
    fail(&c, "page %lld is out of range (the file has %lld page%s)", (long long)p0 + 1, (long long)npages,
         npages == 1 ? "" : "s");
    goto bad;
  }
  for (int64_t pg = p0; pg < p1; pg++) {
    int ok = pg == p0 ? TIFFSetDirectory(tif, (tdir_t)pg) : TIFFReadDirectory(tif);
    if (!ok) {
      fail_corrupt(&c, "cannot read the page directory");
      goto bad;
    }
    if (describe(&c, tif, &p, o->palette_index, (int)pg) != 0) goto bad;
    int64_t H = p.h, W = p.w, C = p.channels;
    if (pg == p0) {
      first = p;
      int64_t size[4];
      int nd = 0;
      if (o->stack) size[nd++] = p1 - p0;
      if (o->hwc) { size[nd++] = H; size[nd++] = W; if (!(o->stack && C == 1)) size[nd++] = C; }
      else { if (!(o->stack && C == 1)) size[nd++] = C; size[nd++] = H; size[nd++] = W; }
      double need = (double)(p1 - p0) * (double)p.w * p.h * p.spp * (double)sg_sample_size(p.sample);
      if (need > max_decoded(p.comp, c.fsize)) {
        fail(&c, "truncated or corrupt file: %lld page%s of %ux%ux%u %s samples cannot come from %lld bytes",
             (long long)(p1 - p0), p1 - p0 == 1 ? "" : "s", p.w, p.h, p.spp, sg_sample_name(p.sample),
             (long long)c.fsize);
        goto bad;
      }
      out = sg_empty(nd, size, sg_sample_dtype(p.sample), SG_CPU);
      if (!out) {
        fail(&c, "%s", sg_error_get());
        goto bad;
      }
    } else if (!same_format(&p, &first)) {
      fail(&c, "page %lld is %ux%u with %d %s channels but page 1 is %ux%u with %d %s channels: read pages one by "
               "one with {page=k}", (long long)pg + 1, p.w, p.h, p.channels, sg_sample_name(p.sample), first.w,
           first.h, first.channels, sg_sample_name(first.sample));
      goto bad;
    }
    if (read_page(&c, tif, &p, o->hwc, out, (pg - p0) * H * W * C) != 0) goto bad;
  }
  TIFFClose(tif);
  return sg_io_finish(c.op, path, out, first.sample, first.bps, o);
bad:
  TIFFClose(tif);
  if (out) sg_tensor_decref(out);
  return NULL;
}

int sg_tiff_info(const char *path, sg_image_info *info) {
  memset(info, 0, sizeof *info);
  tctx c = {.op = "info", .path = path};
  TIFF *tif = open_read(&c);
  if (!tif) return -1;
  tpage p;
  int rc = -1;
  info->pages = TIFFNumberOfDirectories(tif);
  if (c.have_lib) fail_corrupt(&c, "cannot read the list of pages");
  else if (describe(&c, tif, &p, false, 0) == 0) {
    snprintf(info->format, sizeof info->format, "tiff");
    info->width = p.w;
    info->height = p.h;
    info->channels = p.channels;
    info->bits = p.bps;
    info->sample = p.sample;
    const char *color = p.photo == PHOTOMETRIC_PALETTE ? "palette"
                      : p.photo == PHOTOMETRIC_RGB ? (p.spp == 4 ? "rgba" : "rgb")
                      : p.photo == PHOTOMETRIC_MINISWHITE ? "miniswhite"
                      : p.photo == PHOTOMETRIC_SEPARATED ? "separated"
                      : p.spp == 2 ? "gray+alpha" : "gray";
    snprintf(info->color, sizeof info->color, "%s", color);
    const char *cn = compression_name(p.comp);
    if (cn) snprintf(info->compression, sizeof info->compression, "%s", cn);
    else snprintf(info->compression, sizeof info->compression, "code %u", p.comp);
    info->tiled = p.tiled;
    info->big_endian = TIFFIsBigEndian(tif) != 0;
    info->separate = p.planar == PLANARCONFIG_SEPARATE;
    rc = 0;
  }
  TIFFClose(tif);
  return rc;
}

/* ================================================================ write */
static sg_sample default_sample(sg_dtype dt) {
  switch (dt) {
  case SG_U8: return SG_SAMPLE_U8;
  case SG_I32: return SG_SAMPLE_I32;
  case SG_I64: return SG_SAMPLE_I64;
  case SG_F64: return SG_SAMPLE_F64;
  default: return SG_SAMPLE_F32; /* f32, f16, bf16 */
  }
}

static int write_pages(tctx *c, TIFF *tif, sg_tensor *t4, int64_t D, int64_t C, int64_t H, int64_t W, sg_sample s,
                       const sg_write_opts *o, uint8_t *buf, uint8_t *tilebuf) {
  size_t bytes = sg_sample_size(s);
  bool sep = o->separate && C > 1;
  size_t px = sep ? bytes : bytes * (size_t)C;
  size_t planebytes = (size_t)(H * W) * bytes;
  int planes = sep ? (int)C : 1;
  uint16_t sf = sg_sample_is_float(s) ? SAMPLEFORMAT_IEEEFP
              : (s == SG_SAMPLE_U8 || s == SG_SAMPLE_U16 || s == SG_SAMPLE_U32) ? SAMPLEFORMAT_UINT : SAMPLEFORMAT_INT;
  static const uint16_t comps[] = {COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_PACKBITS};
  uint16_t comp = comps[o->compression];
  uint32_t rps = 0;
  if (!o->tile_w) {
    size_t rowbytes = (size_t)W * px;
    rps = rowbytes >= 65536 ? 1 : (uint32_t)(65536 / rowbytes);
    if (rps > H) rps = (uint32_t)H;
  }
  for (int64_t d = 0; d < D; d++) {
    /* the page's samples in file order */
    sg_tensor *pg = sg_select(t4, 0, d); /* C x H x W */
    sg_tensor *v = NULL;
    if (pg && !sep) {
      const int perm[3] = {1, 2, 0};
      v = sg_permute(pg, perm);
    } else if (pg) {
      v = sg_tensor_incref(pg);
    }
    sg_tensor *ct = v ? sg_contiguous(v) : NULL;
    if (pg) sg_tensor_decref(pg);
    if (v) sg_tensor_decref(v);
    if (!ct) return -1;
    int rc = sg_io_pack(c->op, c->path, ct, s, o->scale, buf);
    sg_tensor_decref(ct);
    if (rc != 0) return -1;

    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)W);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)H);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)C);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)(bytes * 8));
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, sf);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, C >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    if (C == 2 || C == 4) {
      uint16_t extra[1] = {EXTRASAMPLE_UNASSALPHA};
      TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, extra);
    }
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, sep ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, comp);
    if (o->predictor && (comp == COMPRESSION_LZW || comp == COMPRESSION_ADOBE_DEFLATE))
      TIFFSetField(tif, TIFFTAG_PREDICTOR, sg_sample_is_float(s) ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
    TIFFSetField(tif, TIFFTAG_SOFTWARE, "semseg");
    if (D > 1) {
      TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
      if (D <= 65535) TIFFSetField(tif, TIFFTAG_PAGENUMBER, (uint16_t)d, (uint16_t)D);
    }
    if (o->tile_w) {
      TIFFSetField(tif, TIFFTAG_TILEWIDTH, (uint32_t)o->tile_w);
      TIFFSetField(tif, TIFFTAG_TILELENGTH, (uint32_t)o->tile_h);
    } else {
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
    }
    if (c->have_lib) {
      fail_lib(c, "cannot set the TIFF tags");
      return -1;
    }
    for (int pl = 0; pl < planes; pl++) {
      const uint8_t *src = buf + (size_t)pl * (sep ? planebytes : 0);
      if (o->tile_w) {
        uint32_t tw = (uint32_t)o->tile_w, th = (uint32_t)o->tile_h;
        for (uint32_t ty = 0; ty < H; ty += th)
          for (uint32_t tx = 0; tx < W; tx += tw) {
            memset(tilebuf, 0, (size_t)tw * th * px);
            uint32_t rows = (uint32_t)H - ty < th ? (uint32_t)H - ty : th;
            uint32_t cols = (uint32_t)W - tx < tw ? (uint32_t)W - tx : tw;
            for (uint32_t r = 0; r < rows; r++)
              memcpy(tilebuf + (size_t)r * tw * px, src + ((size_t)(ty + r) * W + tx) * px, (size_t)cols * px);
            if (TIFFWriteEncodedTile(tif, TIFFComputeTile(tif, tx, ty, 0, (uint16_t)pl), tilebuf,
                                     (tmsize_t)((size_t)tw * th * px)) < 0) {
              fail_lib(c, "cannot write a tile");
              return -1;
            }
          }
      } else {
        uint32_t nstrips = ((uint32_t)H + rps - 1) / rps;
        for (uint32_t i = 0; i < nstrips; i++) {
          uint32_t y0 = i * rps, rows = (uint32_t)H - y0 < rps ? (uint32_t)H - y0 : rps;
          if (TIFFWriteEncodedStrip(tif, (uint32_t)pl * nstrips + i, (void *)(src + (size_t)y0 * W * px),
                                    (tmsize_t)((size_t)rows * W * px)) < 0) {
            fail_lib(c, "cannot write a strip");
            return -1;
          }
        }
      }
    }
    if (!TIFFWriteDirectory(tif)) {
      fail_lib(c, "cannot write the page directory");
      return -1;
    }
  }
  return 0;
}

int sg_write_tiff(const char *path, sg_tensor *t, const sg_write_opts *o) {
  sg_write_opts def;
  if (!o) { sg_write_opts_init(&def); o = &def; }
  tctx c = {.op = "write_tiff", .path = path};
  if (sg_io_check_writable(c.op, path, t) != 0) return -1;
  int64_t D = 1, C = 1, H, W;
  const int64_t *z = t->size;
  /* t4: a D x C x H x W view */
  int64_t shape[4];
  bool permute_hwc = false;
  if (t->ndim == 2) { H = z[0]; W = z[1]; }
  else if (t->ndim == 3 && o->stack) { D = z[0]; H = z[1]; W = z[2]; }
  else if (t->ndim == 3 && o->hwc) { H = z[0]; W = z[1]; C = z[2]; permute_hwc = true; }
  else if (t->ndim == 3) { C = z[0]; H = z[1]; W = z[2]; }
  else if (t->ndim == 4 && o->hwc) { D = z[0]; H = z[1]; W = z[2]; C = z[3]; permute_hwc = true; }
  else if (t->ndim == 4) { D = z[0]; C = z[1]; H = z[2]; W = z[3]; }
  else {
    fail(&c, "expected H x W, C x H x W, D x H x W (with {stack=true}) or D x C x H x W, got shape %s",
         SG_SHAPE_STR(t));
    return -1;
  }
  if (C < 1 || C > 4) {
    fail(&c, "%lld channels (1 to 4)%s", (long long)C, t->ndim == 3 ? "; write a D x H x W stack with {stack=true}" : "");
    return -1;
  }
  if (D < 1 || H < 1 || W < 1 || H > UINT32_MAX || W > UINT32_MAX) {
    fail(&c, "cannot write an empty or oversized image (shape %s)", SG_SHAPE_STR(t));
    return -1;
  }
  sg_sample s = o->sample >= 0 ? (sg_sample)o->sample : default_sample(t->dtype);
  if (o->tile_w && (o->tile_w % 16 || o->tile_h % 16 || o->tile_w <= 0 || o->tile_h <= 0)) {
    fail(&c, "tile size %dx%d: TIFF tiles are multiples of 16", o->tile_w, o->tile_h);
    return -1;
  }
  if ((unsigned)o->compression > SG_TIFF_PACKBITS) {
    fail(&c, "unknown compression");
    return -1;
  }
  size_t bytes = sg_sample_size(s);
  sg_tensor *t4 = NULL;
  if (permute_hwc) {
    shape[0] = D; shape[1] = H; shape[2] = W; shape[3] = C;
    sg_tensor *r = sg_reshape(t, 4, shape);
    const int perm[4] = {0, 3, 1, 2};
    t4 = r ? sg_permute(r, perm) : NULL;
    if (r) sg_tensor_decref(r);
  } else {
    shape[0] = D; shape[1] = C; shape[2] = H; shape[3] = W;
    t4 = sg_reshape(t, 4, shape);
  }
  if (!t4) return -1;
  size_t pagebytes = (size_t)(C * H * W) * bytes;
  uint8_t *buf = malloc(pagebytes);
  uint8_t *tilebuf = o->tile_w ? malloc((size_t)o->tile_w * o->tile_h * (size_t)C * bytes) : NULL;
  if (!buf || (o->tile_w && !tilebuf)) {
    free(buf);
    free(tilebuf);
    sg_tensor_decref(t4);
    fail(&c, "out of memory");
    return -1;
  }
  char tmp[PATH_MAX + 16];
  int fd = sg_io_tmp_create(c.op, path, tmp, sizeof tmp);
  int rc = -1;
  if (fd >= 0) {
    char mode[8] = "w";
    if (o->byteorder == 'b') strcat(mode, "b");
    else if (o->byteorder == 'l') strcat(mode, "l");
    if ((double)pagebytes * (double)D > 3.9e9) strcat(mode, "8"); /* BigTIFF past 4 GB */
    int tfd = dup(fd);
    TIFF *tif = tfd >= 0 ? topen(&c, tfd, mode) : NULL;
    if (!tif) {
      if (tfd >= 0) close(tfd);
      fail_lib(&c, "cannot create the file");
    } else {
      rc = write_pages(&c, tif, t4, D, C, H, W, s, o, buf, tilebuf);
      TIFFClose(tif);
      if (rc == 0 && c.have_lib) {
        fail_lib(&c, "cannot finish the file");
        rc = -1;
      }
    }
    if (rc == 0) rc = sg_io_tmp_commit(c.op, path, tmp, fd);
    else sg_io_tmp_abort(tmp, fd);
  }
  free(buf);
  free(tilebuf);
  sg_tensor_decref(t4);
  return rc;
}
