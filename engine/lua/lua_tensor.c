/* The Tensor userdata: lifetime, fields, printing, creation, views, indexing. */
#include "binding.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- lifetime */
static int t_gc(lua_State *L) {
  sgL_box *b = luaL_checkudata(L, 1, SG_TENSOR_MT);
  sg_tensor_decref(b->t);
  b->t = NULL;
  return 0;
}

/* ---------------------------------------------------------------- printing */
typedef struct { luaL_Buffer *b; const sg_tensor *t; bool fl, sci; int width, prec; } fmt_ctx;

static void fmt_value(fmt_ctx *c, double v, char *out, size_t n) {
  if (c->t->dtype == SG_BOOL) snprintf(out, n, "%s", v != 0 ? "true" : "false");
  else if (!c->fl) snprintf(out, n, "%.0f", v);
  else if (isnan(v)) snprintf(out, n, "nan");
  else if (isinf(v)) snprintf(out, n, v > 0 ? "inf" : "-inf");
  else if (c->sci) snprintf(out, n, "%.*e", c->prec, v);
  else snprintf(out, n, "%.*f", c->prec, v);
}

/* Element at idx as text; integers are read exactly (not through double). */
static void fmt_elem(fmt_ctx *c, const int64_t *idx, char *out, size_t n) {
  const sg_tensor *t = c->t;
  if (sg_dtype_is_int(t->dtype)) {
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    snprintf(out, n, "%lld",
             (long long)sg_load_i64((const char *)t->storage->data + off * (int64_t)sg_dtype_size(t->dtype), t->dtype));
  } else fmt_value(c, sg_get_f64(t, idx), out, n);
}

static void flat_idx(const sg_tensor *t, int64_t i, int64_t *idx) {
  for (int d = t->ndim - 1; d >= 0; d--) { idx[d] = i % t->size[d]; i /= t->size[d]; }
}

#define EDGE 3 /* values shown at each end of a summarised dim */

static void fmt_dim(fmt_ctx *c, int d, int64_t *idx, bool summarise, int indent) {
  const sg_tensor *t = c->t;
  luaL_addchar(c->b, '[');
  int64_t n = t->size[d];
  for (int64_t i = 0; i < n; i++) {
    if (summarise && n > 2 * EDGE && i == EDGE) {
      luaL_addstring(c->b, d == t->ndim - 1 ? "..., " : "...,\n");
      if (d < t->ndim - 1) for (int k = 0; k < indent + 1; k++) luaL_addchar(c->b, ' ');
      i = n - EDGE;
    }
    idx[d] = i;
    if (d == t->ndim - 1) {
      char s[64];
      fmt_elem(c, idx, s, sizeof s);
      for (int k = (int)strlen(s); k < c->width; k++) luaL_addchar(c->b, ' ');
      luaL_addstring(c->b, s);
      if (i < n - 1) luaL_addstring(c->b, ", ");
    } else {
      fmt_dim(c, d + 1, idx, summarise, indent + 1);
      if (i < n - 1) {
        luaL_addchar(c->b, ',');
        for (int k = d; k < t->ndim - 1; k++) luaL_addchar(c->b, '\n');
        for (int k = 0; k < indent + 1; k++) luaL_addchar(c->b, ' ');
      }
    }
  }
  luaL_addchar(c->b, ']');
}

static int t_tostring(lua_State *L) {
  sgL_box *bx = luaL_checkudata(L, 1, SG_TENSOR_MT);
  if (!bx->t) { lua_pushliteral(L, "tensor(<closed>)"); return 1; }
  sg_tensor *t = bx->t;
  sg_device dev = t->storage->device;
  if (dev != SG_CPU) { /* format a host copy: one transfer instead of one per element */
    sg_tensor *host = sg_to_device(t, SG_CPU);
    if (!host) return sgL_error(L);
    sg_tensor *d = sg_detach(host);
    sg_tensor_decref(host);
    if (!d) return sgL_error(L);
    d->requires_grad = t->requires_grad;
    sgL_push(L, d);
    lua_replace(L, 1);
    t = d;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  int64_t n = sg_numel(t);
  bool summarise = n > 1000;
  fmt_ctx c = {&b, t, sg_dtype_is_float(t->dtype), false, 1, 4};
  /* pick one format for all values, from their range (as PyTorch does) */
  double maxabs = 0, minabs = INFINITY;
  bool integral = true;
  for (int64_t i = 0; i < n && i < 100000; i++) {
    double v = fabs(sg_get_flat(t, i));
    if (!isfinite(v)) continue;
    if (v > maxabs) maxabs = v;
    if (v > 0 && v < minabs) minabs = v;
    if (v != floor(v)) integral = false;
  }
  if (c.fl) c.sci = maxabs >= 1e8 || (minabs < 1e-4 && minabs > 0) || (maxabs > 0 && maxabs / minabs > 1e6);
  if (c.fl && integral && !c.sci) c.prec = 1;
  for (int64_t i = 0; i < n && i < 100000; i++) {
    char s[64];
    int64_t ix[SG_MAX_DIMS];
    flat_idx(t, i, ix);
    fmt_elem(&c, ix, s, sizeof s);
    if ((int)strlen(s) > c.width) c.width = (int)strlen(s);
  }
  if (t->ndim == 0) {
    char s[64];
    fmt_elem(&c, (int64_t[1]){0}, s, sizeof s);
    luaL_addstring(&b, s);
  } else {
    int64_t idx[SG_MAX_DIMS] = {0};
    fmt_dim(&c, 0, idx, summarise, 7);
  }
  char tail[256];
  snprintf(tail, sizeof tail, ", shape=%s, dtype=%s, device=%s%s)", SG_SHAPE_STR(t), sg_dtype_name(t->dtype),
           sg_device_name(dev), t->requires_grad ? ", requires_grad=true" : "");
  luaL_addstring(&b, tail);
  luaL_pushresult(&b);
  return 1;
}

/* ---------------------------------------------------------------- from Lua tables */
static void infer_shape(lua_State *L, int idx, int depth, int *ndim, int64_t *size) {
  if (!lua_istable(L, idx)) { *ndim = depth; return; }
  if (depth >= SG_MAX_DIMS) luaL_error(L, "tensor: nested tables deeper than %d", SG_MAX_DIMS);
  size[depth] = (int64_t)luaL_len(L, idx);
  if (size[depth] == 0) { *ndim = depth + 1; return; }
  lua_geti(L, idx, 1);
  infer_shape(L, lua_gettop(L), depth + 1, ndim, size);
  lua_pop(L, 1);
}

static void fill_from_table(lua_State *L, int idx, int d, sg_tensor *t, int64_t *pos, char *base, bool *all_int) {
  int64_t n = (int64_t)luaL_len(L, idx);
  if (n != t->size[d]) luaL_error(L, "tensor: ragged nested table (dim %d has %I and %I elements)", d + 1,
                                  (lua_Integer)t->size[d], (lua_Integer)n);
  for (int64_t i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    if (d == t->ndim - 1) {
      if (lua_isboolean(L, -1)) sg_store_f64(base + (*pos)++ * (int64_t)sg_dtype_size(t->dtype), t->dtype, lua_toboolean(L, -1));
      else if (lua_type(L, -1) == LUA_TNUMBER) {
        char *p = base + (*pos)++ * (int64_t)sg_dtype_size(t->dtype);
        if (!lua_isinteger(L, -1)) { *all_int = false; sg_store_f64(p, t->dtype, lua_tonumber(L, -1)); }
        else if (sg_dtype_is_int(t->dtype)) sg_store_i64(p, t->dtype, (int64_t)lua_tointeger(L, -1));
        else sg_store_f64(p, t->dtype, (double)lua_tointeger(L, -1));
      } else luaL_error(L, "tensor: element %I of dim %d is a %s, not a number", (lua_Integer)i, d + 1, luaL_typename(L, -1));
    } else {
      if (!lua_istable(L, -1)) luaL_error(L, "tensor: ragged nested table (expected a table at dim %d)", d + 1);
      fill_from_table(L, lua_gettop(L), d + 1, t, pos, base, all_int);
    }
    lua_pop(L, 1);
  }
}

/* whether the options table at idx names a device */
static bool has_device_opt(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return false;
  bool has = lua_getfield(L, idx, "device") != LUA_TNIL;
  lua_pop(L, 1);
  return has;
}

/* sg.tensor({{1,2},{3,4}} [, opts]); numbers give f32 unless a dtype is asked; {device = "cuda"} builds
 * the values on the host and copies them over once */
static int l_tensor(lua_State *L) {
  sgL_opts o = sgL_options(L, 2, "tensor", SG_F32);
  bool move = has_device_opt(L, 2);
  if (luaL_testudata(L, 1, SG_TENSOR_MT)) { /* a copy of a tensor (sgL_check raises for a closed one) */
    sg_tensor *src = sgL_check(L, 1, "tensor");
    bool prev = sg_set_grad_enabled(false); /* the copy is a new leaf, without history */
    sg_tensor *c = sg_to_dtype(src, o.dtype);
    sg_tensor *d = NULL;
    if (c && move && o.device != src->storage->device) d = sg_to_device(c, o.device); /* a fresh copy already */
    else if (c) d = sg_clone(c);
    sg_set_grad_enabled(prev);
    sg_tensor_decref(c);
    sgL_push(L, d);
    d->requires_grad = o.requires_grad;
    return 1;
  }
  int64_t size[SG_MAX_DIMS];
  int ndim = 0;
  if (lua_type(L, 1) == LUA_TNUMBER || lua_isboolean(L, 1)) ndim = 0;
  else if (lua_istable(L, 1)) infer_shape(L, 1, 0, &ndim, size);
  else return luaL_error(L, "tensor: expected a number or a (nested) table of numbers, got %s", luaL_typename(L, 1));
  sg_tensor *t = sgL_push(L, sg_empty(ndim, size, o.dtype, SG_CPU));
  bool all_int = true;
  if (ndim == 0 && lua_isinteger(L, 1) && sg_dtype_is_int(t->dtype))
    sg_store_i64(t->storage->data, t->dtype, (int64_t)lua_tointeger(L, 1));
  else if (ndim == 0) sg_store_f64(t->storage->data, t->dtype, lua_isboolean(L, 1) ? lua_toboolean(L, 1) : lua_tonumber(L, 1));
  else if (sg_numel(t) > 0) { int64_t pos = 0; fill_from_table(L, 1, 0, t, &pos, t->storage->data, &all_int); }
  if (move && o.device != SG_CPU) t = sgL_push(L, sg_to_device(t, o.device));
  t->requires_grad = o.requires_grad;
  return 1;
}

/* ---------------------------------------------------------------- creation */
/* sgL_push for creation functions: errors from sg_empty ("tensor: ...") name the op. */
static sg_tensor *push_new(lua_State *L, const char *op, sg_tensor *t) {
  if (!t) {
    const char *m = sg_error_get();
    if (strncmp(m, "tensor: ", 8) == 0) luaL_error(L, "%s: %s", op, m + 8);
    sgL_error(L);
  }
  return sgL_push(L, t);
}

static int create(lua_State *L, const char *op, int kind) {
  int64_t size[SG_MAX_DIMS];
  int next, start = kind == 2 ? 2 : 1; /* full(value, shape [, opts]) */
  double value = kind == 2 ? luaL_checknumber(L, 1) : 0;
  if (kind == 2 && !lua_isnumber(L, 1)) luaL_error(L, "full: argument #1 must be the fill value");
  int ndim = sgL_shape(L, start, op, size, &next);
  sgL_opts o = sgL_options(L, next, op, SG_F32);
  if (kind == 2 && lua_isinteger(L, 1) && lua_isnoneornil(L, next)) o.dtype = SG_F32;
  sg_tensor *t;
  if (kind == 0) t = sg_zeros(ndim, size, o.dtype, o.device);
  else if (kind == 3) t = sg_empty(ndim, size, o.dtype, o.device);
  else t = sg_full(ndim, size, kind == 1 ? 1.0 : value, o.dtype, o.device);
  push_new(L, op, t)->requires_grad = o.requires_grad;
  return 1;
}
static int l_zeros(lua_State *L) { return create(L, "zeros", 0); }
static int l_ones(lua_State *L) { return create(L, "ones", 1); }
static int l_full(lua_State *L) { return create(L, "full", 2); }
static int l_empty(lua_State *L) { return create(L, "empty", 3); }

static int like(lua_State *L, const char *op, double v) {
  sg_tensor *a = sgL_check(L, 1, op);
  sgL_opts o = sgL_options(L, strcmp(op, "full_like") == 0 ? 3 : 2, op, a->dtype); /* full_like(t, v, opts) */
  push_new(L, op, sg_full(a->ndim, a->size, v, o.dtype, a->storage->device));
  return 1;
}
static int l_zeros_like(lua_State *L) { return like(L, "zeros_like", 0); }
static int l_ones_like(lua_State *L) { return like(L, "ones_like", 1); }
static int l_full_like(lua_State *L) { return like(L, "full_like", luaL_checknumber(L, 2)); }

/* arange(end) | arange(start, end [, step]) [, opts]; integers give i64 */
static int l_arange(lua_State *L) {
  int nnum = 0;
  while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) nnum++;
  if (nnum == 0) return luaL_error(L, "arange: expected arange(end), arange(start, end) or arange(start, end, step)");
  bool ints = true;
  for (int k = 1; k <= nnum; k++) ints = ints && lua_isinteger(L, k);
  double start = nnum >= 2 ? lua_tonumber(L, 1) : 0, end = nnum >= 2 ? lua_tonumber(L, 2) : lua_tonumber(L, 1);
  double step = nnum == 3 ? lua_tonumber(L, 3) : 1;
  sgL_opts o = sgL_options(L, nnum + 1, "arange", ints ? SG_I64 : SG_F32);
  push_new(L, "arange", sg_arange(start, end, step, o.dtype))->requires_grad = o.requires_grad;
  return 1;
}

static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  int64_t n = sgL_int(L, 3, "linspace", "steps");
  sgL_opts o = sgL_options(L, 4, "linspace", SG_F32);
  push_new(L, "linspace", sg_linspace(a, b, n, o.dtype));
  return 1;
}

static int l_eye(lua_State *L) {
  int64_t n = sgL_int(L, 1, "eye", "n");
  int64_t m = lua_type(L, 2) == LUA_TNUMBER ? sgL_int(L, 2, "eye", "m") : n;
  if (n < 0 || m < 0) return luaL_error(L, "eye: negative size %I x %I", (lua_Integer)n, (lua_Integer)m);
  sgL_opts o = sgL_options(L, lua_type(L, 2) == LUA_TNUMBER ? 3 : 2, "eye", SG_F32);
  push_new(L, "eye", sg_eye(n, m, o.dtype));
  return 1;
}

static int random_create(lua_State *L, const char *op, int kind) {
  int64_t size[SG_MAX_DIMS];
  int next;
  int64_t lo = 0, hi = 0;
  int start = 1;
  if (kind == 2) { /* randint(lo, hi, shape) or randint(hi, shape) */
    if (lua_type(L, 2) == LUA_TNUMBER && lua_type(L, 3) != LUA_TNONE && !lua_isnil(L, 3)) {
      lo = sgL_int(L, 1, op, "low"); hi = sgL_int(L, 2, op, "high"); start = 3;
    } else { hi = sgL_int(L, 1, op, "high"); start = 2; }
    if (hi <= lo) return luaL_error(L, "randint: empty range [%I, %I)", (lua_Integer)lo, (lua_Integer)hi);
  }
  int ndim = sgL_shape(L, start, op, size, &next);
  sgL_opts o = sgL_options(L, next, op, kind == 2 ? SG_I64 : SG_F32);
  if (kind != 2 && !sg_dtype_is_float(o.dtype))
    return luaL_error(L, "%s: dtype must be floating point, got %s", op, sg_dtype_name(o.dtype));
  sg_tensor *t = kind == 0   ? sg_rand_dev(ndim, size, o.dtype, o.device)
                 : kind == 1 ? sg_randn_dev(ndim, size, o.dtype, o.device)
                             : sg_randint_dev(lo, hi, ndim, size, o.dtype, o.device);
  push_new(L, op, t)->requires_grad = o.requires_grad;
  return 1;
}
static int l_rand(lua_State *L) { return random_create(L, "rand", 0); }
static int l_randn(lua_State *L) { return random_create(L, "randn", 1); }
static int l_randint(lua_State *L) { return random_create(L, "randint", 2); }

/* ---------------------------------------------------------------- fields */
static void push_shape(lua_State *L, const sg_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) { lua_pushinteger(L, t->size[d]); lua_rawseti(L, -2, d + 1); }
}

static int m_size(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "size");
  if (lua_isnoneornil(L, 2)) { push_shape(L, t); return 1; }
  lua_pushinteger(L, t->size[sgL_dim(L, 2, "size", t->ndim)]);
  return 1;
}
static int m_stride(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "stride");
  if (!lua_isnoneornil(L, 2)) { lua_pushinteger(L, t->stride[sgL_dim(L, 2, "stride", t->ndim)]); return 1; }
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) { lua_pushinteger(L, t->stride[d]); lua_rawseti(L, -2, d + 1); }
  return 1;
}
static int m_numel(lua_State *L) { lua_pushinteger(L, sg_numel(sgL_check(L, 1, "numel"))); return 1; }
static int m_dim(lua_State *L) { lua_pushinteger(L, sgL_check(L, 1, "dim")->ndim); return 1; }
static int m_is_contiguous(lua_State *L) { lua_pushboolean(L, sg_is_contiguous(sgL_check(L, 1, "is_contiguous"))); return 1; }
static int m_is_view_of(lua_State *L) {
  sg_tensor *a = sgL_check(L, 1, "is_view_of"), *b = sgL_check(L, 2, "is_view_of");
  lua_pushboolean(L, a->storage == b->storage);
  return 1;
}

static int m_item(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "item");
  if (sg_numel(t) != 1)
    return luaL_error(L, "item: only a one-element tensor converts to a number, got shape %s", SG_SHAPE_STR(t));
  if (t->storage->device != SG_CPU) t = sgL_push(L, sgL_host_copy(t)); /* one transfer, then as on the cpu */
  double v = sg_get_flat(t, 0);
  if (t->dtype == SG_BOOL) lua_pushboolean(L, v != 0);
  else if (!sg_dtype_is_float(t->dtype)) lua_pushinteger(L, sg_load_i64(sg_data_ptr(t), t->dtype));
  else if (fabs(v) < 9007199254740992.0 && v == (double)(lua_Integer)v) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v); /* integral values come back as Lua integers: they print as 0, not 0.0 */
  return 1;
}

static void push_elems(lua_State *L, const sg_tensor *t, int d, int64_t *idx) {
  lua_createtable(L, (int)t->size[d], 0);
  for (int64_t i = 0; i < t->size[d]; i++) {
    idx[d] = i;
    if (d == t->ndim - 1) {
      double v = sg_get_f64(t, idx);
      if (t->dtype == SG_BOOL) lua_pushboolean(L, v != 0);
      else if (sg_dtype_is_float(t->dtype)) { /* integral values as integers, like item() */
        if (fabs(v) < 9007199254740992.0 && v == (double)(lua_Integer)v) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, v);
      } else { /* exact for every i64, not through double */
        int64_t off = t->offset;
        for (int k = 0; k < t->ndim; k++) off += idx[k] * t->stride[k];
        lua_pushinteger(L, sg_load_i64((char *)t->storage->data + off * (int64_t)sg_dtype_size(t->dtype), t->dtype));
      }
    } else push_elems(L, t, d + 1, idx);
    lua_rawseti(L, -2, i + 1);
  }
}

static int m_totable(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "totable");
  if (t->ndim == 0) { lua_settop(L, 1); return m_item(L); }
  if (t->storage->device != SG_CPU) t = sgL_push(L, sgL_host_copy(t)); /* one transfer, not one per element */
  int64_t idx[SG_MAX_DIMS] = {0};
  push_elems(L, t, 0, idx);
  return 1;
}

/* ---------------------------------------------------------------- views */
static int m_view(lua_State *L, bool reshape) {
  const char *op = reshape ? "reshape" : "view";
  sg_tensor *t = sgL_check(L, 1, op);
  int64_t size[SG_MAX_DIMS];
  int next, ndim = 0;
  (void)next;
  if (lua_istable(L, 2)) { /* sizes may include one -1: not sgL_shape, which rejects negatives */
    lua_Integer n = luaL_len(L, 2);
    if (n > SG_MAX_DIMS) return luaL_error(L, "%s: more than %d dims", op, SG_MAX_DIMS);
    for (int k = 0; k < (int)n; k++) { lua_geti(L, 2, k + 1); size[ndim++] = sgL_int(L, -1, op, "size"); lua_pop(L, 1); }
  } else {
    for (int k = 2; !lua_isnone(L, k); k++) {
      if (ndim >= SG_MAX_DIMS) return luaL_error(L, "%s: more than %d dims", op, SG_MAX_DIMS);
      size[ndim++] = sgL_int(L, k, op, "size");
    }
  }
  sgL_push(L, reshape ? sg_reshape(t, ndim, size) : sg_view(t, ndim, size));
  return 1;
}
static int m_view_(lua_State *L) { return m_view(L, false); }
static int m_reshape(lua_State *L) { return m_view(L, true); }

static int m_permute(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "permute");
  int perm[SG_MAX_DIMS], n = 0;
  if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    if (n != t->ndim) return luaL_error(L, "permute: %d dims given for a tensor of %d dims", n, t->ndim);
    for (int k = 0; k < n; k++) { lua_geti(L, 2, k + 1); perm[k] = sgL_dim(L, -1, "permute", t->ndim); lua_pop(L, 1); }
  } else {
    n = lua_gettop(L) - 1;
    if (n != t->ndim) return luaL_error(L, "permute: %d dims given for a tensor of %d dims", n, t->ndim);
    for (int k = 0; k < n; k++) perm[k] = sgL_dim(L, k + 2, "permute", t->ndim);
  }
  sgL_push(L, sg_permute(t, perm));
  return 1;
}

static int m_transpose(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "transpose");
  int d0 = lua_isnoneornil(L, 2) ? 0 : sgL_dim(L, 2, "transpose", t->ndim);
  int d1 = lua_isnoneornil(L, 3) ? 1 : sgL_dim(L, 3, "transpose", t->ndim);
  if (lua_isnoneornil(L, 2) && t->ndim != 2)
    return luaL_error(L, "transpose: give two dims for a tensor of %d dims (t() is for 2-D)", t->ndim);
  sgL_push(L, sg_transpose(t, d0, d1));
  return 1;
}

/* narrow(dim, start, length): start counts from 1 */
static int m_narrow(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "narrow");
  int d = sgL_dim(L, 2, "narrow", t->ndim);
  int64_t start = sgL_int(L, 3, "narrow", "start"), len = sgL_int(L, 4, "narrow", "length");
  if (start < 0) start += t->size[d] + 1;
  sgL_push(L, sg_narrow(t, d, start - 1, len));
  return 1;
}

/* slice(dim, first, last [, step]): inclusive range counted from 1, negatives from the end */
static int64_t lua_pos(int64_t p, int64_t n) { return p < 0 ? p + n : p - 1; }
static int m_slice(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "slice");
  int d = sgL_dim(L, 2, "slice", t->ndim);
  int64_t n = t->size[d];
  int64_t first = lua_isnoneornil(L, 3) ? 1 : sgL_int(L, 3, "slice", "first");
  int64_t last = lua_isnoneornil(L, 4) ? -1 : sgL_int(L, 4, "slice", "last");
  int64_t step = lua_isnoneornil(L, 5) ? 1 : sgL_int(L, 5, "slice", "step");
  sgL_push(L, sg_slice(t, d, lua_pos(first, n), lua_pos(last, n) + 1, step));
  return 1;
}

static int m_select(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "select");
  int d = sgL_dim(L, 2, "select", t->ndim);
  int64_t i = sgL_int(L, 3, "select", "index");
  if (i == 0) return luaL_error(L, "select: index 0 is out of range (indices count from 1)");
  sgL_push(L, sg_select(t, d, i > 0 ? i - 1 : i));
  return 1;
}

static int m_expand(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "expand");
  int64_t size[SG_MAX_DIMS];
  int next, n = 0;
  if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    if (n > SG_MAX_DIMS) return luaL_error(L, "expand: more than %d dims", SG_MAX_DIMS);
    for (int k = 0; k < n; k++) { lua_geti(L, 2, k + 1); size[k] = sgL_int(L, -1, "expand", "size"); lua_pop(L, 1); }
  } else {
    for (int k = 2; !lua_isnone(L, k); k++) {
      if (n >= SG_MAX_DIMS) return luaL_error(L, "expand: more than %d dims", SG_MAX_DIMS);
      size[n++] = sgL_int(L, k, "expand", "size");
    }
  }
  (void)next;
  sgL_push(L, sg_expand(t, n, size));
  return 1;
}

static int m_expand_as(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "expand_as"), *o = sgL_check(L, 2, "expand_as");
  sgL_push(L, sg_expand(t, o->ndim, o->size));
  return 1;
}

static int m_squeeze(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "squeeze");
  sgL_push(L, sg_squeeze(t, lua_isnoneornil(L, 2) ? SG_ALL_DIMS : sgL_dim(L, 2, "squeeze", t->ndim)));
  return 1;
}
static int m_unsqueeze(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "unsqueeze");
  sgL_push(L, sg_unsqueeze(t, sgL_dim(L, 2, "unsqueeze", t->ndim + 1)));
  return 1;
}
static int m_flatten(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "flatten");
  int a = lua_isnoneornil(L, 2) ? 0 : sgL_dim(L, 2, "flatten", t->ndim);
  int b = lua_isnoneornil(L, 3) ? (t->ndim ? t->ndim - 1 : 0) : sgL_dim(L, 3, "flatten", t->ndim);
  if (a > b) return luaL_error(L, "flatten: start dim %d is after end dim %d", a + 1, b + 1);
  int64_t size[SG_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < a; d++) size[n++] = t->size[d];
  int64_t m = 1;
  for (int d = a; d <= b && d < t->ndim; d++) m *= t->size[d];
  size[n++] = m;
  for (int d = b + 1; d < t->ndim; d++) size[n++] = t->size[d];
  sgL_push(L, sg_reshape(t, n, size));
  return 1;
}
static int m_contiguous(lua_State *L) { sgL_push(L, sg_contiguous(sgL_check(L, 1, "contiguous"))); return 1; }
static int m_clone(lua_State *L) { sgL_push(L, sg_clone(sgL_check(L, 1, "clone"))); return 1; }
static int m_detach(lua_State *L) { sgL_push(L, sg_detach(sgL_check(L, 1, "detach"))); return 1; }

/* t:to("f64") / t:to("cpu") / t:to{dtype=, device=} / t:type("f64") */
static int m_to(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "to");
  sg_dtype dt = t->dtype;
  sg_device dev = t->storage->device;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    if (strcmp(s, "cpu") == 0) dev = SG_CPU;
    else if (strncmp(s, "cuda", 4) == 0) dev = SG_CUDA;
    else dt = sgL_dtype(L, 2, "to");
  } else if (lua_istable(L, 2)) {
    sgL_opts o = sgL_options(L, 2, "to", t->dtype);
    dt = o.dtype;
    if (has_device_opt(L, 2)) dev = o.device; /* t:to{dtype = "f64"} stays where it is */
  } else return luaL_error(L, "to: expected a dtype or device name, got %s", luaL_typename(L, 2));
  /* cast where it is cheaper: before leaving the cpu when it shrinks, else after arriving */
  bool cast_first = sg_dtype_size(dt) < sg_dtype_size(t->dtype);
  sg_tensor *mid = cast_first ? sg_to_dtype(t, dt) : sg_to_device(t, dev);
  if (!mid) return sgL_error(L);
  sg_tensor *out = cast_first ? sg_to_device(mid, dev) : sg_to_dtype(mid, dt);
  sg_tensor_decref(mid);
  sgL_push(L, out);
  return 1;
}
static int m_cuda(lua_State *L) { sgL_push(L, sg_to_device(sgL_check(L, 1, "cuda"), SG_CUDA)); return 1; }
static int m_cpu(lua_State *L) { sgL_push(L, sg_to_device(sgL_check(L, 1, "cpu"), SG_CPU)); return 1; }
static int m_float(lua_State *L) { sgL_push(L, sg_to_dtype(sgL_check(L, 1, "float"), SG_F32)); return 1; }
static int m_double(lua_State *L) { sgL_push(L, sg_to_dtype(sgL_check(L, 1, "double"), SG_F64)); return 1; }
static int m_long(lua_State *L) { sgL_push(L, sg_to_dtype(sgL_check(L, 1, "long"), SG_I64)); return 1; }

static int m_copy_(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "copy_"), *s = sgL_check(L, 2, "copy_");
  if (sg_grad_enabled() && ((t->requires_grad && !t->grad_fn) || s->requires_grad))
    return luaL_error(L, "copy_: gradients do not flow through copy_; use it inside sg.no_grad or use clone");
  if (sg_copy_(t, s)) return sgL_error(L);
  lua_settop(L, 1);
  return 1;
}
static int m_fill_(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "fill_");
  double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
  if (sg_grad_enabled() && t->requires_grad)
    return luaL_error(L, "fill_: a tensor that requires grad cannot be filled in place (use sg.no_grad)");
  sg_fill_(t, v);
  lua_settop(L, 1);
  return 1;
}
static int m_zero_(lua_State *L) { lua_settop(L, 1); lua_pushinteger(L, 0); return m_fill_(L); }

/* ---------------------------------------------------------------- indexing */
/* t[i] (select, 1-based), t[{a,b}] (inclusive range on dim 1),
 * t[{{a,b}, k, {}}] (per-dim: range, index or everything) */
/* A 1-based (or negative) position inside an index table; releases `held`
 * before raising so that nothing leaks. */
static int64_t index_pos(lua_State *L, int idx, sg_tensor *held) {
  int isint = 0;
  int64_t i = (int64_t)lua_tointegerx(L, idx, &isint);
  if (!isint || i == 0) {
    sg_tensor_decref(held);
    if (!isint) luaL_error(L, "index: positions must be integers (got %s)", luaL_typename(L, idx));
    luaL_error(L, "index: 0 is out of range (indices count from 1)");
  }
  return i;
}

static sg_tensor *index_view(lua_State *L, sg_tensor *t, int key) {
  if (lua_type(L, key) == LUA_TNUMBER) {
    int64_t i = sgL_int(L, key, "index", "index");
    if (i == 0) luaL_error(L, "index: 0 is out of range (indices count from 1)");
    return sg_select(t, 0, i > 0 ? i - 1 : i);
  }
  if (!lua_istable(L, key)) luaL_error(L, "index: expected a number or a table, got %s", luaL_typename(L, key));
  lua_Integer n = luaL_len(L, key);
  lua_geti(L, key, 1); lua_geti(L, key, 2);
  bool single_range = n == 2 && lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TNUMBER;
  lua_pop(L, 2);
  if (single_range) { /* {a, b}: a range on the first dim */
    lua_geti(L, key, 1); lua_geti(L, key, 2);
    int64_t a = index_pos(L, -2, NULL), b = index_pos(L, -1, NULL);
    lua_pop(L, 2);
    if (t->ndim == 0) luaL_error(L, "index: cannot index a 0-dim tensor");
    return sg_slice(t, 0, lua_pos(a, t->size[0]), lua_pos(b, t->size[0]) + 1, 1);
  }
  sg_tensor *cur = sg_tensor_incref(t);
  if (n > t->ndim) { sg_tensor_decref(cur); luaL_error(L, "index: %d indices for a tensor of %d dims", (int)n, t->ndim); }
  int d = 0;
  for (lua_Integer k = 1; k <= n && cur; k++) {
    lua_geti(L, key, k);
    sg_tensor *next = NULL;
    if (lua_type(L, -1) == LUA_TNUMBER) {
      int64_t i = index_pos(L, -1, cur);
      next = sg_select(cur, d, i > 0 ? i - 1 : i);
    } else if (lua_istable(L, -1)) {
      lua_Integer m = luaL_len(L, -1);
      if (m == 0) { next = sg_tensor_incref(cur); d++; }
      else {
        lua_geti(L, -1, 1); lua_geti(L, -2, m >= 2 ? 2 : 1);
        int64_t a = index_pos(L, -2, cur), b = index_pos(L, -1, cur);
        lua_pop(L, 2);
        next = sg_slice(cur, d, lua_pos(a, cur->size[d]), lua_pos(b, cur->size[d]) + 1, 1);
        d++;
      }
    } else { sg_tensor_decref(cur); luaL_error(L, "index: entry %d must be a number or a table", (int)k); }
    lua_pop(L, 1);
    sg_tensor_decref(cur);
    cur = next;
  }
  return cur;
}

static int t_index(lua_State *L) {
  sgL_box *b = luaL_checkudata(L, 1, SG_TENSOR_MT);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    /* methods first (the common case), then fields */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (!b->t) return luaL_error(L, "tensor: field '%s' of a closed tensor", k);
    sg_tensor *t = b->t;
    if (strcmp(k, "shape") == 0) { push_shape(L, t); return 1; }
    if (strcmp(k, "dtype") == 0) { lua_pushstring(L, sg_dtype_name(t->dtype)); return 1; }
    if (strcmp(k, "device") == 0) { lua_pushstring(L, sg_device_name(t->storage->device)); return 1; }
    if (strcmp(k, "is_cuda") == 0) { lua_pushboolean(L, t->storage->device == SG_CUDA); return 1; }
    if (strcmp(k, "is_pinned") == 0) { lua_pushboolean(L, t->storage->pinned); return 1; }
    if (strcmp(k, "ndim") == 0) { lua_pushinteger(L, t->ndim); return 1; }
    if (strcmp(k, "grad") == 0) {
      if (t->grad) sgL_push(L, sg_tensor_incref(t->grad)); else lua_pushnil(L);
      return 1;
    }
    if (strcmp(k, "is_leaf") == 0) { lua_pushboolean(L, t->grad_fn == NULL); return 1; }
    if (strcmp(k, "grad_fn") == 0) {
      if (t->grad_fn) lua_pushstring(L, t->grad_fn->op); else lua_pushnil(L);
      return 1;
    }
    if (strcmp(k, "version") == 0) { lua_pushinteger(L, (lua_Integer)atomic_load(&t->storage->version)); return 1; }
    return 0; /* nil, like any missing field */
  }
  sg_tensor *t = sgL_check(L, 1, "index");
  sgL_push(L, index_view(L, t, 2));
  return 1;
}

static int t_newindex(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "index assignment");
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "grad") == 0) {
      if (lua_isnil(L, 3)) { sg_tensor_decref(t->grad); t->grad = NULL; return 0; }
      sg_tensor *g = sgL_check(L, 3, "grad assignment");
      if (!sg_same_shape(g, t))
        return luaL_error(L, "grad assignment: gradient of shape %s for a tensor of shape %s", SG_SHAPE_STR(g), SG_SHAPE_STR(t));
      sg_tensor_assign(&t->grad, g);
      return 0;
    }
    return luaL_error(L, "tensor: cannot set field '%s'", k);
  }
  sg_tensor *v = index_view(L, t, 2);
  if (!v) return sgL_error(L);
  sgL_push(L, v);
  if (sg_grad_enabled() && (t->requires_grad || (sgL_test(L, 3) && sgL_test(L, 3)->requires_grad))) {
    return luaL_error(L, "index assignment: writing into a tensor that takes part in autograd is not tracked; "
                         "do it inside sg.no_grad");
  }
  sg_tensor *src = sgL_test(L, 3);
  if (src) { if (sg_copy_(v, src)) return sgL_error(L); }
  else if (lua_type(L, 3) == LUA_TNUMBER || lua_isboolean(L, 3))
    sg_fill_(v, lua_isboolean(L, 3) ? lua_toboolean(L, 3) : lua_tonumber(L, 3));
  else return luaL_error(L, "index assignment: value must be a number or a tensor, got %s", luaL_typename(L, 3));
  return 0;
}

static int t_len(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "#");
  lua_pushinteger(L, t->ndim ? t->size[0] : 0);
  return 1;
}

static const luaL_Reg MODULE_FNS[] = {
  {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full}, {"empty", l_empty},
  {"zeros_like", l_zeros_like}, {"ones_like", l_ones_like}, {"full_like", l_full_like},
  {"arange", l_arange}, {"linspace", l_linspace}, {"eye", l_eye},
  {"rand", l_rand}, {"randn", l_randn}, {"randint", l_randint}, {NULL, NULL}};

static const luaL_Reg METHODS[] = {
  {"size", m_size}, {"stride", m_stride}, {"numel", m_numel}, {"dim", m_dim}, {"item", m_item},
  {"totable", m_totable}, {"is_contiguous", m_is_contiguous}, {"is_view_of", m_is_view_of},
  {"view", m_view_}, {"reshape", m_reshape}, {"permute", m_permute}, {"transpose", m_transpose}, {"t", m_transpose},
  {"narrow", m_narrow}, {"slice", m_slice}, {"select", m_select}, {"expand", m_expand}, {"expand_as", m_expand_as},
  {"squeeze", m_squeeze}, {"unsqueeze", m_unsqueeze}, {"flatten", m_flatten}, {"contiguous", m_contiguous},
  {"clone", m_clone}, {"detach", m_detach}, {"to", m_to}, {"type", m_to}, {"cuda", m_cuda}, {"cpu", m_cpu}, {"float", m_float}, {"double", m_double},
  {"long", m_long}, {"copy_", m_copy_}, {"fill_", m_fill_}, {"zero_", m_zero_}, {NULL, NULL}};

void sgL_open_tensor(lua_State *L, int mod, int methods) {
  sgL_setfuncs(L, MODULE_FNS, mod, 0);
  sgL_setfuncs(L, METHODS, 0, methods);
  luaL_newmetatable(L, SG_TENSOR_MT);
  int mt = lua_gettop(L);
  lua_pushvalue(L, methods);
  lua_pushcclosure(L, t_index, 1);
  lua_setfield(L, mt, "__index");
  lua_pushcfunction(L, t_newindex); lua_setfield(L, mt, "__newindex");
  lua_pushcfunction(L, t_gc); lua_setfield(L, mt, "__gc");
  lua_pushcfunction(L, t_gc); lua_setfield(L, mt, "__close");
  lua_pushcfunction(L, t_tostring); lua_setfield(L, mt, "__tostring");
  lua_pushcfunction(L, t_len); lua_setfield(L, mt, "__len");
  lua_pushliteral(L, "Tensor"); lua_setfield(L, mt, "__name");
  lua_pop(L, 1);
}
