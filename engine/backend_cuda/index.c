/* Indexing ops on the GPU: the glue of kernels/index.cu. Index maps built on
 * the host go over in one copy; the adjoint's inverse maps (per dim, the
 * output positions reading each input position, ascending) are built on the
 * host from them. */
#include "common.h"
#include "../../kernels/k_index.h"
#include <stdlib.h>
#include <string.h>

/* host block -> fresh device block (freed with sg_cuda_free after the kernels
   are queued: the one stream orders the reuse) */
static int64_t *upload(const int64_t *host, int64_t len) {
  size_t nb = (size_t)(len > 0 ? len : 1) * sizeof(int64_t);
  int64_t *d = sg_cuda_malloc(nb);
  if (!d) return NULL;
  if (len > 0 && !SG_CUDA_OK(cudaMemcpyAsync(d, host, (size_t)len * sizeof(int64_t), cudaMemcpyHostToDevice,
                                             sg_cuda_stream()))) {
    sg_cuda_free(d);
    return NULL;
  }
  return d;
}

int sg_cuda_index_map(sg_tensor *out, const sg_tensor *a, int nd, const int64_t *out_size, const int64_t *astride,
                      int64_t *const *maps, const int64_t *map_data, int64_t map_len, double fill) {
  if (!sg_cuda_ensure()) return -1;
  if (nd > SG_KDIMS) { sg_error_set("index map: %d dims (at most %d)", nd, SG_KDIMS); return -1; }
  int64_t n = sg_numel(out);
  if (n == 0) return 0;
  sgk_idxmap m;
  memset(&m, 0, sizeof m);
  m.ndim = nd;
  bool any = false;
  for (int d = 0; d < nd; d++) {
    m.size[d] = out_size[d];
    m.stride[d] = astride[d];
    any = any || maps[d];
  }
  int64_t *dev = NULL;
  if (any) {
    if (!(dev = upload(map_data, map_len))) return -1;
    for (int d = 0; d < nd; d++) if (maps[d]) m.map[d] = dev + (maps[d] - map_data);
  }
  uint64_t bits = 0;
  sg_store_f64(&bits, a->dtype, fill);
  int rc = SG_LAUNCH_OK(sgk_index_map(sg_data_ptr(out), sg_data_ptr(a), (int)sg_dtype_size(a->dtype), &m, bits, n,
                                      sg_cuda_stream())) ? 0 : -1;
  if (dev) sg_cuda_free(dev);
  return rc;
}

int sg_cuda_index_map_backward(sg_tensor *ga, const sg_tensor *g, int nd, const int64_t *out_size,
                               int64_t *const *maps) {
  if (!sg_cuda_ensure()) return -1;
  if (nd > SG_KDIMS || ga->ndim > nd) { sg_error_set("index map adjoint: %d dims", nd); return -1; }
  if ((ga->dtype != SG_F32 && ga->dtype != SG_F64) || g->dtype != ga->dtype || !sg_is_contiguous(ga) ||
      !sg_is_contiguous(g)) {
    sg_error_set("index map adjoint: internal error, expected contiguous f32/f64 tensors");
    return -1;
  }
  int64_t n_in = sg_numel(ga);
  if (n_in == 0) return 0;
  if (sg_numel(g) == 0) { /* nothing read anything (and an empty output has no maps) */
    if (!SG_CUDA_OK(cudaMemsetAsync(sg_data_ptr(ga), 0, (size_t)n_in * sg_dtype_size(ga->dtype), sg_cuda_stream())))
      return -1;
    atomic_fetch_add(&ga->storage->version, 1);
    return 0;
  }
  sgk_idxadj a;
  memset(&a, 0, sizeof a);
  a.ndim = nd;
  int off = nd - ga->ndim;
  int64_t total = 0;
  for (int d = 0; d < nd; d++) {
    a.in_size[d] = d < off ? 1 : ga->size[d - off];
    a.out_size[d] = out_size[d];
    a.kind[d] = maps[d] ? 2 : d < off ? 1 : 0;
    if (maps[d]) total += a.in_size[d] + 1 + out_size[d];
  }
  int64_t *host = NULL, *dev = NULL;
  if (total > 0) {
    host = calloc((size_t)total, sizeof *host);
    if (!host) { sg_error_set("index map adjoint: out of memory"); return -1; }
    /* per mapped dim: off[P + 1] (row starts), then ent[out_size] (output positions by input position, ascending) */
    int64_t *p = host;
    for (int d = 0; d < nd; d++) {
      if (!maps[d]) continue;
      int64_t P = a.in_size[d], J = out_size[d];
      int64_t *o = p, *e = p + P + 1;
      for (int64_t j = 0; j < J; j++)
        if (maps[d][j] >= 0) o[maps[d][j] + 1]++;
      for (int64_t q = 0; q < P; q++) o[q + 1] += o[q];
      /* fill with o[q] as the cursor of row q, then shift the starts back */
      for (int64_t j = 0; j < J; j++)
        if (maps[d][j] >= 0) e[o[maps[d][j]]++] = j;
      for (int64_t q = P; q > 0; q--) o[q] = o[q - 1];
      o[0] = 0;
      p += P + 1 + J;
    }
    dev = upload(host, total);
    if (!dev) { free(host); return -1; }
    int64_t *dp = dev;
    for (int d = 0; d < nd; d++) {
      if (!maps[d]) continue;
      a.off[d] = dp;
      a.ent[d] = dp + a.in_size[d] + 1;
      dp += a.in_size[d] + 1 + out_size[d];
    }
  }
  int rc = SG_LAUNCH_OK(sgk_index_adjoint(sg_data_ptr(ga), sg_data_ptr(g), ga->dtype == SG_F64, &a, n_in,
                                          sg_cuda_stream())) ? 0 : -1;
  if (dev) sg_cuda_free(dev);
  free(host); /* the copy from pageable memory has been staged by now */
  if (rc == 0) atomic_fetch_add(&ga->storage->version, 1);
  return rc;
}

int sg_cuda_gather_scatter(int mode, sg_tensor *dst, const sg_tensor *src, int dim, const sg_tensor *ix) {
  if (!sg_cuda_ensure()) return -1;
  int64_t n = sg_numel(ix);
  if (n == 0) return 0;
  sgk_gs g;
  memset(&g, 0, sizeof g);
  int nd = ix->ndim > 0 ? ix->ndim : 1;
  g.ndim = nd;
  g.dim = dim;
  int64_t st = 1;
  for (int d = nd - 1; d >= 0; d--) {
    g.size[d] = ix->ndim ? ix->size[d] : 1;
    g.istride[d] = st;
    st *= g.size[d];
    g.dstride[d] = dst->ndim ? dst->stride[d] : 0;
    g.sstride[d] = src->ndim ? src->stride[d] : 0;
  }
  const int64_t *iv = sg_data_ptr(ix);
  int rc;
  if (mode == SG_GS_GATHER)
    rc = SG_LAUNCH_OK(sgk_gather(&g, sg_data_ptr(dst), sg_data_ptr(src), (int)sg_dtype_size(dst->dtype), iv, n,
                                 sg_cuda_stream())) ? 0 : -1;
  else
    rc = SG_LAUNCH_OK(sgk_scatter(&g, mode == SG_GS_SCATTER_ADD, sg_data_ptr(dst), sg_data_ptr(src), dst->dtype, iv, n,
                                  sg_cuda_stream())) ? 0 : -1;
  if (rc == 0) atomic_fetch_add(&dst->storage->version, 1);
  return rc;
}

int sg_cuda_index_check(const sg_tensor *ix, int64_t hi, int64_t *pos, int64_t *val) {
  if (!sg_cuda_ensure()) return -1;
  unsigned long long *bad = sg_cuda_malloc(sizeof *bad);
  if (!bad) return -1;
  unsigned long long first = 0;
  bool ok = SG_LAUNCH_OK(sgk_index_check(sg_data_ptr(ix), sg_numel(ix), hi, bad, sg_cuda_stream())) &&
            SG_CUDA_OK(cudaMemcpyAsync(&first, bad, sizeof first, cudaMemcpyDeviceToHost, sg_cuda_stream())) &&
            SG_CUDA_OK(cudaStreamSynchronize(sg_cuda_stream()));
  sg_cuda_free(bad);
  if (!ok) return -1;
  if (first == ~0ull) return 0;
  *pos = (int64_t)first;
  if (sg_cuda_get_bytes(ix, ix->offset + (int64_t)first, val)) return -1;
  return 1;
}

int sg_cuda_index_max(const sg_tensor *ix, int64_t *mx) {
  if (!sg_cuda_ensure()) return -1;
  long long *d = sg_cuda_malloc(sizeof *d);
  if (!d) return -1;
  long long v = 0;
  bool ok = SG_LAUNCH_OK(sgk_index_max(sg_data_ptr(ix), sg_numel(ix), d, sg_cuda_stream())) &&
            SG_CUDA_OK(cudaMemcpyAsync(&v, d, sizeof v, cudaMemcpyDeviceToHost, sg_cuda_stream())) &&
            SG_CUDA_OK(cudaStreamSynchronize(sg_cuda_stream()));
  sg_cuda_free(d);
  if (!ok) return -1;
  *mx = (int64_t)v;
  return 0;
}

int sg_cuda_one_hot(sg_tensor *out, const sg_tensor *ix, int64_t classes) {
  if (!sg_cuda_ensure()) return -1;
  return SG_LAUNCH_OK(sgk_one_hot(sg_data_ptr(out), sg_data_ptr(ix), sg_numel(ix), classes, sg_cuda_stream())) ? 0
                                                                                                              : -1;
}
