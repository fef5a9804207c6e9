/* The differentiable copies: contiguous, clone, casts and moves between
 * devices, and detach; core's sg_copy_ moves the bytes. */
#include "../autograd/autograd.h"
#include <string.h>

/* copy without autograd into a fresh contiguous tensor of dtype dt */
static sg_tensor *raw_copy(sg_tensor *t, sg_dtype dt) {
  sg_tensor *out = sg_empty(t->ndim, t->size, dt, t->storage->device);
  if (!out) return NULL;
  sg_copy_(out, t);
  atomic_store(&out->storage->version, 0);
  return out;
}

static int identity_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  (void)n;
  gin[0] = sg_tensor_incref(g);
  return 0;
}

static int cast_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  gin[0] = sg_to_dtype(g, n->in_dtype[0]);
  return gin[0] ? 0 : -1;
}

sg_tensor *sg_contiguous(sg_tensor *t) {
  if (sg_is_contiguous(t)) return sg_tensor_incref(t);
  return sg_clone(t);
}

sg_tensor *sg_clone(sg_tensor *t) {
  sg_tensor *out = raw_copy(t, t->dtype);
  if (out) sg_record("clone", identity_backward, out, 1, &t);
  return out;
}

sg_tensor *sg_to_dtype(sg_tensor *t, sg_dtype dt) {
  if (t->dtype == dt) return sg_tensor_incref(t);
  sg_tensor *out = raw_copy(t, dt);
  if (out && sg_dtype_is_float(dt)) sg_record("to", cast_backward, out, 1, &t);
  return out;
}

static int device_backward(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  gin[0] = sg_to_device(g, n->in_device[0]);
  return gin[0] ? 0 : -1;
}

sg_tensor *sg_to_device(sg_tensor *t, sg_device dev) {
  if (t->storage->device == dev) return sg_tensor_incref(t);
  sg_tensor *out = sg_empty(t->ndim, t->size, t->dtype, dev);
  if (!out) return NULL;
  if (sg_copy_(out, t)) { sg_tensor_decref(out); return NULL; }
  atomic_store(&out->storage->version, 0);
  if (sg_dtype_is_float(t->dtype)) sg_record("to", device_backward, out, 1, &t);
  return out;
}

sg_tensor *sg_detach(sg_tensor *t) {
  sg_tensor *v = sg_alias(t);
  if (v) v->is_view = t->is_view;
  return v;
}
