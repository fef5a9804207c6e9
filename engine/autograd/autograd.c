/* The tape and the backward pass. */
#include "autograd.h"
#include "../backend.h"
#include <stdlib.h>
#include <string.h>

static _Thread_local bool grad_off; /* grad mode is per thread, on by default */

bool sg_grad_enabled(void) { return !grad_off; }
bool sg_set_grad_enabled(bool on) { bool prev = !grad_off; grad_off = !on; return prev; }

bool sg_needs_grad(int n, sg_tensor **in) {
  if (grad_off) return false;
  for (int k = 0; k < n; k++) if (in[k] && in[k]->requires_grad) return true;
  return false;
}


sg_node *sg_record(const char *op, sg_backward_fn bw, sg_tensor *out, int nin, sg_tensor **in) {
  if (!sg_needs_grad(nin, in)) return NULL;
  sg_set_grad_fn_release(sg_node_decref); /* core hands dying tensors' nodes back to the tape */
  sg_node *n = calloc(1, sizeof *n);
  if (!n) return NULL; /* out of memory: the result simply has no history */
  atomic_init(&n->refcount, 1);
  n->op = op;
  n->backward = bw;
  n->nin = nin;
  for (int k = 0; k < nin; k++) {
    if (!in[k]) continue;
    n->in_shape[k] = sg_shape_of(in[k]);
    n->in_dtype[k] = in[k]->dtype;
    n->in_device[k] = in[k]->storage->device;
    if (!in[k]->requires_grad) continue;
    n->needs[k] = true;
    if (in[k]->grad_fn) { n->next[k] = in[k]->grad_fn; atomic_fetch_add(&n->next[k]->refcount, 1); }
    else n->leaf[k] = sg_tensor_incref(in[k]);
  }
  if (out->grad_fn) sg_node_decref(out->grad_fn);
  out->grad_fn = n;
  out->requires_grad = true;
  return n;
}

void sg_node_save(sg_node *n, sg_tensor *t) {
  /* Save a history-free alias: saving the node's own output with its grad_fn
   * would make a reference cycle. The alias shares storage and version. */
  sg_tensor *a = t ? sg_alias(t) : NULL;
  if (a) a->is_view = t->is_view;
  n->saved_version[n->nsaved] = t ? atomic_load(&t->storage->version) : 0;
  n->saved[n->nsaved++] = a;
}

sg_tensor *sg_node_saved(sg_node *n, int k) {
  sg_tensor *t = n->saved[k];
  if (t && atomic_load(&t->storage->version) != n->saved_version[k]) {
    sg_error_set("backward: a tensor saved by '%s' (shape %s) was modified in place after it was saved "
                 "(version %llu, expected %llu); use an out-of-place op or clone it first",
                 n->op, SG_SHAPE_STR(t), (unsigned long long)atomic_load(&t->storage->version),
                 (unsigned long long)n->saved_version[k]);
    return NULL;
  }
  return t;
}

static void release_saved(sg_node *n) {
  for (int k = 0; k < n->nsaved; k++) { sg_tensor_decref(n->saved[k]); n->saved[k] = NULL; }
  if (n->ctx && n->free_ctx) n->free_ctx(n->ctx);
  n->ctx = NULL;
  n->released = true;
}

void sg_node_decref(sg_node *n) {
  /* iterative, so that a long chain of nodes cannot overflow the C stack */
  sg_node **stack = NULL;
  size_t top = 0, cap = 0;
  while (n) {
    if (atomic_fetch_sub(&n->refcount, 1) == 1) {
      release_saved(n);
      sg_tensor_decref(n->gacc);
      for (int k = 0; k < n->nin; k++) {
        sg_tensor_decref(n->leaf[k]);
        if (n->next[k]) {
          if (top == cap) {
            cap = cap ? cap * 2 : 16;
            sg_node **ns = realloc(stack, cap * sizeof *stack);
            if (!ns) { cap = top; continue; } /* leak rather than crash under OOM */
            stack = ns;
          }
          stack[top++] = n->next[k];
        }
      }
      free(n);
    }
    n = top ? stack[--top] : NULL;
  }
  free(stack);
}

/* The tape adds gradients with core's copies and the device table's add, not with ops (which record into
 * the tape): g in dtype dt, g itself when it already is (a new reference). */
static sg_tensor *as_dtype(sg_tensor *g, sg_dtype dt) {
  if (g->dtype == dt) return sg_tensor_incref(g);
  sg_tensor *c = sg_empty(g->ndim, g->size, dt, g->storage->device);
  if (c && sg_copy_(c, g)) { sg_tensor_decref(c); c = NULL; }
  return c;
}

/* out = a + b, all of one shape and device; out may be a (then its version is bumped) */
static int add_into(sg_tensor *out, sg_tensor *a, sg_tensor *b) {
  if (SG_BACKEND_CALL(SG_DEVICE_OF(out), elementwise.binary, "backward", SG_ADD, out, a, b, out->dtype)) return -1;
  atomic_fetch_add(&out->storage->version, 1);
  return 0;
}

/* *acc += g (out of place, so tensors shared with other nodes stay intact) */
static int accumulate(sg_tensor **acc, sg_tensor *g, sg_dtype dt) {
  sg_tensor *gc = as_dtype(g, dt);
  if (!gc) return -1;
  if (!*acc) { *acc = gc; return 0; }
  sg_tensor *s = sg_empty((*acc)->ndim, (*acc)->size, dt, (*acc)->storage->device);
  int rc = s ? add_into(s, *acc, gc) : -1;
  sg_tensor_decref(gc);
  if (rc) { sg_tensor_decref(s); return -1; }
  sg_tensor_decref(*acc);
  *acc = s;
  return 0;
}

static int accumulate_leaf(sg_tensor *leaf, sg_tensor *g) {
  if (!sg_same_shape(leaf, g)) {
    sg_error_set("backward: gradient of shape %s for a leaf of shape %s", SG_SHAPE_STR(g), SG_SHAPE_STR(leaf));
    return -1;
  }
  if (!leaf->grad) {
    sg_tensor *c = sg_empty_like(leaf);
    if (!c) return -1;
    sg_copy_(c, g);
    leaf->grad = c;
    return 0;
  }
  sg_tensor *gc = as_dtype(g, leaf->grad->dtype);
  if (!gc) return -1;
  int rc = add_into(leaf->grad, leaf->grad, gc);
  sg_tensor_decref(gc);
  return rc;
}

typedef struct { sg_node **v; size_t n, cap; } node_vec;
static int push(node_vec *s, sg_node *n) {
  if (s->n == s->cap) {
    size_t c = s->cap ? s->cap * 2 : 64;
    sg_node **nv = realloc(s->v, c * sizeof *nv);
    if (!nv) { sg_error_set("backward: out of memory"); return -1; }
    s->v = nv; s->cap = c;
  }
  s->v[s->n++] = n;
  return 0;
}

static int run_graph(sg_node *root, sg_tensor *grad) {
  static atomic_uint_fast64_t stamp_counter;
  uint64_t stamp = atomic_fetch_add(&stamp_counter, 1) + 1;
  node_vec all = {0}, work = {0}, ready = {0};
  int rc = -1;
  /* pass 1: find every node reachable from root and count incoming edges */
  root->stamp = stamp; root->pending = 0;
  if (push(&all, root) || push(&work, root)) goto done;
  while (work.n) {
    sg_node *n = work.v[--work.n];
    if (n->released) {
      sg_error_set("backward: the graph through '%s' was already used by a backward pass and its saved "
                   "tensors were freed; compute the forward again", n->op);
      goto done;
    }
    for (int k = 0; k < n->nin; k++) {
      sg_node *m = n->next[k];
      if (!m) continue;
      if (m->stamp != stamp) {
        m->stamp = stamp; m->pending = 0;
        if (push(&all, m) || push(&work, m)) goto done;
      }
      m->pending++;
    }
  }
  /* pass 2: run nodes once all their consumers have delivered gradients */
  sg_tensor_assign(&root->gacc, grad);
  if (push(&ready, root)) goto done;
  while (ready.n) {
    sg_node *n = ready.v[--ready.n];
    sg_tensor *gin[SG_NODE_MAX_IN] = {0};
    sg_tensor *g = n->gacc;
    n->gacc = NULL;
    int r = g ? n->backward(n, g, gin) : 0;
    sg_tensor_decref(g);
    for (int k = 0; k < n->nin && r == 0; k++) {
      if (!n->needs[k]) continue;
      if (gin[k] && n->next[k]) r = accumulate(&n->next[k]->gacc, gin[k], n->in_dtype[k]);
      else if (gin[k] && n->leaf[k]) r = accumulate_leaf(n->leaf[k], gin[k]);
      if (n->next[k] && --n->next[k]->pending == 0 && push(&ready, n->next[k])) r = -1;
    }
    for (int k = 0; k < SG_NODE_MAX_IN; k++) sg_tensor_decref(gin[k]);
    if (r) goto done;
    /* its saved tensors are not needed any more: free them now, not after the whole pass, so that
     * activations go while the gradients come (a failure later leaves this part of the graph used up,
     * as a finished pass would) */
    release_saved(n);
  }
  rc = 0;
done:
  for (size_t i = 0; i < all.n; i++) {
    sg_tensor_decref(all.v[i]->gacc);
    all.v[i]->gacc = NULL;
    if (rc == 0) release_saved(all.v[i]);
  }
  free(all.v); free(work.v); free(ready.v);
  return rc;
}

int sg_backward(sg_tensor *root, sg_tensor *grad) {
  if (!root->requires_grad) {
    sg_error_set("backward: the tensor does not require grad and has no grad_fn");
    return -1;
  }
  sg_tensor *g = NULL;
  if (grad) {
    if (!sg_same_shape(grad, root)) {
      sg_error_set("backward: gradient of shape %s for a tensor of shape %s", SG_SHAPE_STR(grad), SG_SHAPE_STR(root));
      return -1;
    }
    g = as_dtype(grad, root->dtype);
  } else {
    if (sg_numel(root) != 1) {
      sg_error_set("backward: a gradient can be created implicitly only for a single-element tensor, got shape %s "
                   "(pass the gradient explicitly)", SG_SHAPE_STR(root));
      return -1;
    }
    g = sg_full(root->ndim, root->size, 1.0, root->dtype, root->storage->device);
  }
  if (!g) return -1;
  bool prev = sg_set_grad_enabled(false);
  int rc = root->grad_fn ? run_graph(root->grad_fn, g) : accumulate_leaf(root, g);
  sg_set_grad_enabled(prev);
  sg_tensor_decref(g);
  return rc;
}
