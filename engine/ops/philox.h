/* The random-number core shared by the CPU (ops/random.c) and the GPU
 * (kernels/random.cu): Philox 4x32-10 and the transforms from its 32-bit
 * words to uniform, normal and integer values.
 *
 * Both devices must produce bit-identical numbers for the same seed and
 * counter, so the transforms use only operations that IEEE 754 rounds the
 * same way everywhere: +, -, *, / and sqrt in double, with no fused
 * multiply-add. libm's log, sin and cos differ between the C library and
 * CUDA in the last bit, so the normal transform uses its own log and sincos
 * (fdlibm's polynomials: within an ulp or so of the true values):
 *  - on the GPU every operation is an explicit round-to-nearest intrinsic
 *    (__dmul_rn ...), which nvcc never contracts;
 *  - on the host the including file is compiled with FP contraction off
 *    (the pragma below), so no -march flag can fuse a*b+c either.
 * Included by C and CUDA C++; everything is static inline. */
#ifndef SG_PHILOX_H
#define SG_PHILOX_H
#include <stdint.h>

#if defined(__CUDACC__)
#define SG_HD __host__ __device__ __forceinline__
#else
#define SG_HD static inline
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#endif

#if defined(__CUDA_ARCH__)
#define SG_XADD(a, b) __dadd_rn((a), (b))
#define SG_XSUB(a, b) __dsub_rn((a), (b))
#define SG_XMUL(a, b) __dmul_rn((a), (b))
#define SG_XDIV(a, b) __ddiv_rn((a), (b))
#define SG_XSQRT(a) __dsqrt_rn(a)
#else
#define SG_XADD(a, b) ((a) + (b))
#define SG_XSUB(a, b) ((a) - (b))
#define SG_XMUL(a, b) ((a) * (b))
#define SG_XDIV(a, b) ((a) / (b))
#define SG_XSQRT(a) __builtin_sqrt(a)
#endif

/* ---------------------------------------------------------------- Philox 4x32-10 */
SG_HD uint32_t sg_philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

/* One Philox4x32-10 block for a 128-bit counter and 64-bit key. */
SG_HD void sg_philox(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)ctr_lo, c1 = (uint32_t)(ctr_lo >> 32), c2 = (uint32_t)ctr_hi, c3 = (uint32_t)(ctr_hi >> 32);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = sg_philox_mulhilo(0xD2511F53u, c0, &hi0), lo1 = sg_philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* ---------------------------------------------------------------- portable double math */
SG_HD uint64_t sg_x_bits(double x) {
  union { double d; uint64_t u; } v;
  v.d = x;
  return v.u;
}
SG_HD double sg_x_from_bits(uint64_t u) {
  union { double d; uint64_t u; } v;
  v.u = u;
  return v.d;
}

/* Natural log of a positive normal double (fdlibm's e_log.c, no special cases:
 * the callers pass values in (0, 1]). */
SG_HD double sg_x_log(double x) {
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01, Lg3 = 2.857142874366239149e-01,
               Lg4 = 2.222219843214978396e-01, Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
               Lg7 = 1.479819860511658591e-01;
  uint64_t bits = sg_x_bits(x);
  int32_t hx = (int32_t)(bits >> 32);
  int32_t k = (hx >> 20) - 1023;
  hx &= 0x000fffff;
  int32_t i = (hx + 0x95f64) & 0x100000;
  /* x or x/2 normalised into [sqrt(2)/2, sqrt(2)) */
  x = sg_x_from_bits(((uint64_t)(uint32_t)(hx | (i ^ 0x3ff00000)) << 32) | (bits & 0xffffffffu));
  k += i >> 20;
  double f = SG_XSUB(x, 1.0), dk = (double)k;
  if ((0x000fffff & (2 + hx)) < 3) { /* |f| < 2^-20 */
    if (f == 0.0) return k == 0 ? 0.0 : SG_XADD(SG_XMUL(dk, ln2_hi), SG_XMUL(dk, ln2_lo));
    double R = SG_XMUL(SG_XMUL(f, f), SG_XSUB(0.5, SG_XMUL(0.33333333333333333, f)));
    if (k == 0) return SG_XSUB(f, R);
    return SG_XSUB(SG_XMUL(dk, ln2_hi), SG_XSUB(SG_XSUB(R, SG_XMUL(dk, ln2_lo)), f));
  }
  double s = SG_XDIV(f, SG_XADD(2.0, f));
  double z = SG_XMUL(s, s);
  int32_t ii = hx - 0x6147a, j = 0x6b851 - hx;
  double w = SG_XMUL(z, z);
  double t1 = SG_XMUL(w, SG_XADD(Lg2, SG_XMUL(w, SG_XADD(Lg4, SG_XMUL(w, Lg6)))));
  double t2 = SG_XMUL(z, SG_XADD(Lg1, SG_XMUL(w, SG_XADD(Lg3, SG_XMUL(w, SG_XADD(Lg5, SG_XMUL(w, Lg7)))))));
  ii |= j;
  double R = SG_XADD(t2, t1);
  if (ii > 0) {
    double hfsq = SG_XMUL(SG_XMUL(0.5, f), f);
    if (k == 0) return SG_XSUB(f, SG_XSUB(hfsq, SG_XMUL(s, SG_XADD(hfsq, R))));
    return SG_XSUB(SG_XMUL(dk, ln2_hi),
                   SG_XSUB(SG_XSUB(hfsq, SG_XADD(SG_XMUL(s, SG_XADD(hfsq, R)), SG_XMUL(dk, ln2_lo))), f));
  }
  if (k == 0) return SG_XSUB(f, SG_XMUL(s, SG_XSUB(f, R)));
  return SG_XSUB(SG_XMUL(dk, ln2_hi), SG_XSUB(SG_XSUB(SG_XMUL(s, SG_XSUB(f, R)), SG_XMUL(dk, ln2_lo)), f));
}

/* sin and cos of x for |x| <= pi/4 (fdlibm's k_sin.c and k_cos.c with no tail). */
SG_HD double sg_x_ksin(double x) {
  const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03, S3 = -1.98412698298579493134e-04,
               S4 = 2.75573137070700676789e-06, S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
  double z = SG_XMUL(x, x), v = SG_XMUL(z, x);
  double r = SG_XADD(S2, SG_XMUL(z, SG_XADD(S3, SG_XMUL(z, SG_XADD(S4, SG_XMUL(z, SG_XADD(S5, SG_XMUL(z, S6))))))));
  return SG_XADD(x, SG_XMUL(v, SG_XADD(S1, SG_XMUL(z, r))));
}
SG_HD double sg_x_kcos(double x) {
  const double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03, C3 = 2.48015872894767294178e-05,
               C4 = -2.75573143513906633035e-07, C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
  double z = SG_XMUL(x, x);
  double r = SG_XMUL(z, SG_XADD(C1, SG_XMUL(z, SG_XADD(C2, SG_XMUL(z, SG_XADD(C3, SG_XMUL(z, SG_XADD(C4,
                 SG_XMUL(z, SG_XADD(C5, SG_XMUL(z, C6)))))))))));
  uint32_t ix = (uint32_t)(sg_x_bits(x) >> 32) & 0x7fffffffu;
  if (ix < 0x3FD33333u) return SG_XSUB(1.0, SG_XSUB(SG_XMUL(0.5, z), SG_XMUL(z, r))); /* |x| < 0.3 */
  double qx = ix > 0x3fe90000u ? 0.28125 : sg_x_from_bits((uint64_t)(ix - 0x00200000u) << 32); /* about x/4 */
  double hz = SG_XSUB(SG_XMUL(0.5, z), qx), a = SG_XSUB(1.0, qx);
  return SG_XSUB(a, SG_XSUB(hz, SG_XMUL(z, r)));
}

/* sin and cos of 2*pi*u for u in [0, 1) holding at most 32 significant bits
 * (u = r / 2^32): reduced exactly to the nearest quarter turn first. */
SG_HD void sg_x_sincos_2pi(double u, double *s, double *c) {
  const double two_pi = 6.28318530717958647692;
  int q = (int)SG_XADD(SG_XMUL(u, 4.0), 0.5); /* nearest quarter, 0..4 */
  double r = SG_XSUB(u, SG_XMUL((double)q, 0.25)); /* exact, in [-1/8, 1/8] */
  double x = SG_XMUL(r, two_pi);
  double sx = sg_x_ksin(x), cx = sg_x_kcos(x);
  switch (q & 3) {
  case 0: *s = sx; *c = cx; break;
  case 1: *s = cx; *c = -sx; break;
  case 2: *s = -sx; *c = -cx; break;
  default: *s = -cx; *c = sx; break;
  }
}

/* ---------------------------------------------------------------- transforms */
/* uniform in [0,1) with 24 random bits (exact in f32) */
SG_HD float sg_philox_u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* Uniform value for a float dtype code (SG_F16 = 4, SG_BF16 = 5, else 24 bits):
 * as many random bits as the dtype holds, so rounding never reaches 1.0. */
SG_HD double sg_philox_uniform(uint32_t r, int f16, int bf16) {
  return f16 ? (double)(r >> 21) * (1.0 / 2048) : bf16 ? (double)(r >> 24) * (1.0 / 256) : (double)sg_philox_u01(r);
}

/* Box-Muller on a pair of words: two independent N(0,1) values. */
SG_HD void sg_philox_normal2(uint32_t a, uint32_t b, double *z0, double *z1) {
  double u1 = SG_XDIV(SG_XADD((double)a, 1.0), 4294967296.0), u2 = SG_XDIV((double)b, 4294967296.0);
  double rad = SG_XSQRT(SG_XMUL(-2.0, sg_x_log(u1)));
  double s, c;
  sg_x_sincos_2pi(u2, &s, &c);
  *z0 = SG_XMUL(rad, c);
  *z1 = SG_XMUL(rad, s);
}

/* Integer in [lo, lo + range) from lane k of a block (two words, exact). */
SG_HD int64_t sg_philox_int(const uint32_t r[4], int k, int64_t lo, uint64_t range) {
  uint64_t x = ((uint64_t)r[k] << 32) | r[(k + 1) & 3];
  return (int64_t)((uint64_t)lo + x % range);
}

#endif
