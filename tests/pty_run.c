/* pty_run: drives an interactive program through a pseudo-terminal, for the
 * REPL tests.
 *
 *   pty_run [-t seconds] [-w columns] program [args...] < script
 *
 * The script has one command a line (escapes \n \r \t \e \\ \xHH in TEXT):
 *   send TEXT     write TEXT to the program's terminal
 *   expect TEXT   wait until TEXT appears in the output after the previous match
 *   sleep MS      wait MS milliseconds, collecting output
 *   # ...         a comment
 * After the script it waits for the program to exit, then writes everything
 * the program wrote to the terminal on stdout and exits with the program's
 * exit status (128+n for a signal). On a timeout it says what it waited for
 * on stderr, kills the program, prints the output so far and exits 124. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *out;
static size_t out_n, out_cap, mark;
static int master = -1;
static pid_t child;
static bool child_done;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Reads what is available within wait_ms: 1 read something, 0 nothing came,
 * -1 the terminal is closed. */
static int pump(int wait_ms) {
  if (master < 0) return -1;
  struct pollfd p = {master, POLLIN, 0};
  int r = poll(&p, 1, wait_ms);
  if (r <= 0) return 0;
  if (out_n + 4096 + 1 > out_cap) {
    out_cap = (out_n + 4096 + 1) * 2;
    out = realloc(out, out_cap);
    if (!out) { perror("pty_run"); exit(125); }
  }
  ssize_t n = read(master, out + out_n, 4096);
  if (n <= 0) { /* EIO: the program closed its side */
    close(master);
    master = -1;
    return -1;
  }
  out_n += (size_t)n;
  out[out_n] = '\0';
  return 1;
}

static void dump_and_exit(int code) {
  if (out_n) fwrite(out, 1, out_n, stdout);
  fflush(stdout);
  exit(code);
}

static void fail_timeout(const char *what, const char *text) {
  fprintf(stderr, "pty_run: timed out %s%s%s\n", what, text ? ": " : "", text ? text : "");
  if (!child_done) kill(child, SIGKILL);
  dump_and_exit(124);
}

/* Decodes the escapes of s in place; returns the length. */
static size_t unescape(char *s) {
  char *w = s;
  for (char *p = s; *p; p++) {
    if (*p != '\\' || !p[1]) { *w++ = *p; continue; }
    p++;
    switch (*p) {
      case 'n': *w++ = '\n'; break;
      case 'r': *w++ = '\r'; break;
      case 't': *w++ = '\t'; break;
      case 'e': *w++ = 27; break;
      case 'x': {
        char hex[3] = {0, 0, 0};
        for (int i = 0; i < 2 && p[1] && strchr("0123456789abcdefABCDEF", p[1]); i++) hex[i] = *++p;
        *w++ = (char)strtol(hex, NULL, 16);
        break;
      }
      default: *w++ = *p; break;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

int main(int argc, char **argv) {
  double timeout_ms = 10000;
  unsigned short cols = 100;
  int i = 1;
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (strcmp(argv[i], "-t") == 0) timeout_ms = atof(argv[i + 1]) * 1e3;
    else if (strcmp(argv[i], "-w") == 0) cols = (unsigned short)atoi(argv[i + 1]);
    else break;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: pty_run [-t seconds] [-w columns] program [args...] < script\n");
    return 125;
  }
  /* read the whole script before the program can take stdin */
  char *lines[1024];
  int nlines = 0;
  char buf[4096];
  while (nlines < 1024 && fgets(buf, sizeof buf, stdin)) {
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    lines[nlines++] = strdup(buf);
  }
  struct winsize ws = {30, cols, 0, 0};
  child = forkpty(&master, NULL, NULL, &ws);
  if (child < 0) { perror("pty_run: forkpty"); return 125; }
  if (child == 0) {
    execvp(argv[i], argv + i);
    fprintf(stderr, "pty_run: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  for (int k = 0; k < nlines; k++) {
    char *line = lines[k];
    if (line[0] == '#' || line[0] == '\0') continue;
    char *arg = strchr(line, ' ');
    arg = arg ? arg + 1 : line + strlen(line);
    if (strncmp(line, "send ", 5) == 0) {
      size_t n = unescape(arg);
      pump(0);
      if (master < 0 || write(master, arg, n) != (ssize_t)n) fail_timeout("writing (the program has exited)", NULL);
    } else if (strncmp(line, "expect ", 7) == 0) {
      unescape(arg);
      double end = now_ms() + timeout_ms;
      for (;;) {
        char *hit = out ? strstr(out + mark, arg) : NULL;
        if (hit) { mark = (size_t)(hit - out) + strlen(arg); break; }
        double left = end - now_ms();
        if (left <= 0 || pump(left > 100 ? 100 : (int)left + 1) < 0) {
          if (out && (hit = strstr(out + mark, arg))) { mark = (size_t)(hit - out) + strlen(arg); break; }
          if (now_ms() >= end || master < 0) fail_timeout("waiting for", arg);
        }
      }
    } else if (strncmp(line, "sleep ", 6) == 0) {
      double end = now_ms() + atof(arg);
      while (now_ms() < end && pump((int)(end - now_ms()) + 1) >= 0) {}
    } else {
      fprintf(stderr, "pty_run: unknown script command: %s\n", line);
      kill(child, SIGKILL);
      return 125;
    }
  }
  /* wait for the program to exit, collecting what it still writes */
  double end = now_ms() + timeout_ms;
  int status = 0;
  for (;;) {
    pump(50);
    pid_t w = waitpid(child, &status, WNOHANG);
    if (w == child) {
      child_done = true;
      while (pump(20) > 0) {}
      break;
    }
    if (now_ms() > end) fail_timeout("waiting for the program to exit", NULL);
  }
  for (int k = 0; k < nlines; k++) free(lines[k]);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  dump_and_exit(code);
  return code;
}
