/* Reverse-mode autograd: a tape of nodes, one per differentiable op result.
 *
 * A node knows how to turn the gradient of its output into gradients of its
 * inputs. It points at the nodes that produced its inputs (or at the leaf
 * tensors to accumulate into), never at the input tensors themselves, so
 * activations not explicitly saved are freed as soon as Lua drops them. */
#ifndef SG_AUTOGRAD_H
#define SG_AUTOGRAD_H
#include "../core/tensor.h"

#define SG_NODE_MAX_IN 4
#define SG_NODE_MAX_SAVED 4

typedef struct sg_node sg_node;
/* gin[i] receives a new reference to the gradient of input i (or stays NULL
 * when that input needs none: check n->needs[i]). Returns 0, or -1 with error. */
typedef int (*sg_backward_fn)(sg_node *n, sg_tensor *gout, sg_tensor **gin);

struct sg_node {
  atomic_int refcount;
  const char *op;
  sg_backward_fn backward;
  int nin;
  bool needs[SG_NODE_MAX_IN];
  sg_node *next[SG_NODE_MAX_IN];     /* grad_fn of input i, when it has one */
  sg_tensor *leaf[SG_NODE_MAX_IN];   /* leaf input i to accumulate into */
  sg_shape in_shape[SG_NODE_MAX_IN];
  sg_dtype in_dtype[SG_NODE_MAX_IN];
  sg_device in_device[SG_NODE_MAX_IN];
  int nsaved;
  sg_tensor *saved[SG_NODE_MAX_SAVED];
  uint64_t saved_version[SG_NODE_MAX_SAVED];
  double f[8];      /* op parameters */
  int64_t i[2 * SG_MAX_DIMS + 4];
  void *ctx;        /* larger op state, freed with free_ctx */
  void (*free_ctx)(void *);
  /* scratch used while running backward */
  uint64_t stamp;
  bool released; /* saved tensors freed after a backward pass */
  int pending;
  sg_tensor *gacc;
};

bool sg_grad_enabled(void);
bool sg_set_grad_enabled(bool on); /* returns the previous mode */

/* True when any of the inputs requires grad and grad mode is on. */
bool sg_needs_grad(int n, sg_tensor **inputs);

/* Creates a node for `out` = op(inputs) and attaches it; `out` then requires
 * grad. Returns the node so the op can save tensors and parameters, or NULL
 * when no graph is recorded (grad off or no input requiring grad). */
sg_node *sg_record(const char *op, sg_backward_fn bw, sg_tensor *out, int nin, sg_tensor **inputs);
void sg_node_save(sg_node *n, sg_tensor *t);
/* Returns saved tensor k, or NULL with an error when it was modified in place. */
sg_tensor *sg_node_saved(sg_node *n, int k);
void sg_node_decref(sg_node *n);

/* Runs backward from `root`; `grad` may be NULL for a single-element root. */
int sg_backward(sg_tensor *root, sg_tensor *grad);


#endif
