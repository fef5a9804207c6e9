/* The semseg program: run scripts, evaluate code, or open the REPL. */
#include "lua/binding.h"
#include <lualib.h>
#include <stdio.h>
#include <string.h>

extern const char *const sg_embedded_lua[];
int sg_repl(lua_State *L);

/* package.preload[name] = loader for every embedded lua/semseg file */
static int embedded_loader(lua_State *L) {
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  const char *src = lua_tostring(L, lua_upvalueindex(2));
  char chunk[256];
  snprintf(chunk, sizeof chunk, "@[semseg]/%s.lua", name);
  if (luaL_loadbuffer(L, src, strlen(src), chunk) != LUA_OK) return lua_error(L);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  return 1;
}

static void install_embedded(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_semseg_core);
  lua_setfield(L, -2, "semseg.core");
  for (int i = 0; sg_embedded_lua[i]; i += 2) {
    lua_pushstring(L, sg_embedded_lua[i]);
    lua_pushstring(L, sg_embedded_lua[i + 1]);
    lua_pushcclosure(L, embedded_loader, 2);
    lua_setfield(L, -2, sg_embedded_lua[i]);
  }
  lua_pop(L, 2);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    fprintf(stderr, "semseg: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static int docall(lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, 0, base);
  lua_remove(L, base);
  return status;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: semseg [command] [args]\n"
          "  semseg                     open the interactive REPL (also: semseg repl)\n"
          "  semseg run script.lua ...  run a Lua script; it sees `arg` as with lua\n"
          "  semseg -e 'code'           run a chunk of Lua code\n"
          "  semseg --version           print the version and the backends built\n"
          "  semseg help                this text\n"
          "`sg` is preloaded as require \"semseg\".\n");
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (!L) { fprintf(stderr, "semseg: cannot create the Lua state\n"); return 1; }
  luaL_openlibs(L);
  install_embedded(L);
  int status = LUA_OK;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "semseg");
  if (report(L, docall(L, 1)) != LUA_OK) { lua_close(L); return 1; }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "semseg");
  lua_call(L, 1, 1);
  lua_setglobal(L, "sg");
  const char *cmd = argc > 1 ? argv[1] : "repl";
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    lua_getglobal(L, "sg");
    lua_getfield(L, -1, "version");
    printf("semseg %s (%s)\n", lua_tostring(L, -1), LUA_RELEASE);
    printf("backends: cpu\n");
  } else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
  } else if (strcmp(cmd, "-e") == 0) {
    if (argc < 3) { usage(stderr); lua_close(L); return 2; }
    status = luaL_loadbuffer(L, argv[2], strlen(argv[2]), "=(command line)");
    if (status == LUA_OK) status = docall(L, 0);
    report(L, status);
  } else if (strcmp(cmd, "run") == 0) {
    if (argc < 3) { usage(stderr); lua_close(L); return 2; }
    lua_createtable(L, argc, 0);
    for (int i = 2; i < argc; i++) { lua_pushstring(L, argv[i]); lua_rawseti(L, -2, i - 2); }
    lua_pushstring(L, argv[0]); lua_rawseti(L, -2, -2);
    lua_setglobal(L, "arg");
    status = luaL_loadfile(L, argv[2]);
    if (status == LUA_OK) {
      for (int i = 3; i < argc; i++) lua_pushstring(L, argv[i]);
      status = docall(L, argc - 3);
    }
    report(L, status);
  } else if (strcmp(cmd, "repl") == 0) {
    status = sg_repl(L);
  } else {
    fprintf(stderr, "semseg: unknown command '%s'\n", cmd);
    usage(stderr);
    lua_close(L);
    return 2;
  }
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
