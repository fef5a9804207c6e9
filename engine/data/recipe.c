/* The C executor of augmentation recipes (see recipe.h). Each case mirrors the
 * parameter drawing of the matching transform in lua/semseg/augment.lua. */
#include "recipe.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const ROP_NAMES[SG_R_NOPS] = {
  "flip", "rot90", "transpose", "rotate", "scale", "elastic", "grid_distortion", "random_crop",
  "random_resized_crop", "brightness", "contrast", "gamma", "gaussian_noise", "gaussian_blur", "recipe", "one_of",
  "some_of"};

int sg_rop_from_name(const char *name) {
  for (int i = 0; i < SG_R_NOPS; i++)
    if (strcmp(name, ROP_NAMES[i]) == 0) return i;
  return -1;
}
const char *sg_rop_name(sg_rop op) { return (unsigned)op < SG_R_NOPS ? ROP_NAMES[op] : "?"; }

void sg_rnode_clear(sg_rnode *n) {
  if (!n) return;
  for (int i = 0; i < n->nchild; i++) sg_rnode_clear(&n->child[i]);
  free(n->child);
  free(n->weights);
  n->child = NULL;
  n->weights = NULL;
  n->nchild = 0;
}

/* The sample being transformed: NEW references, and whether the image is ours
 * (a kernel output) so photometric kernels may work in place. */
typedef struct {
  sg_tensor *img, *mask;
  bool owned;
} state;

static double U(uint64_t s, uint64_t i) { return sg_aug_uniform(s, 0, i); }
static double between(const double r[2], double u) { return r[0] + (r[1] - r[0]) * u; }
static uint64_t kseed(uint64_t s) { return sg_aug_subseed(s, 0); }

/* Replaces the state's tensors with a kernel's output pair. */
static int take(state *st, int rc, sg_pair *p) {
  if (rc) return -1;
  sg_tensor_decref(st->img);
  sg_tensor_decref(st->mask);
  st->img = p->image;
  st->mask = p->mask;
  st->owned = true;
  return 0;
}
static int take_image(state *st, sg_tensor *t) {
  if (!t) return -1;
  sg_tensor_decref(st->img);
  st->img = t;
  st->owned = true;
  return 0;
}

static int dims(const char *op, const sg_tensor *img, int64_t *H, int64_t *W) {
  if (img->ndim == 3) { *H = img->size[1]; *W = img->size[2]; return 0; }
  if (img->ndim == 2) { *H = img->size[0]; *W = img->size[1]; return 0; }
  sg_error_set("sg.data.%s: the image must be C x H x W or H x W (got %d dims)", op, img->ndim);
  return -1;
}

static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

static int run(const sg_rnode *n, uint64_t s, state *st);

static int run_child(const sg_rnode *n, int i, uint64_t s, state *st) { /* i 1-based */
  return run(&n->child[i - 1], sg_aug_subseed(s, (uint64_t)i), st);
}

static int random_resized_crop(const sg_rnode *n, uint64_t s, state *st) {
  int64_t H, W;
  if (dims("random_resized_crop", st->img, &H, &W)) return -1;
  double area = (double)H * (double)W;
  double lr1 = log(n->r2[0]), lr2 = log(n->r2[1]);
  int64_t top = 0, left = 0, h = 0, w = 0;
  bool found = false;
  for (int attempt = 0; attempt <= 9; attempt++) {
    uint64_t b = 1 + 4 * (uint64_t)attempt;
    double target = area * between(n->r, U(s, b));
    double aspect = exp(lr1 + (lr2 - lr1) * U(s, b + 1));
    double cw = floor(sqrt(target * aspect) + 0.5), chh = floor(sqrt(target / aspect) + 0.5);
    if (cw > 0 && chh > 0 && cw <= (double)W && chh <= (double)H) {
      h = (int64_t)chh;
      w = (int64_t)cw;
      top = imin(H - h, (int64_t)floor(U(s, b + 2) * (double)(H - h + 1)));
      left = imin(W - w, (int64_t)floor(U(s, b + 3) * (double)(W - w + 1)));
      found = true;
      break;
    }
  }
  if (!found) {
    double r = (double)W / (double)H;
    if (r < n->r2[0]) { w = W; h = (int64_t)floor((double)w / n->r2[0] + 0.5); }
    else if (r > n->r2[1]) { h = H; w = (int64_t)floor((double)h * n->r2[1] + 0.5); }
    else { h = H; w = W; }
    h = imax(1, imin(h, H));
    w = imax(1, imin(w, W));
    top = (H - h) / 2;
    left = (W - w) / 2;
  }
  sg_pair p;
  return take(st, sg_aug_resized_crop(st->img, st->mask, (double)top, (double)left, (double)h, (double)w,
                                      n->size[0], n->size[1], &p), &p);
}

static int apply_node(const sg_rnode *n, uint64_t s, state *st) {
  sg_pair p;
  switch (n->op) {
  case SG_R_FLIP: {
    bool h = n->axis == 0 || (n->axis == 2 && U(s, 1) < 0.5);
    bool v = n->axis == 1 || (n->axis == 2 && U(s, 2) < 0.5);
    if (h && take(st, sg_aug_flip(st->img, st->mask, true, &p), &p)) return -1;
    if (v && take(st, sg_aug_flip(st->img, st->mask, false, &p), &p)) return -1;
    return 0;
  }
  case SG_R_ROT90: {
    int64_t k = n->has_k ? n->k : (int64_t)floor(U(s, 1) * 4);
    if (((k % 4) + 4) % 4 == 0) return 0;
    return take(st, sg_aug_rot90(st->img, st->mask, k, &p), &p);
  }
  case SG_R_TRANSPOSE: return take(st, sg_aug_transpose(st->img, st->mask, &p), &p);
  case SG_R_ROTATE: return take(st, sg_aug_rotate(st->img, st->mask, between(n->r, U(s, 1)), n->fill, &p), &p);
  case SG_R_SCALE: return take(st, sg_aug_scale(st->img, st->mask, between(n->r, U(s, 1)), n->fill, &p), &p);
  case SG_R_ELASTIC: {
    double alpha = between(n->r, U(s, 1)), sigma = between(n->r2, U(s, 2));
    return take(st, sg_aug_elastic(st->img, st->mask, alpha, sigma, kseed(s), n->fill, &p), &p);
  }
  case SG_R_GRID_DISTORTION:
    return take(st, sg_aug_grid_distortion(st->img, st->mask, n->num_steps, n->limit, kseed(s), n->fill, &p), &p);
  case SG_R_RANDOM_CROP: {
    int64_t H, W, h = n->size[0], w = n->size[1];
    if (dims("random_crop", st->img, &H, &W)) return -1;
    if (h > H || w > W) {
      sg_error_set("sg.data.random_crop: size %lldx%lld is larger than the image %lldx%lld", (long long)h,
                   (long long)w, (long long)H, (long long)W);
      return -1;
    }
    int64_t top = imin(H - h, (int64_t)floor(U(s, 1) * (double)(H - h + 1)));
    int64_t left = imin(W - w, (int64_t)floor(U(s, 2) * (double)(W - w + 1)));
    return take(st, sg_aug_crop(st->img, st->mask, top, left, h, w, &p), &p);
  }
  case SG_R_RANDOM_RESIZED_CROP: return random_resized_crop(n, s, st);
  case SG_R_BRIGHTNESS: return take_image(st, sg_aug_brightness(st->img, between(n->r, U(s, 1)), st->owned));
  case SG_R_CONTRAST: return take_image(st, sg_aug_contrast(st->img, between(n->r, U(s, 1)), st->owned));
  case SG_R_GAMMA: return take_image(st, sg_aug_gamma(st->img, between(n->r, U(s, 1)), st->owned));
  case SG_R_GAUSSIAN_BLUR: return take_image(st, sg_aug_gaussian_blur(st->img, between(n->r, U(s, 1)), st->owned));
  case SG_R_GAUSSIAN_NOISE:
    return take_image(st, sg_aug_gaussian_noise(st->img, between(n->r, U(s, 1)), kseed(s), st->owned));
  case SG_R_RECIPE:
    for (int i = 1; i <= n->nchild; i++)
      if (run_child(n, i, s, st)) return -1;
    return 0;
  case SG_R_ONE_OF: {
    if (n->nchild < 1) { sg_error_set("sg.data.one_of: needs at least one transform"); return -1; }
    double u = U(s, 1);
    int pick = n->nchild;
    if (n->weights) {
      double total = 0, acc = 0;
      for (int i = 0; i < n->nchild; i++) total += n->weights[i];
      for (int i = 0; i < n->nchild; i++) {
        acc += n->weights[i] / total;
        if (u < acc && n->weights[i] > 0) { pick = i + 1; break; }
      }
    } else {
      int64_t q = (int64_t)floor(u * n->nchild) + 1;
      pick = (int)imin(n->nchild, q);
    }
    return run_child(n, pick, s, st);
  }
  case SG_R_SOME_OF: {
    int m = n->nchild;
    if (n->n < 0 || n->n > m) { sg_error_set("sg.data.some_of: n = %lld but only %d transforms are given", (long long)n->n, m); return -1; }
    int stackbuf[64];
    int *idx = m <= 32 ? stackbuf : malloc(sizeof(int) * 2 * (size_t)m);
    if (!idx) { sg_error_set("sg.data.some_of: out of memory"); return -1; }
    int *chosen = idx + m;
    for (int i = 0; i < m; i++) { idx[i] = i + 1; chosen[i] = 0; }
    for (int j = 1; j <= n->n; j++) { /* partial Fisher-Yates, 1-based as in Lua */
      int64_t r = j + imin(m - j, (int64_t)floor(U(s, (uint64_t)j) * (double)(m - j + 1)));
      int t = idx[j - 1];
      idx[j - 1] = idx[r - 1];
      idx[r - 1] = t;
      chosen[idx[j - 1] - 1] = 1;
    }
    int rc = 0;
    for (int i = 1; i <= m && !rc; i++)
      if (chosen[i - 1]) rc = run_child(n, i, s, st);
    if (idx != stackbuf) free(idx);
    return rc;
  }
  default: sg_error_set("recipe: unknown transform %d", (int)n->op); return -1;
  }
}

static int run(const sg_rnode *n, uint64_t s, state *st) {
  if (n->p <= 0) return 0;
  if (n->p < 1 && U(s, 0) >= n->p) return 0;
  return apply_node(n, s, st);
}

int sg_recipe_apply(const sg_rnode *root, uint64_t seed, sg_tensor *image, sg_tensor *mask, sg_pair *out) {
  out->image = out->mask = NULL;
  if (!root || !image) { sg_error_set("recipe: missing recipe or image"); return -1; }
  state st = {sg_tensor_incref(image), mask ? sg_tensor_incref(mask) : NULL, false};
  if (run(root, seed, &st)) {
    sg_tensor_decref(st.img);
    sg_tensor_decref(st.mask);
    return -1;
  }
  out->image = st.img;
  out->mask = st.mask;
  return 0;
}
