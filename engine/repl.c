/* (being written) */
#include <lua.h>
#include <stdio.h>
int sg_repl(lua_State *L);
int sg_repl(lua_State *L) { (void)L; fprintf(stderr, "semseg: the REPL is not built yet\n"); return 1; }
