// The sampling and editing loops' elementwise steps (kernels/scheduler.cu).
#include "cuda/cuda_backend_impl.h"
#include "scheduler.cuh"

namespace cm4j {
namespace cuda {

Status CudaBackend::scale_model_input(const float* x, const float* divisor, float* y, int batch,
                                      int64_t image) {
  cudaSetDevice(device_);
  return finish(kernels::scale_model_input_forward(x, divisor, y, batch, image, stream_),
                "scale_model_input");
}

Status CudaBackend::scheduler_step(const SchedulerStepParams& p, const SchedulerStepArgs& a) {
  kernels::SchedulerStepParams k;
  k.batch = p.batch;
  k.image = p.image;
  k.clip = p.clip;
  k.s_noise = p.s_noise;
  k.model_output = a.model_output;
  k.sample = a.sample;
  k.noise = a.noise;
  k.c_skip = a.c_skip;
  k.c_out = a.c_out;
  k.noise_scale = a.noise_scale;
  k.prev = a.prev;
  cudaSetDevice(device_);
  return finish(kernels::scheduler_step_forward(k, stream_), "scheduler_step");
}

Status CudaBackend::edit_step(const EditStepParams& p, const EditStepArgs& a) {
  if (const char* problem = edit_step_problem(p, a)) return invalid(problem);
  float q[3];
  edit_luma_axis(q);
  kernels::EditStepParams k;
  k.batch = p.batch;
  k.channels = p.channels;
  k.size = p.size;
  k.replacement = static_cast<int>(p.replacement);
  k.patch = p.patch;
  k.q0 = q[0];
  k.q1 = q[1];
  k.q2 = q[2];
  k.model_output = a.model_output;
  k.sample = a.sample;
  k.reference = a.reference;
  k.mask_keep = a.mask_keep;
  k.noise = a.noise;
  k.c_skip = a.c_skip;
  k.c_out = a.c_out;
  k.noise_scale = a.noise_scale;
  k.workspace = a.workspace;
  cudaSetDevice(device_);
  return finish(kernels::edit_step_forward(k, stream_), "edit_step");
}

}  // namespace cuda
}  // namespace cm4j
