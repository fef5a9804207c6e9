/* Pooling over the H, W planes of NCHW tensors: max (with indices) and its
 * unpooling, average, adaptive average. Plain loops, accumulation in double;
 * f32 max and average pooling (and adaptive pooling whose windows tile the
 * plane) go to oneDNN first when it is available (backend_cpu/dnnl_pool_norm).
 * GPU tensors go to backend_cuda/pool.c (own kernels, gather-style backwards). */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend_cpu/dnnl_pool_norm.h"
#include "../backend_cpu/cpu_kernels.h"
#include "../backend.h"
#include <math.h>
#include <string.h>

static bool check_input(const char *op, const sg_tensor *x) {
  if (!sg_nn_check_float_dev(op, "input", x)) return false;
  if (x->ndim != 4) {
    sg_error_set("%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    return false;
  }
  return true;
}

/* kernel/stride/padding checks and the output size; false with an error */
static bool window_plan(const char *op, const sg_tensor *x, const int64_t *k, const int64_t *s, const int64_t *p,
                        int64_t *oh, int64_t *ow) {
  if (!check_input(op, x)) return false;
  if (k[0] < 1 || k[1] < 1) {
    sg_error_set("%s: kernel must be positive (got {%lld, %lld})", op, (long long)k[0], (long long)k[1]);
    return false;
  }
  if (s[0] < 1 || s[1] < 1) {
    sg_error_set("%s: stride must be positive (got {%lld, %lld})", op, (long long)s[0], (long long)s[1]);
    return false;
  }
  if (p[0] < 0 || p[1] < 0 || p[0] > k[0] / 2 || p[1] > k[1] / 2) {
    sg_error_set("%s: padding must be between 0 and half the kernel (got padding {%lld, %lld}, kernel {%lld, %lld})",
                 op, (long long)p[0], (long long)p[1], (long long)k[0], (long long)k[1]);
    return false;
  }
  int64_t eh = x->size[2] + 2 * p[0] - k[0], ew = x->size[3] + 2 * p[1] - k[1];
  if (eh < 0 || ew < 0 || x->size[2] < 1 || x->size[3] < 1) {
    sg_error_set("%s: input %s (padded %lldx%lld) is smaller than the kernel %lldx%lld", op, SG_SHAPE_STR(x),
                 (long long)(x->size[2] + 2 * p[0]), (long long)(x->size[3] + 2 * p[1]), (long long)k[0],
                 (long long)k[1]);
    return false;
  }
  *oh = eh / s[0] + 1;
  *ow = ew / s[1] + 1;
  return true;
}

/* oneDNN geometry of a max or average pool: input x sizes, params k0 k1 s0 s1 p0 p1 */
static sg_dnnl_pool_geom pool_geom(const int64_t *xs, int64_t oh, int64_t ow, const int64_t *par) {
  return (sg_dnnl_pool_geom){xs[0], xs[1], xs[2], xs[3], oh, ow, par[0], par[1], par[2], par[3], par[4], par[5]};
}

/* ---------------------------------------------------------------- max pool */
static int maxpool_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *idx = sg_node_saved(n, 0);
  if (!idx) return -1;
  sg_dtype dt = n->in_dtype[0];
  if (n->in_device[0] != SG_CPU) {
    sg_tensor *gcu = sg_nn_contig(g, dt), *gxu = gcu ? sg_empty(4, n->in_shape[0].size, dt, SG_CUDA) : NULL;
    sg_pool_note_path("cuda");
    if (gxu && SG_BACKEND_CALL(SG_DEVICE_OF(gcu), pool.max_pool2d_backward, "max_pool2d", gcu, idx, n->i, gxu)) {
      sg_tensor_decref(gxu);
      gxu = NULL;
    }
    sg_tensor_decref(gcu);
    gin[0] = gxu;
    return gxu ? 0 : -1;
  }
  bool f64 = dt == SG_F64;
  sg_tensor *gc = sg_nn_contig(g, dt);
  sg_tensor *gx = gc ? sg_empty(4, n->in_shape[0].size, dt, SG_CPU) : NULL;
  int rc = 0;
  if (gx && dt == SG_F32) {
    sg_cpu_maxpool_bwd(g->size[0] * g->size[1], n->in_shape[0].size[2], n->in_shape[0].size[3], g->size[2],
                       g->size[3], sg_data_ptr(idx), sg_data_ptr(gc), sg_data_ptr(gx));
    rc = 1;
  }
  sg_pool_note_path(rc == 1 ? "kernel" : "loops");
  if (gx && rc == 0) {
    memset(sg_data_ptr(gx), 0, (size_t)sg_numel(gx) * sg_dtype_size(dt));
    const int64_t *ip = sg_data_ptr(idx);
    const void *gp = sg_data_ptr(gc);
    void *xp = sg_data_ptr(gx);
    int64_t planes = g->size[0] * g->size[1], os = g->size[2] * g->size[3];
    int64_t is = n->in_shape[0].size[2] * n->in_shape[0].size[3];
    for (int64_t pl = 0; pl < planes; pl++)
      for (int64_t k = 0; k < os; k++) {
        int64_t t = pl * is + ip[pl * os + k];
        SG_NN_ST(xp, f64, t, SG_NN_LD(xp, f64, t) + SG_NN_LD(gp, f64, pl * os + k));
      }
  }
  sg_tensor_decref(gc);
  if (rc < 0) {
    sg_tensor_decref(gx);
    gx = NULL;
  }
  gin[0] = gx;
  return gx ? 0 : -1;
}

int sg_max_pool2d(sg_tensor *x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                  sg_tensor **values, sg_tensor **indices) {
  const char *op = "max_pool2d";
  int64_t oh, ow;
  if (!window_plan(op, x, kernel, stride, padding, &oh, &ow)) return -1;
  int64_t H = x->size[2], W = x->size[3], osz[4] = {x->size[0], x->size[1], oh, ow};
  if (x->storage->device != SG_CPU) {
    int64_t cpar[6] = {kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
    sg_tensor *xcu = sg_nn_contig(x, x->dtype);
    sg_tensor *vu = xcu ? sg_empty(4, osz, x->dtype, SG_CUDA) : NULL, *iu = vu ? sg_empty(4, osz, SG_I64, SG_CUDA) : NULL;
    sg_pool_note_path("cuda");
    int crc = iu ? SG_BACKEND_CALL(SG_DEVICE_OF(xcu), pool.max_pool2d, "max_pool2d", xcu, cpar, vu, iu) : -1;
    sg_tensor_decref(xcu);
    if (crc) { sg_tensor_decref(vu); sg_tensor_decref(iu); return -1; }
    sg_node *nu = sg_record(op, maxpool_bw, vu, 1, &x);
    if (nu) {
      sg_node_save(nu, iu);
      memcpy(nu->i, cpar, sizeof cpar);
    }
    *values = vu;
    if (indices) *indices = iu;
    else sg_tensor_decref(iu);
    return 0;
  }
  bool f64 = x->dtype == SG_F64;
  /* the f32 kernel skips the positions when neither the caller nor autograd wants them (inference) */
  bool positions = indices || sg_needs_grad(1, &x) || x->dtype != SG_F32;
  sg_tensor *xc = sg_nn_contig(x, x->dtype);
  sg_tensor *v = xc ? sg_empty(4, osz, x->dtype, SG_CPU) : NULL;
  sg_tensor *ix = v && positions ? sg_empty(4, osz, SG_I64, SG_CPU) : NULL;
  if (!v || (positions && !ix)) { sg_tensor_decref(xc); sg_tensor_decref(v); return -1; }
  const void *xp = sg_data_ptr(xc);
  void *vp = sg_data_ptr(v);
  int64_t *ip = ix ? sg_data_ptr(ix) : NULL;
  int64_t planes = osz[0] * osz[1], par[6] = {kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
  int rc = 0;
  if (x->dtype == SG_F32) {
    sg_cpu_maxpool_fwd(planes, H, W, oh, ow, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], xp,
                       vp, ip);
    rc = 1;
  }
  sg_pool_note_path(rc == 1 ? "kernel" : "loops");
  for (int64_t pl = 0; pl < planes && rc == 0; pl++) {
    int64_t base = pl * H * W;
    for (int64_t y = 0; y < oh; y++) {
      int64_t h0 = y * stride[0] - padding[0], h1 = h0 + kernel[0] < H ? h0 + kernel[0] : H;
      if (h0 < 0) h0 = 0;
      for (int64_t xo = 0; xo < ow; xo++) {
        int64_t w0 = xo * stride[1] - padding[1], w1 = w0 + kernel[1] < W ? w0 + kernel[1] : W;
        if (w0 < 0) w0 = 0;
        double best = -INFINITY;
        int64_t bi = h0 * W + w0;
        for (int64_t hh = h0; hh < h1; hh++)
          for (int64_t ww = w0; ww < w1; ww++) {
            double val = SG_NN_LD(xp, f64, base + hh * W + ww);
            if (val > best || isnan(val)) { best = val; bi = hh * W + ww; if (isnan(val)) goto found; }
          }
      found:
        SG_NN_ST(vp, f64, (pl * oh + y) * ow + xo, best);
        ip[(pl * oh + y) * ow + xo] = bi;
      }
    }
  }
  sg_tensor_decref(xc);
  sg_node *n = sg_record(op, maxpool_bw, v, 1, &x);
  if (n) {
    sg_node_save(n, ix);
    memcpy(n->i, par, sizeof par);
  }
  *values = v;
  if (indices) *indices = ix;
  else sg_tensor_decref(ix);
  return 0;
}

/* ---------------------------------------------------------------- max unpool */
static int unpool_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *idx = sg_node_saved(n, 0);
  if (!idx) return -1;
  sg_dtype dt = n->in_dtype[0];
  if (n->in_device[0] != SG_CPU) {
    sg_tensor *gcu = sg_nn_contig(g, dt), *gxu = gcu ? sg_empty(4, n->in_shape[0].size, dt, SG_CUDA) : NULL;
    sg_pool_note_path("cuda");
    if (gxu && SG_BACKEND_CALL(SG_DEVICE_OF(gcu), pool.max_unpool2d_backward, "max_unpool2d", gcu, idx, gxu)) {
      sg_tensor_decref(gxu);
      gxu = NULL;
    }
    sg_tensor_decref(gcu);
    gin[0] = gxu;
    return gxu ? 0 : -1;
  }
  bool f64 = dt == SG_F64;
  sg_tensor *gc = sg_nn_contig(g, dt);
  sg_tensor *gx = gc ? sg_empty(4, n->in_shape[0].size, dt, SG_CPU) : NULL;
  if (gx) {
    const int64_t *ip = sg_data_ptr(idx);
    int64_t planes = g->size[0] * g->size[1], os = g->size[2] * g->size[3];
    int64_t is = n->in_shape[0].size[2] * n->in_shape[0].size[3];
    for (int64_t pl = 0; pl < planes; pl++)
      for (int64_t k = 0; k < is; k++)
        SG_NN_ST(sg_data_ptr(gx), f64, pl * is + k, SG_NN_LD(sg_data_ptr(gc), f64, pl * os + ip[pl * is + k]));
  }
  sg_tensor_decref(gc);
  gin[0] = gx;
  return gx ? 0 : -1;
}

sg_tensor *sg_max_unpool2d(sg_tensor *x, sg_tensor *indices, int64_t oh, int64_t ow) {
  const char *op = "max_unpool2d";
  if (!check_input(op, x)) return NULL;
  if (indices->dtype != SG_I64 || indices->storage->device != x->storage->device) {
    sg_error_set("%s: indices must be a %s i64 tensor like the input (got %s on %s)", op,
                 sg_device_name(x->storage->device), sg_dtype_name(indices->dtype),
                 sg_device_name(indices->storage->device));
    return NULL;
  }
  if (!sg_same_shape(x, indices)) {
    sg_error_set("%s: indices must have the input's shape (input %s, indices %s)", op, SG_SHAPE_STR(x),
                 SG_SHAPE_STR(indices));
    return NULL;
  }
  if (oh < 1 || ow < 1) {
    sg_error_set("%s: output size must be positive (got {%lld, %lld})", op, (long long)oh, (long long)ow);
    return NULL;
  }
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL) { sg_error_set("%s: output is too large", op); return NULL; }
  sg_tensor *ic = sg_nn_contig(indices, SG_I64);
  if (!ic) return NULL;
  if (x->storage->device != SG_CPU) { /* the index range is checked on the device */
    sg_tensor *xcu = sg_nn_contig(x, x->dtype), *ou = xcu ? sg_empty(4, osz, x->dtype, SG_CUDA) : NULL;
    sg_pool_note_path("cuda");
    if (ou && SG_BACKEND_CALL(SG_DEVICE_OF(xcu), pool.max_unpool2d, "max_unpool2d", xcu, ic, ou)) {
      sg_tensor_decref(ou);
      ou = NULL;
    }
    if (ou) {
      sg_node *nu = sg_record(op, unpool_bw, ou, 1, &x);
      if (nu) sg_node_save(nu, ic);
    }
    sg_tensor_decref(xcu);
    sg_tensor_decref(ic);
    return ou;
  }
  const int64_t *ip = sg_data_ptr(ic);
  int64_t n = sg_numel(ic);
  for (int64_t k = 0; k < n; k++)
    if (ip[k] < 0 || ip[k] >= oh * ow) {
      sg_error_set("%s: index %lld is out of range for an output plane of %lldx%lld", op, (long long)ip[k],
                   (long long)oh, (long long)ow);
      sg_tensor_decref(ic);
      return NULL;
    }
  bool f64 = x->dtype == SG_F64;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *out = xc ? sg_zeros(4, osz, x->dtype, SG_CPU) : NULL;
  if (out) {
    int64_t planes = osz[0] * osz[1], is = x->size[2] * x->size[3];
    for (int64_t pl = 0; pl < planes; pl++)
      for (int64_t k = 0; k < is; k++)
        SG_NN_ST(sg_data_ptr(out), f64, pl * oh * ow + ip[pl * is + k], SG_NN_LD(sg_data_ptr(xc), f64, pl * is + k));
    sg_node *nd = sg_record(op, unpool_bw, out, 1, &x);
    if (nd) sg_node_save(nd, ic);
  }
  sg_tensor_decref(xc);
  sg_tensor_decref(ic);
  return out;
}

/* ---------------------------------------------------------------- average pools */
typedef struct { int64_t h0, h1, w0, w1; double div; } win;

/* window of output (y, x) for avg_pool2d; params in i[]: k0 k1 s0 s1 p0 p1 cip H W */
static win avg_window(const int64_t *i, int64_t y, int64_t x) {
  win r;
  int64_t H = i[7], W = i[8];
  r.h0 = y * i[2] - i[4]; r.w0 = x * i[3] - i[5];
  r.h1 = r.h0 + i[0] < H + i[4] ? r.h0 + i[0] : H + i[4];
  r.w1 = r.w0 + i[1] < W + i[5] ? r.w0 + i[1] : W + i[5];
  double full = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  if (r.h0 < 0) r.h0 = 0;
  if (r.w0 < 0) r.w0 = 0;
  if (r.h1 > H) r.h1 = H;
  if (r.w1 > W) r.w1 = W;
  r.div = i[6] ? full : (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}

/* window for adaptive pooling; params: oh ow H W */
static win adaptive_window(const int64_t *i, int64_t y, int64_t x) {
  win r;
  int64_t oh = i[0], ow = i[1], H = i[2], W = i[3];
  r.h0 = y * H / oh; r.h1 = ((y + 1) * H + oh - 1) / oh;
  r.w0 = x * W / ow; r.w1 = ((x + 1) * W + ow - 1) / ow;
  r.div = (double)((r.h1 - r.h0) * (r.w1 - r.w0));
  return r;
}

typedef win (*window_fn)(const int64_t *, int64_t, int64_t);

/* The oneDNN form of an average pool: avg_pool2d, or an adaptive pool whose
 * windows tile the plane exactly; false when there is none. */
static bool avg_dnnl_geom(window_fn wf, const int64_t *par, const int64_t *xs, int64_t oh, int64_t ow,
                          sg_dnnl_pool_geom *g, sg_dnnl_pool_alg *alg) {
  if (wf == avg_window) {
    *g = pool_geom(xs, oh, ow, par);
    *alg = par[6] ? SG_DNNL_POOL_AVG_INCL : SG_DNNL_POOL_AVG_EXCL;
    return true;
  }
  if (xs[2] % oh || xs[3] % ow) return false;
  int64_t kp[6] = {xs[2] / oh, xs[3] / ow, xs[2] / oh, xs[3] / ow, 0, 0};
  *g = pool_geom(xs, oh, ow, kp);
  *alg = SG_DNNL_POOL_AVG_INCL;
  return true;
}

/* 0, or -1 with an error from oneDNN */
static int avg_forward(window_fn wf, const int64_t *par, const sg_tensor *xc, sg_tensor *out) {
  if (xc->dtype == SG_F32) {
    sg_dnnl_pool_geom g;
    sg_dnnl_pool_alg alg;
    int rc = 0;
    if (avg_dnnl_geom(wf, par, xc->size, out->size[2], out->size[3], &g, &alg))
      rc = sg_dnnl_pool_fwd(alg, &g, sg_data_ptr(xc), sg_data_ptr(out));
    sg_pool_note_path(rc == 1 ? "dnnl" : "loops");
    if (rc) return rc < 0 ? -1 : 0;
  } else {
    sg_pool_note_path("loops");
  }
  bool f64 = xc->dtype == SG_F64;
  int64_t H = xc->size[2], W = xc->size[3], oh = out->size[2], ow = out->size[3];
  int64_t planes = out->size[0] * out->size[1];
  const void *xp = sg_data_ptr(xc);
  void *op = sg_data_ptr(out);
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t y = 0; y < oh; y++)
      for (int64_t x = 0; x < ow; x++) {
        win r = wf(par, y, x);
        double s = 0;
        for (int64_t h = r.h0; h < r.h1; h++)
          for (int64_t w = r.w0; w < r.w1; w++) s += SG_NN_LD(xp, f64, (pl * H + h) * W + w);
        SG_NN_ST(op, f64, (pl * oh + y) * ow + x, r.div > 0 ? s / r.div : 0);
      }
  return 0;
}

static int avg_backward(window_fn wf, sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_dtype dt = n->in_dtype[0];
  bool f64 = dt == SG_F64;
  const sg_shape *in = &n->in_shape[0];
  if (n->in_device[0] != SG_CPU) {
    sg_tensor *gcu = sg_nn_contig(g, dt), *gxu = gcu ? sg_empty(4, in->size, dt, SG_CUDA) : NULL;
    sg_pool_note_path("cuda");
    if (gxu && SG_BACKEND_CALL(SG_DEVICE_OF(gcu), pool.avg_pool2d_backward, "avg_pool2d", gcu, n->i, wf == adaptive_window, gxu)) {
      sg_tensor_decref(gxu);
      gxu = NULL;
    }
    sg_tensor_decref(gcu);
    gin[0] = gxu;
    return gxu ? 0 : -1;
  }
  sg_tensor *gc = sg_nn_contig(g, dt), *gx = gc ? sg_empty(4, in->size, dt, SG_CPU) : NULL;
  int rc = 0;
  if (gx && dt == SG_F32) {
    sg_dnnl_pool_geom geo;
    sg_dnnl_pool_alg alg;
    if (avg_dnnl_geom(wf, n->i, in->size, gc->size[2], gc->size[3], &geo, &alg))
      rc = sg_dnnl_pool_bwd(alg, &geo, sg_data_ptr(gc), sg_data_ptr(gx));
  }
  sg_pool_note_path(rc == 1 ? "dnnl" : "loops");
  if (gx && rc == 0) {
    memset(sg_data_ptr(gx), 0, (size_t)sg_numel(gx) * sg_dtype_size(dt));
    int64_t H = in->size[2], W = in->size[3], oh = gc->size[2], ow = gc->size[3];
    int64_t planes = gc->size[0] * gc->size[1];
    const void *gp = sg_data_ptr(gc);
    void *xp = sg_data_ptr(gx);
    for (int64_t pl = 0; pl < planes; pl++)
      for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
          win r = wf(n->i, y, x);
          if (!(r.div > 0)) continue;
          double v = SG_NN_LD(gp, f64, (pl * oh + y) * ow + x) / r.div;
          for (int64_t h = r.h0; h < r.h1; h++)
            for (int64_t w = r.w0; w < r.w1; w++) {
              int64_t t = (pl * H + h) * W + w;
              SG_NN_ST(xp, f64, t, SG_NN_LD(xp, f64, t) + v);
            }
        }
  }
  sg_tensor_decref(gc);
  if (rc < 0) {
    sg_tensor_decref(gx);
    gx = NULL;
  }
  gin[0] = gx;
  return gx ? 0 : -1;
}

static int avgpool_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) { return avg_backward(avg_window, n, g, gin); }
static int adaptive_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) { return avg_backward(adaptive_window, n, g, gin); }

static sg_tensor *avg_common(const char *op, window_fn wf, sg_backward_fn bw, sg_tensor *x, const int64_t *par,
                             int npar, int64_t oh, int64_t ow) {
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  sg_device dev = x->storage->device;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *out = xc ? sg_empty(4, osz, x->dtype, dev) : NULL;
  if (out && dev != SG_CPU) {
    sg_pool_note_path("cuda");
    if (SG_BACKEND_CALL(SG_DEVICE_OF(xc), pool.avg_pool2d, "avg_pool2d", xc, par, wf == adaptive_window, out)) {
      sg_tensor_decref(out);
      out = NULL;
    }
  } else
  if (out && avg_forward(wf, par, xc, out)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  sg_tensor_decref(xc);
  if (!out) return NULL;
  sg_node *n = sg_record(op, bw, out, 1, &x);
  if (n) memcpy(n->i, par, sizeof(int64_t) * (size_t)npar);
  return out;
}

sg_tensor *sg_avg_pool2d(sg_tensor *x, const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2],
                         bool count_include_pad) {
  int64_t oh, ow;
  if (!window_plan("avg_pool2d", x, kernel, stride, padding, &oh, &ow)) return NULL;
  int64_t par[9] = {kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], count_include_pad,
                    x->size[2], x->size[3]};
  return avg_common("avg_pool2d", avg_window, avgpool_bw, x, par, 9, oh, ow);
}

sg_tensor *sg_adaptive_avg_pool2d(sg_tensor *x, int64_t oh, int64_t ow) {
  const char *op = "adaptive_avg_pool2d";
  if (!check_input(op, x)) return NULL;
  if (oh < 1 || ow < 1) {
    sg_error_set("%s: output size must be positive (got {%lld, %lld})", op, (long long)oh, (long long)ow);
    return NULL;
  }
  if (x->size[2] < 1 || x->size[3] < 1) {
    sg_error_set("%s: input %s has an empty plane", op, SG_SHAPE_STR(x));
    return NULL;
  }
  int64_t osz[4] = {x->size[0], x->size[1], oh, ow};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL) { sg_error_set("%s: output is too large", op); return NULL; }
  int64_t par[4] = {oh, ow, x->size[2], x->size[3]};
  return avg_common(op, adaptive_window, adaptive_bw, x, par, 4, oh, ow);
}
