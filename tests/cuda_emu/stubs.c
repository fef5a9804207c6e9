/* Host emulation of the cuBLAS and cuDNN calls semseg makes (tests/cuda_emu,
 * built as libcublas.so and libcudnn.so.9). "Device" memory is host memory and
 * everything runs synchronously, so the library calls are plain host loops:
 *
 *   cublasGemmStridedBatchedEx: column-major C = alpha op(A) op(B) + beta C for
 *     f32 / f64 / bf16 / f16 (f32 accumulation, f64 for CUBLAS_COMPUTE_64F);
 *   cudnnConvolutionForward / BackwardData / BackwardFilter: NCHW, cross
 *     correlation, groups, stride, padding, dilation (double accumulation,
 *     results rounded to the tensor's dtype like the CPU's stores).
 *
 * The argument checks the real libraries make (leading dimensions, descriptor
 * shapes against the convolution's output geometry, dtypes, workspace present
 * and large enough) return CUBLAS_STATUS_INVALID_VALUE / CUDNN_STATUS_BAD_PARAM
 * with the reason on stderr and in cudnnGetLastErrorString, so glue bugs show.
 * Algorithm queries offer two "algorithms" (both the same loop): one needing
 * no workspace and one needing a small workspace, one reported
 * nondeterministic for the backward passes, so the glue's choice, workspace
 * and determinism handling run. Nothing about speed or cuDNN's numerics. */
#include <cublas_v2.h>
#include <cudnn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ dtypes (as engine/core/dtype.c) */
static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else {
      float f = ldexpf((float)man, -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (ax >= 0x477ff000u) return sign | 0x7c00;
  if (ax < 0x38800000u) {
    float a;
    memcpy(&a, &ax, 4);
    return sign | (uint16_t)lrintf(a * 16777216.0f);
  }
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
  return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

static float bf16_to_f32(uint16_t h) {
  uint32_t b = (uint32_t)h << 16;
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static uint16_t f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

/* kinds shared by both libraries: 0 f32, 1 f64, 2 f16, 3 bf16 */
enum { K_F32, K_F64, K_F16, K_BF16 };

static double load(const void *p, int64_t i, int kind) {
  switch (kind) {
  case K_F32: return ((const float *)p)[i];
  case K_F64: return ((const double *)p)[i];
  case K_F16: return f16_to_f32(((const uint16_t *)p)[i]);
  default: return bf16_to_f32(((const uint16_t *)p)[i]);
  }
}

/* stores round through f32 first for the 16-bit types, like the CPU */
static void store(void *p, int64_t i, int kind, double v) {
  switch (kind) {
  case K_F32: ((float *)p)[i] = (float)v; break;
  case K_F64: ((double *)p)[i] = v; break;
  case K_F16: ((uint16_t *)p)[i] = f32_to_f16((float)v); break;
  default: ((uint16_t *)p)[i] = f32_to_bf16((float)v); break;
  }
}

static size_t kind_size(int kind) { return kind == K_F64 ? 8 : kind == K_F32 ? 4 : 2; }

/* ------------------------------------------------------------------ cuBLAS */
struct cublasContext {
  int pointer_mode;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = calloc(1, sizeof **h);
  return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  (void)s;
  return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->pointer_mode = (int)mode;
  return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE (emulation: see stderr)";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED (not emulated)";
  default: return "cuBLAS error (emulation)";
  }
}

static cublasStatus_t blas_bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "emu cublasGemmStridedBatchedEx: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return CUBLAS_STATUS_INVALID_VALUE;
}

static int blas_kind(cudaDataType t) {
  switch (t) {
  case CUDA_R_32F: return K_F32;
  case CUDA_R_64F: return K_F64;
  case CUDA_R_16F: return K_F16;
  case CUDA_R_16BF: return K_BF16;
  default: return -1;
  }
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                                          int lda, long long int strideA, const void *B, cudaDataType Btype, int ldb,
                                          long long int strideB, const void *beta, void *C, cudaDataType Ctype,
                                          int ldc, long long int strideC, int batchCount,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  (void)algo;
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (handle->pointer_mode != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_NOT_SUPPORTED;
  int kind = blas_kind(Atype);
  if (kind < 0 || Btype != Atype || Ctype != Atype) return blas_bad("unsupported type combination");
  bool f64c = computeType == CUBLAS_COMPUTE_64F;
  if (f64c != (kind == K_F64) ||
      (!f64c && computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_FAST_TF32))
    return blas_bad("compute type %d does not fit data type %d", (int)computeType, (int)Atype);
  if (computeType == CUBLAS_COMPUTE_32F_FAST_TF32 && kind != K_F32) return blas_bad("TF32 compute for non-f32 data");
  if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T) || (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T))
    return blas_bad("unsupported op");
  if (m < 0 || n < 0 || k < 0 || batchCount < 0) return blas_bad("negative size m %d n %d k %d batch %d", m, n, k,
                                                                 batchCount);
  int arows = transa == CUBLAS_OP_N ? m : k, brows = transb == CUBLAS_OP_N ? k : n;
  if (lda < (arows > 1 ? arows : 1)) return blas_bad("lda %d < %d", lda, arows);
  if (ldb < (brows > 1 ? brows : 1)) return blas_bad("ldb %d < %d", ldb, brows);
  if (ldc < (m > 1 ? m : 1)) return blas_bad("ldc %d < %d", ldc, m);
  if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
  if (!C || (k > 0 && (!A || !B)) || !alpha || !beta) return blas_bad("null pointer");
  double al = f64c ? *(const double *)alpha : *(const float *)alpha;
  double be = f64c ? *(const double *)beta : *(const float *)beta;
  size_t es = kind_size(kind);
  for (int bt = 0; bt < batchCount; bt++) {
    const char *a = (const char *)A + (int64_t)bt * strideA * (int64_t)es;
    const char *b = (const char *)B + (int64_t)bt * strideB * (int64_t)es;
    char *c = (char *)C + (int64_t)bt * strideC * (int64_t)es;
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        double acc64 = 0;
        float acc32 = 0;
        for (int l = 0; l < k; l++) {
          int64_t ai = transa == CUBLAS_OP_N ? i + (int64_t)l * lda : l + (int64_t)i * lda;
          int64_t bi = transb == CUBLAS_OP_N ? l + (int64_t)j * ldb : j + (int64_t)l * ldb;
          double p = load(a, ai, kind) * load(b, bi, kind);
          if (f64c) acc64 += p;
          else acc32 += (float)p;
        }
        int64_t ci = i + (int64_t)j * ldc;
        double r = (f64c ? acc64 : acc32) * al;
        if (be != 0) r += be * load(c, ci, kind); /* beta 0: C is not read (may hold NaN) */
        store(c, ci, kind, f64c ? r : (double)(float)r);
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ cuDNN */
struct cudnnContext {
  int unused;
};
struct cudnnTensorStruct {
  int set, kind, n, c, h, w;
};
struct cudnnFilterStruct {
  int set, kind, k, c, h, w;
};
struct cudnnConvolutionStruct {
  int set, ph, pw, sh, sw, dh, dw, groups, compute_kind;
  cudnnMathType_t math;
};

static char last_error[512];

static cudnnStatus_t dnn_fail(cudnnStatus_t s, const char *fn, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(last_error, sizeof last_error, "emu %s: %s", fn, msg);
  fprintf(stderr, "%s\n", last_error);
  return s;
}
#define BAD(...) dnn_fail(CUDNN_STATUS_BAD_PARAM, __func__, __VA_ARGS__)

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
  *h = calloc(1, sizeof **h);
  return *h ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) { free(h); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  (void)s;
  return h ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}
const char *cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
  case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
  case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
  case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
  case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
  default: return "cuDNN error (emulation)";
  }
}
void cudnnGetLastErrorString(char *buf, size_t n) {
  if (n == 0) return;
  snprintf(buf, n, "%s", last_error);
  last_error[0] = 0;
}

static int dnn_kind(cudnnDataType_t t) {
  switch (t) {
  case CUDNN_DATA_FLOAT: return K_F32;
  case CUDNN_DATA_DOUBLE: return K_F64;
  case CUDNN_DATA_HALF: return K_F16;
  case CUDNN_DATA_BFLOAT16: return K_BF16;
  default: return -1;
  }
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
  *d = calloc(1, sizeof **d);
  return *d ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { free(d); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t dt,
                                         int n, int c, int h, int w) {
  if (!d) return BAD("null descriptor");
  if (format != CUDNN_TENSOR_NCHW) return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, __func__, "only NCHW is emulated");
  if (dnn_kind(dt) < 0) return BAD("data type %d", (int)dt);
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return BAD("dims %d %d %d %d", n, c, h, w);
  if ((int64_t)n * c * h * w > INT32_MAX) return BAD("more than 2^31 elements");
  *d = (struct cudnnTensorStruct){1, dnn_kind(dt), n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
  *d = calloc(1, sizeof **d);
  return *d ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { free(d); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t dt, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  if (!d) return BAD("null descriptor");
  if (format != CUDNN_TENSOR_NCHW) return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, __func__, "only NCHW is emulated");
  if (dnn_kind(dt) < 0) return BAD("data type %d", (int)dt);
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return BAD("dims %d %d %d %d", k, c, h, w);
  *d = (struct cudnnFilterStruct){1, dnn_kind(dt), k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
  *d = calloc(1, sizeof **d);
  if (!*d) return CUDNN_STATUS_INTERNAL_ERROR;
  (*d)->groups = 1;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { free(d); return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  if (!d) return BAD("null descriptor");
  if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0)
    return BAD("pad %d %d stride %d %d dilation %d %d", pad_h, pad_w, u, v, dilation_h, dilation_w);
  if (mode != CUDNN_CROSS_CORRELATION)
    return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, __func__, "only cross-correlation is emulated");
  if (dnn_kind(computeType) < 0) return BAD("compute type %d", (int)computeType);
  d->set = 1;
  d->ph = pad_h; d->pw = pad_w; d->sh = u; d->sw = v; d->dh = dilation_h; d->dw = dilation_w;
  d->compute_kind = dnn_kind(computeType);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (!d || groups <= 0) return BAD("groups %d", groups);
  d->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (!d || (int)math < 0 || (int)math > CUDNN_FMA_MATH) return BAD("math type %d", (int)math);
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t out_dim(const char *fn, cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t x,
                             cudnnFilterDescriptor_t w, int *n, int *c, int *h, int *wd) {
  if (!cv || !x || !w || !cv->set || !x->set || !w->set) return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "unset descriptor");
  if (x->c != w->c * cv->groups)
    return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "input channels %d != filter channels %d x groups %d", x->c, w->c,
                    cv->groups);
  if (w->k % cv->groups) return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "filters %d not divisible by groups %d", w->k,
                                         cv->groups);
  int64_t eh = (int64_t)x->h + 2 * cv->ph - (int64_t)cv->dh * (w->h - 1) - 1;
  int64_t ew = (int64_t)x->w + 2 * cv->pw - (int64_t)cv->dw * (w->w - 1) - 1;
  if (eh < 0 || ew < 0) return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "filter larger than the padded input");
  *n = x->n;
  *c = w->k;
  *h = (int)(eh / cv->sh + 1);
  *wd = (int)(ew / cv->sw + 1);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int *n, int *c, int *h, int *wd) {
  return out_dim(__func__, conv, x, w, n, c, h, wd);
}

/* the full check of a (big x, filter, small y) triple */
static cudnnStatus_t check3(const char *fn, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                            cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t y) {
  int n = 0, c = 0, h = 0, wd = 0;
  cudnnStatus_t s = out_dim(fn, cv, x, w, &n, &c, &h, &wd);
  if (s) return s;
  if (!y || !y->set) return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "unset output descriptor");
  if (y->n != n || y->c != c || y->h != h || y->w != wd)
    return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "output [%d,%d,%d,%d] but the convolution gives [%d,%d,%d,%d]", y->n,
                    y->c, y->h, y->w, n, c, h, wd);
  if (x->kind != w->kind || x->kind != y->kind)
    return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "mixed data types %d %d %d", x->kind, w->kind, y->kind);
  int want = x->kind == K_F64 ? K_F64 : K_F32;
  if (cv->compute_kind != want)
    return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "compute type kind %d for data kind %d", cv->compute_kind, x->kind);
  return CUDNN_STATUS_SUCCESS;
}

/* algorithm 0: no workspace; algorithm 1: a workspace of 4 KiB. For the
   backward passes algorithm 0 is reported nondeterministic (as cuDNN's
   ALGO_0). Other numbers are not offered. */
#define EMU_WS ((size_t)4096)
static cudnnStatus_t ws_for(const char *fn, int algo, size_t *bytes) {
  (void)fn;
  if (algo != 0 && algo != 1) return CUDNN_STATUS_NOT_SUPPORTED; /* as cuDNN for algorithms that do not apply */
  *bytes = algo == 1 ? EMU_WS : 0;
  return CUDNN_STATUS_SUCCESS;
}

#define FILL_PERF(perf, requested, returned, fwd, mathv)                                                             \
  do {                                                                                                               \
    int n_ = 0;                                                                                                      \
    for (int a_ = 0; a_ < 2 && n_ < (requested); a_++, n_++) {                                                      \
      int algo_ = (fwd) ? 1 - a_ : a_; /* forward prefers the workspace one, backward the nondeterministic one */  \
      memset(&(perf)[n_], 0, sizeof (perf)[n_]);                                                                     \
      (perf)[n_].algo = algo_;                                                                                       \
      (perf)[n_].status = CUDNN_STATUS_SUCCESS;                                                                      \
      (perf)[n_].time = (float)(n_ + 1);                                                                             \
      (perf)[n_].memory = algo_ == 1 ? EMU_WS : 0;                                                                   \
      (perf)[n_].determinism = (fwd) || algo_ == 1 ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;                 \
      (perf)[n_].mathType = (mathv);                                                                                 \
    }                                                                                                                \
    *(returned) = n_;                                                                                                \
  } while (0)

/* ---- the loops. x [N, C, H, W] (big), w [K, C/G, kh, kw], y [N, K, OH, OW] (small). */
typedef struct {
  int N, C, H, W, K, Cg, Kg, kh, kw, OH, OW, G, ph, pw, sh, sw, dh, dw, kind;
} geo;

static geo make_geo(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv,
                    cudnnTensorDescriptor_t y) {
  geo g = {x->n, x->c, x->h, x->w, w->k, w->c, w->k / cv->groups, w->h, w->w, y->h, y->w, cv->groups,
           cv->ph, cv->pw, cv->sh, cv->sw, cv->dh, cv->dw, x->kind};
  return g;
}

static double scal(const void *p, int kind) { return kind == K_F64 ? *(const double *)p : *(const float *)p; }

/* out = alpha * acc + beta * out (beta 0: out not read) */
static void finish(void *out, int64_t n, int kind, const double *acc, double alpha, double beta) {
  for (int64_t i = 0; i < n; i++) {
    double r = alpha * acc[i];
    if (beta != 0) r += beta * load(out, i, kind);
    store(out, i, kind, r);
  }
}

static double *to_double(const void *p, int64_t n, int kind) {
  double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
  if (d && p)
    for (int64_t i = 0; i < n; i++) d[i] = load(p, i, kind);
  return d;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* dir 0: forward (y from x, w), 1: backward data (x from y, w), 2: backward filter (w from x, y). The
   operands are widened to double once; the loops run over (n, k, c, i, j, oh) with the valid range of ow
   worked out per (j) so the innermost loop is a plain strided multiply-add. */
static cudnnStatus_t run_conv(int dir, const geo *g, const void *alpha, const void *beta, const void *x,
                              const void *w, const void *y, void *out) {
  int kind = g->kind;
  int64_t nx = (int64_t)g->N * g->C * g->H * g->W, nw = (int64_t)g->K * g->Cg * g->kh * g->kw,
          ny = (int64_t)g->N * g->K * g->OH * g->OW;
  int64_t nout = dir == 0 ? ny : dir == 1 ? nx : nw;
  double *X = dir == 1 ? NULL : to_double(x, nx, kind), *Wt = dir == 2 ? NULL : to_double(w, nw, kind);
  double *Y = dir == 0 ? NULL : to_double(y, ny, kind);
  double *acc = calloc((size_t)(nout ? nout : 1), sizeof *acc);
  if ((dir != 1 && !X) || (dir != 2 && !Wt) || (dir != 0 && !Y) || !acc) {
    free(X); free(Wt); free(Y); free(acc);
    return CUDNN_STATUS_INTERNAL_ERROR;
  }
  double *xs = dir == 1 ? acc : X, *ws = dir == 2 ? acc : Wt, *ys = dir == 0 ? acc : Y;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t k = 0; k < g->K; k++) {
      int64_t grp = k / g->Kg;
      double *yp = ys + (n * g->K + k) * g->OH * g->OW;
      for (int64_t c = 0; c < g->Cg; c++) {
        double *xp = xs + (n * g->C + grp * g->Cg + c) * g->H * g->W;
        for (int64_t i = 0; i < g->kh; i++) {
          /* rows: ih = oh*sh - ph + i*dh in [0, H) */
          int64_t off_h = i * g->dh - g->ph;
          int64_t oh0 = ceil_div(-off_h, g->sh), oh1 = floor_div(g->H - 1 - off_h, g->sh);
          if (oh0 < 0) oh0 = 0;
          if (oh1 > g->OH - 1) oh1 = g->OH - 1;
          for (int64_t j = 0; j < g->kw; j++) {
            int64_t off_w = j * g->dw - g->pw;
            int64_t ow0 = ceil_div(-off_w, g->sw), ow1 = floor_div(g->W - 1 - off_w, g->sw);
            if (ow0 < 0) ow0 = 0;
            if (ow1 > g->OW - 1) ow1 = g->OW - 1;
            if (oh0 > oh1 || ow0 > ow1) continue;
            double *wp = ws + ((k * g->Cg + c) * g->kh + i) * g->kw + j;
            double wv = *wp, wsum = 0;
            for (int64_t oh = oh0; oh <= oh1; oh++) {
              double *xr = xp + (oh * g->sh + off_h) * g->W + off_w, *yr = yp + oh * g->OW;
              int64_t sw = g->sw;
              if (dir == 0)
                for (int64_t ow = ow0; ow <= ow1; ow++) yr[ow] += wv * xr[ow * sw];
              else if (dir == 1)
                for (int64_t ow = ow0; ow <= ow1; ow++) xr[ow * sw] += wv * yr[ow];
              else
                for (int64_t ow = ow0; ow <= ow1; ow++) wsum += yr[ow] * xr[ow * sw];
            }
            if (dir == 2) *wp += wsum;
          }
        }
      }
    }
  finish(out, nout, kind, acc, scal(alpha, kind), scal(beta, kind));
  free(X); free(Wt); free(Y); free(acc);
  return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t exec_checks(const char *fn, int algo, const void *ws, size_t ws_bytes, const void *alpha,
                                 const void *beta, const void *a, const void *b, const void *out) {
  size_t need;
  if (ws_for(fn, algo, &need)) return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, fn, "algorithm %d was not offered", algo);
  if (need && (!ws || ws_bytes < need))
    return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "algorithm %d needs a workspace of %zu B, got %p / %zu B", algo, need,
                    ws, ws_bytes);
  if (!alpha || !beta || !a || !b || !out) return dnn_fail(CUDNN_STATUS_BAD_PARAM, fn, "null pointer");
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t y, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf) {
  cudnnStatus_t s = check3(__func__, x, w, conv, y);
  if (s) return s;
  if (!h || requested <= 0 || !returned || !perf) return BAD("bad arguments");
  FILL_PERF(perf, requested, returned, 1, conv->math);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dx, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
  cudnnStatus_t s = check3(__func__, dx, w, conv, dy);
  if (s) return s;
  if (!h || requested <= 0 || !returned || !perf) return BAD("bad arguments");
  FILL_PERF(perf, requested, returned, 0, conv->math);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dw, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
  cudnnStatus_t s = check3(__func__, x, dw, conv, dy);
  if (s) return s;
  if (!h || requested <= 0 || !returned || !perf) return BAD("bad arguments");
  FILL_PERF(perf, requested, returned, 0, conv->math);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                      const cudnnFilterDescriptor_t w,
                                                      const cudnnConvolutionDescriptor_t conv,
                                                      const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes) {
  cudnnStatus_t s = check3(__func__, x, w, conv, y);
  if (s) return s;
  if (!h || !bytes) return BAD("bad arguments");
  return ws_for(__func__, (int)algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                           const cudnnTensorDescriptor_t dy,
                                                           const cudnnConvolutionDescriptor_t conv,
                                                           const cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes) {
  cudnnStatus_t s = check3(__func__, dx, w, conv, dy);
  if (s) return s;
  if (!h || !bytes) return BAD("bad arguments");
  return ws_for(__func__, (int)algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                             const cudnnTensorDescriptor_t dy,
                                                             const cudnnConvolutionDescriptor_t conv,
                                                             const cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes) {
  cudnnStatus_t s = check3(__func__, x, dw, conv, dy);
  if (s) return s;
  if (!h || !bytes) return BAD("bad arguments");
  return ws_for(__func__, (int)algo, bytes);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t conv, cudnnConvolutionFwdAlgo_t algo,
                                      void *ws, size_t ws_bytes, const void *beta, const cudnnTensorDescriptor_t yd,
                                      void *y) {
  cudnnStatus_t s = check3(__func__, xd, wd, conv, yd);
  if (!s && !h) s = BAD("null handle");
  if (!s) s = exec_checks(__func__, (int)algo, ws, ws_bytes, alpha, beta, x, w, y);
  if (s) return s;
  geo g = make_geo(xd, wd, conv, yd);
  return run_conv(0, &g, alpha, beta, x, w, NULL, y);
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t conv, cudnnConvolutionBwdDataAlgo_t algo,
                                           void *ws, size_t ws_bytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxd, void *dx) {
  cudnnStatus_t s = check3(__func__, dxd, wd, conv, dyd);
  if (!s && !h) s = BAD("null handle");
  if (!s) s = exec_checks(__func__, (int)algo, ws, ws_bytes, alpha, beta, w, dy, dx);
  if (s) return s;
  geo g = make_geo(dxd, wd, conv, dyd);
  return run_conv(1, &g, alpha, beta, NULL, w, dy, dx);
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t conv,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
                                             const void *beta, const cudnnFilterDescriptor_t dwd, void *dw) {
  cudnnStatus_t s = check3(__func__, xd, dwd, conv, dyd);
  if (!s && !h) s = BAD("null handle");
  if (!s) s = exec_checks(__func__, (int)algo, ws, ws_bytes, alpha, beta, x, dy, dw);
  if (s) return s;
  geo g = make_geo(xd, dwd, conv, dyd);
  return run_conv(2, &g, alpha, beta, x, NULL, dy, dw);
}

/* Find*Ex: runs the algorithms on the given buffers (as cuDNN does, scribbling
   on the output) with the workspace given; one that needs more is reported
   failed, like cuDNN does */
#define FIND_BODY(fwd, call)                                                                                         \
  if (!h || requested <= 0 || !returned || !perf) return BAD("bad arguments");                                      \
  if (ws_bytes && !ws) return BAD("workspace size %zu with a null workspace", ws_bytes);                            \
  FILL_PERF(perf, requested, returned, fwd, conv->math);                                                             \
  for (int i_ = 0; i_ < *returned; i_++) {                                                                           \
    int algo = (int)perf[i_].algo;                                                                                   \
    if (perf[i_].memory > ws_bytes) { perf[i_].status = CUDNN_STATUS_NOT_SUPPORTED; continue; }                     \
    cudnnStatus_t r_ = call;                                                                                         \
    if (r_) return r_;                                                                                               \
  }                                                                                                                  \
  return CUDNN_STATUS_SUCCESS;

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t h, const cudnnTensorDescriptor_t xd, const void *x,
                                                     const cudnnFilterDescriptor_t wd, const void *w,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t yd, void *y, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf, void *ws,
                                                     size_t ws_bytes) {
  static const float f1 = 1, f0 = 0;
  static const double d1 = 1, d0 = 0;
  cudnnStatus_t s = check3(__func__, xd, wd, conv, yd);
  if (s) return s;
  const void *one = xd->kind == K_F64 ? (const void *)&d1 : (const void *)&f1;
  const void *zero = xd->kind == K_F64 ? (const void *)&d0 : (const void *)&f0;
  FIND_BODY(1, cudnnConvolutionForward(h, one, xd, x, wd, w, conv, (cudnnConvolutionFwdAlgo_t)algo, ws, ws_bytes,
                                       zero, yd, y))
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t h, const cudnnFilterDescriptor_t wd,
                                                          const void *w, const cudnnTensorDescriptor_t dyd,
                                                          const void *dy, const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dxd, void *dx,
                                                          const int requested, int *returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perf, void *ws,
                                                          size_t ws_bytes) {
  static const float f1 = 1, f0 = 0;
  static const double d1 = 1, d0 = 0;
  cudnnStatus_t s = check3(__func__, dxd, wd, conv, dyd);
  if (s) return s;
  const void *one = dxd->kind == K_F64 ? (const void *)&d1 : (const void *)&f1;
  const void *zero = dxd->kind == K_F64 ? (const void *)&d0 : (const void *)&f0;
  FIND_BODY(0, cudnnConvolutionBackwardData(h, one, wd, w, dyd, dy, conv, (cudnnConvolutionBwdDataAlgo_t)algo, ws,
                                            ws_bytes, zero, dxd, dx))
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                            const void *x, const cudnnTensorDescriptor_t dyd,
                                                            const void *dy, const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dwd, void *dw,
                                                            const int requested, int *returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perf, void *ws,
                                                            size_t ws_bytes) {
  static const float f1 = 1, f0 = 0;
  static const double d1 = 1, d0 = 0;
  cudnnStatus_t s = check3(__func__, xd, dwd, conv, dyd);
  if (s) return s;
  const void *one = xd->kind == K_F64 ? (const void *)&d1 : (const void *)&f1;
  const void *zero = xd->kind == K_F64 ? (const void *)&d0 : (const void *)&f0;
  FIND_BODY(0, cudnnConvolutionBackwardFilter(h, one, xd, x, dyd, dy, conv, (cudnnConvolutionBwdFilterAlgo_t)algo,
                                              ws, ws_bytes, zero, dwd, dw))
}
