/* The cpu device table and the reference table, registered when the library
 * opens (sg_backend_cpu_init). Each op family fills its own entries from the
 * file named after it (backend_cpu/pool.c: sg_cpu_fill_pool, backend_ref/pool.c:
 * sg_ref_fill_pool); a family without a fast path leaves the cpu entries empty
 * and the reference loops run instead. The fillers are weak so a family that
 * has not moved into the table yet simply has none. */
#include "../backend.h"
#include <stddef.h>

#define FAMILIES(X) X(elementwise) X(reduce) X(matmul) X(conv) X(pool) X(norm) X(upsample) X(index) X(optim) \
  X(random) X(amp) X(loss) X(metrics)

#define DECLARE(f)                                                                                     \
  void sg_cpu_fill_##f(sg_backend *t) __attribute__((weak));                                         \
  void sg_ref_fill_##f(sg_backend *t) __attribute__((weak));
FAMILIES(DECLARE)
#undef DECLARE

static sg_backend cpu = {.name = "cpu"};
static sg_backend ref = {.name = "reference"};

void sg_backend_cpu_init(void);
void sg_backend_cpu_init(void) {
  static bool done;
  if (done) return;
  done = true;
#define FILL(f)                                                                                        \
  if (sg_ref_fill_##f) sg_ref_fill_##f(&ref);                                                          \
  if (sg_cpu_fill_##f) sg_cpu_fill_##f(&cpu);
  FAMILIES(FILL)
#undef FILL
  sg_backend_fill_missing(&cpu, &ref);
  sg_backend_register_reference(&ref);
  sg_backend_register(SG_CPU, &cpu);
}
