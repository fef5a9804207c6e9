/* Raw tensor bytes and atomic file writes, for the file formats written in Lua
 * (safetensors, checkpoints). */
#include "binding.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* t:to_bytes() -> the elements in row-major order, little-endian (the host order on x86-64 and arm64);
 * a GPU tensor is copied to the host first (one transfer) */
static int m_to_bytes(lua_State *L) {
  sg_tensor *t = sgL_check(L, 1, "to_bytes");
  sg_tensor *c = sgL_push(L, t->storage->device == SG_CPU ? sg_contiguous(t) : sgL_host_copy(t));
  lua_pushlstring(L, sg_data_ptr(c), (size_t)sg_numel(c) * sg_dtype_size(c->dtype));
  return 1;
}

/* sg.from_bytes(str, dtype, shape [, offset]) -> a new tensor copied from str (offset counts from 0) */
static int l_from_bytes(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  sg_dtype dt = sgL_dtype(L, 2, "from_bytes");
  int64_t size[SG_MAX_DIMS];
  int next;
  int ndim = sgL_shape(L, 3, "from_bytes", size, &next);
  int64_t off = lua_isnoneornil(L, next) ? 0 : sgL_int(L, next, "from_bytes", "offset");
  int64_t n = sg_shape_numel(ndim, size);
  int64_t need = n * (int64_t)sg_dtype_size(dt);
  if (off < 0 || n < 0 || need < 0 || (uint64_t)(off + need) > len)
    return luaL_error(L, "from_bytes: %I bytes needed at offset %I, only %I available", (lua_Integer)need,
                      (lua_Integer)off, (lua_Integer)len);
  sg_tensor *t = sgL_push(L, sg_empty(ndim, size, dt, SG_CPU));
  memcpy(t->storage->data, s + off, (size_t)need);
  return 1;
}

/* sg.write_file_atomic(path, str...) : temp file in the same directory, fsync, rename */
static int l_write_file_atomic(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int n = lua_gettop(L);
  for (int i = 2; i <= n; i++) luaL_checkstring(L, i);
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) return luaL_error(L, "write_file_atomic: out of memory");
  snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return luaL_error(L, "cannot write '%s': %s", path, strerror(e));
  }
  const char *why = NULL;
  int err = 0;
  for (int i = 2; i <= n && !why; i++) {
    size_t len;
    const char *s = lua_tolstring(L, i, &len);
    while (len > 0) {
      ssize_t w = write(fd, s, len);
      if (w < 0) { if (errno == EINTR) continue; err = errno; why = "write"; break; }
      s += w; len -= (size_t)w;
    }
  }
  if (!why && fsync(fd) != 0) { err = errno; why = "fsync"; }
  if (close(fd) != 0 && !why) { err = errno; why = "close"; }
  if (!why && rename(tmp, path) != 0) { err = errno; why = "rename"; }
  if (why) {
    unlink(tmp);
    free(tmp);
    return luaL_error(L, "cannot write '%s' (%s failed: %s); any previous file is unchanged", path, why, strerror(err));
  }
  free(tmp);
  return 0;
}

static const luaL_Reg METHODS[] = {{"to_bytes", m_to_bytes}, {NULL, NULL}};
static const luaL_Reg FNS[] = {{"from_bytes", l_from_bytes}, {"write_file_atomic", l_write_file_atomic}, {NULL, NULL}};

void sgL_open_bytes(lua_State *L, int mod, int methods) {
  sgL_setfuncs(L, METHODS, 0, methods);
  sgL_setfuncs(L, FNS, mod, 0);
}
