// A CPU stand-in for <cuda_runtime.h>, covering exactly what cm4j's kernels and CUDA
// backend use, so that they build with g++ (-DCM4J_CUDA_EMULATION, this folder first on
// the include path) and run against the CPU backend on a machine with no GPU.
//
// What it checks: index arithmetic, bounds (every cudaMalloc buffer ends at an unmapped
// guard page, so a read or write past its end faults at once), barrier placement (a
// __syncthreads or shuffle that not every live thread reaches is reported as a deadlock),
// shared memory passed between threads with no barrier between the write and the read (the
// warps of a block run to each barrier in a random order, their lanes in a random order, so
// such a read sees the value not yet written, or already overwritten, about every other
// time), and the host code (errors, streams, copies). What it does not model: timing, the
// memory model, concurrent blocks, or anything the kernels do not use.
//
// How: blocks run one after another, in a shuffled order; the threads of a block are fibers
// (started on their own stacks with ucontext, then switched with _setjmp/_longjmp) that
// switch only at __syncthreads and warp-collective calls (shuffles, sm80.h's ldmatrix and
// mma.sync), in the random orders above.
// `__shared__` becomes `static`, which is per-block storage because only one block is alive
// at a time.
// Dynamic shared memory (CM4J_LAUNCH_SHARED, CM4J_DYNAMIC_SHARED) is one buffer per launch,
// poisoned for each block, starting 16 bytes past a 1 KiB boundary (all the device promises
// is 16) and ending at a guard page; above 48 KiB a launch fails unless the kernel's
// cudaFuncAttributeMaxDynamicSharedMemorySize allows it, as on the device.
// A programmatic launch (kernels/launch_mode.h) runs after the kernel before it, as every
// launch does here; each of its threads must have called CM4J_WAIT_PREVIOUS_KERNEL() by its
// first barrier and by its end, or the launch fails.
#pragma once

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <csetjmp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <tuple>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

using std::max;
using std::min;

// vector_types.h's 16-byte vector, for 16-byte loads and stores.
struct __align__(16) uint4 {
  unsigned x, y, z, w;
};
// And its float pair (group norm's per-chunk statistics).
struct alignas(8) float2 {
  float x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorUnknown = 999,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct CUstream_st {
  int unused;
};
typedef CUstream_st* cudaStream_t;
struct CUevent_st {
  double ms;
};
typedef CUevent_st* cudaEvent_t;
constexpr unsigned cudaStreamNonBlocking = 1;

struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount;
  size_t totalGlobalMem;
};

// The runtime whose API this stands in for (cudaGraphGetEdges with edge data, as in 13.0).
#define CUDART_VERSION 13000

namespace cm4j_emu {

// ---- device state -------------------------------------------------------------------
struct State {
  cudaError_t last_error = cudaSuccess;    // cleared by cudaGetLastError
  cudaError_t sticky_error = cudaSuccess;  // a faulting kernel poisons the context
  std::map<void*, std::pair<void*, size_t>> allocations;  // user pointer -> mapping
  long launches = 0;
  long programmatic_launches = 0;  // run with programmatic dependent launch (launch_mode.h)
  // Stream capture (CUDA graphs): while set, launches are recorded here instead of run,
  // their arguments copied as a graph's kernel nodes hold them; a copy, wait or allocation
  // meanwhile is refused and invalidates the capture, as on the device.
  struct Node {
    std::function<void()> run;
    bool programmatic;  // its edge from the node before is programmatic (cudaGraphGetEdges)
  };
  std::vector<Node>* capturing = nullptr;
  bool capture_invalidated = false;
  // cudaFuncSetAttribute's cudaFuncAttributeMaxDynamicSharedMemorySize per kernel: a launch
  // asking for more than 48 KiB of dynamic shared memory fails without it, as on the device.
  std::map<const void*, int> max_dynamic_shared;
};
inline State& state() {
  static State s;
  return s;
}

inline void fail(cudaError_t e, const char* why) {
  std::fprintf(stderr, "cuda-emu: %s\n", why);
  state().last_error = e;
  if (e == cudaErrorLaunchFailure) state().sticky_error = e;
}

// `bytes` of fresh memory (NaN patterns) ending `tail` bytes before a PROT_NONE page, so an
// access past its end faults; *mapping and *mapped receive what munmap takes. Null when the
// mapping fails.
inline char* guarded_alloc(size_t bytes, size_t tail, void** mapping, size_t* mapped) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t body = (bytes + tail + page - 1) / page * page;
  void* base =
      mmap(nullptr, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  mprotect(static_cast<char*>(base) + body, page, PROT_NONE);
  char* user = static_cast<char*>(base) + body - tail - bytes;
  std::memset(user, 0xff, bytes);
  *mapping = base;
  *mapped = body + page;
  return user;
}

// ---- one block of fibers ------------------------------------------------------------
constexpr size_t kStackBytes = 256 * 1024;

// One cp.async not yet landed (sm80.h): the copy happens at the cp.async.wait_group that
// covers its group, so a read before that wait sees the poison written at issue.
struct AsyncCopy {
  void* dst;
  const void* src;
  int bytes, src_bytes;  // src_bytes < bytes: the rest is zero-filled
  long group;            // the thread's commit count when it was issued
};
struct AsyncCopies {
  std::vector<AsyncCopy> pending;
  long committed = 0;
};
constexpr int kWideWords = 16;  // 32-bit words per thread in a warp-collective exchange

// One thread's warpgroup MMAs (sm90.h): each wgmma runs at the wgmma.wait_group that covers
// it, reading shared memory and writing its accumulators then, as the device may; and
// whether shared memory this thread's cp.asyncs landed is not yet fenced for the async proxy
// (fence.proxy.async) that wgmma reads through.
struct PendingWgmma {
  std::function<void()> run;
  long group;  // the thread's commit count when it was issued
};
struct WgmmaQueue {
  std::vector<PendingWgmma> pending;
  long committed = 0;
  bool unfenced = false;
};

struct Fiber {
  ucontext_t ctx;     // the entry on its stack, for the first switch
  std::jmp_buf jump;  // where it yielded, for every later switch
  bool started = false;
  char* stack = nullptr;
  dim3 tid;
  bool done = false;
  bool waiting = false;  // at a barrier that has not released yet
};

struct Block {
  std::vector<Fiber> fibers;
  std::jmp_buf scheduler;
  int current = -1;
  int live = 0;
  // Block barrier: arrivals in this generation; a release bumps the generation.
  int block_arrived = 0;
  long block_generation = 0;
  std::vector<int> warp_live, warp_arrived;
  std::vector<long> warp_generation;
  std::vector<uint64_t> slots;  // shuffle exchange, one per thread
  // Warp-collective exchange (ldmatrix, mma.sync): two generations of kWideWords per thread,
  // so that one warp barrier per call suffices; `collectives` counts each thread's calls.
  std::vector<uint32_t> wide;
  std::vector<long> collectives;
  std::vector<AsyncCopies> async_copies;  // per thread
  std::vector<WgmmaQueue> wgmma;           // per thread
  // The launch's dynamic shared memory (CM4J_DYNAMIC_SHARED): poisoned for every block, 16
  // bytes past a 1 KiB boundary (the device promises 16-byte alignment only), and ending at
  // a guard page.
  char* dynamic_shared = nullptr;
  // A programmatic launch: every thread must call CM4J_WAIT_PREVIOUS_KERNEL() before any
  // barrier and before it exits; `waited` per thread, `unwaited` once one did not.
  bool programmatic = false;
  std::vector<char> waited;
  bool unwaited = false;
  // Per thread since the last block barrier: a __threadfence, an atomicInc; `misordered`
  // once a barrier interval held a fence by one thread and a count by another (see
  // check_counts).
  std::vector<char> fenced, counted;
  bool misordered = false;
  long events = 0;              // progress counter for deadlock detection
  bool deadlock = false;
  void (*body)(void*) = nullptr;
  void* body_arg = nullptr;
};

inline Block*& block() {
  static Block* b = nullptr;
  return b;
}

}  // namespace cm4j_emu

// The builtin variables: set by the scheduler whenever it switches to a fiber.
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace cm4j_emu {

inline int linear_tid(const dim3& t) {
  return static_cast<int>(t.x + t.y * blockDim.x + t.z * blockDim.x * blockDim.y);
}

// The only places that switch contexts; kept out of line so that no caller's locals live
// across a returns-twice call. After a fiber's first start (setcontext), switches are
// _setjmp/_longjmp, which unlike swapcontext make no system call (for the signal mask):
// every lane switches twice per warp-collective call, millions of times in a conv.
__attribute__((noinline)) inline void yield() {
  Block& b = *block();
  if (!_setjmp(b.fibers[b.current].jump)) _longjmp(b.scheduler, 1);
}

__attribute__((noinline)) inline void resume(Block& b, int i) {
  b.current = i;
  threadIdx = b.fibers[i].tid;
  Fiber& f = b.fibers[i];
  if (_setjmp(b.scheduler)) return;  // the fiber yielded or finished
  if (!f.started) {
    f.started = true;
    setcontext(&f.ctx);
  }
  _longjmp(f.jump, 1);
}

__attribute__((noinline)) inline void start_fiber(Fiber& f, void (*entry)()) {
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack;
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = nullptr;  // fiber_entry never returns
  f.started = false;
  makecontext(&f.ctx, entry, 0);
}

// A fence orders its own thread's writes, and a barrier the block's, so a count (atomicInc)
// publishes what its thread fenced after the block's last barrier: a thread that fenced in
// the same barrier interval without counting itself is not covered, and its writes may
// reach the card after the count (the device runs the warps of the interval in any order).
// Blocks run one at a time here, so the other blocks' loads would still see those writes:
// this rule is what shows the misordering. Called at each block barrier's release and at the
// block's end.
inline void check_counts(Block& b) {
  bool fenced_alone = false, counted = false;
  for (size_t i = 0; i < b.fenced.size(); ++i) {
    fenced_alone |= b.fenced[i] && !b.counted[i];
    counted |= b.counted[i] != 0;
  }
  if (fenced_alone && counted) b.misordered = true;
  std::fill(b.fenced.begin(), b.fenced.end(), 0);
  std::fill(b.counted.begin(), b.counted.end(), 0);
}

inline void try_release_block(Block& b) {
  if (b.block_arrived > 0 && b.block_arrived == b.live) {
    check_counts(b);
    b.block_arrived = 0;
    ++b.block_generation;
    ++b.events;
  }
}

inline void try_release_warp(Block& b, int w) {
  if (b.warp_arrived[w] > 0 && b.warp_arrived[w] == b.warp_live[w]) {
    b.warp_arrived[w] = 0;
    ++b.warp_generation[w];
    ++b.events;
  }
}

// A thread of a programmatic launch that reaches a barrier or its end before
// CM4J_WAIT_PREVIOUS_KERNEL() fails its launch (on the device it could have read the kernel
// before's output unfinished).
inline void check_waited(Block& b) {
  if (b.programmatic && !b.waited[b.current]) b.unwaited = true;
}

inline void wait_previous_kernel() {
  Block& b = *block();
  b.waited[b.current] = 1;
}

inline void block_barrier() {
  Block& b = *block();
  check_waited(b);
  const long gen = b.block_generation;
  ++b.block_arrived;
  ++b.events;
  try_release_block(b);
  b.fibers[b.current].waiting = true;
  while (b.block_generation == gen && !b.deadlock) yield();
  b.fibers[b.current].waiting = false;
}

inline void warp_barrier() {
  Block& b = *block();
  check_waited(b);
  const int w = b.current / 32;
  const long gen = b.warp_generation[w];
  ++b.warp_arrived[w];
  ++b.events;
  try_release_warp(b, w);
  b.fibers[b.current].waiting = true;
  while (b.warp_generation[w] == gen && !b.deadlock) yield();
  b.fibers[b.current].waiting = false;
}

inline void fiber_entry() {
  Block& b = *block();
  b.body(b.body_arg);
  check_waited(b);
  Fiber& f = b.fibers[b.current];
  f.done = true;
  --b.live;
  --b.warp_live[b.current / 32];
  ++b.events;
  try_release_block(b);
  try_release_warp(b, b.current / 32);
  _longjmp(b.scheduler, 1);
}

// A fault inside a kernel (the guard page behind every buffer) names the launch, block
// and thread before the process dies.
inline void on_fault(int sig) {
  Block* b = block();
  if (b && b->current >= 0)
    std::fprintf(stderr,
                 "cuda-emu: signal %d (out-of-bounds access?) in launch #%ld, block (%u,%u,%u), "
                 "thread %d\n",
                 sig, state().launches, blockIdx.x, blockIdx.y, blockIdx.z, b->current);
  else
    std::fprintf(stderr, "cuda-emu: signal %d outside a kernel\n", sig);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

inline void install_fault_handler() {
  static bool done = false;
  if (done) return;
  done = true;
  std::signal(SIGSEGV, on_fault);
  std::signal(SIGBUS, on_fault);
}

inline bool valid_config(const dim3& g, const dim3& t) {
  const unsigned threads = t.x * t.y * t.z;
  return threads >= 1 && threads <= 1024 && t.z <= 64 && g.x >= 1 && g.y >= 1 && g.z >= 1 &&
         g.y <= 65535 && g.z <= 65535;
}

// Runs body(arg) as every thread of every block, in the orders below, each with `shared_bytes`
// of dynamic shared memory; `programmatic`: launched with programmatic dependent launch.
inline void run_grid(dim3 grid, dim3 threads, size_t shared_bytes, bool programmatic,
                     void (*body)(void*), void* arg) {
  install_fault_handler();
  ++state().launches;
  if (programmatic) ++state().programmatic_launches;
  if (!valid_config(grid, threads)) {
    fail(cudaErrorInvalidConfiguration, "invalid launch configuration");
    return;
  }
  if (state().sticky_error != cudaSuccess) return;
  gridDim = grid;
  blockDim = threads;
  const int n = static_cast<int>(threads.x * threads.y * threads.z);
  const int warps = (n + 31) / 32;
  static std::vector<char*> stacks;  // reused between launches
  while (static_cast<int>(stacks.size()) < n) {
    char* s = static_cast<char*>(std::malloc(kStackBytes));
    stacks.push_back(s);
  }
  Block b;
  b.fibers.resize(n);
  b.body = body;
  b.body_arg = arg;
  b.programmatic = programmatic;
  void* mapping = nullptr;
  size_t mapped = 0;
  // 16 mod 1024 at the start: the largest slack a kernel aligning to 1 KiB must allow. The
  // tail up to the guard page stays poisoned, and a block that wrote into it fails.
  const size_t tail = shared_bytes > 0 ? (1024 - (shared_bytes + 16) % 1024) % 1024 : 0;
  if (shared_bytes > 0) {
    b.dynamic_shared = guarded_alloc(shared_bytes + tail, 0, &mapping, &mapped);
    if (!b.dynamic_shared) {
      fail(cudaErrorLaunchFailure, "no host memory for the dynamic shared memory");
      return;
    }
  }
  struct Unmap {
    void* p;
    size_t n;
    ~Unmap() {
      if (p) munmap(p, n);
    }
  } unmap{mapping, mapped};
  block() = &b;
  // Blocks in a shuffled order (seeded by the launch count, so a run repeats): a kernel
  // whose result depends on which block runs first or last (a split-K's last arrival) is
  // checked for every order the seeds give, not only for grid order.
  const unsigned blocks = grid.x * grid.y * grid.z;
  std::vector<unsigned> order(blocks);
  for (unsigned i = 0; i < blocks; ++i) order[i] = i;
  uint64_t seed = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(state().launches);
  for (unsigned i = blocks; i > 1; --i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(order[i - 1], order[static_cast<unsigned>((seed >> 33) % i)]);
  }
  std::vector<int> warp_strides;  // coprime with the warp count: see the rounds below
  for (int s = 1; s < warps || s == 1; ++s)
    if (std::gcd(s, warps) == 1) warp_strides.push_back(s);
  for (const unsigned linear : order) {
    const unsigned bx = linear % grid.x, by = linear / grid.x % grid.y,
                   bz = linear / grid.x / grid.y;
    blockIdx = dim3(bx, by, bz);
    b.live = n;
    b.block_arrived = 0;
    b.warp_live.assign(warps, 0);
    b.warp_arrived.assign(warps, 0);
    b.warp_generation.assign(warps, 0);
    b.slots.assign(n, 0);
    b.wide.assign(static_cast<size_t>(2) * n * kWideWords, 0);
    b.collectives.assign(n, 0);
    b.async_copies.assign(n, AsyncCopies());
    b.wgmma.assign(n, WgmmaQueue());
    b.waited.assign(n, 0);
    b.fenced.assign(n, 0);
    b.counted.assign(n, 0);
    if (b.dynamic_shared) std::memset(b.dynamic_shared, 0xff, shared_bytes + tail);
    for (int i = 0; i < n; ++i) {
      Fiber& f = b.fibers[i];
      f.tid = dim3(i % threads.x, (i / threads.x) % threads.y, i / (threads.x * threads.y));
      f.done = false;
      f.waiting = false;
      f.stack = stacks[i];
      ++b.warp_live[i / 32];
      start_fiber(f, fiber_entry);
    }
    // Rounds until every fiber is done; a full round with no arrival, release or exit
    // means some thread waits at a barrier the others never reach. A round takes the warps
    // in a random order and runs each as far as it goes (to a __syncthreads the others have
    // not reached, or its end), its lanes in a random order at each warp-collective call:
    // whichever warp or lane comes first between two barriers, the others read what it
    // wrote there, or it overwrites what they were still to read. So a read of shared
    // memory with no barrier after its write, or a write with none after the reads it
    // clobbers, gives wrong values about every other time; in thread order, with every
    // thread one step per round, most such races would never show.
    while (b.live > 0) {
      const long before = b.events;
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      const int first_warp = static_cast<int>((seed >> 33) % static_cast<unsigned>(warps));
      const int warp_stride = warp_strides[(seed >> 17) % warp_strides.size()];
      for (int k = 0, w = first_warp; k < warps; ++k, w = (w + warp_stride) % warps) {
        for (long progress = -1; progress != b.events;) {
          progress = b.events;
          seed = seed * 6364136223846793005ull + 1442695040888963407ull;
          const int first_lane = static_cast<int>((seed >> 33) % 32);
          const int lane_stride = static_cast<int>((seed >> 17) % 16) * 2 + 1;  // odd: all 32
          for (int l = 0, lane = first_lane; l < 32; ++l, lane = (lane + lane_stride) % 32) {
            const int i = w * 32 + lane;
            if (i < n && !b.fibers[i].done) resume(b, i);
          }
        }
      }
      if (b.live > 0 && b.events == before) {
        if (!b.deadlock) {
          std::fprintf(stderr,
                       "cuda-emu: deadlock in block (%u,%u,%u): %d live threads wait at "
                       "barriers that not all of them reach\n",
                       bx, by, bz, b.live);
          b.deadlock = true;  // let the fibers run to completion to unwind them
          continue;
        }
        // Still stuck after releasing everyone: give up on this launch.
        break;
      }
    }
    if (b.deadlock) {
      fail(cudaErrorLaunchFailure, "kernel deadlocked");
      block() = nullptr;
      return;
    }
    check_counts(b);
    if (b.misordered) {
      fail(cudaErrorLaunchFailure, "a thread counted (atomicInc) in a barrier interval where "
                                   "another thread fenced without counting: its writes may "
                                   "reach the card after the count");
      block() = nullptr;
      return;
    }
    if (b.unwaited) {
      fail(cudaErrorLaunchFailure, "a thread of a programmatic launch reached a barrier "
                                   "or its end before CM4J_WAIT_PREVIOUS_KERNEL()");
      block() = nullptr;
      return;
    }
    for (const WgmmaQueue& q : b.wgmma)
      if (!q.pending.empty()) {
        fail(cudaErrorLaunchFailure, "a thread exited with a wgmma never waited for");
        block() = nullptr;
        return;
      }
    for (size_t i = shared_bytes; i < shared_bytes + tail; ++i)
      if (static_cast<unsigned char>(b.dynamic_shared[i]) != 0xff) {
        fail(cudaErrorLaunchFailure, "a write past the dynamic shared memory");
        block() = nullptr;
        return;
      }
  }
  block() = nullptr;
}

// The device's ceilings for dynamic shared memory per block (sm_90): 48 KiB unless the
// kernel's attribute raises it, 227 KiB at most.
constexpr size_t kDefaultDynamicShared = 48 * 1024;
constexpr int kMaxDynamicShared = 227 * 1024;

// `programmatic`: launch_mode.h's programmatic_launches where the launch was queued.
template <typename... Params, typename... Args>
void launch_shared(void (*kernel)(Params...), dim3 grid, dim3 threads, size_t shared_bytes,
                   cudaStream_t stream, bool programmatic, Args&&... args) {
  if (state().capturing) {  // recorded with its arguments' values now, run at each replay
    auto packed = std::make_shared<std::tuple<std::decay_t<Params>...>>(std::forward<Args>(args)...);
    auto run = [=] {
      std::apply(
          [&](auto&... a) {
            launch_shared(kernel, grid, threads, shared_bytes, stream, programmatic, a...);
          },
          *packed);
    };
    state().capturing->push_back({run, programmatic});
    return;
  }
  if (shared_bytes > kDefaultDynamicShared) {
    auto it = state().max_dynamic_shared.find(reinterpret_cast<const void*>(kernel));
    if (it == state().max_dynamic_shared.end() || static_cast<size_t>(it->second) < shared_bytes) {
      ++state().launches;
      state().last_error = cudaErrorInvalidValue;
      std::fprintf(stderr, "cuda-emu: %zu bytes of dynamic shared memory without "
                           "cudaFuncAttributeMaxDynamicSharedMemorySize\n", shared_bytes);
      return;
    }
  }
  // Each thread gets its own copy of the arguments, as on the device.
  std::tuple<std::decay_t<Params>...> packed(std::forward<Args>(args)...);
  struct Call {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...>* args;
  } call{kernel, &packed};
  run_grid(grid, threads, shared_bytes, programmatic,
           [](void* p) {
             Call* c = static_cast<Call*>(p);
             auto copy = *c->args;
             std::apply(c->kernel, copy);
           },
           &call);
}

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 threads, cudaStream_t stream,
            bool programmatic, Args&&... args) {
  launch_shared(kernel, grid, threads, 0, stream, programmatic, std::forward<Args>(args)...);
}

// The calling block's dynamic shared memory (CM4J_DYNAMIC_SHARED).
inline unsigned char* dynamic_shared() {
  return reinterpret_cast<unsigned char*>(block()->dynamic_shared);
}

}  // namespace cm4j_emu

// ---- device builtins ----------------------------------------------------------------
inline void __syncthreads() { cm4j_emu::block_barrier(); }

// __syncthreads, returning non-zero where any live thread's predicate is.
inline int __syncthreads_or(int predicate) {
  cm4j_emu::Block& b = *cm4j_emu::block();
  b.slots[b.current] = predicate != 0;
  cm4j_emu::block_barrier();
  int any = 0;
  for (size_t i = 0; i < b.fibers.size(); ++i) any |= !b.fibers[i].done && b.slots[i] != 0;
  cm4j_emu::block_barrier();  // nobody overwrites a slot before everyone has read
  return any;
}

// Memory ordering between blocks: blocks run one at a time here, so every write is visible
// to the blocks after it; a fence only marks its thread for check_counts' rule, and an
// atomic is a plain read-modify-write (a thread switches only at barriers).
inline void __threadfence() {
  cm4j_emu::Block& b = *cm4j_emu::block();
  b.fenced[b.current] = 1;
}
// atomicInc: old >= limit wraps to 0, else old + 1; returns old.
inline unsigned atomicInc(unsigned* address, unsigned limit) {
  cm4j_emu::Block& b = *cm4j_emu::block();
  b.counted[b.current] = 1;
  const unsigned old = *address;
  *address = old >= limit ? 0 : old + 1;
  return old;
}
// A load that bypasses L1 (ld.global.cg): a plain load here, from an address aligned to its
// size (a float2 or uint4 load from anywhere else is a misaligned-address fault on the
// device, and works on x86).
template <typename T>
T __ldcg(const T* p) {
  if (reinterpret_cast<uintptr_t>(p) % sizeof(T) != 0) {
    cm4j_emu::fail(cudaErrorLaunchFailure, "__ldcg: address not aligned to the load's size");
    return T();
  }
  return *p;
}

// Round-to-nearest float32 arithmetic that CUDA never fuses; run.sh builds with
// -ffp-contract=off so that g++ keeps that promise too.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

template <typename T>
T __shfl_xor_sync(unsigned /*mask*/, T v, int lane_mask) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a wide type");
  cm4j_emu::Block& b = *cm4j_emu::block();
  const int me = b.current;
  std::memcpy(&b.slots[me], &v, sizeof(T));
  cm4j_emu::warp_barrier();
  const int partner = (me / 32) * 32 + ((me % 32) ^ lane_mask);
  if (partner >= static_cast<int>(b.fibers.size()) || b.fibers[partner].done)
    cm4j_emu::fail(cudaErrorLaunchFailure, "shuffle with an exited or missing lane");
  T r = v;
  if (partner < static_cast<int>(b.fibers.size())) std::memcpy(&r, &b.slots[partner], sizeof(T));
  cm4j_emu::warp_barrier();  // nobody overwrites a slot before everyone has read
  return r;
}

// ---- runtime API --------------------------------------------------------------------
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulated)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return "unknown error";
  }
}

inline cudaError_t cudaGetLastError() {
  cudaError_t e = cm4j_emu::state().last_error;
  cm4j_emu::state().last_error = cudaSuccess;
  return e != cudaSuccess ? e : cm4j_emu::state().sticky_error;
}
inline cudaError_t cudaPeekAtLastError() {
  cudaError_t e = cm4j_emu::state().last_error;
  return e != cudaSuccess ? e : cm4j_emu::state().sticky_error;
}

inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaDriverGetVersion(int* v) {
  *v = 0;  // no driver
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "cm4j CPU emulator");
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 1;
  p->totalGlobalMem = size_t(1) << 34;
  return cudaSuccess;
}

namespace cm4j_emu {
// An operation a capture may not contain: refused, and the capture invalidated.
inline bool refuse_while_capturing() {
  if (!state().capturing) return false;
  state().capture_invalidated = true;
  state().last_error = cudaErrorStreamCaptureUnsupported;
  return true;
}
}  // namespace cm4j_emu

// Every buffer ends at a PROT_NONE page, so an access past its end faults.
inline cudaError_t cudaMalloc(void** out, size_t bytes) {
  if (cm4j_emu::refuse_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  void* mapping = nullptr;
  size_t mapped = 0;
  // 16-byte aligned for cp.async's widest copy (a buffer whose size is not a multiple of 16
  // leaves up to 15 bytes before the guard).
  char* user = bytes > (size_t(1) << 40) ? nullptr
               : cm4j_emu::guarded_alloc(bytes, (16 - bytes % 16) % 16, &mapping, &mapped);
  if (!user) {
    *out = nullptr;
    return cm4j_emu::state().last_error = cudaErrorMemoryAllocation;
  }
  cm4j_emu::state().allocations[user] = {mapping, mapped};
  *out = user;
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMalloc(T** out, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(out), bytes);
}
inline cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto& a = cm4j_emu::state().allocations;
  auto it = a.find(p);
  if (it == a.end()) return cudaErrorInvalidValue;
  munmap(it->second.first, it->second.second);
  a.erase(it);
  return cudaSuccess;
}

inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (cm4j_emu::refuse_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  if (cm4j_emu::state().sticky_error != cudaSuccess) return cm4j_emu::state().sticky_error;
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k,
                                   cudaStream_t = nullptr) {
  return cudaMemcpy(dst, src, bytes, k);
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
  if (cm4j_emu::refuse_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  if (cm4j_emu::state().sticky_error != cudaSuccess) return cm4j_emu::state().sticky_error;
  std::memset(p, value, bytes);
  return cudaSuccess;
}

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st{0};
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) {
  if (cm4j_emu::refuse_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  return cm4j_emu::state().sticky_error;
}
inline cudaError_t cudaDeviceSynchronize() { return cm4j_emu::state().sticky_error; }

enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
// The kernels as an sm_90 build gives them (the emulator runs every kernel's source).
struct cudaFuncAttributes {
  int ptxVersion, binaryVersion;
};
template <typename... Params>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, void (*)(Params...)) {
  attributes->ptxVersion = attributes->binaryVersion = 90;
  return cudaSuccess;
}
template <typename... Params>
cudaError_t cudaFuncSetAttribute(void (*kernel)(Params...), cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      value > cm4j_emu::kMaxDynamicShared)
    return cm4j_emu::state().last_error = cudaErrorInvalidValue;
  cm4j_emu::state().max_dynamic_shared[reinterpret_cast<const void*>(kernel)] = value;
  return cudaSuccess;
}

inline double cm4j_emu_now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st{0};
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  e->ms = cm4j_emu_now_ms();
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = static_cast<float>(b->ms - a->ms);
  return cudaSuccess;
}

// ---- stream capture and graphs: a graph is the launches recorded, replayed in order -----
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
struct CUgraph_st {
  std::vector<cm4j_emu::State::Node> launches;
};
typedef CUgraph_st* cudaGraph_t;
typedef CUgraph_st* cudaGraphExec_t;

inline cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
  if (cm4j_emu::state().capturing) return cudaErrorStreamCaptureUnsupported;
  cm4j_emu::state().capturing = new std::vector<cm4j_emu::State::Node>();
  cm4j_emu::state().capture_invalidated = false;
  return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* graph) {
  auto& st = cm4j_emu::state();
  if (!st.capturing) return cudaErrorInvalidValue;
  std::unique_ptr<std::vector<cm4j_emu::State::Node>> recorded(st.capturing);
  st.capturing = nullptr;
  *graph = nullptr;
  if (st.capture_invalidated) return cudaErrorStreamCaptureInvalidated;
  *graph = new CUgraph_st{std::move(*recorded)};
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                        unsigned long long /*flags*/) {
  if (!graph) return cudaErrorInvalidValue;
  *exec = new CUgraph_st{graph->launches};
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
  if (!exec) return cudaErrorInvalidValue;
  if (cm4j_emu::refuse_while_capturing()) return cudaErrorStreamCaptureUnsupported;
  for (const auto& l : exec->launches) l.run();
  return cm4j_emu::state().sticky_error;
}
// A captured stream is a chain: node i depends on node i - 1, through a programmatic edge
// when node i was a programmatic launch (as capture makes one between kernel nodes).
typedef struct CUgraphNode_st* cudaGraphNode_t;
enum cudaGraphDependencyType { cudaGraphDependencyTypeDefault = 0, cudaGraphDependencyTypeProgrammatic = 1 };
struct cudaGraphEdgeData {
  unsigned char from_port, to_port, type, reserved[5];
};
inline cudaError_t cudaGraphGetEdges(cudaGraph_t graph, cudaGraphNode_t* from, cudaGraphNode_t* to,
                                     cudaGraphEdgeData* edge_data, size_t* count) {
  if (!graph || !count) return cudaErrorInvalidValue;
  const size_t edges = graph->launches.empty() ? 0 : graph->launches.size() - 1;
  if (!from) {
    *count = edges;
    return cudaSuccess;
  }
  *count = std::min(*count, edges);
  for (size_t i = 0; i < *count; ++i) {
    from[i] = reinterpret_cast<cudaGraphNode_t>(i + 1);
    to[i] = reinterpret_cast<cudaGraphNode_t>(i + 2);
    if (edge_data) {
      edge_data[i] = cudaGraphEdgeData{};
      if (graph->launches[i + 1].programmatic) {
        edge_data[i].from_port = 1;  // cudaGraphKernelNodePortProgrammatic
        edge_data[i].type = cudaGraphDependencyTypeProgrammatic;
      }
    }
  }
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
