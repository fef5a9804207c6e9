#include "dtype.h"
#include <math.h>
#include <string.h>

static const struct { const char *name; size_t size; } INFO[SG_NDTYPES] = {
  [SG_BOOL] = {"bool", 1}, [SG_U8] = {"u8", 1},   [SG_I32] = {"i32", 4},
  [SG_I64] = {"i64", 8},   [SG_F16] = {"f16", 2}, [SG_BF16] = {"bf16", 2},
  [SG_F32] = {"f32", 4},   [SG_F64] = {"f64", 8},
};

size_t sg_dtype_size(sg_dtype t) { return INFO[t].size; }
const char *sg_dtype_name(sg_dtype t) { return (unsigned)t < SG_NDTYPES ? INFO[t].name : "?"; }

int sg_dtype_from_name(const char *n) {
  static const struct { const char *alias; sg_dtype t; } ALIASES[] = {
    {"float32", SG_F32}, {"float", SG_F32},   {"float64", SG_F64}, {"double", SG_F64},
    {"float16", SG_F16}, {"half", SG_F16},    {"bfloat16", SG_BF16}, {"uint8", SG_U8},
    {"byte", SG_U8},     {"int32", SG_I32},   {"int", SG_I32},     {"int64", SG_I64},
    {"long", SG_I64},
  };
  for (int i = 0; i < SG_NDTYPES; i++)
    if (strcmp(n, INFO[i].name) == 0) return i;
  for (size_t i = 0; i < sizeof ALIASES / sizeof *ALIASES; i++)
    if (strcmp(n, ALIASES[i].alias) == 0) return (int)ALIASES[i].t;
  return -1;
}

bool sg_dtype_is_float(sg_dtype t) { return t >= SG_F16; }
bool sg_dtype_is_int(sg_dtype t) { return t == SG_U8 || t == SG_I32 || t == SG_I64; }

sg_dtype sg_promote(sg_dtype a, sg_dtype b) {
  if (a == b) return a;
  /* f16 and bf16 have no common 16-bit type: they meet at f32. */
  if ((a == SG_F16 && b == SG_BF16) || (a == SG_BF16 && b == SG_F16)) return SG_F32;
  return a > b ? a : b; /* the enum is ordered by "kind then width" */
}

/* IEEE half <-> single, round-to-nearest-even, with subnormals, inf and NaN. */
float sg_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else { /* subnormal: value = man * 2^-24 */
      float f = ldexpf((float)man, -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  float f; memcpy(&f, &bits, 4); return f;
}

uint16_t sg_f32_to_f16(float f) {
  uint32_t x; memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (ax >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: overflow to inf */
  if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
    float a; memcpy(&a, &ax, 4);
    float m = a * 16777216.0f; /* in units of 2^-24 */
    return sign | (uint16_t)lrintf(m);
  }
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u); /* round to nearest even */
  return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

float sg_bf16_to_f32(uint16_t h) { uint32_t b = (uint32_t)h << 16; float f; memcpy(&f, &b, 4); return f; }

uint16_t sg_f32_to_bf16(float f) {
  uint32_t x; memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

double sg_load_f64(const void *p, sg_dtype t) {
  switch (t) {
  case SG_BOOL: return *(const uint8_t *)p ? 1.0 : 0.0;
  case SG_U8: return *(const uint8_t *)p;
  case SG_I32: return *(const int32_t *)p;
  case SG_I64: return (double)*(const int64_t *)p;
  case SG_F16: return sg_f16_to_f32(*(const uint16_t *)p);
  case SG_BF16: return sg_bf16_to_f32(*(const uint16_t *)p);
  case SG_F32: return *(const float *)p;
  case SG_F64: return *(const double *)p;
  default: return 0;
  }
}

int64_t sg_load_i64(const void *p, sg_dtype t) {
  switch (t) {
  case SG_BOOL: return *(const uint8_t *)p != 0;
  case SG_U8: return *(const uint8_t *)p;
  case SG_I32: return *(const int32_t *)p;
  case SG_I64: return *(const int64_t *)p;
  default: return (int64_t)sg_load_f64(p, t);
  }
}

/* Float -> integer casts truncate toward zero like C and PyTorch; out of
 * range values saturate instead of being undefined behaviour. */
static int64_t sat_i64(double v, double lo, double hi) {
  if (v != v) return 0;
  if (v <= lo) return (int64_t)lo;
  if (v >= hi) return (int64_t)hi;
  return (int64_t)v;
}

void sg_store_f64(void *p, sg_dtype t, double v) {
  switch (t) {
  case SG_BOOL: *(uint8_t *)p = v != 0; break;
  case SG_U8: *(uint8_t *)p = (uint8_t)sat_i64(v, 0, 255); break;
  case SG_I32: *(int32_t *)p = (int32_t)sat_i64(v, -2147483648.0, 2147483647.0); break;
  case SG_I64: *(int64_t *)p = sat_i64(v, -9223372036854775808.0, 9223372036854774784.0); break;
  case SG_F16: *(uint16_t *)p = sg_f32_to_f16((float)v); break;
  case SG_BF16: *(uint16_t *)p = sg_f32_to_bf16((float)v); break;
  case SG_F32: *(float *)p = (float)v; break;
  case SG_F64: *(double *)p = v; break;
  default: break;
  }
}

void sg_store_i64(void *p, sg_dtype t, int64_t v) {
  switch (t) {
  case SG_BOOL: *(uint8_t *)p = v != 0; break;
  case SG_U8: *(uint8_t *)p = (uint8_t)v; break;
  case SG_I32: *(int32_t *)p = (int32_t)v; break;
  case SG_I64: *(int64_t *)p = v; break;
  default: sg_store_f64(p, t, (double)v); break;
  }
}
