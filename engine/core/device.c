/* The device registry: one table slot per device (backend.h). The cpu table
 * is registered when the library opens; every other backend is a module
 * (semseg_cuda.so) loaded on first use, so a process that never touches the
 * GPU never maps cuDNN or cuBLAS and a machine without them still runs. */
#define _GNU_SOURCE
#include "../backend.h"
#include "config.h"
#include <stddef.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the host needs no module: core's own allocator serves it until backend_cpu registers its table */
static const sg_backend host = {.name = "cpu"};
static const sg_backend *slots[SG_NDEVICES] = {[SG_CPU] = &host};
static bool tried[SG_NDEVICES];
static char why[SG_NDEVICES][2 * PATH_MAX];
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const module_file[SG_NDEVICES] = {[SG_CUDA] = "semseg_cuda.so"};

const char *sg_device_name(sg_device d) { return d == SG_CUDA ? "cuda" : "cpu"; }

void sg_backend_register(sg_device dev, const sg_backend *be) {
  if (dev >= 0 && dev < SG_NDEVICES) slots[dev] = be;
}

static const sg_backend *reference;

void sg_backend_register_reference(const sg_backend *ref) { reference = ref; }
const sg_backend *sg_backend_reference(void) { return reference; }

/* the table is a name followed by function pointers only */
void sg_backend_fill_missing(sg_backend *dst, const sg_backend *src) {
  typedef void (*fn)(void);
  size_t first = offsetof(sg_backend, available), n = (sizeof(sg_backend) - first) / sizeof(fn);
  for (size_t k = 0; k < n; k++) {
    fn d, s;
    memcpy(&d, (char *)dst + first + k * sizeof(fn), sizeof d);
    memcpy(&s, (const char *)src + first + k * sizeof(fn), sizeof s);
    if (!d && s) memcpy((char *)dst + first + k * sizeof(fn), &s, sizeof s);
  }
}

static bool readable(const char *p) { return access(p, R_OK) == 0; }

/* out = a + b, cut to n bytes (paths longer than PATH_MAX simply do not match) */
static void join(char *out, size_t n, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la >= n) la = n - 1;
  memcpy(out, a, la);
  if (lb >= n - la) lb = n - la - 1;
  memcpy(out + la, b, lb);
  out[la + lb] = 0;
}

/* Where the module may be: $SEMSEG_<DEV>_MODULE, beside the executable, beside
 * the image holding this code (the Lua module core.so) and two folders up from
 * it (build/lua/semseg/core.so -> build/). */
static bool find_module(sg_device dev, char *out, size_t n) {
  const char *file = module_file[dev];
  const char *e = getenv(dev == SG_CUDA ? "SEMSEG_CUDA_MODULE" : "SEMSEG_DEVICE_MODULE");
  if (e && *e) { join(out, n, e, ""); return true; }
  static char dirs[3][PATH_MAX];
  int nd = 0;
  ssize_t k = readlink("/proc/self/exe", dirs[0], sizeof dirs[0] - 1);
  if (k > 0) {
    dirs[0][k] = 0;
    char *s = strrchr(dirs[0], '/');
    if (s) { *s = 0; nd++; }
  }
  Dl_info info;
  if (dladdr((void *)&sg_backend_register, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
    join(dirs[nd], PATH_MAX, info.dli_fname, "");
    *strrchr(dirs[nd], '/') = 0;
    join(dirs[nd + 1], PATH_MAX, dirs[nd], "/../..");
    nd += 2;
  }
  for (int i = 0; i < nd; i++) {
    join(out, n, dirs[i], "/");
    join(out, n, out, file);
    if (readable(out)) return true;
  }
  join(out, n, nd ? dirs[0] : ".", "");
  return false;
}

/* The engine's symbols must be visible to the module: in the program they are
 * (-rdynamic); in core.so loaded by stock lua5.4 (RTLD_LOCAL) they are made
 * global first. */
static void export_engine_symbols(void) {
  Dl_info info;
  if (dladdr((void *)&sg_backend_register, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

static void load(sg_device dev) {
  tried[dev] = true;
  if (!module_file[dev]) { snprintf(why[dev], sizeof why[dev], "no backend for this device"); return; }
  /* a build that links the backend in (none today, but harmless) */
  void (*entry)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, SG_BACKEND_ENTRY_NAME);
  if (!entry) {
    static char path[PATH_MAX];
    if (!find_module(dev, path, sizeof path)) {
      snprintf(why[dev], sizeof why[dev],
               "this semseg was built without the %s backend (no %s beside the program in %s; make builds it "
               "when it finds nvcc, cuDNN and cuBLAS)", sg_device_name(dev), module_file[dev], path);
      return;
    }
    export_engine_symbols();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      snprintf(why[dev], sizeof why[dev], "the %s backend %s cannot be loaded: %s", sg_device_name(dev), path,
               dlerror());
      return;
    }
    entry = (void (*)(void))dlsym(h, SG_BACKEND_ENTRY_NAME);
    if (!entry) {
      snprintf(why[dev], sizeof why[dev], "%s is not a semseg backend (no %s)", path, SG_BACKEND_ENTRY_NAME);
      return;
    }
  }
  entry();
  if (!slots[dev]) snprintf(why[dev], sizeof why[dev], "the %s module registered no table", sg_device_name(dev));
}

static const sg_backend *ensure(sg_device dev) {
  if (dev < 0 || dev >= SG_NDEVICES) return NULL;
  if (dev == SG_CPU && sg_config.reference && reference) return reference;
  if (slots[dev] || tried[dev]) return slots[dev];
  pthread_mutex_lock(&load_lock);
  if (!slots[dev] && !tried[dev]) load(dev);
  pthread_mutex_unlock(&load_lock);
  return slots[dev];
}

const sg_backend *sg_backend_loaded(sg_device dev) {
  return dev >= 0 && dev < SG_NDEVICES ? slots[dev] : NULL;
}

bool sg_backend_present(sg_device dev) { return ensure(dev) != NULL; }

const char *sg_backend_why_missing(sg_device dev) {
  if (ensure(dev)) return "";
  return dev >= 0 && dev < SG_NDEVICES ? why[dev] : "no such device";
}

const sg_backend *sg_backend_get(sg_device dev) {
  const sg_backend *be = ensure(dev);
  if (!be) {
    sg_error_set("device '%s' is not available: %s", sg_device_name(dev), sg_backend_why_missing(dev));
    return NULL;
  }
  if (be->available && !be->available()) {
    sg_error_set("device '%s' is not available: %s", sg_device_name(dev),
                 be->why_unavailable ? be->why_unavailable() : "no device");
    return NULL;
  }
  return be;
}

bool sg_device_available(sg_device d) {
  const sg_backend *be = ensure(d);
  return be && (!be->available || be->available());
}

int sg_backend_missing(const char *op, sg_device dev) {
  sg_error_set("%s: not supported on device '%s'", op, sg_device_name(dev));
  return -1;
}
