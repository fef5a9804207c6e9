/* sg.nn_functional: convolution, pooling, batch, group and layer norm, upsampling. */
#include "binding.h"
#include "../ops/nn_ops.h"
#include "../backend_cpu/dnnl_conv.h"
#include "../backend_cpu/dnnl_common.h" /* sg_bn_last_path */
#include "../backend_cpu/dnnl_pool.h"
#include "../backend_cpu/pool.h"
#include "../backend_cpu/dnnl_eltwise.h"
#include "../backend.h"
#include "../core/config.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <string.h>

/* opts[field]: nil -> def, a number -> both, {h, w} -> the pair */
static void opt_pair(lua_State *L, int opts, const char *field, const char *op, int64_t def, int64_t *out) {
  out[0] = out[1] = def;
  if (lua_isnoneornil(L, opts)) return;
  int t = lua_getfield(L, opts, field);
  if (t == LUA_TNUMBER) {
    out[0] = out[1] = sgL_int(L, -1, op, field);
  } else if (t == LUA_TTABLE) {
    if (luaL_len(L, -1) != 2) luaL_error(L, "%s: %s must be a number or a pair {h, w}", op, field);
    for (int k = 0; k < 2; k++) {
      lua_geti(L, -1, k + 1);
      out[k] = sgL_int(L, -1, op, field);
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    luaL_error(L, "%s: %s must be a number or a pair {h, w} (got %s)", op, field, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static void check_opts(lua_State *L, int idx, const char *op) {
  if (!lua_isnoneornil(L, idx) && !lua_istable(L, idx))
    luaL_error(L, "%s: argument #%d must be an options table (got %s)", op, idx, luaL_typename(L, idx));
}

static bool opt_bool(lua_State *L, int opts, const char *field, bool def) {
  if (lua_isnoneornil(L, opts)) return def;
  lua_getfield(L, opts, field);
  bool v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static double opt_number(lua_State *L, int opts, const char *field, const char *op, double def) {
  if (lua_isnoneornil(L, opts)) return def;
  lua_getfield(L, opts, field);
  double v = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: %s must be a number (got %s)", op, field, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static sg_tensor *opt_tensor(lua_State *L, int idx, const char *op) {
  return lua_isnoneornil(L, idx) ? NULL : sgL_check(L, idx, op);
}

/* An option name the op does not know is an error, not silently ignored. */
static void check_keys(lua_State *L, int idx, const char *op, const char *const *keys) {
  if (!lua_istable(L, idx)) return;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    bool known = false;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int k = 0; keys[k] && !known; k++) known = strcmp(keys[k], lua_tostring(L, -1)) == 0;
    if (!known) luaL_error(L, "%s: unknown option '%s'", op, luaL_tolstring(L, -1, NULL));
  }
}

/* conv_transpose2d's {size = {h, w}}: the output_padding that reaches that size */
static void output_padding_for_size(lua_State *L, const char *op, sg_tensor *x, sg_tensor *w, sg_conv_opts *o) {
  int64_t want[2];
  opt_pair(L, 4, "size", op, 0, want);
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

/* conv2d(x, w, b, {stride=, padding= (number, {h,w} or "same"), dilation=, groups=, reference=})
 * conv_transpose2d(x, w, b, {..., output_padding= | size = {h, w}}) */
static int conv(lua_State *L, bool transposed) {
  static const char *const KEYS[] = {"stride", "padding", "dilation", "groups", "reference", NULL};
  static const char *const TKEYS[] = {"stride", "padding", "dilation", "groups", "reference", "output_padding",
                                      "size", NULL};
  const char *op = transposed ? "conv_transpose2d" : "conv2d";
  sg_tensor *x = sgL_check(L, 1, op), *w = sgL_check(L, 2, op), *b = opt_tensor(L, 3, op);
  check_opts(L, 4, op);
  check_keys(L, 4, op, transposed ? TKEYS : KEYS);
  sg_conv_opts o = sg_conv_defaults();
  opt_pair(L, 4, "stride", op, 1, o.stride);
  opt_pair(L, 4, "dilation", op, 1, o.dilation);
  if (transposed) opt_pair(L, 4, "output_padding", op, 0, o.output_padding);
  if (!lua_isnoneornil(L, 4)) {
    lua_getfield(L, 4, "padding");
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *s = lua_tostring(L, -1);
      if (strcmp(s, "same") == 0) o.same = true;
      else if (strcmp(s, "valid") != 0) luaL_error(L, "%s: padding must be a number, {h, w}, 'same' or 'valid' (got '%s')", op, s);
    } else {
      opt_pair(L, 4, "padding", op, 0, o.padding);
    }
    lua_pop(L, 1);
    lua_getfield(L, 4, "groups");
    if (!lua_isnil(L, -1)) o.groups = sgL_int(L, -1, op, "groups");
    lua_pop(L, 1);
    o.reference = opt_bool(L, 4, "reference", false);
    if (transposed && lua_getfield(L, 4, "size") != LUA_TNIL) {
      lua_getfield(L, 4, "output_padding");
      if (!lua_isnil(L, -1)) luaL_error(L, "%s: give either size or output_padding, not both", op);
      lua_pop(L, 1);
      output_padding_for_size(L, op, x, w, &o);
    }
    lua_pop(L, 1);
  }
  sgL_push(L, (transposed ? sg_conv_transpose2d : sg_conv2d)(x, w, b, &o));
  return 1;
}
static int l_conv2d(lua_State *L) { return conv(L, false); }
static int l_conv_transpose2d(lua_State *L) { return conv(L, true); }

/* kernel from opts.kernel, or the options argument itself as a number / pair */
static void pool_args(lua_State *L, const char *op, int64_t *k, int64_t *s, int64_t *p) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    k[0] = k[1] = sgL_int(L, 2, op, "kernel");
    s[0] = k[0]; s[1] = k[1]; p[0] = p[1] = 0;
    return;
  }
  if (!lua_istable(L, 2)) luaL_error(L, "%s: argument #2 must be a kernel size or an options table {kernel=, stride=, padding=}", op);
  static const char *const AVG_KEYS[] = {"kernel", "stride", "padding", "count_include_pad", NULL};
  static const char *const MAX_KEYS[] = {"kernel", "stride", "padding", "indices", NULL};
  check_keys(L, 2, op, strcmp(op, "max_pool2d") == 0 ? MAX_KEYS : AVG_KEYS);
  lua_getfield(L, 2, "kernel");
  bool has = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!has) luaL_error(L, "%s: options need kernel=", op);
  opt_pair(L, 2, "kernel", op, 1, k);
  int64_t none[2];
  opt_pair(L, 2, "stride", op, INT64_MIN, none);
  s[0] = none[0] == INT64_MIN ? k[0] : none[0];
  s[1] = none[1] == INT64_MIN ? k[1] : none[1];
  opt_pair(L, 2, "padding", op, 0, p);
}

static int l_max_pool2d(lua_State *L) {
  sg_tensor *x = sgL_check(L, 1, "max_pool2d");
  int64_t k[2], s[2], p[2];
  pool_args(L, "max_pool2d", k, s, p);
  /* {indices = false}: values only (inference skips the positions) */
  bool want = true;
  if (lua_istable(L, 2)) {
    want = lua_getfield(L, 2, "indices") == LUA_TNIL || lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  sg_tensor *v = NULL, *i = NULL;
  if (sg_max_pool2d(x, k, s, p, &v, want ? &i : NULL)) return sgL_error(L);
  sgL_push(L, v);
  if (!want) return 1;
  sgL_push(L, i);
  return 2;
}

/* max_unpool2d(x, idx, {size={h,w}}) or ({kernel=, stride=, padding=}): size (h-1)*stride - 2*padding + kernel */
static int l_max_unpool2d(lua_State *L) {
  const char *op = "max_unpool2d";
  sg_tensor *x = sgL_check(L, 1, op), *idx = sgL_check(L, 2, op);
  if (!lua_istable(L, 3)) luaL_error(L, "%s: argument #3 must be an options table {size={h, w}} or {kernel=, ...}", op);
  int64_t sz[2];
  lua_getfield(L, 3, "size");
  bool has_size = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (has_size) {
    opt_pair(L, 3, "size", op, 0, sz);
  } else {
    lua_getfield(L, 3, "kernel");
    bool has_k = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!has_k) luaL_error(L, "%s: options need size={h, w} or kernel=", op);
    if (x->ndim != 4) luaL_error(L, "%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    int64_t k[2], s[2], p[2], none[2];
    opt_pair(L, 3, "kernel", op, 1, k);
    opt_pair(L, 3, "stride", op, INT64_MIN, none);
    s[0] = none[0] == INT64_MIN ? k[0] : none[0];
    s[1] = none[1] == INT64_MIN ? k[1] : none[1];
    opt_pair(L, 3, "padding", op, 0, p);
    for (int d = 0; d < 2; d++) sz[d] = (x->size[2 + d] - 1) * s[d] - 2 * p[d] + k[d];
  }
  sgL_push(L, sg_max_unpool2d(x, idx, sz[0], sz[1]));
  return 1;
}

static int l_avg_pool2d(lua_State *L) {
  sg_tensor *x = sgL_check(L, 1, "avg_pool2d");
  int64_t k[2], s[2], p[2];
  pool_args(L, "avg_pool2d", k, s, p);
  bool cip = lua_istable(L, 2) ? opt_bool(L, 2, "count_include_pad", true) : true;
  sgL_push(L, sg_avg_pool2d(x, k, s, p, cip));
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

/* batch_norm(x, running_mean, running_var, weight, bias, {training=, momentum=, eps=, relu=false}); any of the
 * four may be nil; relu: relu(batch_norm(...)) as one op */
static int l_batch_norm(lua_State *L) {
  const char *op = "batch_norm";
  sg_tensor *x = sgL_check(L, 1, op);
  sg_tensor *rm = opt_tensor(L, 2, op), *rv = opt_tensor(L, 3, op), *w = opt_tensor(L, 4, op), *b = opt_tensor(L, 5, op);
  check_opts(L, 6, op);
  static const char *const KEYS[] = {"training", "momentum", "eps", "relu", NULL};
  check_keys(L, 6, op, KEYS);
  bool training = opt_bool(L, 6, "training", false), relu = opt_bool(L, 6, "relu", false);
  double momentum = opt_number(L, 6, "momentum", op, 0.1), eps = opt_number(L, 6, "eps", op, 1e-5);
  sgL_push(L, (relu ? sg_batch_norm_relu : sg_batch_norm)(x, rm, rv, w, b, training, momentum, eps));
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
  if (lua_type(L, idx) == LUA_TNUMBER) return lua_tonumber(L, idx);
  if (lua_isnoneornil(L, idx)) return 1e-5;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: argument #%d must be eps (a number) or an options table {eps=} (got %s)", op, idx,
               luaL_typename(L, idx));
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

/* upsample(x, {scale= (number or {h,w}) | size={h,w}, mode="nearest"|"bilinear", align_corners=false}) */
static int l_upsample(lua_State *L) {
  const char *op = "upsample";
  sg_tensor *x = sgL_check(L, 1, op);
  if (!lua_istable(L, 2)) return luaL_error(L, "%s: argument #2 must be an options table {scale= | size=, mode=}", op);
  if (x->ndim != 4) return luaL_error(L, "%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
  static const char *const KEYS[] = {"scale", "size", "mode", "align_corners", NULL};
  check_keys(L, 2, op, KEYS);
  sg_upsample_mode mode = SG_UPSAMPLE_NEAREST;
  lua_getfield(L, 2, "mode");
  if (!lua_isnil(L, -1)) {
    const char *m = lua_tostring(L, -1);
    if (m && strcmp(m, "nearest") == 0) mode = SG_UPSAMPLE_NEAREST;
    else if (m && strcmp(m, "bilinear") == 0) mode = SG_UPSAMPLE_BILINEAR;
    else return luaL_error(L, "%s: mode must be 'nearest' or 'bilinear' (got %s)", op, m ? m : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  bool align = opt_bool(L, 2, "align_corners", false);
  if (align && mode == SG_UPSAMPLE_NEAREST)
    return luaL_error(L, "%s: align_corners only applies to mode 'bilinear'", op);
  int ts = lua_getfield(L, 2, "size"), tc = lua_getfield(L, 2, "scale");
  lua_pop(L, 2);
  if ((ts == LUA_TNIL) == (tc == LUA_TNIL)) return luaL_error(L, "%s: give exactly one of scale= and size=", op);
  int64_t sz[2];
  double sc[2] = {0, 0};
  if (ts != LUA_TNIL) {
    opt_pair(L, 2, "size", op, 0, sz);
  } else {
    lua_getfield(L, 2, "scale");
    if (lua_type(L, -1) == LUA_TNUMBER) sc[0] = sc[1] = lua_tonumber(L, -1);
    else if (lua_istable(L, -1) && luaL_len(L, -1) == 2)
      for (int k = 0; k < 2; k++) { lua_geti(L, -1, k + 1); sc[k] = luaL_checknumber(L, -1); lua_pop(L, 1); }
    else return luaL_error(L, "%s: scale must be a number or {h, w}", op);
    lua_pop(L, 1);
    for (int k = 0; k < 2; k++) {
      if (!(sc[k] > 0) || isinf(sc[k])) return luaL_error(L, "%s: scale must be positive (got %g)", op, sc[k]);
      sz[k] = (int64_t)floor((double)x->size[2 + k] * sc[k]);
    }
  }
  sgL_push(L, sg_upsample(x, sz[0], sz[1], sc[0], sc[1], mode, align));
  return 1;
}

/* _conv_path() -> "dnnl" | "blas" | "reference" | "cudnn" | "none", winograd: what ran the last
 * convolution computation (forward or backward) */
static int l_conv_path(lua_State *L) {
  lua_pushstring(L, sg_conv_last_path());
  lua_pushboolean(L, sg_conv_last_winograd());
  return 2;
}
/* _pool_path() -> "kernel" | "dnnl" | "loops" | "none": what the cpu table ran for the last max or average
 * pooling (forward or backward); _bn_path() -> "kernel" | "loops" | "cuda" | "none": what ran the last batch
 * norm computation */
static int l_pool_path(lua_State *L) {
  lua_pushstring(L, sg_cpu_pool_last_path());
  return 1;
}
static int l_bn_path(lua_State *L) {
  lua_pushstring(L, sg_bn_last_path());
  return 1;
}
/* _eltwise_path() -> "dnnl" | "loops" | "cuda" | "none": what ran the last unary
 * elementwise computation (forward or backward) */
static int l_eltwise_path(lua_State *L) {
  lua_pushstring(L, sg_eltwise_last_path());
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
  {"_cudnn", l_cudnn}, {NULL, NULL}};

void sgL_open_nn(lua_State *L, int mod, int methods) {
  (void)methods;
  lua_newtable(L);
  luaL_setfuncs(L, FNS, 0);
  lua_setfield(L, mod, "nn_functional");
}
