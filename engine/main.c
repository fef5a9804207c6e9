/* The semseg program: run scripts, evaluate code, or open the REPL.
 *
 *   semseg                         the REPL (also: semseg repl)
 *   semseg run script.lua [args]   run a script (also: semseg script.lua [args])
 *   semseg -e 'code' [-e ...] [-i] [script.lua [args]]
 *   semseg predict --model ckpt --input path --out dir [...]   (lua/semseg_app/predict.lua)
 *   semseg --version | help
 *
 * Exit status: 0 on success, 1 on an uncaught Lua error (message and
 * traceback on stderr) or an unreadable script, 2 on a usage error. */
#include "cli.h"
#include "lua/binding.h"
#include <errno.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char *const sg_embedded_lua[];

enum { EXIT_USAGE = 2 };

/* package.preload[name] = loader for every embedded lua/semseg file */
static int embedded_loader(lua_State *L) {
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  size_t len;
  const char *src = lua_tolstring(L, lua_upvalueindex(2), &len);
  char chunk[256];
  snprintf(chunk, sizeof chunk, "@[semseg]/%s.lua", name);
  if (luaL_loadbuffer(L, src, len, chunk) != LUA_OK) return lua_error(L);
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

/* Message handler: the error text (through __tostring for error objects)
 * followed by the traceback. */
int sg_msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
    else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Prints the error on top of the stack (if any) and pops it. */
static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "semseg: %s\n", msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* Calls the function below the nargs arguments with a traceback handler. */
static int docall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, sg_msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: semseg [command] [args]\n"
          "  semseg                        open the interactive REPL (also: semseg repl)\n"
          "  semseg run script.lua [args]  run a Lua script; it sees `arg` and `...` as with lua\n"
          "                                (script `-` reads it from stdin; `semseg script.lua` works too)\n"
          "  semseg -e 'code' [-e ...]     run chunks of Lua code in order; a script may follow,\n"
          "                                -i opens the REPL afterwards\n"
          "  semseg predict --model CKPT --input PATH --out DIR [options]\n"
          "                                segment images, folders or TIFF stacks with a checkpoint\n"
          "                                (tiled, Gaussian-blended; `semseg predict --help`)\n"
          "  semseg --version              print the version and the backends built\n"
          "  semseg help                   this text\n"
          "`sg` is preloaded as require \"semseg\". Exit status: 0 ok, 1 Lua error, 2 usage error.\n");
}

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "semseg: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, " (see `semseg help`)\n");
  return EXIT_USAGE;
}

static void print_version(lua_State *L) {
  lua_getglobal(L, "sg");
  lua_getfield(L, -1, "version");
  printf("semseg %s (%s)\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", LUA_RELEASE);
  lua_pop(L, 1);
  lua_getfield(L, -1, "backends");
  if (lua_isfunction(L, -1) && lua_pcall(L, 0, 1, 0) == LUA_OK && lua_isstring(L, -1))
    printf("backends: %s\n", lua_tostring(L, -1));
  lua_pop(L, 2);
}

/* arg = {[-1] = program, [0] = script, [1..] = script args} */
static void set_arg(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc > script ? argc - script : 0, 2);
  lua_pushstring(L, argv[0]);
  lua_rawseti(L, -2, -1);
  if (script < argc) {
    for (int i = script; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i - script);
    }
  } else {
    lua_pushstring(L, argv[0]);
    lua_rawseti(L, -2, 0);
  }
  lua_setglobal(L, "arg");
}

static int run_chunk(lua_State *L, const char *code) {
  int status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

/* Runs argv[script] with argv[script+1..] as `...`; "-" reads stdin. */
static int run_script(lua_State *L, char **argv, int argc, int script) {
  const char *path = argv[script];
  const char *fname = strcmp(path, "-") == 0 ? NULL : path;
  if (fname) {
    FILE *f = fopen(fname, "r");
    if (!f) {
      fprintf(stderr, "semseg: cannot open script '%s': %s\n", fname, strerror(errno));
      return LUA_ERRFILE;
    }
    fclose(f);
  }
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    luaL_checkstack(L, argc - script, "too many script arguments");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    status = docall(L, argc - script - 1, 0);
  }
  return report(L, status);
}

/* A command written in Lua: require(module).main({argv[first..]}) returns the
 * exit status (nil is 0); an uncaught error is reported with its traceback. */
static int run_lua_command(lua_State *L, const char *module, int argc, char **argv, int first) {
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (report(L, docall(L, 1, 1)) != LUA_OK) return 1;
  lua_getfield(L, -1, "main");
  lua_remove(L, -2);
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    fprintf(stderr, "semseg: %s has no main function\n", module);
    return 1;
  }
  lua_createtable(L, argc > first ? argc - first : 0, 0);
  for (int i = first; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first + 1);
  }
  if (report(L, docall(L, 1, 1)) != LUA_OK) return 1;
  int rc = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return rc;
}

static bool looks_like_script(const char *s) {
  size_t n = strlen(s);
  return strcmp(s, "-") == 0 || strchr(s, '/') != NULL || (n > 4 && strcmp(s + n - 4, ".lua") == 0);
}

static int dispatch(lua_State *L, int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "repl";
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-v") == 0 || strcmp(cmd, "version") == 0) {
    print_version(L);
    return 0;
  }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "repl") == 0) {
    if (argc > 2) return usage_error("repl takes no arguments (got '%s')", argv[2]);
    set_arg(L, argv, argc, argc);
    return sg_repl(L);
  }
  if (strcmp(cmd, "run") == 0) {
    if (argc < 3) return usage_error("%s: missing script file name", "run");
    set_arg(L, argv, argc, 2);
    return run_script(L, argv, argc, 2) == LUA_OK ? 0 : 1;
  }
  if (strcmp(cmd, "predict") == 0) {
    set_arg(L, argv, argc, 1);
    return run_lua_command(L, "semseg_app.predict", argc, argv, 2);
  }
  if (cmd[0] == '-' && cmd[1] != '\0') {
    /* options: -e code (repeatable), -i, --, then an optional script */
    bool interactive = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
      if (strcmp(argv[i], "--") == 0) { i++; break; }
      if (strcmp(argv[i], "-i") == 0) { interactive = true; continue; }
      if (strcmp(argv[i], "-e") == 0) {
        if (i + 1 >= argc) return usage_error("%s needs an argument", "-e");
        i++;
        continue;
      }
      return usage_error("unknown option '%s'", argv[i]);
    }
    int script = i;
    set_arg(L, argv, argc, script);
    for (int k = 1; k < script; k++) {
      if (strcmp(argv[k], "--") == 0) break;
      if (strcmp(argv[k], "-e") == 0 && run_chunk(L, argv[++k]) != LUA_OK) return 1;
    }
    if (script < argc && run_script(L, argv, argc, script) != LUA_OK) return 1;
    return interactive ? sg_repl(L) : 0;
  }
  if (looks_like_script(cmd)) {
    set_arg(L, argv, argc, 1);
    return run_script(L, argv, argc, 1) == LUA_OK ? 0 : 1;
  }
  return usage_error("unknown command '%s'", cmd);
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (!L) { fprintf(stderr, "semseg: cannot create the Lua state\n"); return 1; }
  luaL_openlibs(L);
  install_embedded(L);
  /* sg = require "semseg" */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "semseg");
  if (report(L, docall(L, 1, 1)) != LUA_OK) { lua_close(L); return 1; }
  lua_setglobal(L, "sg");
  int rc = dispatch(L, argc, argv);
  fflush(stdout);
  lua_close(L);
  return rc;
}
