/* 2-d convolution and its adjoint (transposed convolution).
 *
 * Both are described by one geometry (backend.h, sg_conv_geom): a "big" image
 * (the input of conv2d, the output of conv_transpose2d) and a "small" grid of
 * kernel positions (the output of conv2d, the input of conv_transpose2d). The
 * weight is always [small channels, big channels / groups, kh, kw]. The three
 * kinds of the device table's conv entry cover the forward and backward passes
 * of both ops:
 *   conv2d:            forward FWD,      input gradient BWD_DATA, weight gradient BWD_FILTER
 *   conv_transpose2d:  forward BWD_DATA, input gradient FWD,      weight gradient BWD_FILTER
 * Checks, shapes and autograd here; the computation in the table
 * (backend_ref/conv.c the reference loops, backend_cpu/conv.c oneDNN and
 * im2col + BLAS, backend_cuda cuDNN). GPU tensors follow autocast. */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../core/autocast.h"
#include "../backend.h"
#include <stdlib.h>
#include <string.h>

sg_tensor *sg_nn_contig(sg_tensor *t, sg_dtype dt) {
  bool prev = sg_set_grad_enabled(false);
  sg_tensor *c = sg_to_dtype(t, dt), *r = c ? sg_contiguous(c) : NULL;
  sg_set_grad_enabled(prev);
  sg_tensor_decref(c);
  return r;
}

bool sg_nn_check_float(const char *op, const char *arg, const sg_tensor *t) {
  if (t->storage->device != SG_CPU) {
    sg_error_set("%s: %s must be a cpu tensor (got %s)", op, arg, sg_device_name(t->storage->device));
    return false;
  }
  if (t->dtype != SG_F32 && t->dtype != SG_F64) {
    sg_error_set("%s: %s must be f32 or f64 (got %s)", op, arg, sg_dtype_name(t->dtype));
    return false;
  }
  return true;
}

bool sg_nn_check_float_dev(const char *op, const char *arg, const sg_tensor *t) {
  if (t->storage->device != SG_CPU) {
    if (!sg_dtype_is_float(t->dtype)) {
      sg_error_set("%s: %s must be a floating tensor (got %s)", op, arg, sg_dtype_name(t->dtype));
      return false;
    }
    return true;
  }
  return sg_nn_check_float(op, arg, t);
}

sg_conv_opts sg_conv_defaults(void) {
  sg_conv_opts o;
  memset(&o, 0, sizeof o);
  o.stride[0] = o.stride[1] = 1;
  o.dilation[0] = o.dilation[1] = 1;
  o.groups = 1;
  return o;
}

typedef struct {
  sg_conv_geom g;
  bool transposed;
  bool reference; /* opts.reference: the reference table computes, forward and backward */
  sg_device dev;
  sg_dtype dt;    /* the dtype of input, weight, bias and output */
} conv_ctx;

/* The table that computes this convolution: the tensors' device's, or the reference loops when the caller
 * asked for them (cpu tensors only, checked in conv_common). */
static const sg_backend *conv_table(const conv_ctx *c) {
  return c->reference ? sg_backend_reference() : sg_backend_get(c->dev);
}

/* SG_BACKEND_CALL on conv_table()'s table */
#define CONV_CALL(be, entry, op, dev, ...)                                                             \
  ((be) && (be)->entry ? (be)->entry(__VA_ARGS__) : (be) ? sg_backend_missing(op, dev) : -1)

/* ---------------------------------------------------------------- backward */
static int conv_backward(sg_node *n, sg_tensor *gout, sg_tensor **gin) {
  const conv_ctx *c = n->ctx;
  const sg_conv_geom *g = &c->g;
  const char *op = c->transposed ? "conv_transpose2d" : "conv2d";
  const sg_backend *be = conv_table(c);
  if (!be) return -1;
  sg_tensor *go = sg_nn_contig(gout, c->dt);
  if (!go) return -1;
  int rc = 0;
  if (be->conv.share_begin) be->conv.share_begin(); /* go is read by both gradients */
  /* gout lives on the output side: small for conv2d, big for the transposed op */
  if (n->needs[0]) {
    sg_tensor *w = sg_node_saved(n, 1), *wc = w ? sg_nn_contig(w, c->dt) : NULL;
    sg_tensor *gx = wc ? sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, c->dt, c->dev) : NULL;
    if (gx && (c->transposed ? CONV_CALL(be, conv.conv, op, c->dev, SG_CONV_FWD, g, go, wc, gx, NULL)
                             : CONV_CALL(be, conv.conv, op, c->dev, SG_CONV_BWD_DATA, g, gx, wc, go, NULL))) {
      sg_tensor_decref(gx);
      gx = NULL;
    }
    sg_tensor_decref(wc);
    if (!(gin[0] = gx)) rc = -1;
  }
  /* conv2d's bias gradient comes with the weight gradient (oneDNN computes both in one primitive) */
  bool bias_with_weight = !c->transposed && n->needs[1] && n->needs[2];
  if (!rc && n->needs[1]) {
    int64_t C = go->size[1];
    sg_tensor *x = sg_node_saved(n, 0), *xc = x ? sg_nn_contig(x, c->dt) : NULL;
    sg_tensor *gw = xc ? sg_empty(n->in_shape[1].ndim, n->in_shape[1].size, c->dt, c->dev) : NULL;
    sg_tensor *gb = gw && bias_with_weight ? sg_empty(1, &C, c->dt, c->dev) : NULL;
    if (gw && ((bias_with_weight && !gb) ||
               (c->transposed ? CONV_CALL(be, conv.conv, op, c->dev, SG_CONV_BWD_FILTER, g, go, gw, xc, NULL)
                              : CONV_CALL(be, conv.conv, op, c->dev, SG_CONV_BWD_FILTER, g, xc, gw, go, gb)))) {
      sg_tensor_decref(gw);
      gw = NULL;
    }
    sg_tensor_decref(xc);
    if (!(gin[1] = gw)) rc = -1;
    if (bias_with_weight) {
      if (gw) gin[2] = gb;
      else sg_tensor_decref(gb);
    }
  }
  if (!rc && n->needs[2] && !bias_with_weight) {
    int64_t C = go->size[1];
    sg_tensor *gb = sg_empty(1, &C, c->dt, c->dev);
    if (gb && CONV_CALL(be, conv.bias_backward, op, c->dev, go, gb)) {
      sg_tensor_decref(gb);
      gb = NULL;
    }
    if (!(gin[2] = gb)) rc = -1;
  }
  if (be->conv.share_end) be->conv.share_end();
  sg_tensor_decref(go);
  return rc;
}

/* ---------------------------------------------------------------- forward */
static bool check_pair(const char *op, const char *what, const int64_t *v, int64_t min) {
  if (v[0] < min || v[1] < min) {
    sg_error_set("%s: %s must be %s (got {%lld, %lld})", op, what, min > 0 ? "positive" : "non-negative",
                 (long long)v[0], (long long)v[1]);
    return false;
  }
  return true;
}

static sg_tensor *conv_common(bool transposed, sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *opt);

/* Mixed precision on the GPU: input, weight and bias cast (differentiably) to
 * the autocast type, the convolution run in it (accumulating in f32). */
static sg_tensor *conv_autocast(bool transposed, sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o,
                                sg_dtype ct) {
  sg_tensor *xc = sg_to_dtype(x, ct), *wc = xc ? sg_to_dtype(w, ct) : NULL;
  sg_tensor *bc = wc && bias ? sg_to_dtype(bias, ct) : NULL;
  sg_tensor *out = wc && (bc || !bias) ? conv_common(transposed, xc, wc, bc, o) : NULL;
  sg_tensor_decref(xc);
  sg_tensor_decref(wc);
  sg_tensor_decref(bc);
  return out;
}

static sg_tensor *conv_common(bool transposed, sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *opt) {
  const char *op = transposed ? "conv_transpose2d" : "conv2d";
  sg_conv_opts dflt = sg_conv_defaults();
  const sg_conv_opts *o = opt ? opt : &dflt;
  if (!sg_nn_check_float_dev(op, "input", x) || !sg_nn_check_float_dev(op, "weight", w)) return NULL;
  if (bias && !sg_nn_check_float_dev(op, "bias", bias)) return NULL;
  sg_tensor *all[3] = {x, w, bias};
  if (!sg_same_device(op, 3, all)) return NULL;
  sg_device dev = x->storage->device;
  if (dev != SG_CPU) { /* autocast policy: the cpu computes convolutions in f32 or f64 only */
    sg_dtype natural = sg_promote(x->dtype, w->dtype);
    if (bias) natural = sg_promote(natural, bias->dtype);
    sg_dtype ct = sg_autocast_compute_type(dev, natural);
    if (ct != natural) return conv_autocast(transposed, x, w, bias, o, ct);
  }
  if (x->ndim != 4) {
    sg_error_set("%s: input must be 4-d [N,C,H,W] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  if (w->ndim != 4) {
    sg_error_set("%s: weight must be 4-d [%s,kh,kw] (got %s)", op, transposed ? "C,O/groups" : "O,C/groups",
                 SG_SHAPE_STR(w));
    return NULL;
  }
  if (w->dtype != x->dtype || (bias && bias->dtype != x->dtype)) {
    sg_error_set("%s: input, weight and bias must have the same dtype (got %s, %s, %s)", op, sg_dtype_name(x->dtype),
                 sg_dtype_name(w->dtype), bias ? sg_dtype_name(bias->dtype) : "none");
    return NULL;
  }
  int64_t G = o->groups;
  if (G < 1) { sg_error_set("%s: groups must be positive (got %lld)", op, (long long)G); return NULL; }
  if (!check_pair(op, "stride", o->stride, 1) || !check_pair(op, "dilation", o->dilation, 1) ||
      !check_pair(op, "padding", o->padding, 0) || !check_pair(op, "output_padding", o->output_padding, 0))
    return NULL;
  if (w->size[2] < 1 || w->size[3] < 1 || w->size[0] < 1 || w->size[1] < 1) {
    sg_error_set("%s: weight must have positive sizes (got %s)", op, SG_SHAPE_STR(w));
    return NULL;
  }
  if (o->reference && dev != SG_CPU) {
    sg_error_set("%s: reference=true runs the reference loops on cpu tensors (got %s)", op, sg_device_name(dev));
    return NULL;
  }
  sg_conv_geom g;
  memset(&g, 0, sizeof g);
  g.N = x->size[0]; g.G = G; g.kh = w->size[2]; g.kw = w->size[3];
  g.sh = o->stride[0]; g.sw = o->stride[1]; g.dh = o->dilation[0]; g.dw = o->dilation[1];
  int64_t out_ch;
  if (!transposed) {
    g.Cb = x->size[1]; g.Hb = x->size[2]; g.Wb = x->size[3]; g.Cs = w->size[0];
    if (g.Cs % G) {
      sg_error_set("%s: out channels %lld are not divisible by groups %lld (weight %s)", op, (long long)g.Cs,
                   (long long)G, SG_SHAPE_STR(w));
      return NULL;
    }
    if (g.Cb != w->size[1] * G) {
      sg_error_set("%s: input has %lld channels but weight expects %lld (input %s, weight %s%s)", op, (long long)g.Cb,
                   (long long)(w->size[1] * G), SG_SHAPE_STR(x), SG_SHAPE_STR(w), G > 1 ? ", groups > 1" : "");
      return NULL;
    }
    int64_t pt[2] = {o->padding[0], o->padding[1]}, ptot[2] = {2 * o->padding[0], 2 * o->padding[1]};
    if (o->same) {
      if (o->stride[0] != 1 || o->stride[1] != 1) {
        sg_error_set("%s: padding='same' needs stride 1 (got {%lld, %lld})", op, (long long)o->stride[0],
                     (long long)o->stride[1]);
        return NULL;
      }
      ptot[0] = g.dh * (g.kh - 1); ptot[1] = g.dw * (g.kw - 1);
      pt[0] = ptot[0] / 2; pt[1] = ptot[1] / 2;
    }
    g.ph = pt[0]; g.pw = pt[1];
    int64_t eh = g.Hb + ptot[0] - g.dh * (g.kh - 1) - 1, ew = g.Wb + ptot[1] - g.dw * (g.kw - 1) - 1;
    if (eh < 0 || ew < 0) {
      sg_error_set("%s: input %s (padded %lldx%lld) is smaller than the kernel %lldx%lld (dilation {%lld, %lld})", op,
                   SG_SHAPE_STR(x), (long long)(g.Hb + ptot[0]), (long long)(g.Wb + ptot[1]), (long long)g.kh,
                   (long long)g.kw, (long long)g.dh, (long long)g.dw);
      return NULL;
    }
    g.Hs = eh / g.sh + 1; g.Ws = ew / g.sw + 1;
    out_ch = g.Cs;
  } else {
    if (o->same) { sg_error_set("%s: padding='same' is not supported", op); return NULL; }
    g.Cs = x->size[1]; g.Hs = x->size[2]; g.Ws = x->size[3];
    if (w->size[0] != g.Cs) {
      sg_error_set("%s: input has %lld channels but weight expects %lld (input %s, weight %s)", op, (long long)g.Cs,
                   (long long)w->size[0], SG_SHAPE_STR(x), SG_SHAPE_STR(w));
      return NULL;
    }
    if (g.Cs % G) {
      sg_error_set("%s: input channels %lld are not divisible by groups %lld (input %s)", op, (long long)g.Cs,
                   (long long)G, SG_SHAPE_STR(x));
      return NULL;
    }
    for (int k = 0; k < 2; k++)
      if (o->output_padding[k] >= o->stride[k] && o->output_padding[k] >= o->dilation[k]) {
        sg_error_set("%s: output_padding must be smaller than stride or dilation (got output_padding {%lld, %lld}, "
                     "stride {%lld, %lld}, dilation {%lld, %lld})", op, (long long)o->output_padding[0],
                     (long long)o->output_padding[1], (long long)o->stride[0], (long long)o->stride[1],
                     (long long)o->dilation[0], (long long)o->dilation[1]);
        return NULL;
      }
    g.Cb = w->size[1] * G;
    g.ph = o->padding[0]; g.pw = o->padding[1];
    g.Hb = (g.Hs - 1) * g.sh - 2 * g.ph + g.dh * (g.kh - 1) + o->output_padding[0] + 1;
    g.Wb = (g.Ws - 1) * g.sw - 2 * g.pw + g.dw * (g.kw - 1) + o->output_padding[1] + 1;
    if (g.Hb < 1 || g.Wb < 1 || g.Hs < 1 || g.Ws < 1) {
      sg_error_set("%s: output size %lldx%lld is not positive (input %s, weight %s, padding {%lld, %lld})", op,
                   (long long)g.Hb, (long long)g.Wb, SG_SHAPE_STR(x), SG_SHAPE_STR(w), (long long)g.ph,
                   (long long)g.pw);
      return NULL;
    }
    out_ch = g.Cb;
  }
  if (bias && (bias->ndim != 1 || bias->size[0] != out_ch)) {
    sg_error_set("%s: bias must have shape [%lld] (got %s)", op, (long long)out_ch, SG_SHAPE_STR(bias));
    return NULL;
  }
  int64_t osz[4] = {g.N, out_ch, transposed ? g.Hb : g.Hs, transposed ? g.Wb : g.Ws};
  if (sg_shape_numel(4, osz) > SG_MAX_NUMEL ||
      (double)(g.Cb / G) * (double)(g.kh * g.kw) * (double)(g.Hs * g.Ws) > (double)SG_MAX_NUMEL) {
    sg_error_set("%s: output %s is too large", op, sg_shape_str(4, osz, (char[96]){0}, 96));
    return NULL;
  }
  conv_ctx ctx = {.g = g, .transposed = transposed, .reference = o->reference, .dev = dev, .dt = x->dtype};
  const sg_backend *be = conv_table(&ctx);
  sg_tensor *xc = be ? sg_nn_contig(x, x->dtype) : NULL, *wc = xc ? sg_nn_contig(w, x->dtype) : NULL;
  sg_tensor *bc = wc && bias ? sg_nn_contig(bias, x->dtype) : NULL;
  sg_tensor *out = wc && (bc || !bias) ? sg_empty(4, osz, x->dtype, dev) : NULL;
  int rc = out ? 0 : -1;
  /* conv2d's bias goes with the convolution (oneDNN fuses it); the transposed op's is added after */
  if (out && !transposed) rc = CONV_CALL(be, conv.conv, op, dev, SG_CONV_FWD, &g, xc, wc, out, bc);
  else if (out) {
    rc = CONV_CALL(be, conv.conv, op, dev, SG_CONV_BWD_DATA, &g, out, wc, xc, NULL);
    if (!rc && bc) rc = CONV_CALL(be, conv.bias_add_, op, dev, out, bc);
  }
  sg_tensor_decref(bc);
  sg_tensor_decref(xc);
  sg_tensor_decref(wc);
  if (rc) { sg_tensor_decref(out); return NULL; }
  sg_tensor *ins[3] = {x, w, bias};
  sg_node *n = sg_record(op, conv_backward, out, 3, ins);
  if (n) {
    conv_ctx *cc = malloc(sizeof *cc);
    if (!cc) { sg_tensor_decref(out); sg_error_set("%s: out of memory", op); return NULL; }
    *cc = ctx;
    n->ctx = cc;
    n->free_ctx = free;
    sg_node_save(n, n->needs[1] ? x : NULL);
    sg_node_save(n, n->needs[0] ? w : NULL);
  }
  return out;
}

sg_tensor *sg_conv2d(sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o) {
  return conv_common(false, x, w, bias, o);
}

sg_tensor *sg_conv_transpose2d(sg_tensor *x, sg_tensor *w, sg_tensor *bias, const sg_conv_opts *o) {
  return conv_common(true, x, w, bias, o);
}
