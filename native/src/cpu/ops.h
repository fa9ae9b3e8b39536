// The CPU backend's ops, one file each; each checks its own arguments and returns a
// Status. CpuBackend (cpu_backend.cpp) forwards the Backend calls here.
#pragma once

#include "backend.h"
#include "cpu/context.h"
#include "cpu/cpu_weight.h"

namespace cm4j {
namespace cpu {

// In ctx's bf16 mode packed as bf16 for the bf16 GEMM (no fp32 copy is kept), in the
// direct16 layout on the amx and avx512bf16 paths (conv_direct16.h). With `use` (the one
// conv call the weight serves), an fp32 3x3 weight keeps only the form that call runs:
// Winograd or direct; without it, both.
Status pack_conv_weight(CpuContext& ctx, const float* w, int c_out, int c_in, int kernel,
                        const ConvParams* use, std::unique_ptr<Weight>* out);
Status conv2d(CpuContext& ctx, const ConvParams& p, const ConvArgs& a);
// Whether conv2d(p) takes a fused group norm (ConvArgs::norm): the direct16 convs, whose
// input packing applies it with the AVX-512 group norm's own operations (so only where
// group_norm runs those), bit for bit the unfused result.
bool conv_fuses_norm(const CpuContext& ctx, const ConvParams& p);
Status group_norm(CpuContext& ctx, const GroupNormParams& p, const GroupNormArgs& a);
Status attention(CpuContext& ctx, const AttentionParams& p, const AttentionArgs& a);
Status pack_linear_weight(CpuContext& ctx, const float* w, int n, int k,
                          std::unique_ptr<Weight>* out);
Status linear(CpuContext& ctx, const LinearParams& p, const LinearArgs& a);
Status avg_pool2(CpuContext& ctx, const float* x, float* y, int batch, int channels, int h, int w);
Status upsample_nearest2(CpuContext& ctx, const float* x, float* y, int batch, int channels,
                         int h, int w);
Status timestep_embedding(const float* t, float* emb, int batch, int dim, bool flip_sin_to_cos,
                          float freq_shift);
Status embedding_lookup(const float* table, const int64_t* labels, float* rows, int batch, int dim);
Status scale_model_input(CpuContext& ctx, const float* x, const float* divisor, float* y,
                         int batch, int64_t image);
Status scheduler_step(CpuContext& ctx, const SchedulerStepParams& p, const SchedulerStepArgs& a);
Status edit_step(CpuContext& ctx, const EditStepParams& p, const EditStepArgs& a);

}  // namespace cpu
}  // namespace cm4j
