/* A compiled augmentation recipe and its executor.
 *
 * lua/semseg/augment.lua builds recipes as trees of Lua tables; they are
 * compiled (engine/lua/lua_data.c) into this tree of plain C nodes, which
 * draws every random parameter from the keyed generator of augment.h exactly
 * as the Lua reference (augment.lua, apply_reference) does, and calls the
 * same kernels. Because the tree is immutable and every draw depends on the
 * seed alone, one recipe can be run from several threads at once.
 *
 * Seeds: node with seed s draws U(s, i) = sg_aug_uniform(s, 0, i); draw 0 is
 * the probability test; child i (1-based) of a composite runs with
 * sg_aug_subseed(s, i); kernels that take a seed get sg_aug_subseed(s, 0). */
#ifndef SG_RECIPE_H
#define SG_RECIPE_H
#include "augment.h"

typedef enum {
  SG_R_FLIP, SG_R_ROT90, SG_R_TRANSPOSE, SG_R_ROTATE, SG_R_SCALE, SG_R_ELASTIC, SG_R_GRID_DISTORTION,
  SG_R_RANDOM_CROP, SG_R_RANDOM_RESIZED_CROP, SG_R_BRIGHTNESS, SG_R_CONTRAST, SG_R_GAMMA, SG_R_GAUSSIAN_NOISE,
  SG_R_GAUSSIAN_BLUR, SG_R_RECIPE, SG_R_ONE_OF, SG_R_SOME_OF, SG_R_NOPS
} sg_rop;

/* "flip" -> SG_R_FLIP ...; -1 when unknown. */
int sg_rop_from_name(const char *name);
const char *sg_rop_name(sg_rop op);

typedef struct sg_rnode {
  sg_rop op;
  double p;
  int axis;            /* flip: 0 horizontal, 1 vertical, 2 both */
  bool has_k;          /* rot90: fixed k (else random 0..3) */
  int64_t k;
  double r[2];         /* the main range: degrees, factor, alpha, delta, gamma, sigma, (rrc) scale */
  double r2[2];        /* elastic sigma; random_resized_crop ratio */
  int64_t num_steps;   /* grid_distortion */
  double limit;        /* grid_distortion distort_limit */
  int64_t size[2];     /* random_crop / random_resized_crop output h, w */
  sg_fill fill;
  int64_t n;           /* some_of */
  double *weights;     /* one_of (NULL: uniform), nchild entries */
  int nchild;
  struct sg_rnode *child;
} sg_rnode;

/* Metatable name of the Lua userdata holding a compiled recipe (an sg_rnode *). */
#define SG_RECIPE_MT "semseg.Recipe"

/* Frees what a node owns (children, weights), not the node itself. */
void sg_rnode_clear(sg_rnode *n);

/* Runs the recipe on one sample. out->image / out->mask are NEW references:
 * new tensors, or the inputs themselves (incref'd) when no transform fired.
 * mask may be NULL (out->mask is then NULL). -1 with an error on failure. */
int sg_recipe_apply(const sg_rnode *root, uint64_t seed, sg_tensor *image, sg_tensor *mask, sg_pair *out);

#endif
