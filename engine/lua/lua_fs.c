/* sg.fs: the few file-system calls the Lua library needs, so that it never
 * shells out (no quoting bugs, no dependence on `ls`/`mkdir` or the locale).
 *
 *   sg.fs.mkdir_p(path)    creates path and its parents; fine if it is already a directory
 *   sg.fs.list_dir(path)   -> sorted list of entry names (byte order), without "." and ".."
 *   sg.fs.stat(path)       -> nil when missing, else {type = "file"|"dir"|"other", size =, mtime =}
 *
 * Each raises "sg.fs.<fn>: '<path>': <reason>" on failure. */
#include "binding.h"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define DIR_MT "semseg.fs.dir"

/* The path argument: a string without NUL bytes, not empty (an empty path
 * names nothing, and mkdir/opendir would give a puzzling error). */
static const char *check_path(lua_State *L, const char *fn) {
  size_t n;
  const char *p = lua_tolstring(L, 1, &n);
  if (p == NULL) return luaL_error(L, "sg.fs.%s: path must be a string (got %s)", fn, luaL_typename(L, 1)), NULL;
  if (n == 0) return luaL_error(L, "sg.fs.%s: path is empty", fn), NULL;
  if (strlen(p) != n) return luaL_error(L, "sg.fs.%s: path contains a NUL byte", fn), NULL;
  return p;
}

static int fs_fail(lua_State *L, const char *fn, const char *path, int err) {
  return luaL_error(L, "sg.fs.%s: '%s': %s", fn, path, strerror(err));
}

/* mkdir of one prefix; EEXIST is fine only when what exists is a directory */
static int make_one(const char *p) {
  if (mkdir(p, 0777) == 0) return 0;
  int err = errno;
  struct stat st;
  if (err == EEXIST) return stat(p, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  return err;
}

static int l_mkdir_p(lua_State *L) {
  const char *path = check_path(L, "mkdir_p");
  size_t n = strlen(path);
  /* a Lua-owned copy: freed by the collector even when an error unwinds */
  char *p = lua_newuserdatauv(L, n + 1, 0);
  memcpy(p, path, n + 1);
  /* create each parent in turn; the leading '/' of an absolute path is no component */
  for (size_t i = 1; i < n; i++) {
    if (p[i] != '/' || p[i - 1] == '/') continue;
    p[i] = '\0';
    int err = make_one(p);
    p[i] = '/';
    if (err) return fs_fail(L, "mkdir_p", path, err);
  }
  int err = make_one(p);
  if (err) return fs_fail(L, "mkdir_p", path, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* The open directory lives in a userdata so that an error while reading
 * (out of memory) still closes it when the collector runs. */
static int dir_gc(lua_State *L) {
  DIR **d = luaL_checkudata(L, 1, DIR_MT);
  if (*d) closedir(*d);
  *d = NULL;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int l_list_dir(lua_State *L) {
  const char *path = check_path(L, "list_dir");
  DIR **d = lua_newuserdatauv(L, sizeof *d, 0);
  *d = NULL;
  luaL_setmetatable(L, DIR_MT);
  *d = opendir(path);
  if (*d == NULL) return fs_fail(L, "list_dir", path, errno);
  lua_newtable(L); /* the names in reading order; they stay alive while it is on the stack */
  int raw = lua_gettop(L);
  lua_Integer count = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(*d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, raw, ++count);
    errno = 0;
  }
  int err = errno;
  closedir(*d);
  *d = NULL;
  if (err) return fs_fail(L, "list_dir", path, err);
  /* sort pointers to the interned strings in a Lua-owned array, then build the result */
  const char **names = lua_newuserdatauv(L, (size_t)(count > 0 ? count : 1) * sizeof *names, 0);
  for (lua_Integer i = 1; i <= count; i++) {
    lua_rawgeti(L, raw, i);
    names[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1); /* still referenced by the raw table */
  }
  qsort(names, (size_t)count, sizeof *names, cmp_names);
  lua_createtable(L, count > 0 && count < 1 << 24 ? (int)count : 0, 0);
  for (lua_Integer i = 1; i <= count; i++) {
    lua_pushstring(L, names[i - 1]);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

static int l_stat(lua_State *L) {
  const char *path = check_path(L, "stat");
  struct stat st;
  if (stat(path, &st) != 0) {
    /* missing, or a component is a file: either way nothing is there */
    if (errno == ENOENT || errno == ENOTDIR) {
      lua_pushnil(L);
      return 1;
    }
    return fs_fail(L, "stat", path, errno);
  }
  lua_createtable(L, 0, 3);
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : "other");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec * 1e-9);
  lua_setfield(L, -2, "mtime");
  return 1;
}

void sgL_open_fs(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {
      {"mkdir_p", l_mkdir_p}, {"list_dir", l_list_dir}, {"stat", l_stat}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, DIR_MT)) {
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, mod, "fs");
}
