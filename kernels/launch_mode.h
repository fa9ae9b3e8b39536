// How the kernels a thread launches now depend on the kernel ahead of them in the stream.
// Plain C++ (no CUDA syntax): CudaBackend sets it, launch.cuh reads it.
//
// Programmatic dependent launch (sm_90+, CM4J_CUDA_PDL): a kernel may be launched, and its
// blocks placed on SMs, while the kernel before it still runs its last blocks. Every kernel
// begins with CM4J_WAIT_PREVIOUS_KERNEL() (launch.cuh), so what overlaps is the launch and
// the block scheduling, never a read or write of memory: the bits are the same as without.
// So no kernel takes a buffer through a `const T* __restrict__` either: it lets the compiler
// read it with non-coherent loads (ld.global.nc), which the memory model leaves out and which
// must not read what a kernel wrote during the reader's lifetime, as the one before now may.
#pragma once

namespace cm4j {
namespace kernels {

// True while a ProgrammaticLaunches scope is open on this thread.
inline thread_local bool programmatic_launches = false;

// Launches on this thread are programmatic while it lives (CudaBackend: around a graph's
// capture, where it pays: one launch gap per node, ~400 nodes a pass at batch 1).
class ProgrammaticLaunches {
 public:
  explicit ProgrammaticLaunches(bool on) : previous_(programmatic_launches) {
    programmatic_launches = on;
  }
  ~ProgrammaticLaunches() { programmatic_launches = previous_; }
  ProgrammaticLaunches(const ProgrammaticLaunches&) = delete;
  ProgrammaticLaunches& operator=(const ProgrammaticLaunches&) = delete;

 private:
  const bool previous_;
};

}  // namespace kernels
}  // namespace cm4j
