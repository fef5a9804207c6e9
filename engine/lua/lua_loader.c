/* semseg.core.loader_core: the C half of lua/semseg/datasets.lua.
 *
 *   remap(mask, {[value] = class, ...}, ignore|nil) -> i64 mask | nil, bad value
 *   quantiles(t, q1, q2) -> the q1-th and q2-th percentiles (0..100, linear interpolation)
 *   crop(image, mask|nil, top, left, h, w, pad, pad_value, mask_pad) -> image f32, mask
 *       (0-based offsets; the box may reach outside the image: pad "reflect" | "constant" | "nearest")
 *   pick(mask, class, u) -> row, col (0-based) of the floor(u * count)-th pixel of that class, or nil
 *   counts(mask, nclasses) -> {count of class 0, ...} (values outside 0..nclasses-1 are not counted)
 *   new(images, masks|nil, recipe|nil, pad, pad_value, mask_pad, workers, prefetch, pin_memory) -> loader
 *       (pin_memory: batches in page-locked memory for asynchronous copies to the GPU; plain memory
 *       without a CUDA device)
 *   loader:start(items, batch)  items: flat list src, top, left, h, w, seed (src 1-based) per sample
 *   loader:next() -> images, masks | nil at the end of the epoch
 *   loader:stop(), loader:close() (also __gc) */
#include "../data/loader.h"
#include "binding.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOADER_MT "semseg.Loader"


typedef struct { int64_t value, cls; } vmap;
static int vmap_cmp(const void *a, const void *b) {
  int64_t x = ((const vmap *)a)->value, y = ((const vmap *)b)->value;
  return (x > y) - (x < y);
}

static sg_tensor *plain(lua_State *L, int idx, const char *op) {
  sg_tensor *t = sgL_check(L, idx, op);
  if (t->storage->device != SG_CPU) luaL_error(L, "%s: the tensor must be on the cpu", op);
  return t;
}

static int l_remap(lua_State *L) {
  sg_tensor *m = plain(L, 1, "remap");
  luaL_checktype(L, 2, LUA_TTABLE);
  bool has_ignore = !lua_isnoneornil(L, 3);
  int64_t ignore = has_ignore ? sgL_int(L, 3, "remap", "ignore class") : 0;
  if (sg_dtype_is_float(m->dtype)) return luaL_error(L, "remap: the label image must hold integers (got %s)", sg_dtype_name(m->dtype));
  size_t n = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) n++;
  vmap *map = lua_newuserdatauv(L, sizeof(vmap) * (n ? n : 1), 0); /* freed by the GC */
  size_t k = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
    map[k].value = sgL_int(L, -2, "remap", "label value");
    map[k].cls = sgL_int(L, -1, "remap", "class");
    k++;
  }
  qsort(map, n, sizeof *map, vmap_cmp);
  sg_tensor *c = sg_contiguous(m);
  if (!c) return sgL_error(L);
  int64_t N = sg_numel(c);
  sg_tensor *out = sg_empty(c->ndim, c->size, SG_I64, SG_CPU);
  if (!out) { sg_tensor_decref(c); return sgL_error(L); }
  int64_t *o = sg_data_ptr(out);
  bool u8 = c->dtype == SG_U8;
  int64_t lut[256];
  bool inlut[256];
  if (u8) {
    for (int v = 0; v < 256; v++) { inlut[v] = false; lut[v] = 0; }
    for (size_t i = 0; i < n; i++)
      if (map[i].value >= 0 && map[i].value < 256) { inlut[map[i].value] = true; lut[map[i].value] = map[i].cls; }
  }
  const uint8_t *pu = u8 ? sg_data_ptr(c) : NULL;
  for (int64_t i = 0; i < N; i++) {
    int64_t v, cls;
    bool found;
    if (u8) { v = pu[i]; found = inlut[v]; cls = lut[v]; }
    else {
      v = (int64_t)sg_get_flat(c, i);
      vmap key = {v, 0}, *hit = bsearch(&key, map, n, sizeof *map, vmap_cmp);
      found = hit != NULL;
      cls = hit ? hit->cls : 0;
    }
    if (!found) {
      if (!has_ignore) {
        sg_tensor_decref(c); sg_tensor_decref(out);
        lua_pushnil(L);
        lua_pushinteger(L, v);
        return 2;
      }
      cls = ignore;
    }
    o[i] = cls;
  }
  sg_tensor_decref(c);
  sgL_push(L, out);
  return 1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static int l_quantiles(lua_State *L) {
  sg_tensor *t = plain(L, 1, "quantiles");
  int nq = lua_gettop(L) - 1;
  int64_t n = sg_numel(t);
  if (n < 1) return luaL_error(L, "quantiles: empty tensor");
  double *v = malloc(sizeof(double) * (size_t)n);
  if (!v) return luaL_error(L, "quantiles: out of memory");
  for (int64_t i = 0; i < n; i++) v[i] = sg_get_flat(t, i);
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  for (int i = 0; i < nq; i++) {
    double q = lua_tonumber(L, 2 + i);
    if (!(q >= 0 && q <= 100)) { free(v); return luaL_error(L, "quantiles: percentile must be in [0, 100] (got %f)", q); }
    double pos = q / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    lua_pushnumber(L, v[lo] + (v[hi] - v[lo]) * (pos - (double)lo));
  }
  free(v);
  return nq;
}

static sg_fill check_pad(lua_State *L, int idx, const char *op) {
  sg_fill f = {SG_FILL_REFLECT, 0, 0};
  if (!lua_isnoneornil(L, idx)) {
    int m = sg_fill_mode_from_name(luaL_checkstring(L, idx));
    if (m < 0) luaL_error(L, "%s: pad must be \"reflect\", \"constant\" or \"nearest\" (got %s)", op, lua_tostring(L, idx));
    f.mode = (sg_fill_mode)m;
  }
  if (!lua_isnoneornil(L, idx + 1)) f.value = luaL_checknumber(L, idx + 1);
  if (!lua_isnoneornil(L, idx + 2)) f.mask_value = sgL_int(L, idx + 2, op, "mask pad label");
  return f;
}

static int l_crop(lua_State *L) {
  sg_tensor *img = plain(L, 1, "crop"), *mask = lua_isnoneornil(L, 2) ? NULL : plain(L, 2, "crop");
  sg_loader_item it = {0, sgL_int(L, 3, "crop", "top"), sgL_int(L, 4, "crop", "left"), sgL_int(L, 5, "crop", "height"),
                       sgL_int(L, 6, "crop", "width"), 0};
  sg_fill f = check_pad(L, 7, "crop");
  sg_pair p;
  if (sg_loader_sample(img, mask, &it, f, NULL, &p)) return sgL_error(L);
  sgL_push(L, p.image);
  if (p.mask) sgL_push(L, p.mask); else lua_pushnil(L);
  return 2;
}

static int l_pick(lua_State *L) {
  sg_tensor *m = plain(L, 1, "pick");
  int64_t cls = sgL_int(L, 2, "pick", "class");
  double u = luaL_checknumber(L, 3);
  if (m->ndim != 2) return luaL_error(L, "pick: the mask must be H x W");
  sg_tensor *c = sg_to_dtype(m, SG_I64), *cc = c ? sg_contiguous(c) : NULL;
  sg_tensor_decref(c);
  if (!cc) return sgL_error(L);
  const int64_t *p = sg_data_ptr(cc);
  int64_t n = sg_numel(cc), W = cc->size[1], count = 0;
  for (int64_t i = 0; i < n; i++) count += p[i] == cls;
  int64_t k = (int64_t)floor(u * (double)count);
  if (k >= count) k = count - 1;
  for (int64_t i = 0; i < n && count > 0; i++)
    if (p[i] == cls && k-- == 0) {
      sg_tensor_decref(cc);
      lua_pushinteger(L, i / W);
      lua_pushinteger(L, i % W);
      return 2;
    }
  sg_tensor_decref(cc);
  return 0;
}

static int l_counts(lua_State *L) {
  sg_tensor *m = plain(L, 1, "counts");
  int64_t nc = sgL_int(L, 2, "counts", "number of classes");
  if (nc < 1 || nc > (1 << 20)) return luaL_error(L, "counts: bad number of classes");
  int64_t *c = calloc((size_t)nc, sizeof *c);
  if (!c) return luaL_error(L, "counts: out of memory");
  int64_t n = sg_numel(m);
  if (m->dtype == SG_I64 && sg_is_contiguous(m)) {
    const int64_t *p = sg_data_ptr(m);
    for (int64_t i = 0; i < n; i++) if (p[i] >= 0 && p[i] < nc) c[p[i]]++;
  } else {
    for (int64_t i = 0; i < n; i++) {
      int64_t v = (int64_t)sg_get_flat(m, i);
      if (v >= 0 && v < nc) c[v]++;
    }
  }
  lua_createtable(L, (int)nc, 0);
  for (int64_t i = 0; i < nc; i++) { lua_pushinteger(L, c[i]); lua_rawseti(L, -2, i + 1); }
  free(c);
  return 1;
}

/* ---- the loader object: a userdata holding sg_loader *, uservalue 1 = the recipe */
static sg_loader **check_loader(lua_State *L, int idx) {
  sg_loader **b = luaL_checkudata(L, idx, LOADER_MT);
  if (!*b) luaL_error(L, "loader: the loader is closed");
  return b;
}

static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  bool has_masks = !lua_isnoneornil(L, 2);
  if (has_masks) luaL_checktype(L, 2, LUA_TTABLE);
  const sg_rnode *recipe = NULL;
  if (!lua_isnoneornil(L, 3)) {
    sg_rnode **r = luaL_checkudata(L, 3, SG_RECIPE_MT);
    if (!*r) return luaL_error(L, "loader: the compiled recipe was released");
    recipe = *r;
  }
  sg_fill pad = check_pad(L, 4, "loader");
  int64_t workers = lua_isnoneornil(L, 7) ? 0 : sgL_int(L, 7, "loader", "workers");
  int64_t prefetch = lua_isnoneornil(L, 8) ? 2 : sgL_int(L, 8, "loader", "prefetch");
  bool pin = lua_toboolean(L, 9);
  lua_Integer n = luaL_len(L, 1);
  if (n < 1 || n > (1 << 24)) return luaL_error(L, "loader: no images");
  if (has_masks && luaL_len(L, 2) != n) return luaL_error(L, "loader: %d images but %d masks", (int)n, (int)luaL_len(L, 2));
  sg_tensor **im = lua_newuserdatauv(L, sizeof(sg_tensor *) * (size_t)n * 2, 0); /* scratch, GC'd */
  sg_tensor **mk = im + n;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    im[i - 1] = plain(L, -1, "loader");
    lua_pop(L, 1);
    if (has_masks) {
      lua_geti(L, 2, i);
      mk[i - 1] = plain(L, -1, "loader");
      lua_pop(L, 1);
    }
  }
  sg_loader **b = lua_newuserdatauv(L, sizeof *b, 1);
  *b = NULL;
  luaL_setmetatable(L, LOADER_MT);
  if (recipe) { lua_pushvalue(L, 3); lua_setiuservalue(L, -2, 1); } /* keeps the recipe alive */
  *b = sg_loader_new((int64_t)n, im, has_masks ? mk : NULL, recipe, pad, (int)workers, (int)prefetch);
  if (!*b) return sgL_error(L);
  sg_loader_set_pin_memory(*b, pin);
  return 1;
}

static int l_start(lua_State *L) {
  sg_loader **b = check_loader(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t batch = sgL_int(L, 3, "loader", "batch");
  lua_Integer len = luaL_len(L, 2);
  if (len % 6) return luaL_error(L, "loader: the plan must hold 6 numbers per item");
  int64_t n = len / 6;
  sg_loader_item *it = lua_newuserdatauv(L, sizeof *it * (size_t)(n ? n : 1), 0);
  for (int64_t i = 0; i < n; i++) {
    int64_t v[6];
    for (int j = 0; j < 6; j++) {
      lua_geti(L, 2, i * 6 + j + 1);
      v[j] = sgL_int(L, -1, "loader", "plan entry");
      lua_pop(L, 1);
    }
    it[i] = (sg_loader_item){v[0] - 1, v[1], v[2], v[3], v[4], (uint64_t)v[5]};
  }
  if (sg_loader_start(*b, it, n, batch)) return sgL_error(L);
  return 0;
}

static int l_next(lua_State *L) {
  sg_loader **b = check_loader(L, 1);
  sg_tensor *im, *mk;
  int rc = sg_loader_next(*b, &im, &mk);
  if (rc < 0) return sgL_error(L);
  if (rc == 0) return 0;
  sgL_push(L, im);
  if (mk) sgL_push(L, mk); else lua_pushnil(L);
  return 2;
}

static int l_stop(lua_State *L) {
  sg_loader **b = check_loader(L, 1);
  sg_loader_stop(*b);
  return 0;
}

static int l_close(lua_State *L) {
  sg_loader **b = luaL_checkudata(L, 1, LOADER_MT);
  if (*b) { sg_loader_free(*b); *b = NULL; }
  return 0;
}

static const luaL_Reg LOADER_FNS[] = {
  {"remap", l_remap}, {"quantiles", l_quantiles}, {"crop", l_crop}, {"pick", l_pick}, {"counts", l_counts},
  {"new", l_new}, {NULL, NULL}};
static const luaL_Reg LOADER_METHODS[] = {
  {"start", l_start}, {"next", l_next}, {"stop", l_stop}, {"close", l_close}, {NULL, NULL}};

void sgL_open_loader(lua_State *L, int mod, int methods) {
  (void)methods;
  if (luaL_newmetatable(L, LOADER_MT)) {
    lua_newtable(L);
    int m = lua_gettop(L);
    sgL_setfuncs(L, LOADER_METHODS, m, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  sgL_setfuncs(L, LOADER_FNS, lua_gettop(L), 0);
  lua_setfield(L, mod, "loader_core");
}
