/* sg.nn_functional: convolution, pooling, batch, group and layer norm, upsampling, and the prepared
 * options objects of those that take options (<op>_options{...}). */
#include "binding.h"
#include "../ops/nn_ops.h"
#include "../backend_cpu/dnnl_conv.h"
#include "../backend_cpu/dnnl_pool.h"
#include "../backend_cpu/pool.h"
#include "../backend_cpu/dnnl_eltwise.h"
#include "../backend.h"
#include "../core/config.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- options ----
 * Each op family that takes an options table has one parse function: it checks the names (an unknown one is
 * an error with a "did you mean" suggestion) and the types, and fills a C struct. The ops take the table
 * (parsed on every call, for ad-hoc use) or a prepared object from <op>_options{...}, parsed once; the layers
 * build theirs in init, so a forward parses nothing. */

/* tables parsed since start (sg.F._option_parses); atomic because loader threads may run ops too */
static _Atomic long long option_parses;
static void count_parse(void) { atomic_fetch_add_explicit(&option_parses, 1, memory_order_relaxed); }

/* Levenshtein distance, ASCII case folded, of names up to 63 bytes (longer ones are no typo of a known name) */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return SIZE_MAX;
  size_t row[64];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
      size_t best = diag + cost;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* the known name a key is a typo of, as sg.util.check_options judges it: at most a third of its letters
 * wrong (1 to 3), never all of them; NULL when none is that close */
static const char *suggest(const char *key, const char *const *keys) {
  const char *best = NULL;
  size_t bd = SIZE_MAX, len = strlen(key);
  for (int k = 0; keys[k]; k++) {
    size_t d = edit_distance(key, keys[k]);
    if (d < bd) { best = keys[k]; bd = d; }
  }
  size_t limit = len / 3 < 1 ? 1 : len / 3 > 3 ? 3 : len / 3;
  return best && bd <= limit && bd < len ? best : NULL;
}

/* Every key of the table at idx must be one of keys (sorted, NULL-terminated); otherwise
 * "where: unknown option 'x' (did you mean 'y'?; known: a, b)", for the first bad key in sorted order so
 * the message does not depend on the table's iteration order (the format of sg.util.check_options). */
static void check_keys(lua_State *L, int idx, const char *where, const char *const *keys) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L); /* the first bad key as shown ('name' or [1]), and the key itself */
  lua_pushnil(L);
  int shown = lua_gettop(L) - 1, key = shown + 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    bool is_string = lua_type(L, -1) == LUA_TSTRING, known = false;
    if (is_string)
      for (int k = 0; keys[k] && !known; k++) known = strcmp(keys[k], lua_tostring(L, -1)) == 0;
    if (known) continue;
    if (is_string) {
      lua_pushfstring(L, "'%s'", lua_tostring(L, -1));
    } else {
      lua_pushfstring(L, "[%s]", luaL_tolstring(L, -1, NULL));
      lua_remove(L, -2);
    }
    if (lua_isnil(L, shown) || lua_compare(L, -1, shown, LUA_OPLT)) {
      lua_replace(L, shown);
      lua_pushvalue(L, -1);
      lua_replace(L, key);
    } else {
      lua_pop(L, 1);
    }
  }
  if (lua_isnil(L, shown)) {
    lua_pop(L, 2);
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "%s: unknown option %s (", where, lua_tostring(L, shown));
  luaL_addvalue(&b);
  const char *s = lua_type(L, key) == LUA_TSTRING ? suggest(lua_tostring(L, key), keys) : NULL;
  if (s) {
    lua_pushfstring(L, "did you mean '%s'?; ", s);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, "known: ");
  for (int k = 0; keys[k]; k++) {
    if (k) luaL_addstring(&b, ", ");
    luaL_addstring(&b, keys[k]);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  lua_error(L);
}

/* the type name for messages: a userdata's __name (e.g. semseg.max_pool2d_options) or the basic type */
static const char *type_name(lua_State *L, int idx) {
  int t = luaL_getmetafield(L, idx, "__name"); /* pushes nothing when there is none */
  if (t == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1); /* the metatable keeps it alive */
    lua_pop(L, 1);
    return s;
  }
  if (t != LUA_TNIL) lua_pop(L, 1);
  return luaL_typename(L, idx);
}

/* opts[field]: nil -> def, a number -> both, {h, w} -> the pair */
static void opt_pair(lua_State *L, int opts, const char *field, const char *where, int64_t def, int64_t *out) {
  out[0] = out[1] = def;
  int t = lua_getfield(L, opts, field);
  if (t == LUA_TNUMBER) {
    out[0] = out[1] = sgL_int(L, -1, where, field);
  } else if (t == LUA_TTABLE) {
    if (luaL_len(L, -1) != 2) luaL_error(L, "%s: %s must be a number or a pair {h, w}", where, field);
    for (int k = 0; k < 2; k++) {
      lua_geti(L, -1, k + 1);
      out[k] = sgL_int(L, -1, where, field);
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    luaL_error(L, "%s: %s must be a number or a pair {h, w} (got %s)", where, field, type_name(L, -1));
  }
  lua_pop(L, 1);
}

static bool opt_has(lua_State *L, int opts, const char *field) {
  bool has = lua_getfield(L, opts, field) != LUA_TNIL;
  lua_pop(L, 1);
  return has;
}

/* a flag is true, false or absent: a number or string there is a mistake, not "true" */
static bool opt_bool(lua_State *L, int opts, const char *field, const char *where, bool def) {
  int t = lua_getfield(L, opts, field);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "%s: %s must be true or false (got %s)", where, field, type_name(L, -1));
  bool v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static double opt_number(lua_State *L, int opts, const char *field, const char *where, double def) {
  double v = def;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: %s must be a number (got %s)", where, field, type_name(L, -1));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static sg_tensor *opt_tensor(lua_State *L, int idx, const char *op) {
  return lua_isnoneornil(L, idx) ? NULL : sgL_check(L, idx, op);
}

/* -- the parsed forms -- */
typedef struct {
  sg_conv_opts o;
  bool has_size; /* conv_transpose2d {size = {h, w}}: output_padding follows from the input at each call */
  int64_t size[2];
} conv_spec;
typedef struct {
  int64_t kernel[2], stride[2], padding[2];
  bool indices, count_include_pad; /* max_pool2d's and avg_pool2d's flags */
} pool_spec;
typedef struct {
  bool has_size; /* else the size follows from the input and kernel, stride, padding */
  int64_t size[2], kernel[2], stride[2], padding[2];
} unpool_spec;
typedef struct {
  sg_upsample_mode mode;
  bool align_corners, has_size;
  int64_t size[2];
  double scale[2];
} upsample_spec;
typedef struct {
  bool training, relu;
  double momentum, eps;
} bn_spec;

typedef enum { K_CONV, K_CONV_T, K_MAX_POOL, K_AVG_POOL, K_MAX_UNPOOL, K_UPSAMPLE, K_BATCH_NORM, K_COUNT } opt_kind;

/* a prepared options object: the kind it was made for and its parsed struct */
typedef struct {
  opt_kind kind;
  union { conv_spec conv; pool_spec pool; unpool_spec unpool; upsample_spec up; bn_spec bn; } u;
} prepared;

static void conv_defaults(conv_spec *c) {
  c->o = sg_conv_defaults();
  c->has_size = false;
  c->size[0] = c->size[1] = 0;
}

static const char *const CONV_KEYS[] = {"dilation", "groups", "padding", "reference", "stride", NULL};
static const char *const CONV_T_KEYS[] = {"dilation", "groups", "output_padding", "padding", "reference", "size",
                                          "stride", NULL};

/* {stride=, padding= (number, {h,w}, "same" or "valid"), dilation=, groups=, reference=} and, transposed,
 * output_padding= or size= */
static void parse_conv_any(lua_State *L, int idx, const char *where, bool transposed, conv_spec *c) {
  count_parse();
  check_keys(L, idx, where, transposed ? CONV_T_KEYS : CONV_KEYS);
  conv_defaults(c);
  opt_pair(L, idx, "stride", where, 1, c->o.stride);
  opt_pair(L, idx, "dilation", where, 1, c->o.dilation);
  if (lua_getfield(L, idx, "padding") == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    if (strcmp(s, "same") == 0) c->o.same = true;
    else if (strcmp(s, "valid") != 0)
      luaL_error(L, "%s: padding must be a number, {h, w}, 'same' or 'valid' (got '%s')", where, s);
  } else {
    opt_pair(L, idx, "padding", where, 0, c->o.padding);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "groups") != LUA_TNIL) c->o.groups = sgL_int(L, -1, where, "groups");
  lua_pop(L, 1);
  c->o.reference = opt_bool(L, idx, "reference", where, false);
  if (!transposed) return;
  opt_pair(L, idx, "output_padding", where, 0, c->o.output_padding);
  if (opt_has(L, idx, "size")) {
    if (opt_has(L, idx, "output_padding")) luaL_error(L, "%s: give either size or output_padding, not both", where);
    opt_pair(L, idx, "size", where, 0, c->size);
    c->has_size = true;
  }
}
static void parse_conv(lua_State *L, int idx, const char *where, void *out) {
  parse_conv_any(L, idx, where, false, out);
}
static void parse_conv_t(lua_State *L, int idx, const char *where, void *out) {
  parse_conv_any(L, idx, where, true, out);
}

static const char *const MAX_POOL_KEYS[] = {"indices", "kernel", "padding", "stride", NULL};
static const char *const AVG_POOL_KEYS[] = {"count_include_pad", "kernel", "padding", "stride", NULL};

/* kernel=, stride= (default the kernel), padding=; a missing kernel is an error */
static void pool_window(lua_State *L, int idx, const char *where, int64_t *k, int64_t *s, int64_t *p) {
  if (!opt_has(L, idx, "kernel")) luaL_error(L, "%s: options need kernel=", where);
  opt_pair(L, idx, "kernel", where, 1, k);
  int64_t none[2];
  opt_pair(L, idx, "stride", where, INT64_MIN, none);
  s[0] = none[0] == INT64_MIN ? k[0] : none[0];
  s[1] = none[1] == INT64_MIN ? k[1] : none[1];
  opt_pair(L, idx, "padding", where, 0, p);
}
/* max: {kernel=, stride=, padding=, indices=true} (indices = false: values only, inference skips the
 * positions); avg: {kernel=, stride=, padding=, count_include_pad=true} */
static void parse_pool_any(lua_State *L, int idx, const char *where, bool max, pool_spec *ps) {
  count_parse();
  check_keys(L, idx, where, max ? MAX_POOL_KEYS : AVG_POOL_KEYS);
  pool_window(L, idx, where, ps->kernel, ps->stride, ps->padding);
  ps->indices = max ? opt_bool(L, idx, "indices", where, true) : true;
  ps->count_include_pad = max ? true : opt_bool(L, idx, "count_include_pad", where, true);
}
static void parse_max_pool(lua_State *L, int idx, const char *where, void *out) {
  parse_pool_any(L, idx, where, true, out);
}
static void parse_avg_pool(lua_State *L, int idx, const char *where, void *out) {
  parse_pool_any(L, idx, where, false, out);
}

static const char *const UNPOOL_KEYS[] = {"kernel", "padding", "size", "stride", NULL};
/* {size = {h, w}} or {kernel=, stride=, padding=} (size = (h-1)*stride - 2*padding + kernel); size wins */
static void parse_unpool(lua_State *L, int idx, const char *where, void *out) {
  unpool_spec *u = out;
  count_parse();
  check_keys(L, idx, where, UNPOOL_KEYS);
  memset(u, 0, sizeof *u);
  u->has_size = opt_has(L, idx, "size");
  if (u->has_size) {
    opt_pair(L, idx, "size", where, 0, u->size);
  } else {
    if (!opt_has(L, idx, "kernel")) luaL_error(L, "%s: options need size={h, w} or kernel=", where);
    pool_window(L, idx, where, u->kernel, u->stride, u->padding);
  }
}

static const char *const UPSAMPLE_KEYS[] = {"align_corners", "mode", "scale", "size", NULL};
/* {scale= (number or {h,w}) | size={h,w}, mode="nearest"|"bilinear", align_corners=false} */
static void parse_upsample(lua_State *L, int idx, const char *where, void *out) {
  upsample_spec *u = out;
  count_parse();
  check_keys(L, idx, where, UPSAMPLE_KEYS);
  memset(u, 0, sizeof *u);
  u->mode = SG_UPSAMPLE_NEAREST;
  if (lua_getfield(L, idx, "mode") != LUA_TNIL) {
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (m && strcmp(m, "nearest") == 0) u->mode = SG_UPSAMPLE_NEAREST;
    else if (m && strcmp(m, "bilinear") == 0) u->mode = SG_UPSAMPLE_BILINEAR;
    else luaL_error(L, "%s: mode must be 'nearest' or 'bilinear' (got %s)", where, m ? m : type_name(L, -1));
  }
  lua_pop(L, 1);
  u->align_corners = opt_bool(L, idx, "align_corners", where, false);
  if (u->align_corners && u->mode == SG_UPSAMPLE_NEAREST)
    luaL_error(L, "%s: align_corners only applies to mode 'bilinear'", where);
  u->has_size = opt_has(L, idx, "size");
  if (u->has_size == opt_has(L, idx, "scale")) luaL_error(L, "%s: give exactly one of scale= and size=", where);
  if (u->has_size) {
    opt_pair(L, idx, "size", where, 0, u->size);
    return;
  }
  int t = lua_getfield(L, idx, "scale");
  if (t == LUA_TNUMBER) {
    u->scale[0] = u->scale[1] = lua_tonumber(L, -1);
  } else if (t == LUA_TTABLE && luaL_len(L, -1) == 2) {
    for (int k = 0; k < 2; k++) {
      if (lua_geti(L, -1, k + 1) != LUA_TNUMBER) luaL_error(L, "%s: scale must be a number or {h, w}", where);
      u->scale[k] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "%s: scale must be a number or {h, w}", where);
  }
  lua_pop(L, 1);
  for (int k = 0; k < 2; k++)
    if (!(u->scale[k] > 0) || isinf(u->scale[k])) luaL_error(L, "%s: scale must be positive (got %f)", where, u->scale[k]);
}

static const char *const BN_KEYS[] = {"eps", "momentum", "relu", "training", NULL};
/* {training=false, momentum=0.1, eps=1e-5, relu=false}; relu: relu(batch_norm(...)) as one op */
static void parse_bn(lua_State *L, int idx, const char *where, void *out) {
  bn_spec *bn = out;
  count_parse();
  check_keys(L, idx, where, BN_KEYS);
  bn->training = opt_bool(L, idx, "training", where, false);
  bn->relu = opt_bool(L, idx, "relu", where, false);
  bn->momentum = opt_number(L, idx, "momentum", where, 0.1);
  bn->eps = opt_number(L, idx, "eps", where, 1e-5);
}

/* -- __tostring: the parsed values -- */
static void show_pair(char *buf, size_t n, const char *name, const int64_t *v) {
  size_t at = strlen(buf);
  snprintf(buf + at, n - at, "%s%s = {%lld, %lld}", at ? ", " : "", name, (long long)v[0], (long long)v[1]);
}
static void show_conv(char *buf, size_t n, const void *spec) {
  const conv_spec *c = spec;
  show_pair(buf, n, "stride", c->o.stride);
  if (c->o.same) snprintf(buf + strlen(buf), n - strlen(buf), ", padding = 'same'");
  else show_pair(buf, n, "padding", c->o.padding);
  show_pair(buf, n, "dilation", c->o.dilation);
  snprintf(buf + strlen(buf), n - strlen(buf), ", groups = %lld", (long long)c->o.groups);
  if (c->has_size) show_pair(buf, n, "size", c->size);
  else if (c->o.output_padding[0] || c->o.output_padding[1]) show_pair(buf, n, "output_padding", c->o.output_padding);
  if (c->o.reference) snprintf(buf + strlen(buf), n - strlen(buf), ", reference = true");
}
static void show_pool(char *buf, size_t n, const void *spec) {
  const pool_spec *p = spec;
  show_pair(buf, n, "kernel", p->kernel);
  show_pair(buf, n, "stride", p->stride);
  show_pair(buf, n, "padding", p->padding);
}
static void show_max_pool(char *buf, size_t n, const void *spec) {
  show_pool(buf, n, spec);
  snprintf(buf + strlen(buf), n - strlen(buf), ", indices = %s", ((const pool_spec *)spec)->indices ? "true" : "false");
}
static void show_avg_pool(char *buf, size_t n, const void *spec) {
  show_pool(buf, n, spec);
  snprintf(buf + strlen(buf), n - strlen(buf), ", count_include_pad = %s",
           ((const pool_spec *)spec)->count_include_pad ? "true" : "false");
}
static void show_unpool(char *buf, size_t n, const void *spec) {
  const unpool_spec *u = spec;
  if (u->has_size) {
    show_pair(buf, n, "size", u->size);
    return;
  }
  show_pair(buf, n, "kernel", u->kernel);
  show_pair(buf, n, "stride", u->stride);
  show_pair(buf, n, "padding", u->padding);
}
static void show_upsample(char *buf, size_t n, const void *spec) {
  const upsample_spec *u = spec;
  if (u->has_size) show_pair(buf, n, "size", u->size);
  else snprintf(buf, n, "scale = {%g, %g}", u->scale[0], u->scale[1]);
  snprintf(buf + strlen(buf), n - strlen(buf), ", mode = '%s', align_corners = %s",
           u->mode == SG_UPSAMPLE_BILINEAR ? "bilinear" : "nearest", u->align_corners ? "true" : "false");
}
static void show_bn(char *buf, size_t n, const void *spec) {
  const bn_spec *bn = spec;
  snprintf(buf, n, "training = %s, momentum = %g, eps = %g, relu = %s", bn->training ? "true" : "false",
           bn->momentum, bn->eps, bn->relu ? "true" : "false");
}

/* per kind: the op, the constructor (also the metatable's name after "semseg."), the parse and show functions */
static const struct {
  const char *op, *ctor, *mt;
  void (*parse)(lua_State *L, int idx, const char *where, void *out);
  void (*show)(char *buf, size_t n, const void *spec);
} KINDS[K_COUNT] = {
  [K_CONV] = {"conv2d", "conv2d_options", "semseg.conv2d_options", parse_conv, show_conv},
  [K_CONV_T] = {"conv_transpose2d", "conv_transpose2d_options", "semseg.conv_transpose2d_options", parse_conv_t,
                show_conv},
  [K_MAX_POOL] = {"max_pool2d", "max_pool2d_options", "semseg.max_pool2d_options", parse_max_pool, show_max_pool},
  [K_AVG_POOL] = {"avg_pool2d", "avg_pool2d_options", "semseg.avg_pool2d_options", parse_avg_pool, show_avg_pool},
  [K_MAX_UNPOOL] = {"max_unpool2d", "max_unpool2d_options", "semseg.max_unpool2d_options", parse_unpool,
                    show_unpool},
  [K_UPSAMPLE] = {"upsample", "upsample_options", "semseg.upsample_options", parse_upsample, show_upsample},
  [K_BATCH_NORM] = {"batch_norm", "batch_norm_options", "semseg.batch_norm_options", parse_bn, show_bn},
};

/* <op>_options(table [, where]) -> a prepared options object; where names the caller in error messages
 * (a layer passes "nn.Conv2d"), the constructor by default */
static int l_make_options(lua_State *L) {
  opt_kind kind = (opt_kind)lua_tointeger(L, lua_upvalueindex(1));
  const char *where = luaL_optstring(L, 2, KINDS[kind].ctor);
  if (!lua_istable(L, 1))
    return luaL_error(L, "%s: expected an options table (got %s)", where, type_name(L, 1));
  prepared p;
  memset(&p, 0, sizeof p);
  p.kind = kind;
  KINDS[kind].parse(L, 1, where, &p.u); /* parsed before the userdata exists: an error leaves nothing */
  prepared *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = p;
  luaL_setmetatable(L, KINDS[kind].mt);
  return 1;
}

static int l_options_tostring(lua_State *L) {
  opt_kind kind = (opt_kind)lua_tointeger(L, lua_upvalueindex(1));
  const prepared *p = luaL_checkudata(L, 1, KINDS[kind].mt);
  char buf[320] = "";
  KINDS[kind].show(buf, sizeof buf, &p->u);
  lua_pushfstring(L, "%s{%s}", KINDS[kind].ctor, buf);
  return 1;
}

/* _option_parses() -> how many options tables the ops and constructors have parsed (tests check that a
 * layer's forward adds none) */
static int l_option_parses(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)atomic_load_explicit(&option_parses, memory_order_relaxed));
  return 1;
}

/* The options argument at idx of op `kind`: a prepared object's struct as it is, a table parsed into *tmp,
 * NULL for nil or none (the caller's defaults, or its error when the options are required); anything else,
 * another op's prepared options included, is an error. */
static const void *options_arg(lua_State *L, int idx, opt_kind kind, void *tmp) {
  int t = lua_type(L, idx);
  if (t == LUA_TUSERDATA) {
    prepared *p = luaL_testudata(L, idx, KINDS[kind].mt);
    if (p) return &p->u;
  } else if (t == LUA_TTABLE) {
    KINDS[kind].parse(L, idx, KINDS[kind].op, tmp);
    return tmp;
  } else if (t == LUA_TNIL || t == LUA_TNONE) {
    return NULL;
  }
  luaL_error(L, "%s: argument #%d must be an options table or %s{...} (got %s)", KINDS[kind].op, idx,
             KINDS[kind].ctor, type_name(L, idx));
  return NULL;
}

/* conv_transpose2d's {size = {h, w}}: the output_padding that reaches that size */
static void output_padding_for_size(lua_State *L, const char *op, sg_tensor *x, sg_tensor *w, const int64_t *want,
                                    sg_conv_opts *o) {
  if (x->ndim != 4 || w->ndim != 4) return; /* the op reports the shapes */
  for (int d = 0; d < 2; d++) {
    int64_t base = (x->size[2 + d] - 1) * o->stride[d] - 2 * o->padding[d] + o->dilation[d] * (w->size[2 + d] - 1) + 1;
    int64_t limit = o->stride[d] > o->dilation[d] ? o->stride[d] : o->dilation[d];
    if (want[d] < base || want[d] >= base + limit)
      luaL_error(L, "%s: output size %I is not reachable in dim %d (sizes %I to %I are, for input %I)", op,
                 (lua_Integer)want[d], d + 3, (lua_Integer)base, (lua_Integer)(base + limit - 1),
                 (lua_Integer)x->size[2 + d]);
    o->output_padding[d] = want[d] - base;
  }
}

/* conv2d(x, w, b, opts) and conv_transpose2d(x, w, b, opts): opts a table (see parse_conv_any), the
 * matching prepared options, or nil */
static int conv(lua_State *L, bool transposed) {
  opt_kind kind = transposed ? K_CONV_T : K_CONV;
  const char *op = KINDS[kind].op;
  sg_tensor *x = sgL_check(L, 1, op), *w = sgL_check(L, 2, op), *b = opt_tensor(L, 3, op);
  conv_spec tmp;
  const conv_spec *c = options_arg(L, 4, kind, &tmp);
  if (!c) {
    conv_defaults(&tmp);
    c = &tmp;
  }
  sg_conv_opts o = c->o;
  if (c->has_size) output_padding_for_size(L, op, x, w, c->size, &o);
  sgL_push(L, (transposed ? sg_conv_transpose2d : sg_conv2d)(x, w, b, &o));
  return 1;
}
static int l_conv2d(lua_State *L) { return conv(L, false); }
static int l_conv_transpose2d(lua_State *L) { return conv(L, true); }

/* the pooling options at 2: a kernel size n (stride n, no padding), a table or prepared options */
static const pool_spec *pool_arg(lua_State *L, opt_kind kind, pool_spec *tmp) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    tmp->kernel[0] = tmp->kernel[1] = sgL_int(L, 2, KINDS[kind].op, "kernel");
    memcpy(tmp->stride, tmp->kernel, sizeof tmp->stride);
    tmp->padding[0] = tmp->padding[1] = 0;
    tmp->indices = tmp->count_include_pad = true;
    return tmp;
  }
  const pool_spec *p = options_arg(L, 2, kind, tmp);
  if (!p)
    luaL_error(L, "%s: argument #2 must be a kernel size, an options table {kernel=, stride=, padding=} or %s{...}",
               KINDS[kind].op, KINDS[kind].ctor);
  return p;
}

static int l_max_pool2d(lua_State *L) {
  sg_tensor *x = sgL_check(L, 1, "max_pool2d");
  pool_spec tmp;
  const pool_spec *p = pool_arg(L, K_MAX_POOL, &tmp);
  sg_tensor *v = NULL, *i = NULL;
  if (sg_max_pool2d(x, p->kernel, p->stride, p->padding, &v, p->indices ? &i : NULL)) return sgL_error(L);
  sgL_push(L, v);
  if (!p->indices) return 1;
  sgL_push(L, i);
  return 2;
}

static int l_avg_pool2d(lua_State *L) {
  sg_tensor *x = sgL_check(L, 1, "avg_pool2d");
  pool_spec tmp;
  const pool_spec *p = pool_arg(L, K_AVG_POOL, &tmp);
  sgL_push(L, sg_avg_pool2d(x, p->kernel, p->stride, p->padding, p->count_include_pad));
  return 1;
}

/* max_unpool2d(x, idx, {size={h,w}} or {kernel=, stride=, padding=} or max_unpool2d_options{...}) */
static int l_max_unpool2d(lua_State *L) {
  const char *op = "max_unpool2d";
  sg_tensor *x = sgL_check(L, 1, op), *idx = sgL_check(L, 2, op);
  unpool_spec tmp;
  const unpool_spec *u = options_arg(L, 3, K_MAX_UNPOOL, &tmp);
  if (!u) luaL_error(L, "%s: argument #3 must be an options table {size={h, w}} or {kernel=, ...}", op);
  int64_t sz[2] = {u->size[0], u->size[1]};
  if (!u->has_size) {
    if (x->ndim != 4) luaL_error(L, "%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    for (int d = 0; d < 2; d++) sz[d] = (x->size[2 + d] - 1) * u->stride[d] - 2 * u->padding[d] + u->kernel[d];
  }
  sgL_push(L, sg_max_unpool2d(x, idx, sz[0], sz[1]));
  return 1;
}

/* adaptive_avg_pool2d(x, {oh, ow}) or (x, n) */
static int l_adaptive_avg_pool2d(lua_State *L) {
  const char *op = "adaptive_avg_pool2d";
  sg_tensor *x = sgL_check(L, 1, op);
  int64_t o[2];
  if (lua_type(L, 2) == LUA_TNUMBER) {
    o[0] = o[1] = sgL_int(L, 2, op, "output size");
  } else if (lua_istable(L, 2) && luaL_len(L, 2) == 2) {
    for (int k = 0; k < 2; k++) { lua_geti(L, 2, k + 1); o[k] = sgL_int(L, -1, op, "output size"); lua_pop(L, 1); }
  } else {
    return luaL_error(L, "%s: argument #2 must be an output size n or {oh, ow}", op);
  }
  sgL_push(L, sg_adaptive_avg_pool2d(x, o[0], o[1]));
  return 1;
}

/* batch_norm(x, running_mean, running_var, weight, bias, opts); any of the four may be nil; opts a table
 * {training=, momentum=, eps=, relu=false}, batch_norm_options{...} or nil */
static int l_batch_norm(lua_State *L) {
  const char *op = "batch_norm";
  sg_tensor *x = sgL_check(L, 1, op);
  sg_tensor *rm = opt_tensor(L, 2, op), *rv = opt_tensor(L, 3, op), *w = opt_tensor(L, 4, op), *b = opt_tensor(L, 5, op);
  bn_spec tmp = {.training = false, .relu = false, .momentum = 0.1, .eps = 1e-5};
  const bn_spec *bn = options_arg(L, 6, K_BATCH_NORM, &tmp);
  if (!bn) bn = &tmp;
  sgL_push(L, (bn->relu ? sg_batch_norm_relu : sg_batch_norm)(x, rm, rv, w, b, bn->training, bn->momentum, bn->eps));
  return 1;
}

/* bce_with_logits(x, target [, "mean" | "sum"]): the fused loss (target not differentiated) */
static int l_bce_with_logits(lua_State *L) {
  const char *op = "bce_with_logits";
  sg_tensor *x = sgL_check(L, 1, op), *t = sgL_check(L, 2, op);
  const char *red = luaL_optstring(L, 3, "mean");
  if (strcmp(red, "mean") != 0 && strcmp(red, "sum") != 0)
    return luaL_error(L, "%s: reduction must be 'mean' or 'sum' (got '%s')", op, red);
  sgL_push(L, sg_bce_with_logits(x, t, red[0] == 'm'));
  return 1;
}

/* eps at idx: nil (1e-5), a number, or an options table {eps=} */
static double eps_arg(lua_State *L, int idx, const char *op) {
  static const char *const KEYS[] = {"eps", NULL};
  if (lua_type(L, idx) == LUA_TNUMBER) return lua_tonumber(L, idx);
  if (lua_isnoneornil(L, idx)) return 1e-5;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: argument #%d must be eps (a number) or an options table {eps=} (got %s)", op, idx,
               type_name(L, idx));
  count_parse();
  check_keys(L, idx, op, KEYS);
  return opt_number(L, idx, "eps", op, 1e-5);
}

/* group_norm(x [N,C,...], groups, weight [C] or nil, bias [C] or nil, eps or {eps=}) */
static int l_group_norm(lua_State *L) {
  const char *op = "group_norm";
  sg_tensor *x = sgL_check(L, 1, op);
  int64_t groups = sgL_int(L, 2, op, "groups");
  sg_tensor *w = opt_tensor(L, 3, op), *b = opt_tensor(L, 4, op);
  sgL_push(L, sg_group_norm(x, groups, w, b, eps_arg(L, 5, op)));
  return 1;
}

/* layer_norm(x, normalized, weight or nil, bias or nil, eps or {eps=}); normalized is
 * the normalized shape {d1, ..., dk} (must match the last k dims of x) or the
 * count k of trailing dims */
static int l_layer_norm(lua_State *L) {
  const char *op = "layer_norm";
  sg_tensor *x = sgL_check(L, 1, op);
  int64_t k;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    k = sgL_int(L, 2, op, "number of normalized dims");
  } else if (lua_istable(L, 2)) {
    k = (int64_t)luaL_len(L, 2);
    int64_t shp[SG_MAX_DIMS];
    bool ok = k >= 1 && k <= x->ndim;
    for (int64_t d = 0; d < k && d < SG_MAX_DIMS; d++) {
      lua_geti(L, 2, d + 1);
      shp[d] = sgL_int(L, -1, op, "normalized shape");
      lua_pop(L, 1);
      if (ok && shp[d] != x->size[x->ndim - k + d]) ok = false;
    }
    if (!ok) {
      if (k < 1 || k > SG_MAX_DIMS) return luaL_error(L, "%s: normalized shape must have 1 to %d dims", op, SG_MAX_DIMS);
      char buf[96];
      return luaL_error(L, "%s: normalized shape %s does not match the last dims of input %s", op,
                        sg_shape_str((int)k, shp, buf, sizeof buf), SG_SHAPE_STR(x));
    }
  } else {
    return luaL_error(L, "%s: argument #2 must be the normalized shape {d1, ...} or a number of dims (got %s)", op,
                      luaL_typename(L, 2));
  }
  if (k < 1) return luaL_error(L, "%s: the number of normalized dims must be at least 1 (got %I)", op, (lua_Integer)k);
  if (k > SG_MAX_DIMS) k = SG_MAX_DIMS + 1; /* sg_layer_norm reports it against the input */
  sg_tensor *w = opt_tensor(L, 3, op), *b = opt_tensor(L, 4, op);
  sgL_push(L, sg_layer_norm(x, (int)k, w, b, eps_arg(L, 5, op)));
  return 1;
}

/* upsample(x, opts): opts a table {scale= (number or {h,w}) | size={h,w}, mode="nearest"|"bilinear",
 * align_corners=false} or upsample_options{...} */
static int l_upsample(lua_State *L) {
  const char *op = "upsample";
  sg_tensor *x = sgL_check(L, 1, op);
  upsample_spec tmp;
  const upsample_spec *u = options_arg(L, 2, K_UPSAMPLE, &tmp);
  if (!u) return luaL_error(L, "%s: argument #2 must be an options table {scale= | size=, mode=}", op);
  if (x->ndim != 4) return luaL_error(L, "%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
  int64_t sz[2] = {u->size[0], u->size[1]};
  if (!u->has_size)
    for (int k = 0; k < 2; k++) sz[k] = (int64_t)floor((double)x->size[2 + k] * u->scale[k]);
  sgL_push(L, sg_upsample(x, sz[0], sz[1], u->scale[0], u->scale[1], u->mode, u->align_corners));
  return 1;
}

/* _conv_path() -> "dnnl" | "blas" | "reference" | "cudnn" | "none", winograd: what ran the last
 * convolution computation (forward or backward) */
static int l_conv_path(lua_State *L) {
  lua_pushstring(L, sg_path_last(SG_PATH_CONV));
  lua_pushboolean(L, sg_conv_last_winograd());
  return 2;
}
/* _pool_path() -> "kernel" | "dnnl" | "loops" | "none": what the cpu table ran for the last max or average
 * pooling (forward or backward); _bn_path() -> "kernel" | "loops" | "cuda" | "none": what ran the last batch
 * norm computation */
static int l_pool_path(lua_State *L) {
  lua_pushstring(L, sg_path_last(SG_PATH_POOL));
  return 1;
}
static int l_bn_path(lua_State *L) {
  lua_pushstring(L, sg_path_last(SG_PATH_NORM));
  return 1;
}
/* _eltwise_path() -> "dnnl" | "loops" | "cuda" | "none": what ran the last unary
 * elementwise computation (forward or backward) */
static int l_eltwise_path(lua_State *L) {
  lua_pushstring(L, sg_path_last(SG_PATH_ELTWISE));
  return 1;
}
/* _threads([n]) -> the number of OpenMP threads the elementwise kernels (and
 * oneDNN) may use, after setting it to n when given; 1 without OpenMP */
static int l_threads(lua_State *L) {
#ifdef _OPENMP
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 4096, 1, "thread count must be in 1..4096");
    omp_set_num_threads((int)n);
  }
  lua_pushinteger(L, omp_get_max_threads());
#else
  lua_pushinteger(L, 1);
#endif
  return 1;
}
/* _deterministic([on]) -> whether convolutions give the same bits for any
 * thread count (see sg_conv_set_deterministic); on: true/false, or "env" to
 * follow SEMSEG_DETERMINISTIC again */
static int l_deterministic(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING && strcmp(lua_tostring(L, 1), "env") == 0) sg_conv_set_deterministic(-1);
  else if (!lua_isnoneornil(L, 1)) sg_conv_set_deterministic(lua_toboolean(L, 1));
  lua_pushboolean(L, sg_conv_deterministic());
  return 1;
}
/* _dnnl([on]) -> compiled, enabled, cached conv primitives, cached pooling
 * primitives, cached eltwise primitives; on: true/false, or
 * "env" to follow SEMSEG_DNNL again */
static int l_dnnl(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING && strcmp(lua_tostring(L, 1), "env") == 0) sg_dnnl_set_enabled(-1);
  else if (!lua_isnoneornil(L, 1)) sg_dnnl_set_enabled(lua_toboolean(L, 1));
  lua_pushboolean(L, sg_dnnl_compiled());
  lua_pushboolean(L, sg_dnnl_enabled());
  lua_pushinteger(L, sg_dnnl_cache_size());
  lua_pushinteger(L, sg_dnnl_pool_cache_size());
  lua_pushinteger(L, sg_dnnl_eltwise_cache_size());
  return 5;
}

/* _cudnn([arg]) -> {built=, entries=, finds=, heuristics=, hits=, tf32=, last=}: the
 * cuDNN convolution algorithm cache (entries; cudnnFind runs in benchmark
 * mode; heuristic queries; cache hits), whether f32 may use TF32, and what the
 * last convolution call ran. arg "clear" empties the cache; {tf32 = bool}
 * allows or forbids TF32 for f32 convolutions. */
static int l_cudnn(lua_State *L) {
  /* the cuDNN backend is loaded only to answer about it when it is present */
  const sg_backend *be = sg_backend_present(SG_CUDA) ? sg_backend_loaded(SG_CUDA) : NULL;
  if (!be || !be->conv.cache_stats) {
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, 0); lua_setfield(L, -2, "built");
    return 1;
  }
  if (lua_type(L, 1) == LUA_TSTRING && strcmp(lua_tostring(L, 1), "clear") == 0) {
    be->conv.cache_clear();
  } else if (lua_istable(L, 1)) {
    if (lua_getfield(L, 1, "tf32") != LUA_TNIL) sg_config.conv_tf32 = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 1)) {
    return luaL_error(L, "_cudnn: argument must be 'clear' or {tf32 = bool}");
  }
  sg_conv_cache_stats st = be->conv.cache_stats();
  lua_createtable(L, 0, 7);
  lua_pushboolean(L, 1); lua_setfield(L, -2, "built");
  lua_pushinteger(L, st.entries); lua_setfield(L, -2, "entries");
  lua_pushinteger(L, st.finds); lua_setfield(L, -2, "finds");
  lua_pushinteger(L, st.heuristics); lua_setfield(L, -2, "heuristics");
  lua_pushinteger(L, st.hits); lua_setfield(L, -2, "hits");
  lua_pushboolean(L, sg_config.conv_tf32); lua_setfield(L, -2, "tf32");
  lua_pushstring(L, be->conv.last_algo()); lua_setfield(L, -2, "last");
  return 1;
}

static const luaL_Reg FNS[] = {
  {"conv2d", l_conv2d}, {"conv_transpose2d", l_conv_transpose2d}, {"max_pool2d", l_max_pool2d},
  {"max_unpool2d", l_max_unpool2d}, {"avg_pool2d", l_avg_pool2d}, {"adaptive_avg_pool2d", l_adaptive_avg_pool2d},
  {"batch_norm", l_batch_norm}, {"group_norm", l_group_norm}, {"layer_norm", l_layer_norm},
  {"bce_with_logits", l_bce_with_logits},
  {"upsample", l_upsample}, {"_conv_path", l_conv_path}, {"_dnnl", l_dnnl},
  {"_pool_path", l_pool_path}, {"_bn_path", l_bn_path},
  {"_eltwise_path", l_eltwise_path}, {"_threads", l_threads}, {"_deterministic", l_deterministic},
  {"_cudnn", l_cudnn}, {"_option_parses", l_option_parses}, {NULL, NULL}};

void sgL_open_nn(lua_State *L, int mod, int methods) {
  (void)methods;
  lua_newtable(L);
  luaL_setfuncs(L, FNS, 0);
  /* per kind: its metatable (__name, __tostring) and its constructor <op>_options */
  for (int k = 0; k < K_COUNT; k++) {
    luaL_newmetatable(L, KINDS[k].mt);
    lua_pushinteger(L, k);
    lua_pushcclosure(L, l_options_tostring, 1);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lua_pushinteger(L, k);
    lua_pushcclosure(L, l_make_options, 1);
    lua_setfield(L, -2, KINDS[k].ctor);
  }
  lua_setfield(L, mod, "nn_functional");
}
