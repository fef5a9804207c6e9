/* (being written) */
#include "ops.h"
sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b) { (void)a; (void)b; sg_error_set("matmul: not built yet"); return NULL; }
sg_tensor *sg_bmm(sg_tensor *a, sg_tensor *b) { (void)a; (void)b; sg_error_set("bmm: not built yet"); return NULL; }
