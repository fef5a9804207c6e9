/* sg.config: the runtime configuration (core/config.h) as a table-like object.
 * sg.config.threads = 2 sets and checks; sg.config.threads reads; an unknown
 * name is an error listing the settings; pairs(sg.config) walks them and
 * sg.config.describe() returns {name = {value =, env =, doc =}}. */
#include "binding.h"
#include "../core/config.h"
#include <string.h>

static const char *settings_list(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const sg_config_entry *e = sg_config_entries(); e->name; e++) {
    if (e != sg_config_entries()) luaL_addstring(&b, ", ");
    luaL_addstring(&b, e->name);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static void push_value(lua_State *L, const sg_config_entry *e) {
  double v = sg_config_get(e);
  if (e->type == SG_CFG_BOOL) lua_pushboolean(L, v != 0);
  else if (e->type == SG_CFG_INT) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v);
}

static const sg_config_entry *check_entry(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  const sg_config_entry *e = sg_config_find(name);
  if (!e) luaL_error(L, "sg.config: no setting '%s' (settings: %s)", name, settings_list(L));
  return e;
}

static int describe(lua_State *L) {
  lua_newtable(L);
  for (const sg_config_entry *e = sg_config_entries(); e->name; e++) {
    lua_createtable(L, 0, 3);
    push_value(L, e); lua_setfield(L, -2, "value");
    lua_pushstring(L, e->env); lua_setfield(L, -2, "env");
    lua_pushstring(L, e->doc); lua_setfield(L, -2, "doc");
    lua_setfield(L, -2, e->name);
  }
  return 1;
}

static int reset(lua_State *L) {
  const sg_config_entry *e = check_entry(L, 1);
  if (sg_config_reset(e->name)) return sgL_error(L);
  push_value(L, e);
  return 1;
}

static int m_index(lua_State *L) {
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "describe") == 0) { lua_pushcfunction(L, describe); return 1; }
  if (strcmp(k, "reset") == 0) { lua_pushcfunction(L, reset); return 1; }
  push_value(L, check_entry(L, 2));
  return 1;
}

static int m_newindex(lua_State *L) {
  const sg_config_entry *e = check_entry(L, 2);
  double v;
  if (e->type == SG_CFG_BOOL) {
    luaL_argexpected(L, lua_isboolean(L, 3), 3, "boolean");
    v = lua_toboolean(L, 3);
  } else {
    v = luaL_checknumber(L, 3);
  }
  if (sg_config_set(e->name, v)) return luaL_error(L, "sg.%s", sg_error_get());
  return 0;
}

static int next_entry(lua_State *L) {
  const sg_config_entry *e = sg_config_entries();
  if (!lua_isnil(L, 2)) {
    e = sg_config_find(luaL_checkstring(L, 2));
    if (!e) return 0;
    e++;
  }
  if (!e->name) return 0;
  lua_pushstring(L, e->name);
  push_value(L, e);
  return 2;
}

static int m_pairs(lua_State *L) {
  lua_pushcfunction(L, next_entry);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

void sgL_open_config(lua_State *L, int mod, int methods) {
  (void)methods;
  sg_config_init();
  lua_newtable(L);
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, m_index); lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, m_newindex); lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, m_pairs); lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, "sg.config"); lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  lua_setfield(L, mod, "config");
}
