/* semseg.core.data_core: the augmentation kernels and the synthetic data set.
 * Thin wrappers; the recipes and their checking live in lua/semseg/augment.lua.
 *
 * Geometric kernels take (image, mask or nil, ...) and return image, mask
 * (mask nil when none was given). Fill arguments are (mode, value, mask_value)
 * with mode "constant" | "reflect" | "nearest". Crop offsets are counts of
 * rows/columns skipped (0 = start at the first). Seeds are 64-bit integers. */
#include "../data/augment.h"
#include "../data/recipe.h"
#include <stdlib.h>
#include "binding.h"
#include <string.h>

static sg_tensor *opt_mask(lua_State *L, int idx, const char *op) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return sgL_check(L, idx, op);
}

static uint64_t check_seed(lua_State *L, int idx, const char *op) {
  return (uint64_t)sgL_int(L, idx, op, "seed");
}

static double check_num(lua_State *L, int idx, const char *op, const char *what) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "%s: %s must be a number (got %s)", op, what, luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

static sg_fill check_fill(lua_State *L, int idx, const char *op) {
  sg_fill f = {SG_FILL_REFLECT, 0.0, 0};
  if (!lua_isnoneornil(L, idx)) {
    const char *s = lua_tostring(L, idx);
    int m = s ? sg_fill_mode_from_name(s) : -1;
    if (m < 0 || lua_type(L, idx) != LUA_TSTRING)
      luaL_error(L, "%s: fill must be \"constant\", \"reflect\" or \"nearest\" (got %s)", op,
                 s ? s : luaL_typename(L, idx));
    f.mode = (sg_fill_mode)m;
  }
  if (!lua_isnoneornil(L, idx + 1)) f.value = check_num(L, idx + 1, op, "fill value");
  if (!lua_isnoneornil(L, idx + 2)) f.mask_value = sgL_int(L, idx + 2, op, "mask fill label");
  return f;
}

static int push_pair(lua_State *L, int rc, sg_pair *p) {
  if (rc) return sgL_error(L);
  sgL_push(L, p->image);
  if (p->mask) sgL_push(L, p->mask); else lua_pushnil(L);
  return 2;
}

static int l_flip(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "flip"), *mask = opt_mask(L, 2, "flip");
  bool horizontal = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
  sg_pair p;
  return push_pair(L, sg_aug_flip(img, mask, horizontal, &p), &p);
}

static int l_rot90(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "rot90"), *mask = opt_mask(L, 2, "rot90");
  int64_t k = lua_isnoneornil(L, 3) ? 1 : sgL_int(L, 3, "rot90", "k");
  sg_pair p;
  return push_pair(L, sg_aug_rot90(img, mask, k, &p), &p);
}

static int l_transpose(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "transpose"), *mask = opt_mask(L, 2, "transpose");
  sg_pair p;
  return push_pair(L, sg_aug_transpose(img, mask, &p), &p);
}

static int l_rotate(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "rotate"), *mask = opt_mask(L, 2, "rotate");
  double deg = check_num(L, 3, "rotate", "degrees");
  sg_fill f = check_fill(L, 4, "rotate");
  sg_pair p;
  return push_pair(L, sg_aug_rotate(img, mask, deg, f, &p), &p);
}

static int l_scale(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "scale"), *mask = opt_mask(L, 2, "scale");
  double factor = check_num(L, 3, "scale", "factor");
  sg_fill f = check_fill(L, 4, "scale");
  sg_pair p;
  return push_pair(L, sg_aug_scale(img, mask, factor, f, &p), &p);
}

static int l_elastic(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "elastic"), *mask = opt_mask(L, 2, "elastic");
  double alpha = check_num(L, 3, "elastic", "alpha"), sigma = check_num(L, 4, "elastic", "sigma");
  uint64_t seed = check_seed(L, 5, "elastic");
  sg_fill f = check_fill(L, 6, "elastic");
  sg_pair p;
  return push_pair(L, sg_aug_elastic(img, mask, alpha, sigma, seed, f, &p), &p);
}

static int l_grid_distortion(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "grid_distortion"), *mask = opt_mask(L, 2, "grid_distortion");
  int64_t steps = sgL_int(L, 3, "grid_distortion", "num_steps");
  double limit = check_num(L, 4, "grid_distortion", "distort_limit");
  uint64_t seed = check_seed(L, 5, "grid_distortion");
  sg_fill f = check_fill(L, 6, "grid_distortion");
  sg_pair p;
  return push_pair(L, sg_aug_grid_distortion(img, mask, steps, limit, seed, f, &p), &p);
}

static int l_crop(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "crop"), *mask = opt_mask(L, 2, "crop");
  int64_t y = sgL_int(L, 3, "crop", "top"), x = sgL_int(L, 4, "crop", "left");
  int64_t h = sgL_int(L, 5, "crop", "height"), w = sgL_int(L, 6, "crop", "width");
  sg_pair p;
  return push_pair(L, sg_aug_crop(img, mask, y, x, h, w, &p), &p);
}

static int l_resized_crop(lua_State *L) {
  const char *op = "resized_crop";
  sg_tensor *img = sgL_check(L, 1, op), *mask = opt_mask(L, 2, op);
  double y = check_num(L, 3, op, "top"), x = check_num(L, 4, op, "left");
  double h = check_num(L, 5, op, "height"), w = check_num(L, 6, op, "width");
  int64_t oh = sgL_int(L, 7, op, "output height"), ow = sgL_int(L, 8, op, "output width");
  sg_pair p;
  return push_pair(L, sg_aug_resized_crop(img, mask, y, x, h, w, oh, ow, &p), &p);
}

/* warp(image, mask, {a1..a6}, oh, ow, mode, value, mask_value [, dx, dy]) */
static int l_warp(lua_State *L) {
  sg_tensor *img = sgL_check(L, 1, "warp"), *mask = opt_mask(L, 2, "warp");
  luaL_checktype(L, 3, LUA_TTABLE);
  sg_warp_map m = {{0}, NULL, NULL};
  for (int i = 0; i < 6; i++) {
    lua_geti(L, 3, i + 1);
    m.a[i] = check_num(L, -1, "warp", "map coefficient");
    lua_pop(L, 1);
  }
  int64_t oh = sgL_int(L, 4, "warp", "output height"), ow = sgL_int(L, 5, "warp", "output width");
  sg_fill f = check_fill(L, 6, "warp");
  sg_tensor *off[2] = {NULL, NULL};
  for (int i = 0; i < 2; i++) {
    if (lua_isnoneornil(L, 9 + i)) continue;
    sg_tensor *t = sgL_check(L, 9 + i, "warp");
    if (t->dtype != SG_F32 || !sg_is_contiguous(t) || sg_numel(t) != oh * ow || t->storage->device != SG_CPU)
      return luaL_error(L, "warp: offsets must be contiguous f32 cpu tensors of %lldx%lld elements", (long long)oh,
                        (long long)ow);
    off[i] = t;
  }
  m.dx = off[0] ? sg_data_ptr(off[0]) : NULL;
  m.dy = off[1] ? sg_data_ptr(off[1]) : NULL;
  sg_pair p;
  return push_pair(L, sg_aug_warp("warp", img, mask, &m, oh, ow, f, &p), &p);
}

static int photometric(lua_State *L, const char *op) {
  sg_tensor *img = sgL_check(L, 1, op);
  double v = check_num(L, 2, op, strcmp(op, "brightness") == 0 ? "delta" :
                                 strcmp(op, "contrast") == 0 ? "factor" :
                                 strcmp(op, "gamma") == 0 ? "gamma" : "sigma");
  sg_tensor *r;
  if (strcmp(op, "gaussian_noise") == 0) {
    uint64_t seed = check_seed(L, 3, op);
    r = sg_aug_gaussian_noise(img, v, seed, lua_toboolean(L, 4));
  } else {
    bool inplace = lua_toboolean(L, 3);
    if (strcmp(op, "brightness") == 0) r = sg_aug_brightness(img, v, inplace);
    else if (strcmp(op, "contrast") == 0) r = sg_aug_contrast(img, v, inplace);
    else if (strcmp(op, "gamma") == 0) r = sg_aug_gamma(img, v, inplace);
    else r = sg_aug_gaussian_blur(img, v, inplace);
  }
  sgL_push(L, r);
  return 1;
}
static int l_brightness(lua_State *L) { return photometric(L, "brightness"); }
static int l_contrast(lua_State *L) { return photometric(L, "contrast"); }
static int l_gamma(lua_State *L) { return photometric(L, "gamma"); }
static int l_gaussian_noise(lua_State *L) { return photometric(L, "gaussian_noise"); }
static int l_gaussian_blur(lua_State *L) { return photometric(L, "gaussian_blur"); }

/* uniform(seed, stream, k) in [0, 1); normal(seed, stream, k); subseed(seed, k) */
static int l_uniform(lua_State *L) {
  lua_pushnumber(L, sg_aug_uniform(check_seed(L, 1, "uniform"), (uint64_t)sgL_int(L, 2, "uniform", "stream"),
                                    (uint64_t)sgL_int(L, 3, "uniform", "index")));
  return 1;
}
static int l_normal(lua_State *L) {
  lua_pushnumber(L, sg_aug_normal(check_seed(L, 1, "normal"), (uint64_t)sgL_int(L, 2, "normal", "stream"),
                                   (uint64_t)sgL_int(L, 3, "normal", "index")));
  return 1;
}
static int l_subseed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sg_aug_subseed(check_seed(L, 1, "subseed"), (uint64_t)sgL_int(L, 2, "subseed", "index")));
  return 1;
}

static double opt_field(lua_State *L, int t, const char *k, double def) {
  double v = def;
  int ty = lua_getfield(L, t, k);
  if (ty != LUA_TNIL) {
    if (ty != LUA_TNUMBER) luaL_error(L, "synthetic_cells: %s must be a number (got %s)", k, lua_typename(L, ty));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}
static int64_t opt_int_field(lua_State *L, int t, const char *k, int64_t def) {
  int64_t v = def;
  if (lua_getfield(L, t, k) != LUA_TNIL) v = sgL_int(L, -1, "synthetic_cells", k);
  lua_pop(L, 1);
  return v;
}

/* synthetic_cells{n=, h=, w=, classes=, seed=, cell_size=, membrane=, noise=, blur=, mitochondria=} */
static int l_synthetic_cells(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  sg_synth_opts o;
  memset(&o, 0, sizeof o);
  o.n = opt_int_field(L, 1, "n", 1);
  o.h = opt_int_field(L, 1, "h", 256);
  o.w = opt_int_field(L, 1, "w", o.h);
  o.classes = (int)opt_int_field(L, 1, "classes", 2);
  o.seed = (uint64_t)opt_int_field(L, 1, "seed", 0);
  o.cell_size = opt_field(L, 1, "cell_size", 0);
  o.membrane = opt_field(L, 1, "membrane", 0);
  o.noise = opt_field(L, 1, "noise", -1);
  o.blur = opt_field(L, 1, "blur", -1);
  o.mitochondria = -1;
  if (lua_getfield(L, 1, "mitochondria") != LUA_TNIL) o.mitochondria = lua_toboolean(L, -1) ? 1 : 0;
  lua_pop(L, 1);
  sg_tensor *im, *mk;
  if (sg_synthetic_cells(&o, &im, &mk)) return sgL_error(L);
  sgL_push(L, im);
  sgL_push(L, mk);
  return 2;
}

/* ------------------------------------------------------------ compiled recipes
 * recipe_compile(node) -> a "semseg.Recipe" userdata: the checked Lua tree of
 * augment.lua as C nodes (data/recipe.h). recipe_apply(compiled, image, mask,
 * seed) -> image, mask: the inputs themselves come back when nothing fired. */
static double field_num(lua_State *L, int t, const char *k, double def) {
  double v = def;
  if (lua_getfield(L, t, k) != LUA_TNIL) v = check_num(L, -1, "recipe_compile", k);
  lua_pop(L, 1);
  return v;
}
static void field_range(lua_State *L, int t, const char *k, double r[2]) {
  if (lua_getfield(L, t, k) != LUA_TTABLE) luaL_error(L, "recipe_compile: %s must be a {lo, hi} range", k);
  for (int i = 0; i < 2; i++) {
    lua_geti(L, -1, i + 1);
    r[i] = check_num(L, -1, "recipe_compile", k);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void compile_node(lua_State *L, int t, sg_rnode *n, int depth) {
  if (depth > 64) luaL_error(L, "recipe_compile: transforms nested too deeply");
  luaL_checkstack(L, 8, "recipe_compile");
  if (lua_getfield(L, t, "op") != LUA_TSTRING) luaL_error(L, "recipe_compile: a transform has no op name");
  int op = sg_rop_from_name(lua_tostring(L, -1));
  if (op < 0) luaL_error(L, "recipe_compile: unknown transform %s", lua_tostring(L, -1));
  lua_pop(L, 1);
  n->op = (sg_rop)op;
  n->p = field_num(L, t, "p", 1);
  n->fill.mode = SG_FILL_REFLECT;
  if (lua_getfield(L, t, "fill") == LUA_TSTRING) {
    int m = sg_fill_mode_from_name(lua_tostring(L, -1));
    if (m < 0) luaL_error(L, "recipe_compile: unknown fill %s", lua_tostring(L, -1));
    n->fill.mode = (sg_fill_mode)m;
  }
  lua_pop(L, 1);
  n->fill.value = field_num(L, t, "fill_value", 0);
  if (lua_getfield(L, t, "mask_fill") != LUA_TNIL) n->fill.mask_value = sgL_int(L, -1, "recipe_compile", "mask_fill");
  lua_pop(L, 1);
  switch (n->op) {
  case SG_R_FLIP: {
    lua_getfield(L, t, "axis");
    const char *a = lua_tostring(L, -1);
    n->axis = !a || strcmp(a, "horizontal") == 0 ? 0 : strcmp(a, "vertical") == 0 ? 1 : 2;
    lua_pop(L, 1);
    break;
  }
  case SG_R_ROT90:
    if (lua_getfield(L, t, "k") != LUA_TNIL) { n->has_k = true; n->k = sgL_int(L, -1, "recipe_compile", "k"); }
    lua_pop(L, 1);
    break;
  case SG_R_ROTATE: field_range(L, t, "degrees", n->r); break;
  case SG_R_SCALE: case SG_R_CONTRAST: field_range(L, t, "factor", n->r); break;
  case SG_R_ELASTIC: field_range(L, t, "alpha", n->r); field_range(L, t, "sigma", n->r2); break;
  case SG_R_GRID_DISTORTION:
    n->num_steps = (int64_t)field_num(L, t, "num_steps", 5);
    n->limit = field_num(L, t, "distort_limit", 0.3);
    break;
  case SG_R_RANDOM_RESIZED_CROP: field_range(L, t, "scale", n->r); field_range(L, t, "ratio", n->r2);
    /* fall through */
  case SG_R_RANDOM_CROP: {
    double sz[2];
    field_range(L, t, "size", sz);
    n->size[0] = (int64_t)sz[0];
    n->size[1] = (int64_t)sz[1];
    break;
  }
  case SG_R_BRIGHTNESS: field_range(L, t, "delta", n->r); break;
  case SG_R_GAMMA: field_range(L, t, "gamma", n->r); break;
  case SG_R_GAUSSIAN_NOISE: case SG_R_GAUSSIAN_BLUR: field_range(L, t, "sigma", n->r); break;
  case SG_R_SOME_OF: n->n = (int64_t)field_num(L, t, "n", 0); break;
  default: break;
  }
  if (n->op == SG_R_RECIPE || n->op == SG_R_ONE_OF || n->op == SG_R_SOME_OF) {
    lua_Integer m = luaL_len(L, t);
    if (m > 100000) luaL_error(L, "recipe_compile: too many transforms");
    if (m > 0) {
      n->child = calloc((size_t)m, sizeof *n->child);
      if (!n->child) luaL_error(L, "recipe_compile: out of memory");
      n->nchild = (int)m;
      for (int i = 0; i < n->nchild; i++) {
        if (lua_geti(L, t, i + 1) != LUA_TTABLE) luaL_error(L, "recipe_compile: transform #%d is not a table", i + 1);
        compile_node(L, lua_gettop(L), &n->child[i], depth + 1);
        lua_pop(L, 1);
      }
    }
    if (n->op == SG_R_ONE_OF && lua_getfield(L, t, "weights") == LUA_TTABLE) {
      n->weights = calloc((size_t)(n->nchild > 0 ? n->nchild : 1), sizeof(double));
      if (!n->weights) luaL_error(L, "recipe_compile: out of memory");
      for (int i = 0; i < n->nchild; i++) {
        lua_geti(L, -1, i + 1);
        n->weights[i] = check_num(L, -1, "recipe_compile", "weight");
        lua_pop(L, 1);
      }
    }
    if (n->op == SG_R_ONE_OF) lua_pop(L, 1);
  }
}

static int recipe_gc(lua_State *L) {
  sg_rnode **b = luaL_checkudata(L, 1, SG_RECIPE_MT);
  if (*b) { sg_rnode_clear(*b); free(*b); *b = NULL; }
  return 0;
}

static int l_recipe_compile(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  sg_rnode **b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = NULL;
  if (luaL_newmetatable(L, SG_RECIPE_MT)) {
    lua_pushcfunction(L, recipe_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  *b = calloc(1, sizeof **b); /* freed by __gc, also when compiling raises */
  if (!*b) return luaL_error(L, "recipe_compile: out of memory");
  compile_node(L, 1, *b, 0);
  return 1;
}

static const sg_rnode *sgL_check_recipe(lua_State *L, int idx) {
  sg_rnode **b = luaL_checkudata(L, idx, SG_RECIPE_MT);
  if (!*b) luaL_error(L, "recipe: the compiled recipe was released");
  return *b;
}

static int l_recipe_apply(lua_State *L) {
  const sg_rnode *r = sgL_check_recipe(L, 1);
  sg_tensor *img = sgL_check(L, 2, "apply"), *mask = opt_mask(L, 3, "apply");
  uint64_t seed = check_seed(L, 4, "apply");
  sg_pair p;
  if (sg_recipe_apply(r, seed, img, mask, &p)) return sgL_error(L);
  if (p.image == img) { sg_tensor_decref(p.image); lua_pushvalue(L, 2); }
  else sgL_push(L, p.image);
  if (!p.mask) lua_pushnil(L);
  else if (p.mask == mask) { sg_tensor_decref(p.mask); lua_pushvalue(L, 3); }
  else sgL_push(L, p.mask);
  return 2;
}

static const luaL_Reg DATA_FNS[] = {
  {"flip", l_flip}, {"rot90", l_rot90}, {"transpose", l_transpose}, {"rotate", l_rotate}, {"scale", l_scale},
  {"elastic", l_elastic}, {"grid_distortion", l_grid_distortion}, {"crop", l_crop},
  {"resized_crop", l_resized_crop}, {"warp", l_warp}, {"brightness", l_brightness}, {"contrast", l_contrast},
  {"gamma", l_gamma}, {"gaussian_noise", l_gaussian_noise}, {"gaussian_blur", l_gaussian_blur},
  {"uniform", l_uniform}, {"normal", l_normal}, {"subseed", l_subseed}, {"synthetic_cells", l_synthetic_cells},
  {"recipe_compile", l_recipe_compile}, {"recipe_apply", l_recipe_apply},
  {NULL, NULL}};

void sgL_open_data(lua_State *L, int mod, int methods) {
  (void)methods;
  lua_newtable(L);
  int t = lua_gettop(L);
  sgL_setfuncs(L, DATA_FNS, t, 0);
  lua_setfield(L, mod, "data_core");
}
