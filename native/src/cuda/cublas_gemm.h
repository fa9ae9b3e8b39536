// cuBLAS, loaded at run time for the conv tuner's vendor candidate: an NHWC 1x1 conv (stride
// 1, no padding or upsampling) is a GEMM, [M = B*H*W, c_in] x [c_in, c_out]. Never a build
// dependency: libcublas is dlopen'ed ($CM4J_CUBLAS_LIB, a path or a name, and then only that;
// else libcublas.so.12, .so.11, .so) and the few functions used are declared here
// (cublas_api.h, the same since CUDA 11); the engine runs the same without it. Include only
// with CM4J_HAVE_CUDA.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "conv2d_nhwc.cuh"

namespace cm4j {

// Whether the conv is a plain GEMM: kernel 1, stride 1, pad 0, no upsampling (src2, the
// concatenation, is a second GEMM accumulating into the same sums).
bool cublas_conv_supports(const kernels::Conv2dNhwcParams& p);

// One cuBLAS handle (one device, one stream at a time), with its own workspace so that no
// call allocates (a CUDA graph may capture the calls). Create with open(); null when the
// library or a function is missing (*why says which).
class CublasGemm {
 public:
  static CublasGemm* open(std::string* why);
  ~CublasGemm();
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  // sums [M, c_out] fp32 = cat(src1, src2) [M, c_in] x weight [c_in, c_out] (fp16/bf16,
  // fp32 accumulation), one GEMM per image, then the conv's epilogue into p.dst. `sums`
  // holds M * c_out floats.
  cudaError_t conv(const kernels::Conv2dNhwcParams& p, float* sums, cudaStream_t stream);

 private:
  CublasGemm() = default;
  void* handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace cm4j
