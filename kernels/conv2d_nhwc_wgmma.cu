// conv2d over NHWC fp16/bf16 activations on sm_90a's warpgroup MMA (conv2d_nhwc_wgmma.cuh).
// The block is conv2d_nhwc_mma.cu's (conv2d_nhwc_mma_block.cuh) in its wgmma tile: 256
// threads, two warpgroups of 64 pixels x 128 channels. Built for sm_90a only (CMakeLists.txt):
// wgmma is an architecture-specific feature, absent from sm_90 code and from other cards.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "conv2d_nhwc_mma.cuh"
#include "conv2d_nhwc_mma_block.cuh"
#include "conv2d_nhwc_wgmma.cuh"

namespace cm4j {
namespace kernels {

namespace {

using mma_block::WgmmaTile;

// Two blocks per SM (the 128-register budget's occupancy) on sm_90's 228 KiB of shared memory,
// each block also holding 1 KiB the system reserves.
static_assert(2 * (mma_block::stage_bytes<__half, WgmmaTile>() + 1024) <= 228 * 1024,
              "the wgmma tile's stages must leave room for two blocks per SM");

template <typename T, int KS, bool NORM>
__global__ void __launch_bounds__(WgmmaTile::kThreads, 2)
    conv2d_nhwc_wgmma_kernel(const Conv2dNhwcParams p, float* partial) {
  CM4J_WAIT_PREVIOUS_KERNEL();
  mma_block::conv2d_nhwc_mma_block<T, WgmmaTile, KS, NORM>(p, partial);
}

// The kernels (mma_block::launch_blocks' family).
template <typename T>
struct WgmmaKernels {
  using Type = T;
  using Tile = WgmmaTile;
  template <int KS, bool NORM>
  static constexpr void (*get())(const Conv2dNhwcParams, float*) {
    return conv2d_nhwc_wgmma_kernel<T, KS, NORM>;
  }
};

}  // namespace

bool conv2d_nhwc_wgmma_device_ok(int major, int minor) { return major == 9 && minor == 0; }

bool conv2d_nhwc_wgmma_config_ok(const Conv2dNhwcParams& p, int splits) {
  // The split bounds are the mma kernel's (the tile does not enter them).
  return conv2d_nhwc_mma_config_ok(p, Conv2dNhwcMmaConfig{128, 128, splits});
}

size_t conv2d_nhwc_wgmma_workspace_floats(const Conv2dNhwcParams& p, int splits) {
  return conv2d_nhwc_mma_workspace_floats(p, splits);
}

cudaError_t conv2d_nhwc_wgmma_forward(const Conv2dNhwcParams& p, int splits, float* workspace,
                                      cudaStream_t stream) {
  if (!conv2d_nhwc_mma_supports(p) || !conv2d_nhwc_wgmma_config_ok(p, splits))
    return cudaErrorInvalidValue;
  if (splits > 1 && (!workspace || !sm80::aligned(workspace, 8))) return cudaErrorInvalidValue;
  switch (p.type) {
    case HalfType::kF16:
      return mma_block::launch_blocks<WgmmaKernels<__half>>(p, splits, workspace, stream);
    case HalfType::kBF16:
      return mma_block::launch_blocks<WgmmaKernels<__nv_bfloat16>>(p, splits, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace kernels
}  // namespace cm4j
