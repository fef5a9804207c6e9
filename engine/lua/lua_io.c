/* sg.io: image files (engine/io).
 *
 *   sg.io.read_png(path [, opts])   opts: layout="chw"|"hwc", dtype=, scale=true, palette="rgb"|"index"
 *   sg.io.write_png(path, t [, opts])   opts: layout=, bits=8|16, scale=true, level=0..9,
 *                                        palette={{r,g,b[,a]}, ...} (t holds 0-based indices)
 *   sg.io.read_tiff(path [, opts])  opts: layout=, dtype=, scale=, page=k (1-based), stack=true
 *   sg.io.write_tiff(path, t [, opts])  opts: layout=, stack=true (3-D is D x H x W), sample="u8"|"u16"|
 *       "u32"|"i8"|"i16"|"i32"|"i64"|"f32"|"f64" (or bits=8|16|32|64), scale=, compression="none"|"lzw"|
 *       "deflate"|"packbits", tile=256 or {w,h}, byteorder="big"|"little", planar="separate", predictor=true
 *   sg.io.read_image(path [, opts])  PNG or TIFF by the magic bytes
 *   sg.io.info(path) -> {format, width, height, channels, bits, pages, dtype, color, compression, ...} */
#include "binding.h"
#include "../io/image_io.h"
#include <string.h>


/* opts[name] as a string, or NULL when absent; error when not a string */
static const char *opt_str(lua_State *L, int idx, const char *op, const char *name) {
  if (lua_isnoneornil(L, idx)) return NULL;
  int ty = lua_getfield(L, idx, name);
  const char *s = NULL;
  if (ty == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (ty != LUA_TNIL) luaL_error(L, "%s: option %s must be a string (got %s)", op, name, luaL_typename(L, -1));
  lua_pop(L, 1); /* the string stays alive: it is in the options table */
  return s;
}
static bool opt_bool(lua_State *L, int idx, const char *name) {
  if (lua_isnoneornil(L, idx)) return false;
  lua_getfield(L, idx, name);
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}
/* opts[name] as an integer, def when absent */
static int64_t opt_int(lua_State *L, int idx, const char *op, const char *name, int64_t def) {
  if (lua_isnoneornil(L, idx)) return def;
  int64_t v = def;
  if (lua_getfield(L, idx, name) != LUA_TNIL) {
    char what[48];
    snprintf(what, sizeof what, "option %s", name);
    v = sgL_int(L, -1, op, what);
  }
  lua_pop(L, 1);
  return v;
}

static void check_opts_table(lua_State *L, int idx, const char *op) {
  if (!lua_isnoneornil(L, idx) && !lua_istable(L, idx))
    luaL_error(L, "%s: options must be a table (got %s)", op, luaL_typename(L, idx));
}

static bool opt_layout(lua_State *L, int idx, const char *op) {
  const char *s = opt_str(L, idx, op, "layout");
  if (!s || strcmp(s, "chw") == 0) return false;
  if (strcmp(s, "hwc") == 0) return true;
  luaL_error(L, "%s: layout must be 'chw' or 'hwc' (got '%s')", op, s);
  return false;
}

static sg_read_opts read_options(lua_State *L, int idx, const char *op) {
  check_opts_table(L, idx, op);
  sg_read_opts o;
  sg_read_opts_init(&o);
  o.hwc = opt_layout(L, idx, op);
  if (!lua_isnoneornil(L, idx)) {
    if (lua_getfield(L, idx, "dtype") != LUA_TNIL) o.dtype = sgL_dtype(L, lua_gettop(L), op);
    lua_pop(L, 1);
  }
  o.scale = opt_bool(L, idx, "scale");
  o.stack = opt_bool(L, idx, "stack");
  int64_t page = opt_int(L, idx, op, "page", 1);
  if (page < 1 || page > INT32_MAX) luaL_error(L, "%s: page %I is out of range (pages count from 1)", op, (lua_Integer)page);
  if (o.stack && !lua_isnoneornil(L, idx)) {
    lua_getfield(L, idx, "page");
    bool both = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (both) luaL_error(L, "%s: give either page or stack, not both", op);
  }
  o.page = (int)(page - 1);
  const char *pal = opt_str(L, idx, op, "palette");
  if (pal && strcmp(pal, "index") == 0) o.palette_index = true;
  else if (pal && strcmp(pal, "rgb") != 0) luaL_error(L, "%s: palette must be 'rgb' or 'index' (got '%s')", op, pal);
  return o;
}

static sg_write_opts write_options(lua_State *L, int idx, const char *op, bool tiff) {
  check_opts_table(L, idx, op);
  sg_write_opts o;
  sg_write_opts_init(&o);
  o.hwc = opt_layout(L, idx, op);
  o.scale = opt_bool(L, idx, "scale");
  if (lua_isnoneornil(L, idx)) return o;
  const char *sample = opt_str(L, idx, op, "sample");
  int64_t bits = opt_int(L, idx, op, "bits", 0);
  if (sample) {
    o.sample = sg_sample_from_name(sample);
    if (o.sample < 0) luaL_error(L, "%s: unknown sample type '%s' (u8, u16, u32, i8, i16, i32, i64, f32, f64)", op, sample);
  }
  if (bits) {
    if (!tiff && bits != 8 && bits != 16) luaL_error(L, "%s: bits must be 8 or 16 (got %I)", op, (lua_Integer)bits);
    if (bits != 8 && bits != 16 && bits != 32 && bits != 64)
      luaL_error(L, "%s: bits must be 8, 16, 32 or 64 (got %I)", op, (lua_Integer)bits);
    if (sample) luaL_error(L, "%s: give either sample or bits, not both", op);
    o.sample = bits == 8 ? SG_SAMPLE_U8 : bits == 16 ? SG_SAMPLE_U16 : -2; /* 32/64: decided below */
  }
  if (!tiff) {
    if (o.sample >= 0 && o.sample != SG_SAMPLE_U8 && o.sample != SG_SAMPLE_U16)
      luaL_error(L, "%s: PNG samples are u8 or u16 (got %s)", op, sample);
    o.level = (int)opt_int(L, idx, op, "level", -1);
    if (o.level < -1 || o.level > 9) luaL_error(L, "%s: level must be 0..9", op);
    if (lua_getfield(L, idx, "palette") != LUA_TNIL) {
      if (!lua_istable(L, -1)) luaL_error(L, "%s: palette must be a table of {r,g,b} or {r,g,b,a}", op);
      lua_Integer n = luaL_len(L, -1);
      if (n < 1 || n > 256) luaL_error(L, "%s: a palette has 1 to 256 colors (got %d)", op, (int)n);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        if (!lua_istable(L, -1)) luaL_error(L, "%s: palette entry %d must be {r,g,b} or {r,g,b,a}", op, (int)i);
        lua_Integer m = luaL_len(L, -1);
        if (m != 3 && m != 4) luaL_error(L, "%s: palette entry %d must be {r,g,b} or {r,g,b,a}", op, (int)i);
        o.palette[i - 1][3] = 255;
        for (lua_Integer k = 1; k <= m; k++) {
          lua_geti(L, -1, k);
          int64_t v = sgL_int(L, -1, op, "palette value");
          if (v < 0 || v > 255) luaL_error(L, "%s: palette value %I is not in 0..255", op, (lua_Integer)v);
          o.palette[i - 1][k - 1] = (uint8_t)v;
          lua_pop(L, 1);
        }
        if (m == 4) o.palette_alpha = true;
        lua_pop(L, 1);
      }
      o.npalette = (int)n;
    }
    lua_pop(L, 1);
    return o;
  }
  o.stack = opt_bool(L, idx, "stack");
  o.predictor = opt_bool(L, idx, "predictor");
  const char *comp = opt_str(L, idx, op, "compression");
  if (comp) {
    static const char *names[] = {"none", "lzw", "deflate", "packbits"};
    int k = -1;
    for (int i = 0; i < 4; i++)
      if (strcmp(comp, names[i]) == 0) k = i;
    if (k < 0) luaL_error(L, "%s: compression must be none, lzw, deflate or packbits (got '%s')", op, comp);
    o.compression = (sg_tiff_compression)k;
  }
  int ty = lua_getfield(L, idx, "tile");
  if (ty == LUA_TNUMBER) {
    o.tile_w = o.tile_h = (int)sgL_int(L, -1, op, "option tile");
  } else if (ty == LUA_TTABLE) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    o.tile_w = (int)sgL_int(L, -2, op, "tile width");
    o.tile_h = (int)sgL_int(L, -1, op, "tile height");
    lua_pop(L, 2);
  } else if (ty != LUA_TNIL) {
    luaL_error(L, "%s: tile must be a size or {width, height}", op);
  }
  lua_pop(L, 1);
  const char *bo = opt_str(L, idx, op, "byteorder");
  if (bo && strcmp(bo, "big") == 0) o.byteorder = 'b';
  else if (bo && strcmp(bo, "little") == 0) o.byteorder = 'l';
  else if (bo && strcmp(bo, "native") != 0) luaL_error(L, "%s: byteorder must be 'big', 'little' or 'native'", op);
  const char *planar = opt_str(L, idx, op, "planar");
  if (planar && strcmp(planar, "separate") == 0) o.separate = true;
  else if (planar && strcmp(planar, "contig") != 0) luaL_error(L, "%s: planar must be 'contig' or 'separate'", op);
  return o;
}

/* bits=32/64 for TIFF: the integer or float sample of that width */
static void resolve_bits(sg_write_opts *o, lua_State *L, int idx, sg_tensor *t) {
  if (o->sample != -2) return;
  int64_t bits = opt_int(L, idx, "write_tiff", "bits", 0);
  bool fl = sg_dtype_is_float(t->dtype);
  if (bits == 32) o->sample = fl ? SG_SAMPLE_F32 : SG_SAMPLE_U32;
  else o->sample = fl ? SG_SAMPLE_F64 : SG_SAMPLE_I64;
}

static int l_read_png(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sg_read_opts o = read_options(L, 2, "read_png");
  sgL_push(L, sg_read_png(path, &o));
  return 1;
}
static int l_read_tiff(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sg_read_opts o = read_options(L, 2, "read_tiff");
  sgL_push(L, sg_read_tiff(path, &o));
  return 1;
}
static int l_read_image(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sg_read_opts o = read_options(L, 2, "read_image");
  sgL_push(L, sg_read_image(path, &o));
  return 1;
}
/* The tensor at idx, on the host: a GPU tensor is copied over once (the copy stays on the Lua stack). */
static sg_tensor *host_tensor(lua_State *L, int idx, const char *op) {
  sg_tensor *t = sgL_check(L, idx, op);
  if (t->storage->device == SG_CPU) return t;
  sg_tensor *h = sgL_push(L, sgL_host_copy(t));
  lua_replace(L, idx);
  return h;
}

static int l_write_png(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sg_tensor *t = host_tensor(L, 2, "write_png");
  sg_write_opts o = write_options(L, 3, "write_png", false);
  if (sg_write_png(path, t, &o) != 0) return sgL_error(L);
  return 0;
}
static int l_write_tiff(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sg_tensor *t = host_tensor(L, 2, "write_tiff");
  sg_write_opts o = write_options(L, 3, "write_tiff", true);
  resolve_bits(&o, L, 3, t);
  if (sg_write_tiff(path, t, &o) != 0) return sgL_error(L);
  return 0;
}

static int l_info(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  sg_image_info in;
  if (sg_image_info_get(path, &in) != 0) return sgL_error(L);
  lua_createtable(L, 0, 14);
  lua_pushstring(L, in.format); lua_setfield(L, -2, "format");
  lua_pushinteger(L, in.width); lua_setfield(L, -2, "width");
  lua_pushinteger(L, in.height); lua_setfield(L, -2, "height");
  lua_pushinteger(L, in.channels); lua_setfield(L, -2, "channels");
  lua_pushinteger(L, in.bits); lua_setfield(L, -2, "bits");
  lua_pushinteger(L, in.pages); lua_setfield(L, -2, "pages");
  lua_pushstring(L, sg_sample_name(in.sample)); lua_setfield(L, -2, "sample");
  lua_pushstring(L, sg_dtype_name(sg_sample_dtype(in.sample))); lua_setfield(L, -2, "dtype");
  lua_pushstring(L, in.color); lua_setfield(L, -2, "color");
  lua_pushstring(L, in.compression); lua_setfield(L, -2, "compression");
  lua_pushboolean(L, in.tiled); lua_setfield(L, -2, "tiled");
  lua_pushstring(L, in.big_endian ? "big" : "little"); lua_setfield(L, -2, "byteorder");
  lua_pushstring(L, in.separate ? "separate" : "contig"); lua_setfield(L, -2, "planar");
  lua_pushboolean(L, in.interlaced); lua_setfield(L, -2, "interlaced");
  return 1;
}

void sgL_open_io(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {
      {"read_png", l_read_png},     {"write_png", l_write_png}, {"read_tiff", l_read_tiff},
      {"write_tiff", l_write_tiff}, {"read_image", l_read_image}, {"info", l_info},
      {NULL, NULL},
  };
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, mod, "io");
}
