/* Runtime configuration: the engine-wide switches in one place. Each is read
 * once from its SEMSEG_* variable (sg_config_init), can be changed from Lua as
 * sg.config.<name>, and is read by the code it steers as sg_config.<field>. */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
  int threads;          /* OpenMP threads for CPU kernels and oneDNN (0: the OpenMP default) */
  bool deterministic;   /* same bits for any thread count and run (no Winograd, deterministic cuDNN) */
  bool winograd;        /* oneDNN Winograd convolutions where they pay (off when deterministic) */
  bool dnnl;            /* oneDNN fast paths where the build has them */
  bool cuda_benchmark;  /* time cuDNN's candidate algorithms once per shape */
  bool allow_tf32;      /* f32 matrix products on TF32 tensor cores */
  bool conv_tf32;       /* f32 convolutions on TF32 tensor cores */
  bool reference;       /* run cpu ops on the plain reference loops (engine/backend_ref), for tests */
  double gc_step_mb;    /* the Lua collector takes a step each time this much tensor memory was allocated */
} sg_config_t;

extern sg_config_t sg_config;

typedef enum { SG_CFG_BOOL, SG_CFG_INT, SG_CFG_NUM } sg_config_type;
typedef struct {
  const char *name, *env, *doc;
  sg_config_type type;
  void *field;
  double lo, hi; /* range of numbers */
} sg_config_entry;

/* Reads the SEMSEG_* variables (once; later calls do nothing). */
void sg_config_init(void);
/* The entries, NULL-terminated (name NULL). */
const sg_config_entry *sg_config_entries(void);
const sg_config_entry *sg_config_find(const char *name);
/* Sets entry `name` to v (booleans: 0/1); -1 with an error naming the entry and the range. */
int sg_config_set(const char *name, double v);
double sg_config_get(const sg_config_entry *e);
/* Back to the SEMSEG_* variable's value, or the default. */
int sg_config_reset(const char *name);

#endif
