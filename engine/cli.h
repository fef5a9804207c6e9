/* The semseg program: main.c (commands) and repl.c (the interactive loop). */
#ifndef SG_CLI_H
#define SG_CLI_H
#include <lua.h>

/* Runs the REPL on L; returns the exit status. */
int sg_repl(lua_State *L);
/* Message handler for lua_pcall: the error text (through __tostring for error
 * objects) followed by the traceback. */
int sg_msghandler(lua_State *L);
#endif
