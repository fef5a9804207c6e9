// Host emulation of the CUDA runtime and of kernel launches, for the CUDA
// emulation build (scripts/cuda_emu/build.sh).
#include "cuda_runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>
#include <vector>

namespace emu {
uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;
static const size_t STACK = 256 * 1024;
static std::vector<ucontext_t> ctx;
static std::vector<char *> stacks;
static std::vector<int> state; // 0 runnable, 1 at __syncthreads, 2 done, 3 at a warp exchange
static std::vector<unsigned long long> slot; // per-thread value of __syncthreads_or / warp exchanges
static ucontext_t sched;
static int cur, nthreads;
static std::function<void()> *body_p;
long long launches, fibers;

static void entry() {
  (*body_p)();
  state[cur] = 2;
}

static void yield_as(int st) {
  state[cur] = st;
  swapcontext(&ctx[cur], &sched);
}

void syncthreads() { yield_as(1); }

int syncthreads_or(int pred) {
  slot[cur] = pred != 0;
  yield_as(1);
  int any = 0;
  for (int t = 0; t < nthreads; t++) any |= slot[t] != 0;
  yield_as(1); // nobody overwrites its slot before every thread has read them all
  return any;
}

unsigned long long warp_exchange(unsigned mask, unsigned long long v, int src_lane) {
  int w0 = cur & ~31, wn = nthreads - w0 < 32 ? nthreads - w0 : 32;
  if (mask != 0xffffffffu || wn != 32) {
    fprintf(stderr, "emu: warp shuffle with mask %#x in a warp of %d threads (only full warps are emulated)\n", mask,
            wn);
    abort();
  }
  slot[cur] = v;
  yield_as(3);
  unsigned long long r = src_lane >= 0 && src_lane < 32 ? slot[w0 + src_lane] : v;
  yield_as(3);
  return r;
}

static void run_block(int n, const dim3 &block) {
  for (int t = 0; t < n; t++) {
    getcontext(&ctx[t]);
    ctx[t].uc_stack.ss_sp = stacks[t];
    ctx[t].uc_stack.ss_size = STACK;
    ctx[t].uc_link = &sched;
    makecontext(&ctx[t], entry, 0);
    state[t] = 0;
  }
  fibers += n;
  for (;;) {
    // run every runnable thread until it waits or exits
    for (int t = 0; t < n; t++) {
      if (state[t] != 0) continue;
      cur = t;
      thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      swapcontext(&sched, &ctx[t]);
    }
    int done = 0, at_bar = 0, at_warp = 0;
    for (int t = 0; t < n; t++) {
      done += state[t] == 2;
      at_bar += state[t] == 1;
      at_warp += state[t] == 3;
    }
    if (done == n) return;
    // warps whose lanes all wait at an exchange go on
    bool released = false;
    for (int w0 = 0; w0 < n; w0 += 32) {
      int wn = n - w0 < 32 ? n - w0 : 32, k = 0;
      for (int t = w0; t < w0 + wn; t++) k += state[t] == 3;
      if (k == wn) {
        for (int t = w0; t < w0 + wn; t++) state[t] = 0;
        released = true;
      } else if (k) {
        fprintf(stderr, "emu: warp shuffle reached by %d of the %d lanes of warp %d (block %u,%u,%u): the others "
                "exited or wait at __syncthreads\n", k, wn, w0 / 32, block_idx.x, block_idx.y, block_idx.z);
        abort();
      }
    }
    if (released) continue;
    if (at_bar && done) {
      fprintf(stderr, "emu: __syncthreads reached by %d threads while %d exited (block %u,%u,%u)\n", at_bar, done,
              block_idx.x, block_idx.y, block_idx.z);
      abort();
    }
    if (at_bar != n || at_warp) { // cannot happen: every thread waits somewhere
      fprintf(stderr, "emu: scheduler stuck (%d at barrier, %d at shuffles, %d done)\n", at_bar, at_warp, done);
      abort();
    }
    for (int t = 0; t < n; t++) state[t] = 0;
  }
}

void launch(dim3 grid, dim3 block, std::function<void()> body) {
  int n = (int)(block.x * block.y * block.z);
  if (n <= 0 || n > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
    fprintf(stderr, "emu: bad launch configuration grid (%u,%u,%u) block (%u,%u,%u)\n", grid.x, grid.y, grid.z,
            block.x, block.y, block.z);
    abort();
  }
  launches++;
  while ((int)stacks.size() < n) stacks.push_back((char *)malloc(STACK));
  ctx.resize(n);
  state.resize(n);
  slot.resize(n);
  nthreads = n;
  grid_dim = grid;
  block_dim = block;
  body_p = &body;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        block_idx = {bx, by, bz};
        run_block(n, block);
      }
}
} // namespace emu

extern "C" {
static int dev_count = -1;
cudaError_t cudaGetDeviceCount(int *n) {
  if (dev_count < 0) dev_count = getenv("EMU_NO_DEVICE") ? 0 : 1;
  *n = dev_count;
  return dev_count ? cudaSuccess : cudaErrorNoDevice;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
  memset(p, 0, sizeof *p);
  strcpy(p->name, "host emulation");
  p->major = 9;
  p->totalGlobalMem = (size_t)8 << 30;
  p->multiProcessorCount = 132;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  default: return "unknown error";
  }
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
  *s = (cudaStream_t)malloc(16);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMalloc(void **p, size_t n) {
  if (posix_memalign(p, 256, n ? n : 1)) *p = NULL;
  if (*p) memset(*p, 0xA5, n); // garbage, not zeros
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned) {
  *p = malloc(n ? n : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind, cudaStream_t) {
  memmove(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { memset(d, v, n); return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = (size_t)6 << 30; *t = (size_t)8 << 30; return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = (cudaEvent_t)malloc(16); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
}
