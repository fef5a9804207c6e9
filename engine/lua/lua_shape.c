/* Joining, splitting, indexing and rearranging ops from Lua.
 *
 *   sg.cat({a, b, ...} [, dim = 1])      sg.stack({a, b, ...} [, dim = 1])
 *   t:split(size | {sizes} [, dim = 1]) -> table of views
 *   t:chunk(n [, dim = 1])              -> table of views
 *   t:gather(dim, index)  t:scatter(dim, index, src | number)  t:scatter_add(dim, index, src)
 *   t:index_select(dim, index)          sg.one_hot(labels [, classes])
 *   t:flip(dims)  t:roll(shifts [, dims])  t:pad({before, after, ...} [, mode [, value]])
 *   t["repeat"](t, reps) or t:repeat_tensor(reps)   t:tile(reps)
 * Dims count from 1 (negative from the end); index tensors count from 0. */
#include "binding.h"
#include <string.h>

/* Tensors of the table at idx, borrowed (the table keeps them alive). The
 * pointer array lives in a userdata left on the stack. */
static sg_tensor **tensor_list(lua_State *L, int idx, const char *op, int *n) {
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: argument #%d must be a table of tensors (got %s)", op, idx, luaL_typename(L, idx));
  lua_Integer len = luaL_len(L, idx);
  if (len < 1) luaL_error(L, "%s: expected a non-empty table of tensors", op);
  if (len > 1 << 20) luaL_error(L, "%s: too many tensors (%I)", op, (lua_Integer)len);
  sg_tensor **ts = lua_newuserdatauv(L, sizeof(sg_tensor *) * (size_t)len, 0);
  for (lua_Integer k = 1; k <= len; k++) {
    lua_geti(L, idx, k);
    ts[k - 1] = sgL_test(L, -1);
    if (!ts[k - 1]) {
      if (luaL_testudata(L, -1, SG_TENSOR_MT)) luaL_error(L, "%s: element %d of the table is a closed tensor", op, (int)k);
      luaL_error(L, "%s: element %d of the table must be a tensor (got %s)", op, (int)k, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  *n = (int)len;
  return ts;
}

static int join(lua_State *L, bool stack) {
  const char *op = stack ? "stack" : "cat";
  lua_settop(L, 2); /* tensor_list pushes above the arguments */
  int n;
  sg_tensor **ts = tensor_list(L, 1, op, &n);
  int nd = ts[0]->ndim + (stack ? 1 : 0);
  int dim = lua_isnoneornil(L, 2) ? 0 : sgL_dim(L, 2, op, nd);
  sgL_push(L, stack ? sg_stack(n, ts, dim) : sg_cat(n, ts, dim));
  return 1;
}
static int l_cat(lua_State *L) { return join(L, false); }
static int l_stack(lua_State *L) { return join(L, true); }

/* ---------------------------------------------------------------- split, chunk */
static int push_pieces(lua_State *L, sg_tensor *t, int dim, int64_t count, const int64_t *lens, int64_t each) {
  lua_createtable(L, (int)count, 0);
  int tbl = lua_gettop(L);
  int64_t start = 0;
  for (int64_t k = 0; k < count; k++) {
    int64_t len = lens ? lens[k] : (t->size[dim] - start < each ? t->size[dim] - start : each);
    sgL_push(L, sg_narrow(t, dim, start, len));
    lua_rawseti(L, tbl, k + 1);
    start += len;
  }
  return 1;
}

static int m_split(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "split");
  if (t->ndim == 0) return luaL_error(L, "split: cannot split a 0-dim tensor");
  int dim = lua_isnoneornil(L, 3) ? 0 : sgL_dim(L, 3, "split", t->ndim);
  int64_t n = t->size[dim];
  if (lua_istable(L, 2)) {
    lua_Integer cnt = luaL_len(L, 2);
    if (cnt < 1 || cnt > 1 << 24) return luaL_error(L, "split: expected a non-empty table of sizes");
    int64_t *lens = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)cnt, 0);
    int64_t sum = 0;
    for (lua_Integer k = 1; k <= cnt; k++) {
      lua_geti(L, 2, k);
      lens[k - 1] = sgL_int(L, -1, "split", "size");
      lua_pop(L, 1);
      if (lens[k - 1] < 0) return luaL_error(L, "split: negative size %I", (lua_Integer)lens[k - 1]);
      sum += lens[k - 1];
      if (sum > n) break;
    }
    if (sum != n)
      return luaL_error(L, "split: sizes must add up to %I (the size of dim %d of %s)", (lua_Integer)n, dim + 1,
                        SG_SHAPE_STR(t));
    return push_pieces(L, t, dim, cnt, lens, 0);
  }
  int64_t each = sgL_int(L, 2, "split", "split size");
  if (each <= 0 && !(each == 0 && n == 0))
    return luaL_error(L, "split: split size must be positive, got %I", (lua_Integer)each);
  int64_t count = each ? (n + each - 1) / each : 1;
  if (n == 0) count = 1;
  return push_pieces(L, t, dim, count, NULL, each);
}

static int m_chunk(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "chunk");
  if (t->ndim == 0) return luaL_error(L, "chunk: cannot chunk a 0-dim tensor");
  int64_t chunks = sgL_int(L, 2, "chunk", "number of chunks");
  if (chunks <= 0) return luaL_error(L, "chunk: number of chunks must be positive, got %I", (lua_Integer)chunks);
  int dim = lua_isnoneornil(L, 3) ? 0 : sgL_dim(L, 3, "chunk", t->ndim);
  int64_t n = t->size[dim];
  int64_t each = (n + chunks - 1) / chunks; /* PyTorch: may give fewer than `chunks` pieces */
  if (each == 0) return push_pieces(L, t, dim, 1, NULL, 0); /* an empty dim: one empty piece */
  return push_pieces(L, t, dim, (n + each - 1) / each, NULL, each);
}

/* ---------------------------------------------------------------- gather, scatter */
static int m_gather(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "gather");
  int dim = sgL_dim(L, 2, "gather", t->ndim);
  sgL_push(L, sg_gather(t, dim, sgL_check(L, 3, "gather")));
  return 1;
}

static int scatter(lua_State *L, bool add) {
  const char *op = add ? "scatter_add" : "scatter";
  sg_tensor *t = sgL_check(L, 1, op);
  int dim = sgL_dim(L, 2, op, t->ndim);
  sg_tensor *index = sgL_check(L, 3, op);
  sg_tensor *src = sgL_test(L, 4);
  if (!src) {
    if (lua_type(L, 4) != LUA_TNUMBER && !lua_isboolean(L, 4))
      return luaL_error(L, "%s: argument #4 must be a tensor or a number (got %s)", op, luaL_typename(L, 4));
    double v = lua_isboolean(L, 4) ? lua_toboolean(L, 4) : lua_tonumber(L, 4);
    if (!sg_dtype_is_float(t->dtype) && lua_type(L, 4) == LUA_TNUMBER && !lua_isinteger(L, 4))
      return luaL_error(L, "%s: cannot write the number %s into a %s tensor", op, lua_tostring(L, 4), sg_dtype_name(t->dtype));
    src = sgL_push(L, sg_full(index->ndim, index->size, v, t->dtype, t->storage->device));
  }
  sgL_push(L, (add ? sg_scatter_add : sg_scatter)(t, dim, index, src));
  return 1;
}
static int m_scatter(lua_State *L) { return scatter(L, false); }
static int m_scatter_add(lua_State *L) { return scatter(L, true); }

static int m_index_select(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "index_select");
  if (t->ndim == 0) return luaL_error(L, "index_select: cannot index a 0-dim tensor");
  int dim = sgL_dim(L, 2, "index_select", t->ndim);
  sgL_push(L, sg_index_select(t, dim, sgL_check(L, 3, "index_select")));
  return 1;
}

static int l_one_hot(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "one_hot");
  int64_t classes = lua_isnoneornil(L, 2) ? -1 : sgL_int(L, 2, "one_hot", "number of classes");
  sgL_push(L, sg_one_hot(t, classes));
  return 1;
}

/* ---------------------------------------------------------------- flip, roll */
/* dims from a number, a table, or numbers from idx on; returns the count */
static int dim_list(lua_State *L, int idx, const char *op, int ndim, int *dims) {
  int n = 0;
  if (lua_istable(L, idx)) {
    lua_Integer len = luaL_len(L, idx);
    if (len > SG_MAX_DIMS) luaL_error(L, "%s: %d dims given (at most %d)", op, (int)len, SG_MAX_DIMS);
    for (lua_Integer k = 1; k <= len; k++) {
      lua_geti(L, idx, k);
      dims[n++] = sgL_dim(L, lua_gettop(L), op, ndim);
      lua_pop(L, 1);
    }
    return n;
  }
  for (int k = idx; !lua_isnone(L, k); k++) {
    if (n >= SG_MAX_DIMS) luaL_error(L, "%s: more than %d dims given", op, SG_MAX_DIMS);
    dims[n++] = sgL_dim(L, k, op, ndim);
  }
  return n;
}

static int m_flip(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "flip");
  int dims[SG_MAX_DIMS];
  int n = dim_list(L, 2, "flip", t->ndim, dims);
  if (n == 0) return luaL_error(L, "flip: give the dims to flip, e.g. t:flip(2) or t:flip{1, 2}");
  sgL_push(L, sg_flip(t, n, dims));
  return 1;
}

static int m_roll(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "roll");
  int64_t shifts[SG_MAX_DIMS];
  int ns = 0;
  if (lua_istable(L, 2)) {
    lua_Integer len = luaL_len(L, 2);
    if (len < 1 || len > SG_MAX_DIMS) return luaL_error(L, "roll: give between 1 and %d shifts", SG_MAX_DIMS);
    for (lua_Integer k = 1; k <= len; k++) {
      lua_geti(L, 2, k);
      shifts[ns++] = sgL_int(L, -1, "roll", "shift");
      lua_pop(L, 1);
    }
  } else shifts[ns++] = sgL_int(L, 2, "roll", "shift");
  int dims[SG_MAX_DIMS], nd = 0;
  if (!lua_isnoneornil(L, 3)) nd = dim_list(L, 3, "roll", t->ndim, dims);
  if (nd == 0 && ns != 1) return luaL_error(L, "roll: %d shifts given without dims (give one shift to roll the flattened tensor)", ns);
  if (nd != 0 && nd != ns) return luaL_error(L, "roll: %d shifts for %d dims (give one shift per dim)", ns, nd);
  sgL_push(L, sg_roll(t, nd, shifts, dims));
  return 1;
}

/* ---------------------------------------------------------------- pad */
static int l_pad(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "pad");
  if (!lua_istable(L, 2))
    return luaL_error(L, "pad: argument #2 must be a table of paddings {before, after, ...} (got %s)", luaL_typename(L, 2));
  lua_Integer len = luaL_len(L, 2);
  if (len % 2) return luaL_error(L, "pad: paddings come in (before, after) pairs, got %d numbers", (int)len);
  if (len / 2 > t->ndim)
    return luaL_error(L, "pad: %d pairs of paddings for a tensor of shape %s (at most one pair per dim, last dim first)",
                      (int)(len / 2), SG_SHAPE_STR(t));
  int64_t pads[2 * SG_MAX_DIMS];
  for (lua_Integer k = 1; k <= len; k++) {
    lua_geti(L, 2, k);
    pads[k - 1] = sgL_int(L, -1, "pad", "padding");
    lua_pop(L, 1);
  }
  sg_pad_mode mode = SG_PAD_CONSTANT;
  if (!lua_isnoneornil(L, 3)) {
    const char *m = lua_tostring(L, 3);
    if (!m || lua_type(L, 3) != LUA_TSTRING) return luaL_error(L, "pad: mode must be a string (got %s)", luaL_typename(L, 3));
    if (strcmp(m, "constant") == 0) mode = SG_PAD_CONSTANT;
    else if (strcmp(m, "reflect") == 0) mode = SG_PAD_REFLECT;
    else if (strcmp(m, "replicate") == 0) mode = SG_PAD_REPLICATE;
    else return luaL_error(L, "pad: unknown mode '%s' (use 'constant', 'reflect' or 'replicate')", m);
  }
  double value = lua_isnoneornil(L, 4) ? 0 : luaL_checknumber(L, 4);
  if (mode != SG_PAD_CONSTANT && value != 0) return luaL_error(L, "pad: a fill value only applies to mode 'constant'");
  sgL_push(L, sg_pad(t, (int)(len / 2), pads, mode, value));
  return 1;
}

/* ---------------------------------------------------------------- repeat, tile */
static int rep_list(lua_State *L, const char *op, int64_t *reps) {
  int n = 0;
  if (lua_istable(L, 2)) {
    lua_Integer len = luaL_len(L, 2);
    if (len > SG_MAX_DIMS) luaL_error(L, "%s: %d repeat counts (at most %d)", op, (int)len, SG_MAX_DIMS);
    for (lua_Integer k = 1; k <= len; k++) {
      lua_geti(L, 2, k);
      reps[n++] = sgL_int(L, -1, op, "repeat count");
      lua_pop(L, 1);
    }
    return n;
  }
  for (int k = 2; !lua_isnone(L, k); k++) {
    if (n >= SG_MAX_DIMS) luaL_error(L, "%s: more than %d repeat counts", op, SG_MAX_DIMS);
    reps[n++] = sgL_int(L, k, op, "repeat count");
  }
  return n;
}

/* PyTorch's repeat: one count per dim at least (extra counts add leading dims) */
static int m_repeat(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "repeat");
  int64_t reps[SG_MAX_DIMS];
  int n = rep_list(L, "repeat", reps);
  if (n < t->ndim)
    return luaL_error(L, "repeat: %d repeat counts for a tensor of %d dims (give one per dim; tile pads with 1s)", n,
                      t->ndim);
  sgL_push(L, sg_repeat(t, n, reps));
  return 1;
}

/* numpy/PyTorch tile: fewer counts than dims are padded with leading 1s */
static int m_tile(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "tile");
  int64_t reps[SG_MAX_DIMS], full[SG_MAX_DIMS];
  int n = rep_list(L, "tile", reps);
  int nd = n > t->ndim ? n : t->ndim;
  for (int d = 0; d < nd; d++) full[d] = d < nd - n ? 1 : reps[d - (nd - n)];
  sgL_push(L, sg_repeat(t, nd, full));
  return 1;
}

static const luaL_Reg JOIN[] = {{"cat", l_cat}, {"stack", l_stack}, {NULL, NULL}};

static const luaL_Reg FNS[] = {
  {"split", m_split}, {"chunk", m_chunk}, {"gather", m_gather}, {"scatter", m_scatter},
  {"scatter_add", m_scatter_add}, {"index_select", m_index_select}, {"one_hot", l_one_hot},
  {"flip", m_flip}, {"roll", m_roll}, {"pad", l_pad}, {"repeat", m_repeat}, {"repeat_tensor", m_repeat},
  {"tile", m_tile}, {NULL, NULL}};

void sgL_open_shape(lua_State *L, int mod, int methods) {
  sgL_setfuncs(L, JOIN, mod, 0);
  sgL_setfuncs(L, FNS, mod, methods);
}
