/* The error buffer: a failing engine function writes its message here
 * (thread-local) and returns NULL or -1; the binding turns it into a Lua error. */
#include "tensor.h"
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char err_buf[1024];

void sg_error_set(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
}

const char *sg_error_get(void) { return err_buf[0] ? err_buf : "unknown error"; }
