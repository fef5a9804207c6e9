/* semseg.core.metrics_core: the C half of lua/semseg/metrics.lua and the
 * terminal / interrupt helpers of lua/semseg/train.lua and progress.lua.
 *
 *   confusion(pred, target, nclasses, ignore_index|nil, per_image) -> i64 tensor
 *       pred, target: class ids (any integer or bool dtype), the same shape;
 *       C x C, or N x C x C per image (N = size of dim 1); row = target class,
 *       column = predicted class
 *   isatty(fd = 1) -> boolean;  term_width(fd = 1) -> columns | nil
 *   trap_interrupt()    Ctrl-C (SIGINT) sets a flag instead of stopping the
 *                       program; a second Ctrl-C before the flag is cleared
 *                       goes to the previous handler
 *   release_interrupt() restores the previous handler
 *   interrupted(clear = false) -> whether Ctrl-C came since the flag was cleared
 *   interrupt()         raises SIGINT (for tests: the same path as a Ctrl-C) */
#include "../ops/metrics.h"
#include "binding.h"
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static sg_tensor *as_ids(lua_State *L, int idx, const char *what) {
  sg_tensor *t = sgL_check(L, idx, "confusion");
  if (t->storage->device != SG_CPU) luaL_error(L, "confusion: the %s must be on the cpu", what);
  if (sg_dtype_is_float(t->dtype)) {
    /* float 0/1 masks are accepted; anything else is an error below */
    int64_t n = sg_numel(t);
    for (int64_t i = 0; i < n; i++) {
      double v = sg_get_flat(t, i);
      if (v != (double)(int64_t)v)
        luaL_error(L, "confusion: the %s holds %g, not a class id (pass class ids or 0/1 masks)", what, v);
    }
  }
  sg_tensor *c = sg_to_dtype(t, SG_I64);
  if (!c) sgL_error(L);
  sg_tensor *cc = sg_contiguous(c);
  sg_tensor_decref(c);
  if (!cc) sgL_error(L);
  return cc;
}

static int l_confusion(lua_State *L) {
  sg_tensor *p0 = sgL_check(L, 1, "confusion"), *t0 = sgL_check(L, 2, "confusion");
  int64_t nc = sgL_int(L, 3, "confusion", "nclasses");
  bool has_ignore = !lua_isnoneornil(L, 4);
  int64_t ignore = has_ignore ? sgL_int(L, 4, "confusion", "ignore_index") : 0;
  bool per_image = lua_toboolean(L, 5);
  if (nc < 1 || nc > 65536) return luaL_error(L, "confusion: nclasses must be in 1..65536 (got %d)", (int)nc);
  if (!sg_same_shape(p0, t0))
    return luaL_error(L, "confusion: predictions %s and target %s differ in shape", SG_SHAPE_STR(p0), SG_SHAPE_STR(t0));
  if (per_image && t0->ndim < 1) return luaL_error(L, "confusion: per_image needs a batch dimension");
  int64_t groups = per_image ? t0->size[0] : 1;
  if (groups == 0) groups = 1;
  sg_tensor *p = as_ids(L, 1, "predictions");
  sg_tensor *t = as_ids(L, 2, "target");
  int64_t shape[3] = {groups, nc, nc};
  sg_tensor *out = per_image ? sg_zeros(3, shape, SG_I64, SG_CPU) : sg_zeros(2, shape + 1, SG_I64, SG_CPU);
  int rc = out ? sg_confusion_count(p, t, groups, nc, has_ignore, ignore, out)
               : -1;
  sg_tensor_decref(p);
  sg_tensor_decref(t);
  if (rc) {
    if (out) sg_tensor_decref(out);
    return sgL_error(L);
  }
  sgL_push(L, out);
  return 1;
}

static int l_isatty(lua_State *L) {
  int fd = (int)luaL_optinteger(L, 1, 1);
  lua_pushboolean(L, isatty(fd) == 1);
  return 1;
}

static int l_term_width(lua_State *L) {
  int fd = (int)luaL_optinteger(L, 1, 1);
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) lua_pushinteger(L, ws.ws_col);
  else lua_pushnil(L);
  return 1;
}

/* ------------------------------------------------------------- Ctrl-C */
static volatile sig_atomic_t got_interrupt;
static volatile sig_atomic_t trapped;
static struct sigaction previous;

static void on_interrupt(int sig) {
  if (got_interrupt) { /* asked twice: let the previous handler (or the default) have it */
    sigaction(SIGINT, &previous, NULL);
    trapped = 0;
    raise(sig);
    return;
  }
  got_interrupt = 1;
}

static int l_trap_interrupt(lua_State *L) {
  if (!trapped) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, &previous) != 0) return luaL_error(L, "trap_interrupt: sigaction failed");
    trapped = 1;
  }
  got_interrupt = 0;
  return 0;
}

static int l_release_interrupt(lua_State *L) {
  (void)L;
  if (trapped) {
    sigaction(SIGINT, &previous, NULL);
    trapped = 0;
  }
  return 0;
}

static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, got_interrupt != 0);
  if (lua_toboolean(L, 1)) got_interrupt = 0;
  return 1;
}

static int l_interrupt(lua_State *L) {
  if (!trapped) return luaL_error(L, "interrupt: Ctrl-C is not trapped (call trap_interrupt first)");
  raise(SIGINT);
  return 0;
}

void sgL_open_metrics(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {{"confusion", l_confusion},
                                 {"isatty", l_isatty},
                                 {"term_width", l_term_width},
                                 {"trap_interrupt", l_trap_interrupt},
                                 {"release_interrupt", l_release_interrupt},
                                 {"interrupted", l_interrupted},
                                 {"interrupt", l_interrupt},
                                 {NULL, NULL}};
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, mod, "metrics_core");
}
