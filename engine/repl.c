/* The interactive REPL of semseg.
 *
 * On a terminal it edits lines with libedit (emacs keys, ~/.editrc), keeps a
 * history in ~/.semseg_history (or $SEMSEG_HISTORY; empty disables it),
 * completes globals, fields and methods with Tab, and shows how long each
 * command took. A line is first compiled as `return <line>` so expressions
 * print their values; an incomplete chunk asks for more lines. Errors print
 * with a traceback and the session goes on; Ctrl-C abandons the line being
 * typed or interrupts a running command; Ctrl-D exits.
 *
 * When stdin is not a terminal the same loop reads plain lines without
 * prompts, banner or timings (`echo '1+1' | semseg` prints 2); the exit
 * status is then 1 if any command failed. */
#include "cli.h"
#include "lua/binding.h"
#include <ctype.h>
#include <errno.h>
#include <histedit.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>


#define PROMPT1 "sg> "
#define PROMPT2 "..> "
#define HISTORY_SIZE 2000
#define TABLE_ITEMS 40 /* entries shown when a table is auto-printed */

typedef struct {
  lua_State *L;
  EditLine *el;
  History *hist;
  HistEvent ev;
  bool tty, color;
  bool interrupted; /* Ctrl-C typed at the prompt */
  const char *prompt;
  char histfile[PATH_MAX];
  int failures;
} repl;

/* ------------------------------------------------------------------ signals */
static volatile sig_atomic_t got_sigint;
static lua_State *running_state; /* set while a command runs */

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  (void)sig;
  got_sigint = 1;
  /* lua_sethook is safe to call from a signal handler (as lua.c does) */
  if (running_state) lua_sethook(running_state, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void catch_sigint(bool on, struct sigaction *old) {
  if (on) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a read at the prompt returns EINTR */
    sigaction(SIGINT, &sa, old);
  } else {
    sigaction(SIGINT, old, NULL);
  }
}

/* ----------------------------------------------------------- growing string */
typedef struct { char *s; size_t n, cap; } strbuf;

static void sb_add(strbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) return; /* drop the text rather than crash */
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}
static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* ----------------------------------------------------------------- printing */
static bool is_identifier(const char *s) {
  static const char *const keywords[] = {"and", "break", "do", "else", "elseif", "end", "false", "for",
                                         "function", "goto", "if", "in", "local", "nil", "not", "or",
                                         "repeat", "return", "then", "true", "until", "while", NULL};
  if (!(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (const char *p = s; *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '_')) return false;
  for (int i = 0; keywords[i]; i++)
    if (strcmp(s, keywords[i]) == 0) return false;
  return true;
}

static void quote_string(strbuf *b, const char *s, size_t n) {
  sb_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; sb_add(b, esc, 2); }
    else if (c == '\n') sb_str(b, "\\n");
    else if (c == '\t') sb_str(b, "\\t");
    else if (c < 32 || c == 127) { snprintf(esc, sizeof esc, "\\%d", c); sb_str(b, esc); }
    else sb_add(b, (const char *)&c, 1);
  }
  sb_add(b, "\"", 1);
}

/* Appends a readable form of the value at idx: strings quoted inside tables,
 * plain tables shown as constructors up to `depth` levels, anything with
 * __tostring or __name (tensors) through tostring. May raise (__tostring). */
static void repr(lua_State *L, int idx, int depth, bool top, strbuf *b) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 4, "value too deeply nested");
  int type = lua_type(L, idx);
  if (type == LUA_TSTRING && !top) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    quote_string(b, s, n);
    return;
  }
  bool plain_table = type == LUA_TTABLE && depth > 0 && luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL &&
                     luaL_getmetafield(L, idx, "__name") == LUA_TNIL;
  if (!plain_table) {
    size_t n;
    const char *s = luaL_tolstring(L, idx, &n);
    sb_add(b, s, n);
    lua_pop(L, 1);
    return;
  }
  sb_str(b, "{");
  int shown = 0;
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  for (lua_Integer i = 1; i <= len && shown < TABLE_ITEMS; i++, shown++) {
    if (shown) sb_str(b, ", ");
    lua_rawgeti(L, idx, i);
    repr(L, -1, depth - 1, false, b);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
        lua_tointeger(L, -2) <= len) { lua_pop(L, 1); continue; }
    if (shown >= TABLE_ITEMS) { lua_pop(L, 2); sb_str(b, ", ..."); break; }
    if (shown++) sb_str(b, ", ");
    if (lua_type(L, -2) == LUA_TSTRING && is_identifier(lua_tostring(L, -2))) {
      sb_str(b, lua_tostring(L, -2));
    } else {
      sb_str(b, "[");
      repr(L, -2, 0, false, b);
      sb_str(b, "]");
    }
    sb_str(b, " = ");
    repr(L, -1, depth - 1, false, b);
    lua_pop(L, 1);
  }
  if (shown >= TABLE_ITEMS && len > TABLE_ITEMS) sb_str(b, ", ...");
  sb_str(b, "}");
}

/* print_results(...): writes all arguments, tab-separated, on one line. */
static int print_results(lua_State *L) {
  int n = lua_gettop(L);
  strbuf b = {0};
  for (int i = 1; i <= n; i++) {
    if (i > 1) sb_str(&b, "\t");
    repr(L, i, 3, true, &b);
  }
  if (b.s) {
    fwrite(b.s, 1, b.n, stdout);
    fputc('\n', stdout);
  }
  free(b.s);
  fflush(stdout);
  return 0;
}


static void report(repl *r, const char *what) {
  const char *msg = lua_tostring(r->L, -1);
  fflush(stdout);
  fprintf(stderr, "%s%s\n", what, msg ? msg : "(error object is not a string)");
  fflush(stderr);
  lua_pop(r->L, 1);
  r->failures++;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void print_elapsed(repl *r, double s) {
  char text[64];
  double ms = s * 1e3;
  if (ms < 1) snprintf(text, sizeof text, "(%.3f ms)", ms);
  else if (ms < 10) snprintf(text, sizeof text, "(%.2f ms)", ms);
  else if (ms < 1000) snprintf(text, sizeof text, "(%.1f ms)", ms);
  else if (s < 60) snprintf(text, sizeof text, "(%.2f s)", s);
  else snprintf(text, sizeof text, "(%dm %.1f s)", (int)(s / 60), s - 60 * (int)(s / 60));
  if (r->color) printf("\033[2m%s\033[0m\n", text);
  else printf("%s\n", text);
  fflush(stdout);
}

/* ------------------------------------------------------------ reading input */
static char *prompt_fn(EditLine *el) {
  repl *r = NULL;
  el_get(el, EL_CLIENTDATA, &r);
  return (char *)(r && r->prompt ? r->prompt : PROMPT1);
}

/* libedit's own reader retries a read that a signal interrupted, so Ctrl-C
 * would only take effect at the next key; this one gives up at once. Bytes
 * are decoded to wide characters by the locale (UTF-8 input). */
static int read_char_fn(EditLine *el, wchar_t *wc) {
  (void)el;
  mbstate_t st;
  memset(&st, 0, sizeof st);
  for (;;) {
    if (got_sigint) return -1;
    char c;
    ssize_t k = read(STDIN_FILENO, &c, 1);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) return 0; /* end of input */
    wchar_t w;
    size_t m = mbrtowc(&w, &c, 1, &st);
    if (m == (size_t)-2) continue; /* more bytes of this character */
    if (m == (size_t)-1) { *wc = (wchar_t)(unsigned char)c; return 1; }
    *wc = m == 0 ? L'\0' : w;
    return 1;
  }
}

/* Reads one line without its newline into a malloc'ed string; NULL at end of
 * input. *interrupted is set when Ctrl-C abandoned the line. */
static char *read_line(repl *r, const char *prompt, bool *interrupted) {
  *interrupted = false;
  if (!r->tty) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) { free(line); return NULL; }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    return line;
  }
  r->prompt = prompt;
  struct sigaction old;
  got_sigint = 0;
  catch_sigint(true, &old);
  int count = 0;
  /* raw mode before the prompt shows: this libedit switches only when it
   * first reads, and what is typed in between would be echoed and cooked */
  el_set(r->el, EL_PREP_TERM, 1);
  r->interrupted = false;
  const char *line = el_gets(r->el, &count);
  catch_sigint(false, &old);
  if (got_sigint || r->interrupted) {
    got_sigint = 0;
    r->interrupted = false;
    el_reset(r->el);
    *interrupted = true;
    fputs("^C\n", stdout);
    fflush(stdout);
    return NULL;
  }
  if (!line || count <= 0) return NULL;
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
  char *copy = malloc(n + 1);
  if (!copy) return NULL;
  memcpy(copy, line, n);
  copy[n] = '\0';
  return copy;
}

static void remember(repl *r, const char *chunk) {
  if (!r->hist) return;
  history(r->hist, &r->ev, H_ENTER, chunk);
  if (r->histfile[0]) history(r->hist, &r->ev, H_SAVE, r->histfile);
}

/* ---------------------------------------------------------------- compiling */
static bool incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return false;
  size_t n;
  const char *msg = lua_tolstring(L, -1, &n);
  static const char mark[] = "<eof>";
  return msg && n >= sizeof mark - 1 && strcmp(msg + n - (sizeof mark - 1), mark) == 0;
}

/* Compiles the text: `return <text>` when that is valid (an expression),
 * else the text as statements. Pushes the function, or the error message.
 * Returns 1 compiled, 0 error, -1 incomplete (more lines needed). */
static int compile(lua_State *L, const char *text) {
  lua_pushfstring(L, "return %s", text);
  size_t n;
  const char *ret = lua_tolstring(L, -1, &n);
  int rs = luaL_loadbuffer(L, ret, n, "=stdin");
  lua_remove(L, -2);
  if (rs == LUA_OK) return 1;
  bool ret_incomplete = incomplete(L, rs);
  lua_pop(L, 1);
  int ps = luaL_loadbuffer(L, text, strlen(text), "=stdin");
  if (ps == LUA_OK) return 1;
  if (ret_incomplete || incomplete(L, ps)) { lua_pop(L, 1); return -1; }
  return 0;
}

/* Reads a whole chunk (one or more lines), leaving its function on the
 * stack. Returns 1 compiled, 0 syntax error (message pushed), -1 at end of
 * input, -2 when the input was abandoned (Ctrl-C / Ctrl-D mid-chunk). */
static int read_chunk(repl *r) {
  bool interrupted;
  char *line;
  for (;;) {
    line = read_line(r, PROMPT1, &interrupted);
    if (!line) return interrupted ? -2 : -1;
    const char *p = line;
    while (isspace((unsigned char)*p)) p++;
    if (*p) break;
    free(line);
  }
  strbuf text = {0};
  sb_str(&text, line[0] == '=' ? "return " : "");     /* lua 5.1 style "=expr" */
  sb_str(&text, line[0] == '=' ? line + 1 : line);
  free(line);
  int status;
  while ((status = compile(r->L, text.s)) == -1) {
    line = read_line(r, PROMPT2, &interrupted);
    if (!line) {
      if (interrupted) { free(text.s); return -2; }
      if (r->tty) { /* Ctrl-D in a continuation: drop the chunk */
        fputc('\n', stdout);
        remember(r, text.s);
        free(text.s);
        return -2;
      }
      /* end of piped input inside a chunk: report what the parser says */
      luaL_loadbuffer(r->L, text.s, text.n, "=stdin");
      free(text.s);
      return 0;
    }
    sb_str(&text, "\n");
    sb_str(&text, line);
    free(line);
  }
  remember(r, text.s);
  free(text.s);
  return status;
}

/* ---------------------------------------------------------------- executing */
static void execute(repl *r) {
  lua_State *L = r->L;
  int base = lua_gettop(L); /* the function */
  lua_pushcfunction(L, sg_msghandler);
  lua_insert(L, base);
  struct sigaction old;
  got_sigint = 0;
  running_state = L;
  catch_sigint(true, &old);
  double t0 = now_seconds();
  int status = lua_pcall(L, 0, LUA_MULTRET, base);
  double elapsed = now_seconds() - t0;
  catch_sigint(false, &old);
  running_state = NULL;
  lua_sethook(L, NULL, 0, 0);
  if (status != LUA_OK) {
    report(r, "");
    lua_settop(L, base - 1);
    return;
  }
  int nres = lua_gettop(L) - base;
  if (nres > 0) {
    luaL_checkstack(L, 2, "too many results to print");
    lua_pushcfunction(L, print_results);
    lua_insert(L, base + 1);
    if (lua_pcall(L, nres, 0, base) != LUA_OK) report(r, "error printing the result: ");
  }
  lua_settop(L, base - 1);
  if (r->tty) print_elapsed(r, elapsed);
}

/* --------------------------------------------------------------- completion */
typedef struct {
  char **v;
  int n, cap;
} names;

static const char *const tensor_fields[] = {"shape", "dtype", "device", "grad", "ndim",
                                            "is_leaf", "grad_fn", "version", NULL};

/* Adds the string keys of the table at idx (identifiers; functions only when
 * methods_only) to the set table at `set`, then follows __index. */
static void collect(lua_State *L, int idx, int set, bool methods_only, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > 6) return;
  luaL_checkstack(L, 6, NULL);
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int top = lua_gettop(L); /* key at top-1, value at top */
      if (lua_type(L, -2) == LUA_TSTRING && is_identifier(lua_tostring(L, -2))) {
        bool callable = lua_type(L, -1) == LUA_TFUNCTION || luaL_getmetafield(L, -1, "__call") != LUA_TNIL;
        if (!methods_only || callable) {
          lua_pushvalue(L, top - 1);
          lua_pushboolean(L, 1);
          lua_rawset(L, set);
        }
      }
      lua_settop(L, top - 1);
    }
  }
  if (lua_type(L, idx) == LUA_TUSERDATA && !methods_only && luaL_testudata(L, idx, SG_TENSOR_MT)) {
    for (int i = 0; tensor_fields[i]; i++) {
      lua_pushboolean(L, 1);
      lua_setfield(L, set, tensor_fields[i]);
    }
  }
  if (!lua_getmetatable(L, idx)) return;
  int t = lua_getfield(L, -1, "__index");
  if (t == LUA_TTABLE) {
    collect(L, -1, set, methods_only, depth + 1);
  } else if (t == LUA_TFUNCTION) {
    /* a closure whose first upvalue is a method table (the tensor __index) */
    if (lua_getupvalue(L, -1, 1)) {
      if (lua_type(L, -1) == LUA_TTABLE) collect(L, -1, set, methods_only, depth + 1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

/* complete_names(word): a sorted array of the names that may follow the last
 * '.' or ':' of word (or the globals and keywords when there is none), and
 * the part of word after it. Runs under pcall: __index may raise. */
static int complete_names(lua_State *L) {
  const char *word = luaL_checkstring(L, 1);
  const char *sep = NULL;
  for (const char *p = word; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  lua_newtable(L);
  int set = lua_gettop(L);
  if (!sep) {
    static const char *const keywords[] = {"and", "break", "do", "else", "elseif", "end", "false", "for",
                                           "function", "goto", "if", "in", "local", "nil", "not", "or",
                                           "repeat", "return", "then", "true", "until", "while", NULL};
    for (int i = 0; keywords[i]; i++) { lua_pushboolean(L, 1); lua_setfield(L, set, keywords[i]); }
    lua_pushglobaltable(L);
    collect(L, -1, set, false, 0);
    lua_pop(L, 1);
  } else {
    /* resolve the path before sep: names separated by '.' */
    lua_pushglobaltable(L);
    const char *p = word;
    while (p < sep) {
      const char *q = p;
      while (q < sep && *q != '.' && *q != ':') q++;
      if (q == p || (*q == ':' && q != sep)) return 0;
      lua_pushlstring(L, p, (size_t)(q - p));
      if (!is_identifier(lua_tostring(L, -1))) return 0;
      if (lua_type(L, -2) != LUA_TTABLE && lua_type(L, -2) != LUA_TUSERDATA && lua_type(L, -2) != LUA_TSTRING) return 0;
      lua_gettable(L, -2);
      lua_remove(L, -2);
      p = q + 1;
    }
    if (lua_isnil(L, -1)) return 0;
    collect(L, -1, set, *sep == ':', 0);
    lua_pop(L, 1);
  }
  lua_pushstring(L, sep ? sep + 1 : word);
  lua_insert(L, set);
  return 2; /* partial, set */
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(names *ns) {
  for (int i = 0; i < ns->n; i++) free(ns->v[i]);
  free(ns->v);
}

/* The candidates for word that start with its partial last component. */
static bool candidates(lua_State *L, const char *word, names *out, char **partial) {
  int top = lua_gettop(L);
  lua_pushcfunction(L, complete_names);
  lua_pushstring(L, word);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK || lua_type(L, -1) != LUA_TTABLE) { lua_settop(L, top); return false; }
  const char *part = lua_tostring(L, -2);
  size_t plen = strlen(part);
  *partial = strdup(part);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    const char *name = lua_tostring(L, -1);
    if (strncmp(name, part, plen) != 0) continue;
    if (name[0] == '_' && name[1] == '_' && strncmp(part, "__", 2) != 0) continue;
    if (out->n == out->cap) {
      int cap = out->cap ? out->cap * 2 : 32;
      char **v = realloc(out->v, (size_t)cap * sizeof *v);
      if (!v) break;
      out->v = v;
      out->cap = cap;
    }
    out->v[out->n++] = strdup(name);
  }
  lua_settop(L, top);
  if (out->n) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_names);
  return true;
}

static void list_names(FILE *f, names *ns) {
  int width = 80;
  struct winsize ws;
  if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) width = ws.ws_col;
  int longest = 0;
  for (int i = 0; i < ns->n; i++) {
    int len = (int)strlen(ns->v[i]);
    if (len > longest) longest = len;
  }
  int colw = longest + 2;
  int cols = width / colw > 0 ? width / colw : 1;
  int rows = (ns->n + cols - 1) / cols;
  fputc('\n', f);
  for (int row = 0; row < rows; row++) {
    for (int col = 0; col < cols; col++) {
      int i = col * rows + row;
      if (i >= ns->n) break;
      bool last = col == cols - 1 || (col + 1) * rows + row >= ns->n;
      if (last) fputs(ns->v[i], f);
      else fprintf(f, "%-*s", colw, ns->v[i]);
    }
    fputc('\n', f);
  }
  fflush(f);
}

static unsigned char complete(EditLine *el, int ch) {
  (void)ch;
  repl *r = NULL;
  el_get(el, EL_CLIENTDATA, &r);
  const LineInfo *li = el_line(el);
  const char *start = li->cursor;
  while (start > li->buffer &&
         (isalnum((unsigned char)start[-1]) || start[-1] == '_' || start[-1] == '.' || start[-1] == ':'))
    start--;
  bool blank = true;
  for (const char *p = li->buffer; p < li->cursor; p++)
    if (!isspace((unsigned char)*p)) blank = false;
  if (blank) return el_insertstr(el, "  ") == 0 ? CC_REFRESH : CC_ERROR; /* indent */
  size_t wlen = (size_t)(li->cursor - start);
  char *word = malloc(wlen + 1);
  if (!word) return CC_ERROR;
  memcpy(word, start, wlen);
  word[wlen] = '\0';
  names ns = {0};
  char *partial = NULL;
  unsigned char rc = CC_ERROR;
  if (candidates(r->L, word, &ns, &partial) && ns.n > 0) {
    size_t plen = strlen(partial);
    size_t common = strlen(ns.v[0]);
    for (int i = 1; i < ns.n; i++) {
      size_t k = 0;
      while (k < common && ns.v[i][k] == ns.v[0][k]) k++;
      common = k;
    }
    if (common > plen) {
      char *ins = strndup(ns.v[0] + plen, common - plen);
      rc = ins && el_insertstr(el, ins) == 0 ? CC_REFRESH : CC_ERROR;
      free(ins);
    } else if (ns.n > 1) {
      FILE *out = stdout;
      el_get(el, EL_GETFP, 1, &out);
      list_names(out, &ns);
      rc = CC_REDISPLAY;
    } else {
      rc = CC_REFRESH; /* already complete */
    }
  }
  free(partial);
  free_names(&ns);
  free(word);
  return rc;
}

/* Ctrl-C at the prompt is a key (signals are off while editing): it ends
 * el_gets like Ctrl-D on an empty line, and read_line tells them apart. */
static unsigned char interrupt_key(EditLine *el, int ch) {
  (void)ch;
  repl *r = NULL;
  el_get(el, EL_CLIENTDATA, &r);
  if (r) r->interrupted = true;
  return CC_EOF;
}

/* Ctrl-Z at the prompt: suspend; libedit's SIGTSTP/SIGCONT handlers restore
 * the terminal and redraw the line. */
static unsigned char suspend_key(EditLine *el, int ch) {
  (void)el;
  (void)ch;
  raise(SIGTSTP);
  return CC_REDISPLAY;
}

/* ------------------------------------------------------------------- set-up */
static void open_editor(repl *r) {
  r->el = el_init("semseg", stdin, stdout, stderr);
  if (!r->el) { r->tty = false; return; }
  el_set(r->el, EL_CLIENTDATA, r);
  el_set(r->el, EL_PROMPT, prompt_fn);
  el_set(r->el, EL_EDITOR, "emacs");
  el_set(r->el, EL_SIGNAL, 1);
  el_set(r->el, EL_GETCFN, read_char_fn);
  r->hist = history_init();
  if (r->hist) {
    history(r->hist, &r->ev, H_SETSIZE, HISTORY_SIZE);
    history(r->hist, &r->ev, H_SETUNIQUE, 1);
    el_set(r->el, EL_HIST, history, r->hist);
    const char *env = getenv("SEMSEG_HISTORY");
    const char *home = getenv("HOME");
    if (env) snprintf(r->histfile, sizeof r->histfile, "%s", env);
    else if (home && *home) snprintf(r->histfile, sizeof r->histfile, "%s/.semseg_history", home);
    if (r->histfile[0]) history(r->hist, &r->ev, H_LOAD, r->histfile);
  }
  /* the wide form keeps these static strings (the narrow one leaks copies) */
  el_wset(r->el, EL_ADDFN, L"sg-complete", L"complete a name, field or method", complete);
  el_set(r->el, EL_BIND, "^I", "sg-complete", NULL);
  el_wset(r->el, EL_ADDFN, L"sg-interrupt", L"abandon the input being typed", interrupt_key);
  el_set(r->el, EL_BIND, "^C", "sg-interrupt", NULL);
  el_wset(r->el, EL_ADDFN, L"sg-suspend", L"suspend the REPL", suspend_key);
  el_set(r->el, EL_BIND, "^Z", "sg-suspend", NULL);
  /* while editing, ^C and ^Z arrive as keys rather than as signals */
  el_set(r->el, EL_SETTY, "-d", "-isig", NULL);
  el_source(r->el, NULL); /* ~/.editrc */
}

static void banner(repl *r) {
  lua_getglobal(r->L, "sg");
  const char *version = "?";
  if (lua_type(r->L, -1) == LUA_TTABLE) {
    lua_getfield(r->L, -1, "version");
    if (lua_isstring(r->L, -1)) version = lua_tostring(r->L, -1);
  }
  printf("semseg %s (%s, backends: cpu) -- sg = require \"semseg\" is loaded\n", version, LUA_RELEASE);
  printf("Tab completes (try sg. and t:), Ctrl-D exits, `semseg help` for the command line.\n");
  fflush(stdout);
  lua_settop(r->L, 0);
}

int sg_repl(lua_State *L) {
  repl r;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  lua_settop(L, 0);
  if (r.tty) {
    /* libedit edits wide characters: without a multibyte locale it would
     * drop the bytes of non-ASCII input, so fall back to UTF-8 */
    if (!setlocale(LC_CTYPE, "") || MB_CUR_MAX == 1) setlocale(LC_CTYPE, "C.UTF-8");
    open_editor(&r);
    const char *term = getenv("TERM");
    r.color = r.tty && term && strcmp(term, "dumb") != 0 && !getenv("NO_COLOR");
    if (r.tty) banner(&r);
  }
  for (;;) {
    int status = read_chunk(&r);
    if (status == -1) break;
    if (status == -2) { lua_settop(L, 0); continue; }
    if (status == 0) report(&r, "");
    else execute(&r);
    lua_settop(L, 0);
  }
  if (r.tty) { fputc('\n', stdout); fflush(stdout); }
  if (r.el) el_end(r.el);
  if (r.hist) history_end(r.hist);
  return r.tty || r.failures == 0 ? 0 : 1;
}
