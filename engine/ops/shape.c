/* Joining, indexing and rearranging ops. (being written) */
#include "ops.h"
sg_tensor *sg_gather(sg_tensor *a, int dim, sg_tensor *index) { (void)a; (void)dim; (void)index; sg_error_set("gather: not built yet"); return NULL; }
sg_tensor *sg_scatter(sg_tensor *a, int dim, sg_tensor *index, sg_tensor *src) { (void)a; (void)dim; (void)index; (void)src; sg_error_set("scatter: not built yet"); return NULL; }
