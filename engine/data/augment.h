/* Data augmentation kernels for one sample and the synthetic EM-like data set.
 *
 * A sample is an image (float, C x H x W or H x W; computed in f32) and an
 * optional mask (u8, i32 or i64, H x W or 1 x H x W) of class ids. Geometric
 * kernels move both through one routine, sg_aug_warp: the image is sampled
 * bilinearly, the mask by nearest neighbour, so a mask only ever holds values
 * it held before (plus the fill label where constant fill reaches in).
 * Photometric kernels touch the image only.
 *
 * Randomness: every kernel that needs random numbers takes a 64-bit seed and
 * draws them from a keyed counter-based hash of (seed, stream, index), so the
 * result depends on the seed alone: not on threads, call order or the global
 * generator of ops/random.c.
 *
 * Conventions as in tensor.h: outputs are NEW references, failures return -1
 * or NULL after sg_error_set(), arguments are checked before allocating. */
#ifndef SG_AUGMENT_H
#define SG_AUGMENT_H
#include "../core/tensor.h"

/* ---- keyed random numbers ---- */
/* 64 random bits for draw k of stream `stream` under `seed`. */
uint64_t sg_aug_bits(uint64_t seed, uint64_t stream, uint64_t k);
/* Uniform in [0, 1) with 53 random bits. */
double sg_aug_uniform(uint64_t seed, uint64_t stream, uint64_t k);
/* Standard normal (Box-Muller on two keyed uniforms). */
double sg_aug_normal(uint64_t seed, uint64_t stream, uint64_t k);
/* A derived seed for child k (the recipe gives each transform its own). */
uint64_t sg_aug_subseed(uint64_t seed, uint64_t k);

/* ---- filling where a geometric transform samples outside the image ---- */
typedef enum { SG_FILL_CONSTANT = 0, SG_FILL_REFLECT, SG_FILL_NEAREST } sg_fill_mode;
typedef struct {
  sg_fill_mode mode;
  double value;       /* image value for SG_FILL_CONSTANT */
  int64_t mask_value; /* mask label for SG_FILL_CONSTANT */
} sg_fill;
/* "constant" | "reflect" | "nearest" -> mode, -1 when unknown. Reflect mirrors
 * about the edge pixel without repeating it (d c b | a b c d | c b a). */
int sg_fill_mode_from_name(const char *name);
const char *sg_fill_mode_name(sg_fill_mode m);

/* An output image and mask (mask NULL when there was none). */
typedef struct { sg_tensor *image, *mask; } sg_pair;

/* The sampling map of a warp: output pixel (x, y) (pixel centres at integer
 * coordinates) reads the input at
 *   sx = a[0]*x + a[1]*y + a[2] + dx[y*ow + x]
 *   sy = a[3]*x + a[4]*y + a[5] + dy[y*ow + x]
 * with dx, dy optional per-pixel offsets (NULL = none). A map with integer
 * coefficients and no offsets (flips, rot90, transpose, crops) is a pure
 * permutation: the image is copied exactly, without interpolation. */
typedef struct {
  double a[6];
  const float *dx, *dy;
} sg_warp_map;

int sg_aug_warp(const char *op, sg_tensor *image, sg_tensor *mask, const sg_warp_map *map, int64_t oh, int64_t ow,
                sg_fill fill, sg_pair *out);

/* ---- geometric kernels (image and mask) ---- */
int sg_aug_flip(sg_tensor *image, sg_tensor *mask, bool horizontal, sg_pair *out);
/* k quarter turns counter-clockwise (k any integer), as torch.rot90(x, k, (-2, -1)). */
int sg_aug_rot90(sg_tensor *image, sg_tensor *mask, int64_t k, sg_pair *out);
int sg_aug_transpose(sg_tensor *image, sg_tensor *mask, sg_pair *out);
/* Counter-clockwise by `degrees` about the image centre; same output size. */
int sg_aug_rotate(sg_tensor *image, sg_tensor *mask, double degrees, sg_fill fill, sg_pair *out);
/* Zoom about the centre by `factor` (> 1 magnifies); same output size. */
int sg_aug_scale(sg_tensor *image, sg_tensor *mask, double factor, sg_fill fill, sg_pair *out);
/* Displacement fields alpha * G_sigma * U(-1, 1) (pixels), one per axis. */
int sg_aug_elastic(sg_tensor *image, sg_tensor *mask, double alpha, double sigma, uint64_t seed, sg_fill fill,
                   sg_pair *out);
/* Each axis cut into num_steps cells whose widths are scaled by 1 + U(-limit, limit)
 * (then renormalised to the image size); piecewise linear in between. */
int sg_aug_grid_distortion(sg_tensor *image, sg_tensor *mask, int64_t num_steps, double limit, uint64_t seed,
                           sg_fill fill, sg_pair *out);
/* The h x w window at row y, column x (inside the image). */
int sg_aug_crop(sg_tensor *image, sg_tensor *mask, int64_t y, int64_t x, int64_t h, int64_t w, sg_pair *out);
/* The window (y, x, h, w) in pixel units resampled to oh x ow (half-pixel centres). */
int sg_aug_resized_crop(sg_tensor *image, sg_tensor *mask, double y, double x, double h, double w, int64_t oh,
                        int64_t ow, sg_pair *out);

/* ---- photometric kernels (image only) ----
 * Return a new f32 image, or with inplace=true modify `image` (which must then
 * be a contiguous f32 CPU tensor outside autograd) and return a new reference to it. */
sg_tensor *sg_aug_brightness(sg_tensor *image, double delta, bool inplace);  /* x + delta */
sg_tensor *sg_aug_contrast(sg_tensor *image, double factor, bool inplace);   /* (x - m) * factor + m, m = channel mean */
sg_tensor *sg_aug_gamma(sg_tensor *image, double gamma, bool inplace);       /* sign(x) |x|^gamma */
sg_tensor *sg_aug_gaussian_noise(sg_tensor *image, double sigma, uint64_t seed, bool inplace); /* x + sigma N(0,1) */
sg_tensor *sg_aug_gaussian_blur(sg_tensor *image, double sigma, bool inplace); /* per channel, reflect border */

/* Separable Gaussian blur of one h x w plane in place (truncated at 3 sigma,
 * reflect border). Returns -1 (with an error) when out of memory. */
int sg_aug_blur_plane(float *p, int64_t h, int64_t w, double sigma);

/* ---- synthetic EM-like data (data/synthetic.c) ---- */
typedef struct {
  int64_t n, h, w;
  int classes;          /* 2: 0 interior, 1 membrane; 3: 0 cytoplasm, 1 membrane, 2 mitochondria */
  uint64_t seed;
  double cell_size;     /* mean cell diameter in pixels (<= 0: default 40) */
  double membrane;      /* membrane thickness in pixels (<= 0: default 3) */
  double noise;         /* sigma of the additive Gaussian noise (< 0: default 0.06) */
  double blur;          /* sigma of the blur before the noise (< 0: default 0.8) */
  int mitochondria;     /* -1: default (on for classes 3); 0/1: off/on (label 0 for classes 2) */
} sg_synth_opts;
/* images f32 N x 1 x H x W in [0, 1], masks i64 N x H x W. */
int sg_synthetic_cells(const sg_synth_opts *o, sg_tensor **images, sg_tensor **masks);

#endif
