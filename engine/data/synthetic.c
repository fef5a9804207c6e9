/* Synthetic EM-like images with exact label masks.
 *
 * Each image is a Voronoi tessellation of jittered grid points (cells). The
 * distance of a pixel to its cell's boundary is the distance to the nearest
 * bisector between its seed and a neighbouring seed; pixels closer than half
 * the membrane thickness are membrane (dark). With mitochondria, some cells
 * hold one or two ellipses kept clear of the membrane, drawn darker with
 * stripes (cristae) and a dark rim. Cytoplasm gets a per-cell grey level and
 * a smooth texture. The image is then blurred, noised and clipped to [0, 1];
 * the mask comes from the geometry, before blur and noise.
 *
 * Labels: classes = 2: 0 interior (everything but membrane), 1 membrane.
 *         classes = 3: 0 cytoplasm, 1 membrane, 2 mitochondria.
 * All randomness from sg_aug_* keyed by (seed, image index), so image i is the
 * same whatever n is. */
#include "augment.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ST_POINTS = 0, ST_CELLS, ST_TEXTURE, ST_MITO, ST_NOISE, ST_GLOBAL };

typedef struct { double x, y; } pt;
typedef struct { double cx, cy, a, b, c, s, period, phase; int64_t cell; } mito;

static int synth_one(const sg_synth_opts *o, uint64_t seed, float *img, int64_t *lab) {
  const int64_t H = o->h, W = o->w, HW = H * W;
  const double cs = o->cell_size;
  int64_t gh = (int64_t)floor((double)H / cs + 0.5), gw = (int64_t)floor((double)W / cs + 0.5);
  if (gh < 1) gh = 1;
  if (gw < 1) gw = 1;
  const double ch = (double)H / (double)gh, cw = (double)W / (double)gw;
  /* seeds on a (gh+2) x (gw+2) grid: one ring outside the image so that
   * membranes also run along the borders */
  const int64_t rows = gh + 2, cols = gw + 2, np = rows * cols;
  pt *P = malloc(sizeof(pt) * (size_t)np);
  float *bd = malloc(sizeof(float) * (size_t)HW);     /* distance to the cell boundary */
  int64_t *cell = malloc(sizeof(int64_t) * (size_t)HW);
  float *tex = malloc(sizeof(float) * (size_t)HW);
  mito *M = malloc(sizeof(mito) * (size_t)np * 2);
  if (!P || !bd || !cell || !tex || !M) {
    free(P); free(bd); free(cell); free(tex); free(M);
    sg_error_set("synthetic_cells: out of memory");
    return -1;
  }
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      int64_t k = i * cols + j;
      P[k].x = ((double)(j - 1) + 0.15 + 0.7 * sg_aug_uniform(seed, ST_POINTS, (uint64_t)(2 * k))) * cw;
      P[k].y = ((double)(i - 1) + 0.15 + 0.7 * sg_aug_uniform(seed, ST_POINTS, (uint64_t)(2 * k + 1))) * ch;
    }
  const double half = 0.5 * o->membrane * (0.8 + 0.4 * sg_aug_uniform(seed, ST_GLOBAL, 0));

  /* nearest seed and distance to the nearest bisector; seeds further than 3
   * grid cells away can be neither */
  for (int64_t y = 0; y < H; y++) {
    int64_t gi = (int64_t)((double)y / ch) + 1;
    for (int64_t x = 0; x < W; x++) {
      int64_t gj = (int64_t)((double)x / cw) + 1;
      int64_t i0 = gi - 3 < 0 ? 0 : gi - 3, i1 = gi + 3 >= rows ? rows - 1 : gi + 3;
      int64_t j0 = gj - 3 < 0 ? 0 : gj - 3, j1 = gj + 3 >= cols ? cols - 1 : gj + 3;
      double px = (double)x, py = (double)y, best = INFINITY;
      int64_t bi = 0;
      for (int64_t i = i0; i <= i1; i++)
        for (int64_t j = j0; j <= j1; j++) {
          const pt *q = &P[i * cols + j];
          double dd = (q->x - px) * (q->x - px) + (q->y - py) * (q->y - py);
          if (dd < best) { best = dd; bi = i * cols + j; }
        }
      double dist = INFINITY;
      for (int64_t i = i0; i <= i1; i++)
        for (int64_t j = j0; j <= j1; j++) {
          int64_t k = i * cols + j;
          if (k == bi) continue;
          const pt *q = &P[k], *s = &P[bi];
          double dq = (q->x - px) * (q->x - px) + (q->y - py) * (q->y - py);
          double sep = hypot(q->x - s->x, q->y - s->y);
          if (sep <= 0) continue;
          double b = (dq - best) / (2.0 * sep);
          if (b < dist) dist = b;
        }
      bd[y * W + x] = (float)dist;
      cell[y * W + x] = bi;
    }
  }

  /* cytoplasm: per-cell grey level plus a smooth texture */
  for (int64_t i = 0; i < HW; i++) tex[i] = (float)sg_aug_normal(seed, ST_TEXTURE, (uint64_t)i);
  if (sg_aug_blur_plane(tex, H, W, 2.0)) goto oom;
  for (int64_t i = 0; i < HW; i++) {
    double level = 0.60 + 0.12 * sg_aug_uniform(seed, ST_CELLS, (uint64_t)cell[i]);
    if (bd[i] < half) {
      lab[i] = 1;
      img[i] = (float)(0.16 + 0.04 * tex[i]);
    } else {
      lab[i] = 0;
      img[i] = (float)(level + 0.25 * tex[i]);
    }
  }

  /* mitochondria */
  bool mitos = o->mitochondria < 0 ? o->classes == 3 : o->mitochondria != 0;
  if (mitos) {
    int64_t nm = 0;
    for (int64_t k = 0; k < np; k++) {
      uint64_t b = (uint64_t)k * 16;
      double r = sg_aug_uniform(seed, ST_MITO, b);
      int count = r < 0.45 ? 0 : r < 0.85 ? 1 : 2;
      for (int m = 0; m < count; m++, b += 8) {
        mito *q = &M[nm++];
        double ang = M_PI * sg_aug_uniform(seed, ST_MITO, b + 1);
        q->a = cs * (0.14 + 0.14 * sg_aug_uniform(seed, ST_MITO, b + 2));
        q->b = q->a * (0.35 + 0.3 * sg_aug_uniform(seed, ST_MITO, b + 3));
        q->cx = P[k].x + 0.25 * cs * (2 * sg_aug_uniform(seed, ST_MITO, b + 4) - 1);
        q->cy = P[k].y + 0.25 * cs * (2 * sg_aug_uniform(seed, ST_MITO, b + 5) - 1);
        q->c = cos(ang);
        q->s = sin(ang);
        q->period = 3.0 + 2.0 * sg_aug_uniform(seed, ST_MITO, b + 6);
        q->phase = 2 * M_PI * sg_aug_uniform(seed, ST_MITO, b + 7);
        q->cell = k;
      }
    }
    int64_t mlab = o->classes == 3 ? 2 : 0;
    for (int64_t m = 0; m < nm; m++) {
      const mito *q = &M[m];
      int64_t y0 = (int64_t)floor(q->cy - q->a) - 1, y1 = (int64_t)ceil(q->cy + q->a) + 1;
      int64_t x0 = (int64_t)floor(q->cx - q->a) - 1, x1 = (int64_t)ceil(q->cx + q->a) + 1;
      if (y0 < 0) y0 = 0;
      if (x0 < 0) x0 = 0;
      if (y1 > H - 1) y1 = H - 1;
      if (x1 > W - 1) x1 = W - 1;
      for (int64_t y = y0; y <= y1; y++)
        for (int64_t x = x0; x <= x1; x++) {
          int64_t i = y * W + x;
          if (cell[i] != q->cell || bd[i] < half + 2.0) continue;
          double u = (double)x - q->cx, v = (double)y - q->cy;
          double ru = (u * q->c + v * q->s) / q->a, rv = (-u * q->s + v * q->c) / q->b;
          double e = ru * ru + rv * rv;
          if (e > 1.0) continue;
          lab[i] = mlab;
          double stripes = 0.07 * sin(2 * M_PI * (u * q->c + v * q->s) / q->period + q->phase);
          img[i] = (float)(e > 0.7 ? 0.22 : 0.36 + stripes + 0.03 * tex[i]);
        }
    }
  }

  /* blur, noise, clip */
  if (sg_aug_blur_plane(img, H, W, o->blur)) goto oom;
  for (int64_t i = 0; i < HW; i++) {
    double v = img[i] + o->noise * sg_aug_normal(seed, ST_NOISE, (uint64_t)i);
    img[i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
  }
  free(P); free(bd); free(cell); free(tex); free(M);
  return 0;
oom:
  free(P); free(bd); free(cell); free(tex); free(M);
  return -1;
}

int sg_synthetic_cells(const sg_synth_opts *opts, sg_tensor **images, sg_tensor **masks) {
  *images = *masks = NULL;
  sg_synth_opts o = *opts;
  if (o.cell_size <= 0) o.cell_size = 40;
  if (o.membrane <= 0) o.membrane = 3;
  if (o.noise < 0) o.noise = 0.06;
  if (o.blur < 0) o.blur = 0.8;
  if (o.n < 1 || o.n > 1000000) { sg_error_set("synthetic_cells: n must be in 1..1000000 (got %lld)", (long long)o.n); return -1; }
  if (o.h < 8 || o.w < 8 || o.h > 16384 || o.w > 16384) {
    sg_error_set("synthetic_cells: size must be in 8..16384 (got %lldx%lld)", (long long)o.h, (long long)o.w);
    return -1;
  }
  if (o.classes != 2 && o.classes != 3) { sg_error_set("synthetic_cells: classes must be 2 or 3 (got %d)", o.classes); return -1; }
  if (!isfinite(o.cell_size) || o.cell_size < 6) {
    sg_error_set("synthetic_cells: cell_size must be >= 6 pixels (got %g)", o.cell_size);
    return -1;
  }
  if (!isfinite(o.membrane) || o.membrane > o.cell_size / 3) {
    sg_error_set("synthetic_cells: membrane must be in (0, cell_size/3] (got %g for cell_size %g)", o.membrane, o.cell_size);
    return -1;
  }
  if (!isfinite(o.noise) || o.noise > 1) { sg_error_set("synthetic_cells: noise must be in [0, 1] (got %g)", o.noise); return -1; }
  if (!isfinite(o.blur) || o.blur > 20) { sg_error_set("synthetic_cells: blur must be in [0, 20] (got %g)", o.blur); return -1; }
  if (o.n * o.h * o.w > SG_MAX_NUMEL / 8) { sg_error_set("synthetic_cells: too large"); return -1; }
  int64_t isz[4] = {o.n, 1, o.h, o.w}, msz[3] = {o.n, o.h, o.w};
  sg_tensor *im = sg_empty(4, isz, SG_F32, SG_CPU);
  sg_tensor *mk = im ? sg_empty(3, msz, SG_I64, SG_CPU) : NULL;
  if (!mk) { sg_tensor_decref(im); return -1; }
  float *ip = sg_data_ptr(im);
  int64_t *mp = sg_data_ptr(mk), hw = o.h * o.w;
  for (int64_t b = 0; b < o.n; b++) {
    if (synth_one(&o, sg_aug_subseed(o.seed, (uint64_t)b), ip + b * hw, mp + b * hw)) {
      sg_tensor_decref(im);
      sg_tensor_decref(mk);
      return -1;
    }
  }
  *images = im;
  *masks = mk;
  return 0;
}
