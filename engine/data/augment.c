/* Augmentation kernels for one sample: keyed random numbers, the warp that all
 * geometric transforms go through, separable Gaussian blur and the
 * photometric kernels. See augment.h for the conventions. */
#include "augment.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ keyed random */
/* A 64-bit finaliser (xor-shift / multiply rounds): a bijection whose output
 * bits all depend on all input bits. Draw k of a stream is the finaliser of
 * (stream key ^ odd-constant * k), so draws can be made in any order. */
static inline uint64_t fmix(uint64_t z) {
  z ^= z >> 31;
  z *= 0x7fb5d329728ea185ULL;
  z ^= z >> 27;
  z *= 0x81dadef4bc2dd44dULL;
  z ^= z >> 33;
  return z;
}
static inline uint64_t stream_key(uint64_t seed, uint64_t stream) {
  return fmix(fmix(seed ^ 0x6a09e667f3bcc909ULL) + 0x9e3779b97f4a7c15ULL * (stream + 1));
}
static inline uint64_t keyed(uint64_t key, uint64_t k) { return fmix(key ^ (0xbb67ae8584caa73bULL * (k + 1))); }
static inline double u53(uint64_t b) { return (double)(b >> 11) * (1.0 / 9007199254740992.0); }

uint64_t sg_aug_bits(uint64_t seed, uint64_t stream, uint64_t k) { return keyed(stream_key(seed, stream), k); }
double sg_aug_uniform(uint64_t seed, uint64_t stream, uint64_t k) { return u53(sg_aug_bits(seed, stream, k)); }
uint64_t sg_aug_subseed(uint64_t seed, uint64_t k) { return fmix(stream_key(seed, 0xffffffffULL) ^ fmix(k + 1)); }

/* Two normals from one 64-bit draw (24 bits per uniform, f32 math: plenty for noise). */
static inline void normal_pair(uint64_t b, double *z0, double *z1) {
  float u1 = ((float)(b >> 40) + 1.0f) * (1.0f / 16777216.0f); /* (0, 1], 24 bits */
  float u2 = (float)(uint32_t)(b & 0xffffff) * (1.0f / 16777216.0f);
  float r = sqrtf(-2.0f * logf(u1)), t = (float)(2.0 * M_PI) * u2;
  *z0 = (double)(r * cosf(t));
  *z1 = (double)(r * sinf(t));
}
double sg_aug_normal(uint64_t seed, uint64_t stream, uint64_t k) {
  double z0, z1;
  normal_pair(sg_aug_bits(seed, stream, k / 2), &z0, &z1);
  return (k & 1) ? z1 : z0;
}

/* ------------------------------------------------------------ fill modes */
static const char *const FILL_NAMES[] = {"constant", "reflect", "nearest"};
int sg_fill_mode_from_name(const char *name) {
  for (int i = 0; i < 3; i++)
    if (name && strcmp(name, FILL_NAMES[i]) == 0) return i;
  return -1;
}
const char *sg_fill_mode_name(sg_fill_mode m) { return (unsigned)m < 3 ? FILL_NAMES[m] : "?"; }

/* Index i of an axis of length n under a border mode; -1 = use the fill value. */
static inline int64_t border(int64_t i, int64_t n, sg_fill_mode mode) {
  if (i >= 0 && i < n) return i;
  if (mode == SG_FILL_CONSTANT) return -1;
  if (mode == SG_FILL_NEAREST || n == 1) return i < 0 ? 0 : n - 1;
  int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

/* ------------------------------------------------------------ sample checks */
typedef struct { int64_t c, h, w; } dims3;

static int check_image(const char *op, const sg_tensor *img, dims3 *d) {
  if (!img) { sg_error_set("%s: the image is missing", op); return -1; }
  if (img->ndim == 3) { d->c = img->size[0]; d->h = img->size[1]; d->w = img->size[2]; }
  else if (img->ndim == 2) { d->c = 1; d->h = img->size[0]; d->w = img->size[1]; }
  else {
    sg_error_set("%s: the image must be C x H x W or H x W (got shape %s)", op, SG_SHAPE_STR(img));
    return -1;
  }
  if (img->storage->device != SG_CPU) { sg_error_set("%s: the image must be on the cpu", op); return -1; }
  if (!sg_dtype_is_float(img->dtype)) {
    sg_error_set("%s: the image must be a float tensor (got %s)", op, sg_dtype_name(img->dtype));
    return -1;
  }
  if (d->c < 1 || d->h < 1 || d->w < 1) { sg_error_set("%s: the image is empty (shape %s)", op, SG_SHAPE_STR(img)); return -1; }
  return 0;
}

static int check_sample(const char *op, const sg_tensor *img, const sg_tensor *mask, dims3 *d) {
  if (check_image(op, img, d)) return -1;
  if (!mask) return 0;
  if (!sg_dtype_is_int(mask->dtype)) {
    sg_error_set("%s: the mask must be an integer tensor (u8, i32 or i64; got %s)", op, sg_dtype_name(mask->dtype));
    return -1;
  }
  if (mask->storage->device != SG_CPU) { sg_error_set("%s: the mask must be on the cpu", op); return -1; }
  bool ok = (mask->ndim == 2 && mask->size[0] == d->h && mask->size[1] == d->w) ||
            (mask->ndim == 3 && mask->size[0] == 1 && mask->size[1] == d->h && mask->size[2] == d->w);
  if (!ok) {
    sg_error_set("%s: the mask of shape %s does not fit the image of shape %s (want %lldx%lld or 1x%lldx%lld)", op,
                 SG_SHAPE_STR(mask), SG_SHAPE_STR(img), (long long)d->h, (long long)d->w, (long long)d->h,
                 (long long)d->w);
    return -1;
  }
  return 0;
}

static int check_fill(const char *op, const sg_tensor *mask, sg_fill f) {
  if ((unsigned)f.mode > SG_FILL_NEAREST) { sg_error_set("%s: unknown fill mode %d", op, (int)f.mode); return -1; }
  if (!isfinite(f.value)) { sg_error_set("%s: the fill value must be finite (got %g)", op, f.value); return -1; }
  if (mask && f.mode == SG_FILL_CONSTANT) {
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    if (mask->dtype == SG_U8) { lo = 0; hi = 255; }
    else if (mask->dtype == SG_I32) { lo = INT32_MIN; hi = INT32_MAX; }
    if (f.mask_value < lo || f.mask_value > hi) {
      sg_error_set("%s: the mask fill label %lld does not fit a %s mask", op, (long long)f.mask_value,
                   sg_dtype_name(mask->dtype));
      return -1;
    }
  }
  return 0;
}

/* A plain (no autograd) contiguous f32 copy. */
static sg_tensor *fresh_f32(sg_tensor *t) {
  sg_tensor *out = sg_empty(t->ndim, t->size, SG_F32, SG_CPU);
  if (!out) return NULL;
  if (sg_copy_(out, t)) { sg_tensor_decref(out); return NULL; }
  atomic_store(&out->storage->version, 0);
  return out;
}
/* t itself when already contiguous f32 (borrowed + incref), else a copy. */
static sg_tensor *readable_f32(sg_tensor *t) {
  if (t->dtype == SG_F32 && sg_is_contiguous(t)) return sg_tensor_incref(t);
  return fresh_f32(t);
}
static sg_tensor *readable(sg_tensor *t) {
  if (sg_is_contiguous(t)) return sg_tensor_incref(t);
  sg_tensor *out = sg_empty(t->ndim, t->size, t->dtype, SG_CPU);
  if (out && sg_copy_(out, t)) { sg_tensor_decref(out); return NULL; }
  return out;
}

/* ------------------------------------------------------------ the warp */
/* floor for |v| < 2^62 without a libm call */
static inline int64_t ffloor(double v) {
  int64_t i = (int64_t)v;
  return i - ((double)i > v);
}
static inline double clamp_coord(double v) {
  if (!(v > -1e12)) return -1e12; /* also NaN */
  return v < 1e12 ? v : 1e12;
}

int sg_aug_warp(const char *op, sg_tensor *img, sg_tensor *mask, const sg_warp_map *m, int64_t oh, int64_t ow,
                sg_fill fill, sg_pair *out) {
  out->image = out->mask = NULL;
  dims3 d;
  if (check_sample(op, img, mask, &d) || check_fill(op, mask, fill)) return -1;
  if (oh < 1 || ow < 1 || oh * ow > SG_MAX_NUMEL / (d.c > 0 ? d.c : 1)) {
    sg_error_set("%s: bad output size %lldx%lld", op, (long long)oh, (long long)ow);
    return -1;
  }
  for (int i = 0; i < 6; i++)
    if (!isfinite(m->a[i])) { sg_error_set("%s: the sampling map is not finite", op); return -1; }
  sg_tensor *src = readable_f32(img), *msrc = NULL, *oi = NULL, *om = NULL;
  if (!src) return -1;
  if (mask && !(msrc = readable(mask))) goto fail;
  int64_t isz[3] = {d.c, oh, ow};
  oi = img->ndim == 3 ? sg_empty(3, isz, SG_F32, SG_CPU) : sg_empty(2, isz + 1, SG_F32, SG_CPU);
  if (!oi) goto fail;
  if (mask) {
    int64_t msz[3] = {1, oh, ow};
    om = mask->ndim == 3 ? sg_empty(3, msz, mask->dtype, SG_CPU) : sg_empty(2, msz + 1, mask->dtype, SG_CPU);
    if (!om) goto fail;
  }

  const int64_t H = d.h, W = d.w, C = d.c, HW = H * W, OHW = oh * ow;
  const float *S = sg_data_ptr(src);
  float *D = sg_data_ptr(oi);
  const float fv = (float)fill.value;
  const sg_fill_mode mode = fill.mode;
  const double *a = m->a;
  bool integral = !m->dx && !m->dy;
  for (int i = 0; i < 6; i++) integral = integral && a[i] == floor(a[i]) && fabs(a[i]) < 1e12;

  const unsigned char *MS = msrc ? sg_data_ptr(msrc) : NULL;
  unsigned char *MD = om ? sg_data_ptr(om) : NULL;
  size_t es = mask ? sg_dtype_size(mask->dtype) : 0;
  unsigned char mfill[8] = {0};
  if (mask) sg_store_i64(mfill, mask->dtype, fill.mask_value);

  for (int64_t y = 0; y < oh; y++) {
    const double bx = a[1] * (double)y + a[2], by = a[4] * (double)y + a[5];
    if (integral) {
      /* a permutation row: the source walks a straight line of whole pixels */
      int64_t sx0 = (int64_t)bx, sy0 = (int64_t)by;
      int64_t sx1 = (int64_t)(a[0] * (double)(ow - 1) + bx), sy1 = (int64_t)(a[3] * (double)(ow - 1) + by);
      if (sx0 >= 0 && sx0 < W && sy0 >= 0 && sy0 < H && sx1 >= 0 && sx1 < W && sy1 >= 0 && sy1 < H) {
        const int64_t start = sy0 * W + sx0, step = (int64_t)a[3] * W + (int64_t)a[0];
        for (int64_t c = 0; c < C; c++) {
          const float *s = S + c * HW;
          float *dst = D + c * OHW + y * ow;
          int64_t id = start;
          for (int64_t x = 0; x < ow; x++, id += step) dst[x] = s[id];
        }
        if (MD) {
          int64_t id = start;
          if (es == 8) {
            const int64_t *ms = (const int64_t *)(const void *)MS;
            int64_t *md = (int64_t *)(void *)MD + y * ow;
            for (int64_t x = 0; x < ow; x++, id += step) md[x] = ms[id];
          } else if (es == 1) {
            unsigned char *md = MD + y * ow;
            for (int64_t x = 0; x < ow; x++, id += step) md[x] = MS[id];
          } else {
            for (int64_t x = 0; x < ow; x++, id += step) memcpy(MD + (size_t)(y * ow + x) * es, MS + (size_t)id * es, es);
          }
        }
        continue;
      }
    }
    for (int64_t x = 0; x < ow; x++) {
      const int64_t o = y * ow + x;
      double sx = a[0] * (double)x + bx;
      double sy = a[3] * (double)x + by;
      if (m->dx) sx += m->dx[o];
      if (m->dy) sy += m->dy[o];
      sx = clamp_coord(sx);
      sy = clamp_coord(sy);
      if (integral) {
        int64_t ix = border((int64_t)sx, W, mode), iy = border((int64_t)sy, H, mode);
        if (ix < 0 || iy < 0) for (int64_t c = 0; c < C; c++) D[c * OHW + o] = fv;
        else for (int64_t c = 0; c < C; c++) D[c * OHW + o] = S[c * HW + iy * W + ix];
      } else {
        int64_t x0 = ffloor(sx), y0 = ffloor(sy);
        float wx = (float)(sx - (double)x0), wy = (float)(sy - (double)y0);
        if (x0 >= 0 && x0 + 1 < W && y0 >= 0 && y0 + 1 < H) {
          for (int64_t c = 0; c < C; c++) {
            const float *p = S + c * HW + y0 * W + x0;
            float top = p[0] + wx * (p[1] - p[0]), bot = p[W] + wx * (p[W + 1] - p[W]);
            D[c * OHW + o] = top + wy * (bot - top);
          }
        } else {
          int64_t xs[2] = {border(x0, W, mode), border(x0 + 1, W, mode)};
          int64_t ys[2] = {border(y0, H, mode), border(y0 + 1, H, mode)};
          float wxs[2] = {1.0f - wx, wx}, wys[2] = {1.0f - wy, wy};
          for (int64_t c = 0; c < C; c++) {
            float acc = 0.0f;
            for (int j = 0; j < 2; j++)
              for (int i = 0; i < 2; i++) {
                float w = wys[j] * wxs[i];
                if (w == 0.0f) continue;
                acc += w * ((xs[i] < 0 || ys[j] < 0) ? fv : S[c * HW + ys[j] * W + xs[i]]);
              }
            D[c * OHW + o] = acc;
          }
        }
      }
      if (MD) {
        int64_t ix = border(ffloor(sx + 0.5), W, mode), iy = border(ffloor(sy + 0.5), H, mode);
        const unsigned char *from = (ix < 0 || iy < 0) ? mfill : MS + (size_t)(iy * W + ix) * es;
        switch (es) {
        case 1: MD[o] = *from; break;
        case 4: memcpy(MD + (size_t)o * 4, from, 4); break;
        default: memcpy(MD + (size_t)o * 8, from, 8); break;
        }
      }
    }
  }
  sg_tensor_decref(src);
  sg_tensor_decref(msrc);
  out->image = oi;
  out->mask = om;
  return 0;
fail:
  sg_tensor_decref(src);
  sg_tensor_decref(msrc);
  sg_tensor_decref(oi);
  sg_tensor_decref(om);
  return -1;
}

/* ------------------------------------------------------------ geometric kernels */
static const sg_fill EXACT_FILL = {SG_FILL_NEAREST, 0.0, 0}; /* never reached by permutations */

static int image_hw(const char *op, sg_tensor *img, sg_tensor *mask, dims3 *d) { return check_sample(op, img, mask, d); }

int sg_aug_flip(sg_tensor *img, sg_tensor *mask, bool horizontal, sg_pair *out) {
  dims3 d;
  const char *op = horizontal ? "flip (horizontal)" : "flip (vertical)";
  if (image_hw(op, img, mask, &d)) return -1;
  sg_warp_map m = {{1, 0, 0, 0, 1, 0}, NULL, NULL};
  if (horizontal) { m.a[0] = -1; m.a[2] = (double)(d.w - 1); }
  else { m.a[4] = -1; m.a[5] = (double)(d.h - 1); }
  return sg_aug_warp(op, img, mask, &m, d.h, d.w, EXACT_FILL, out);
}

int sg_aug_rot90(sg_tensor *img, sg_tensor *mask, int64_t k, sg_pair *out) {
  dims3 d;
  if (image_hw("rot90", img, mask, &d)) return -1;
  k = ((k % 4) + 4) % 4;
  double H1 = (double)(d.h - 1), W1 = (double)(d.w - 1);
  sg_warp_map m = {{1, 0, 0, 0, 1, 0}, NULL, NULL};
  int64_t oh = d.h, ow = d.w;
  if (k == 1) { /* out[i][j] = in[j][W-1-i] */
    double a[6] = {0, -1, W1, 1, 0, 0};
    memcpy(m.a, a, sizeof a);
    oh = d.w; ow = d.h;
  } else if (k == 2) {
    double a[6] = {-1, 0, W1, 0, -1, H1};
    memcpy(m.a, a, sizeof a);
  } else if (k == 3) { /* out[i][j] = in[H-1-j][i] */
    double a[6] = {0, 1, 0, -1, 0, H1};
    memcpy(m.a, a, sizeof a);
    oh = d.w; ow = d.h;
  }
  return sg_aug_warp("rot90", img, mask, &m, oh, ow, EXACT_FILL, out);
}

int sg_aug_transpose(sg_tensor *img, sg_tensor *mask, sg_pair *out) {
  dims3 d;
  if (image_hw("transpose", img, mask, &d)) return -1;
  sg_warp_map m = {{0, 1, 0, 1, 0, 0}, NULL, NULL};
  return sg_aug_warp("transpose", img, mask, &m, d.w, d.h, EXACT_FILL, out);
}

int sg_aug_rotate(sg_tensor *img, sg_tensor *mask, double degrees, sg_fill fill, sg_pair *out) {
  dims3 d;
  if (image_hw("rotate", img, mask, &d)) return -1;
  if (!isfinite(degrees)) { sg_error_set("rotate: degrees must be finite (got %g)", degrees); return -1; }
  double c, s, q = fmod(degrees, 90.0);
  if (q == 0.0) { /* exact quarter turns */
    int64_t k = ((int64_t)(degrees / 90.0) % 4 + 4) % 4;
    static const double C4[4] = {1, 0, -1, 0}, S4[4] = {0, 1, 0, -1};
    c = C4[k]; s = S4[k];
  } else {
    double r = degrees * (M_PI / 180.0);
    c = cos(r); s = sin(r);
  }
  double cx = (double)(d.w - 1) / 2, cy = (double)(d.h - 1) / 2;
  /* sx = cx + c (x - cx) - s (y - cy); sy = cy + s (x - cx) + c (y - cy) */
  sg_warp_map m = {{c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy}, NULL, NULL};
  return sg_aug_warp("rotate", img, mask, &m, d.h, d.w, fill, out);
}

int sg_aug_scale(sg_tensor *img, sg_tensor *mask, double factor, sg_fill fill, sg_pair *out) {
  dims3 d;
  if (image_hw("scale", img, mask, &d)) return -1;
  if (!(factor > 0) || !isfinite(factor)) { sg_error_set("scale: factor must be > 0 (got %g)", factor); return -1; }
  double cx = (double)(d.w - 1) / 2, cy = (double)(d.h - 1) / 2, f = 1.0 / factor;
  sg_warp_map m = {{f, 0, cx - f * cx, 0, f, cy - f * cy}, NULL, NULL};
  return sg_aug_warp("scale", img, mask, &m, d.h, d.w, fill, out);
}

int sg_aug_elastic(sg_tensor *img, sg_tensor *mask, double alpha, double sigma, uint64_t seed, sg_fill fill,
                   sg_pair *out) {
  dims3 d;
  if (image_hw("elastic", img, mask, &d)) return -1;
  if (!(alpha >= 0) || !isfinite(alpha)) { sg_error_set("elastic: alpha must be >= 0 (got %g)", alpha); return -1; }
  if (!(sigma > 0) || !isfinite(sigma)) { sg_error_set("elastic: sigma must be > 0 (got %g)", sigma); return -1; }
  int64_t n = d.h * d.w;
  float *f = malloc(sizeof(float) * (size_t)n * 2);
  if (!f) { sg_error_set("elastic: out of memory"); return -1; }
  for (int axis = 0; axis < 2; axis++) {
    float *p = f + axis * n;
    uint64_t key = stream_key(seed, (uint64_t)axis);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(2.0 * u53(keyed(key, (uint64_t)i)) - 1.0);
    if (sg_aug_blur_plane(p, d.h, d.w, sigma)) { free(f); return -1; }
    for (int64_t i = 0; i < n; i++) p[i] *= (float)alpha;
  }
  sg_warp_map m = {{1, 0, 0, 0, 1, 0}, f, f + n};
  int rc = sg_aug_warp("elastic", img, mask, &m, d.h, d.w, fill, out);
  free(f);
  return rc;
}

/* Source positions of the num_steps+1 grid nodes along an axis of length n. */
static void grid_nodes(double *node, int64_t steps, int64_t n, double limit, uint64_t seed, uint64_t stream) {
  node[0] = 0;
  for (int64_t i = 1; i <= steps; i++)
    node[i] = node[i - 1] + 1.0 + limit * (2.0 * sg_aug_uniform(seed, stream, (uint64_t)i) - 1.0);
  double scale = (double)(n - 1) / node[steps];
  for (int64_t i = 1; i <= steps; i++) node[i] *= scale;
}
static double grid_map(const double *node, int64_t steps, int64_t n, int64_t x) {
  if (n == 1) return 0;
  double cell = (double)(n - 1) / (double)steps, t = (double)x / cell;
  int64_t i = (int64_t)t;
  if (i >= steps) return node[steps];
  t -= (double)i;
  return node[i] + t * (node[i + 1] - node[i]);
}

int sg_aug_grid_distortion(sg_tensor *img, sg_tensor *mask, int64_t steps, double limit, uint64_t seed, sg_fill fill,
                           sg_pair *out) {
  dims3 d;
  if (image_hw("grid_distortion", img, mask, &d)) return -1;
  if (steps < 1 || steps > 4096) {
    sg_error_set("grid_distortion: num_steps must be in 1..4096 (got %lld)", (long long)steps);
    return -1;
  }
  if (!(limit >= 0 && limit < 1)) {
    sg_error_set("grid_distortion: distort_limit must be in [0, 1) (got %g)", limit);
    return -1;
  }
  int64_t n = d.h * d.w;
  float *f = malloc(sizeof(float) * (size_t)n * 2);
  double *nx = malloc(sizeof(double) * (size_t)(steps + 1) * 2);
  if (!f || !nx) { free(f); free(nx); sg_error_set("grid_distortion: out of memory"); return -1; }
  double *ny = nx + steps + 1;
  grid_nodes(nx, steps, d.w, limit, seed, 0);
  grid_nodes(ny, steps, d.h, limit, seed, 1);
  for (int64_t y = 0; y < d.h; y++) {
    float oy = (float)(grid_map(ny, steps, d.h, y) - (double)y);
    for (int64_t x = 0; x < d.w; x++) {
      f[y * d.w + x] = (float)(grid_map(nx, steps, d.w, x) - (double)x);
      f[n + y * d.w + x] = oy;
    }
  }
  sg_warp_map m = {{1, 0, 0, 0, 1, 0}, f, f + n};
  int rc = sg_aug_warp("grid_distortion", img, mask, &m, d.h, d.w, fill, out);
  free(f);
  free(nx);
  return rc;
}

int sg_aug_crop(sg_tensor *img, sg_tensor *mask, int64_t y, int64_t x, int64_t h, int64_t w, sg_pair *out) {
  dims3 d;
  if (image_hw("crop", img, mask, &d)) return -1;
  if (h < 1 || w < 1 || y < 0 || x < 0 || y + h > d.h || x + w > d.w) {
    sg_error_set("crop: the window %lldx%lld at (row %lld, column %lld) is not inside the %lldx%lld image", (long long)h,
                 (long long)w, (long long)y, (long long)x, (long long)d.h, (long long)d.w);
    return -1;
  }
  sg_warp_map m = {{1, 0, (double)x, 0, 1, (double)y}, NULL, NULL};
  return sg_aug_warp("crop", img, mask, &m, h, w, EXACT_FILL, out);
}

int sg_aug_resized_crop(sg_tensor *img, sg_tensor *mask, double y, double x, double h, double w, int64_t oh,
                        int64_t ow, sg_pair *out) {
  dims3 d;
  if (image_hw("resized_crop", img, mask, &d)) return -1;
  if (!(h > 0 && w > 0) || !isfinite(h) || !isfinite(w) || !isfinite(x) || !isfinite(y)) {
    sg_error_set("resized_crop: bad window %gx%g at (%g, %g)", h, w, y, x);
    return -1;
  }
  if (oh < 1 || ow < 1) {
    sg_error_set("resized_crop: bad output size %lldx%lld", (long long)oh, (long long)ow);
    return -1;
  }
  double fx = w / (double)ow, fy = h / (double)oh;
  /* sx = x + (j + 0.5) w / ow - 0.5 */
  sg_warp_map m = {{fx, 0, x + 0.5 * fx - 0.5, 0, fy, y + 0.5 * fy - 0.5}, NULL, NULL};
  sg_fill fill = {SG_FILL_REFLECT, 0, 0};
  return sg_aug_warp("resized_crop", img, mask, &m, oh, ow, fill, out);
}

/* ------------------------------------------------------------ blur */
/* dst[i] += k * src[i], four lanes at a time (GCC/Clang vector extension; the
 * build's -O2 does not vectorise this loop by itself). */
typedef float v4f __attribute__((vector_size(16)));
static void axpy(float *restrict dst, const float *restrict src, float k, int64_t n) {
  int64_t i = 0;
  v4f kv = {k, k, k, k};
  for (; i + 8 <= n; i += 8) {
    v4f d0, d1, s0, s1;
    memcpy(&d0, dst + i, 16); memcpy(&d1, dst + i + 4, 16);
    memcpy(&s0, src + i, 16); memcpy(&s1, src + i + 4, 16);
    d0 += kv * s0; d1 += kv * s1;
    memcpy(dst + i, &d0, 16); memcpy(dst + i + 4, &d1, 16);
  }
  for (; i < n; i++) dst[i] += k * src[i];
}

int sg_aug_blur_plane(float *p, int64_t h, int64_t w, double sigma) {
  if (!(sigma > 0)) return 0;
  int64_t r = (int64_t)ceil(3.0 * sigma);
  if (r < 1) r = 1;
  if (r > 4096) r = 4096;
  int64_t nk = 2 * r + 1, maxn = h > w ? h : w;
  float *k = malloc(sizeof(float) * (size_t)nk);
  float *tmp = malloc(sizeof(float) * (size_t)(h * w));
  float *pad = malloc(sizeof(float) * (size_t)(maxn + 2 * r));
  const float **rows = malloc(sizeof(float *) * (size_t)nk);
  if (!k || !tmp || !pad || !rows) {
    free(k); free(tmp); free(pad); free(rows);
    sg_error_set("gaussian blur: out of memory");
    return -1;
  }
  double sum = 0;
  for (int64_t i = 0; i < nk; i++) {
    double t = (double)(i - r) / sigma;
    k[i] = (float)exp(-0.5 * t * t);
    sum += k[i];
  }
  for (int64_t i = 0; i < nk; i++) k[i] = (float)(k[i] / sum);
  /* rows: p -> tmp */
  for (int64_t y = 0; y < h; y++) {
    const float *row = p + y * w;
    for (int64_t x = 0; x < w + 2 * r; x++) pad[x] = row[border(x - r, w, SG_FILL_REFLECT)];
    float *dst = tmp + y * w;
    for (int64_t x = 0; x < w; x++) dst[x] = 0;
    for (int64_t i = 0; i < nk; i++) axpy(dst, pad + i, k[i], w);
  }
  /* columns: tmp -> p */
  for (int64_t y = 0; y < h; y++) {
    for (int64_t i = 0; i < nk; i++) rows[i] = tmp + border(y + i - r, h, SG_FILL_REFLECT) * w;
    float *dst = p + y * w;
    for (int64_t x = 0; x < w; x++) dst[x] = 0;
    for (int64_t i = 0; i < nk; i++) axpy(dst, rows[i], k[i], w);
  }
  free(k); free(tmp); free(pad); free(rows);
  return 0;
}

/* ------------------------------------------------------------ photometric kernels */
/* The f32 tensor to write: `img` itself (in place) or a fresh copy. */
static sg_tensor *target(const char *op, sg_tensor *img, bool inplace, dims3 *d) {
  if (check_image(op, img, d)) return NULL;
  if (!inplace) return fresh_f32(img);
  if (img->dtype != SG_F32 || !sg_is_contiguous(img)) {
    sg_error_set("%s: in place needs a contiguous f32 image (got %s%s)", op, sg_dtype_name(img->dtype),
                 sg_is_contiguous(img) ? "" : ", not contiguous");
    return NULL;
  }
  if (img->requires_grad || img->grad_fn) {
    sg_error_set("%s: cannot modify in place an image that takes part in autograd", op);
    return NULL;
  }
  atomic_fetch_add(&img->storage->version, 1);
  return sg_tensor_incref(img);
}

sg_tensor *sg_aug_brightness(sg_tensor *img, double delta, bool inplace) {
  dims3 d;
  if (!isfinite(delta)) { sg_error_set("brightness: delta must be finite (got %g)", delta); return NULL; }
  sg_tensor *t = target("brightness", img, inplace, &d);
  if (!t) return NULL;
  float *p = sg_data_ptr(t), dl = (float)delta;
  for (int64_t i = 0, n = sg_numel(t); i < n; i++) p[i] += dl;
  return t;
}

sg_tensor *sg_aug_contrast(sg_tensor *img, double factor, bool inplace) {
  dims3 d;
  if (!(factor >= 0) || !isfinite(factor)) { sg_error_set("contrast: factor must be >= 0 (got %g)", factor); return NULL; }
  sg_tensor *t = target("contrast", img, inplace, &d);
  if (!t) return NULL;
  float *p = sg_data_ptr(t);
  int64_t hw = d.h * d.w;
  for (int64_t c = 0; c < d.c; c++) {
    float *q = p + c * hw;
    double s = 0;
    for (int64_t i = 0; i < hw; i++) s += q[i];
    float mean = (float)(s / (double)hw), f = (float)factor;
    for (int64_t i = 0; i < hw; i++) q[i] = (q[i] - mean) * f + mean;
  }
  return t;
}

sg_tensor *sg_aug_gamma(sg_tensor *img, double gamma, bool inplace) {
  dims3 d;
  if (!(gamma > 0) || !isfinite(gamma)) { sg_error_set("gamma: gamma must be > 0 (got %g)", gamma); return NULL; }
  sg_tensor *t = target("gamma", img, inplace, &d);
  if (!t) return NULL;
  float *p = sg_data_ptr(t), g = (float)gamma;
  for (int64_t i = 0, n = sg_numel(t); i < n; i++) p[i] = p[i] >= 0 ? powf(p[i], g) : -powf(-p[i], g);
  return t;
}

sg_tensor *sg_aug_gaussian_noise(sg_tensor *img, double sigma, uint64_t seed, bool inplace) {
  dims3 d;
  if (!(sigma >= 0) || !isfinite(sigma)) { sg_error_set("gaussian_noise: sigma must be >= 0 (got %g)", sigma); return NULL; }
  sg_tensor *t = target("gaussian_noise", img, inplace, &d);
  if (!t) return NULL;
  float *p = sg_data_ptr(t);
  int64_t n = sg_numel(t);
  uint64_t key = stream_key(seed, 0);
  for (int64_t i = 0; i < n; i += 2) {
    double z0, z1;
    normal_pair(keyed(key, (uint64_t)i / 2), &z0, &z1);
    p[i] += (float)(sigma * z0);
    if (i + 1 < n) p[i + 1] += (float)(sigma * z1);
  }
  return t;
}

sg_tensor *sg_aug_gaussian_blur(sg_tensor *img, double sigma, bool inplace) {
  dims3 d;
  if (!(sigma >= 0) || !isfinite(sigma) || sigma > 1000) {
    sg_error_set("gaussian_blur: sigma must be in [0, 1000] (got %g)", sigma);
    return NULL;
  }
  sg_tensor *t = target("gaussian_blur", img, inplace, &d);
  if (!t) return NULL;
  float *p = sg_data_ptr(t);
  for (int64_t c = 0; c < d.c; c++)
    if (sg_aug_blur_plane(p + c * d.h * d.w, d.h, d.w, sigma)) { sg_tensor_decref(t); return NULL; }
  return t;
}
