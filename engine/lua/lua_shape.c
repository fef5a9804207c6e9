/* (being written) */
#include "binding.h"
void sgL_open_shape(lua_State *L, int mod, int methods) { (void)L; (void)mod; (void)methods; }
