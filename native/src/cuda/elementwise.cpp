// avg_pool2 and upsample_nearest2's host side (kernels/elementwise.cu, elementwise_nhwc.cu).
#include "cuda/cuda_backend_impl.h"
#include "elementwise.cuh"
#include "elementwise_nhwc.cuh"

namespace cm4j {
namespace cuda {

Status CudaBackend::avg_pool2(const float* x, float* y, int batch, int channels, int h, int w) {
  cudaSetDevice(device_);
  if (nhwc_)
    return finish(kernels::avg_pool2_nhwc_forward(x, y, half_, batch, channels, h, w, stream_),
                  "avg_pool2");
  return finish(kernels::avg_pool2_forward(x, y, batch, channels, h, w, stream_), "avg_pool2");
}

Status CudaBackend::upsample_nearest2(const float* x, float* y, int batch, int channels, int h,
                                      int w) {
  cudaSetDevice(device_);
  if (nhwc_)
    return finish(
        kernels::upsample_nearest2_nhwc_forward(x, y, half_, batch, channels, h, w, stream_),
        "upsample_nearest2");
  return finish(kernels::upsample_nearest2_forward(x, y, batch, channels, h, w, stream_),
                "upsample_nearest2");
}

}  // namespace cuda
}  // namespace cm4j
