// Every kernel launch goes through CM4J_LAUNCH so that the same sources also build for the
// CPU emulator in kernels/dev/emu (CM4J_CUDA_EMULATION), which runs the kernels and the
// CUDA backend against the CPU backend on machines without a GPU.
#pragma once

#if defined(CM4J_CUDA_EMULATION)
#define CM4J_LAUNCH(kernel, grid, block, stream, ...) \
  ::cm4j_emu::launch(kernel, dim3(grid), dim3(block), stream, __VA_ARGS__)
#else
#define CM4J_LAUNCH(kernel, grid, block, stream, ...) \
  kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif
