/* Element types: names, sizes, promotion and scalar load/store.
 * Reference kernels move every element through double (or int64 for integer
 * results); fast paths work on the native type directly. */
#ifndef SG_DTYPE_H
#define SG_DTYPE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  SG_BOOL = 0, SG_U8, SG_I32, SG_I64, SG_F16, SG_BF16, SG_F32, SG_F64, SG_NDTYPES
} sg_dtype;

size_t sg_dtype_size(sg_dtype t);
const char *sg_dtype_name(sg_dtype t);
/* Parses "f32", "float32", "float" ...; returns -1 when unknown. */
int sg_dtype_from_name(const char *name);
bool sg_dtype_is_float(sg_dtype t);
bool sg_dtype_is_int(sg_dtype t); /* u8, i32, i64 (not bool) */
/* Result type of a binary op between two tensors (PyTorch's rules). */
sg_dtype sg_promote(sg_dtype a, sg_dtype b);

float sg_f16_to_f32(uint16_t h);
uint16_t sg_f32_to_f16(float f);
float sg_bf16_to_f32(uint16_t h);
uint16_t sg_f32_to_bf16(float f);

double sg_load_f64(const void *p, sg_dtype t);
int64_t sg_load_i64(const void *p, sg_dtype t);
void sg_store_f64(void *p, sg_dtype t, double v);
void sg_store_i64(void *p, sg_dtype t, int64_t v);

#endif
