// Host emulation of the CUDA runtime and of kernel launches, for the CUDA
// emulation build (tests/cuda_emu/build.sh).
#include "cuda_runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <unordered_map>
#include <vector>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#endif

// Fibers switch with a few instructions (the callee-saved registers and the
// stack pointer), not ucontext: swapcontext makes a signal-mask system call
// at every switch, which dominated the run time. The FP control words are
// not switched: nothing in the kernels changes them.
extern "C" void emu_switch(void **save_sp, void *to_sp);
__asm__(".text\n"
        ".globl emu_switch\n"
        ".type emu_switch,@function\n"
        "emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size emu_switch, .-emu_switch\n");

namespace emu {
uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;
static const size_t STACK = 256 * 1024;
static std::vector<void *> fiber_sp;
static std::vector<char *> stacks;
static std::vector<int> stack_of, free_stacks; // a thread's stack, given when it first runs; back when it exits
static std::vector<int> state; // 0 runnable, 1 at __syncthreads, 2 done, 3 at a warp exchange
static std::vector<unsigned long long> slot; // per-thread value of __syncthreads_or / warp exchanges
static void *sched_sp;
static int cur, nthreads;
static std::function<void()> *body_p;
long long launches, fibers;
#ifdef EMU_ASAN
static std::vector<void *> fake_stack; // per fiber, for ASan's stack-use-after-return bookkeeping
static const void *sched_bottom;
static size_t sched_size;
#endif

static void to_sched(void **save) {
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(state[cur] == 2 ? nullptr : &fake_stack[cur], sched_bottom, sched_size);
#endif
  emu_switch(save, sched_sp);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(fake_stack[cur], &sched_bottom, &sched_size);
#endif
}

static void to_fiber(int t) {
#ifdef EMU_ASAN
  void *fs = nullptr;
  __sanitizer_start_switch_fiber(&fs, stacks[stack_of[t]], STACK);
#endif
  emu_switch(&sched_sp, fiber_sp[t]);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(fs, nullptr, nullptr); // back on the scheduler's (the thread's own) stack
#endif
}

static uint3 index_of(int t) {
  return {t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
}

// A fiber runs its thread; when that exits without having waited and the next
// thread of the block has not started yet, the fiber goes on with it on the
// same stack, so a block that never waits costs one fiber, not one per thread.
static void entry() {
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &sched_bottom, &sched_size);
#endif
  for (;;) {
    (*body_p)();
    state[cur] = 2;
    int nx = cur + 1;
    if (nx >= nthreads || stack_of[nx] >= 0 || state[nx] != 0) break;
    stack_of[nx] = stack_of[cur];
    cur = nx;
    thread_idx = index_of(nx);
  }
  void *dead;
  to_sched(&dead); // never resumed
  abort();
}

// a fresh fiber's stack: the saved registers emu_switch pops, then entry as the return address
static void *fresh_stack(char *base) {
#ifdef EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(base, STACK); // the last user's frames (entry never returns) stay poisoned
#endif
  uintptr_t top = ((uintptr_t)(base + STACK) & ~(uintptr_t)15) - 16;
  void **sp = (void **)top; // *sp = return address; top % 16 == 0, so entry starts as if called
  *sp = (void *)entry;
  for (int i = 0; i < 6; i++) *--sp = nullptr; // rbp rbx r12 r13 r14 r15
  return sp;
}

static void yield_as(int st) {
  state[cur] = st;
  to_sched(&fiber_sp[cur]);
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

// Threads get a stack when they first run and give it back when they exit, so
// a block whose threads never wait runs them all on one (cache-warm) stack.
static void run_block(int n) {
  free_stacks.clear();
  for (int k = n - 1; k >= 0; k--) free_stacks.push_back(k);
  for (int t = 0; t < n; t++) {
    stack_of[t] = -1;
    state[t] = 0;
  }
  fibers += n;
  for (;;) {
    // run every runnable thread until it waits or exits
    for (int t = 0; t < n; t++) {
      if (state[t] != 0) continue;
      if (stack_of[t] < 0) {
        stack_of[t] = free_stacks.back();
        free_stacks.pop_back();
        fiber_sp[t] = fresh_stack(stacks[stack_of[t]]);
      }
      cur = t;
      thread_idx = index_of(t);
      to_fiber(t);
      if (state[cur] == 2) free_stacks.push_back(stack_of[cur]); // the fiber (maybe t's successors) ended
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
  fiber_sp.resize(n);
  stack_of.resize(n);
#ifdef EMU_ASAN
  fake_stack.resize(n);
#endif
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
        run_block(n);
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
// "device memory" of 8 GiB: more than that in use fails like a full GPU
static const size_t DEV_TOTAL = (size_t)8 << 30;
static size_t dev_used;
static std::unordered_map<void *, size_t> dev_blocks;
cudaError_t cudaMalloc(void **p, size_t n) {
  *p = NULL;
  if (n > DEV_TOTAL - dev_used) return cudaErrorMemoryAllocation;
  if (posix_memalign(p, 256, n ? n : 1)) *p = NULL;
  if (!*p) return cudaErrorMemoryAllocation;
  memset(*p, 0xA5, n); // garbage, not zeros
  dev_blocks[*p] = n;
  dev_used += n;
  return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  auto it = dev_blocks.find(p);
  if (it == dev_blocks.end()) {
    fprintf(stderr, "emu: cudaFree of %p, which cudaMalloc did not return\n", p);
    abort();
  }
  dev_used -= it->second;
  dev_blocks.erase(it);
  free(p);
  return cudaSuccess;
}
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
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = DEV_TOTAL - dev_used; *t = DEV_TOTAL; return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = (cudaEvent_t)malloc(16); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
}
