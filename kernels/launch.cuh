// Every kernel launch goes through CM4J_LAUNCH so that the same sources also build for the
// CPU emulator in kernels/dev/emu (CM4J_CUDA_EMULATION), which runs the kernels and the
// CUDA backend against the CPU backend on machines without a GPU.
// CM4J_LAUNCH_SHARED also gives each block `shared_bytes` of dynamic shared memory, which the
// kernel names with CM4J_DYNAMIC_SHARED(name) (an unsigned char array, 16-byte aligned);
// above 48 KiB the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize must allow it.
#pragma once

#if defined(CM4J_CUDA_EMULATION)
#define CM4J_LAUNCH(kernel, grid, block, stream, ...) \
  ::cm4j_emu::launch(kernel, dim3(grid), dim3(block), stream, __VA_ARGS__)
#define CM4J_LAUNCH_SHARED(kernel, grid, block, shared_bytes, stream, ...) \
  ::cm4j_emu::launch_shared(kernel, dim3(grid), dim3(block), shared_bytes, stream, __VA_ARGS__)
#define CM4J_DYNAMIC_SHARED(name) unsigned char* name = ::cm4j_emu::dynamic_shared()
#else
#define CM4J_LAUNCH(kernel, grid, block, stream, ...) \
  kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#define CM4J_LAUNCH_SHARED(kernel, grid, block, shared_bytes, stream, ...) \
  kernel<<<grid, block, shared_bytes, stream>>>(__VA_ARGS__)
#define CM4J_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif
