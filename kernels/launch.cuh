// Every kernel launch goes through CM4J_LAUNCH so that the same sources also build for the
// CPU emulator in kernels/dev/emu (CM4J_CUDA_EMULATION), which runs the kernels and the
// CUDA backend against the CPU backend on machines without a GPU.
// CM4J_LAUNCH_SHARED also gives each block `shared_bytes` of dynamic shared memory, which the
// kernel names with CM4J_DYNAMIC_SHARED(name) (an unsigned char array, 16-byte aligned);
// above 48 KiB the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize must allow it.
// Every kernel's first statement is CM4J_WAIT_PREVIOUS_KERNEL() (launch_mode.h says why;
// the ctest ptxas_resources checks every sm_90 kernel waits before touching memory).
#pragma once

#include "launch_mode.h"

#if defined(CM4J_CUDA_EMULATION)
#define CM4J_LAUNCH(kernel, grid, block, stream, ...)                       \
  ::cm4j_emu::launch(kernel, dim3(grid), dim3(block), stream,               \
                     ::cm4j::kernels::programmatic_launches, __VA_ARGS__)
#define CM4J_LAUNCH_SHARED(kernel, grid, block, shared_bytes, stream, ...)          \
  ::cm4j_emu::launch_shared(kernel, dim3(grid), dim3(block), shared_bytes, stream, \
                            ::cm4j::kernels::programmatic_launches, __VA_ARGS__)
#define CM4J_DYNAMIC_SHARED(name) unsigned char* name = ::cm4j_emu::dynamic_shared()
#define CM4J_WAIT_PREVIOUS_KERNEL() ::cm4j_emu::wait_previous_kernel()
#else
#include <utility>

#define CM4J_LAUNCH(kernel, grid, block, stream, ...) \
  ::cm4j::kernels::launch_kernel(kernel, dim3(grid), dim3(block), 0, stream, __VA_ARGS__)
#define CM4J_LAUNCH_SHARED(kernel, grid, block, shared_bytes, stream, ...)                \
  ::cm4j::kernels::launch_kernel(kernel, dim3(grid), dim3(block), shared_bytes, stream, \
                                 __VA_ARGS__)
#define CM4J_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]

// Waits until the kernel ahead in the stream has finished and its writes are visible, then
// lets the next kernel launch (its blocks then wait here in turn). Without a programmatic
// launch, and below sm_90, there is nothing to wait for: a no-op.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define CM4J_WAIT_PREVIOUS_KERNEL() \
  asm volatile("griddepcontrol.wait;\n\tgriddepcontrol.launch_dependents;" ::: "memory")
#else
#define CM4J_WAIT_PREVIOUS_KERNEL() ((void)0)
#endif

namespace cm4j {
namespace kernels {

// One launch; while programmatic_launches, through cudaLaunchKernelEx with the programmatic
// stream serialization attribute. A failed launch reaches cudaGetLastError either way.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                   cudaStream_t stream, Args&&... args) {
  if (!programmatic_launches) {
    kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
    return;
  }
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace kernels
}  // namespace cm4j
#endif
