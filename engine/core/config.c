/* Runtime configuration (config.h): defaults, the SEMSEG_* variables, checked setters. */
#include "config.h"
#include "tensor.h"
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

sg_config_t sg_config = {
  .threads = 0, .deterministic = false, .winograd = true, .dnnl = true,
  .cuda_benchmark = false, .allow_tf32 = false, .conv_tf32 = false, .gc_step_mb = 64,
};

static const sg_config_entry entries[] = {
  {"threads", "SEMSEG_THREADS", "OpenMP threads for CPU kernels and oneDNN (0: the OpenMP default)", SG_CFG_INT,
   &sg_config.threads, 0, 4096},
  {"deterministic", "SEMSEG_DETERMINISTIC", "same bits for any thread count and run", SG_CFG_BOOL,
   &sg_config.deterministic, 0, 1},
  {"winograd", "SEMSEG_WINOGRAD", "oneDNN Winograd convolutions where they pay", SG_CFG_BOOL, &sg_config.winograd, 0,
   1},
  {"dnnl", "SEMSEG_DNNL", "oneDNN fast paths where the build has them", SG_CFG_BOOL, &sg_config.dnnl, 0, 1},
  {"cuda_benchmark", "SEMSEG_CUDA_BENCHMARK", "time cuDNN's candidate algorithms once per shape", SG_CFG_BOOL,
   &sg_config.cuda_benchmark, 0, 1},
  {"allow_tf32", "SEMSEG_ALLOW_TF32", "f32 matrix products on TF32 tensor cores", SG_CFG_BOOL, &sg_config.allow_tf32,
   0, 1},
  {"conv_tf32", "SEMSEG_CONV_TF32", "f32 convolutions on TF32 tensor cores", SG_CFG_BOOL, &sg_config.conv_tf32, 0, 1},
  {"reference", "SEMSEG_REFERENCE", "run cpu ops on the plain reference loops (tests)", SG_CFG_BOOL,
   &sg_config.reference, 0, 1},
  {"gc_step_mb", "SEMSEG_GC_STEP_MB", "a Lua collector step per this many MB of tensor memory allocated", SG_CFG_NUM,
   &sg_config.gc_step_mb, 1, 1 << 20},
  {NULL, NULL, NULL, SG_CFG_BOOL, NULL, 0, 0},
};

const sg_config_entry *sg_config_entries(void) { return entries; }

const sg_config_entry *sg_config_find(const char *name) {
  for (const sg_config_entry *e = entries; e->name; e++)
    if (strcmp(e->name, name) == 0) return e;
  return NULL;
}

double sg_config_get(const sg_config_entry *e) {
  switch (e->type) {
  case SG_CFG_BOOL: return *(bool *)e->field;
  case SG_CFG_INT: return *(int *)e->field;
  default: return *(double *)e->field;
  }
}

static void apply(const sg_config_entry *e) {
#ifdef _OPENMP
  if (e->field == &sg_config.threads && sg_config.threads > 0) omp_set_num_threads(sg_config.threads);
#else
  (void)e;
#endif
}

int sg_config_set(const char *name, double v) {
  const sg_config_entry *e = sg_config_find(name);
  if (!e) { sg_error_set("config: no setting '%s'", name); return -1; }
  if (!(v >= e->lo && v <= e->hi) || (e->type != SG_CFG_NUM && v != (double)(int64_t)v)) {
    sg_error_set("config.%s: %g is out of range (%s from %g to %g)", name, v,
                 e->type == SG_CFG_BOOL ? "a boolean" : e->type == SG_CFG_INT ? "a whole number" : "a number", e->lo,
                 e->hi);
    return -1;
  }
  switch (e->type) {
  case SG_CFG_BOOL: *(bool *)e->field = v != 0; break;
  case SG_CFG_INT: *(int *)e->field = (int)v; break;
  default: *(double *)e->field = v; break;
  }
  apply(e);
  return 0;
}

/* "0", "off", "false", "no" are false for a boolean; anything else set is true */
static bool parse_env(const sg_config_entry *e, const char *s, double *v) {
  if (e->type == SG_CFG_BOOL) {
    *v = !(strcmp(s, "0") == 0 || strcmp(s, "off") == 0 || strcmp(s, "false") == 0 || strcmp(s, "no") == 0);
    return true;
  }
  char *end;
  *v = strtod(s, &end);
  return end != s && *end == 0;
}

static sg_config_t defaults;
static bool inited;

/* the variable's value, else the default */
static void from_env(const sg_config_entry *e) {
  const char *s = getenv(e->env);
  double v;
  /* a bad variable keeps the default rather than stopping every program that starts */
  if (s && *s && parse_env(e, s, &v) && sg_config_set(e->name, v) == 0) return;
  size_t off = (size_t)((char *)e->field - (char *)&sg_config);
  size_t n = e->type == SG_CFG_BOOL ? sizeof(bool) : e->type == SG_CFG_INT ? sizeof(int) : sizeof(double);
  memcpy(e->field, (char *)&defaults + off, n);
  apply(e);
}

void sg_config_init(void) {
  if (inited) return;
  inited = true;
  defaults = sg_config;
  for (const sg_config_entry *e = entries; e->name; e++) from_env(e);
}

int sg_config_reset(const char *name) {
  const sg_config_entry *e = sg_config_find(name);
  if (!e) { sg_error_set("config: no setting '%s'", name); return -1; }
  if (!inited) sg_config_init();
  from_env(e);
  return 0;
}
