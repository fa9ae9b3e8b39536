// The operations a backend executes. The plan (plan.h) is a list of these calls with fixed
// shapes; the CPU backend (cpu/) is the numerical reference, the CUDA backend (cuda/) the
// fast path. Activations are float32 NCHW in this interface and their buffers are sized
// so; a backend may store them otherwise inside those buffers (the CUDA backend's opt-in
// fp16/bf16 NHWC mode) as long as the host only reaches them through upload_activation /
// download_activation. Weights are stored however the backend likes (packed, converted)
// behind its Weight handle.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace cm4j {

// Backend calls return this; ok() or an error message that already says what failed.
struct Status {
  int code = 0;  // a CM4J_* status code
  std::string message;
  bool ok() const { return code == 0; }
  static Status Ok() { return {}; }
};

// A weight prepared for one backend (packed for GEMM, uploaded to the device, ...).
struct Weight {
  virtual ~Weight() = default;
  virtual size_t bytes() const = 0;
};

// y = conv(cat(src1, src2)) + bias + bias_bc, then (+ residual) * out_scale.
struct ConvParams {
  int batch = 1;
  int c_in1 = 0, c_in2 = 0;  // channels read from src1 and from src2 (0: no second source)
  int h_in = 0, w_in = 0;    // spatial size of the sources
  int c_out = 0;
  int kernel = 3;            // 1 or 3 (square)
  int stride = 1;            // 1 or 2
  int pad = 1;               // zero padding on every side
  bool upsample = false;     // nearest 2x of the sources before the conv (fused gather)
  float out_scale = 1.0f;
  bool norm_silu = false;    // with ConvArgs::norm: SiLU after the norm's affine map
  int h_out() const { return ((upsample ? 2 * h_in : h_in) + 2 * pad - kernel) / stride + 1; }
  int w_out() const { return ((upsample ? 2 * w_in : w_in) + 2 * pad - kernel) / stride + 1; }
};

struct ConvArgs {
  const float* src1 = nullptr;     // [B, c_in1, h_in, w_in]
  const float* src2 = nullptr;     // [B, c_in2, h_in, w_in] or null
  const Weight* weight = nullptr;  // from prepare_conv
  const float* bias = nullptr;     // [c_out] or null
  const float* bias_bc = nullptr;  // [B, c_out] per-image bias (time embedding) or null
  int bias_bc_stride = 0;          // elements between batch rows of bias_bc (0: c_out)
  const float* residual = nullptr; // [B, c_out, h_out, w_out] or null; may not alias dst
  float* dst = nullptr;            // [B, c_out, h_out, w_out]
  // A group norm fused into the input, only where Backend::conv_fuses_norm said yes: the
  // sources are read un-normalized and each value becomes (v - center) * mul + add (then
  // SiLU when norm_silu) before the conv, per (image, channel) of cat(src1, src2) from
  // group_norm's coeffs [B, 3, c_in1 + c_in2] (center, mul, add rows); null: plain input.
  const float* norm = nullptr;
};

// y = groupnorm(x) * gamma + beta; then y * (1 + scale) + shift when scale/shift are given;
// then SiLU when silu. Statistics in float32 over (C/groups) * HW values per (b, group).
struct GroupNormParams {
  int batch = 1, channels = 0, hw = 0, groups = 32;
  float eps = 1e-5f;
  bool silu = false;
};

struct GroupNormArgs {
  // [B, C, HW] channels 0..c1 come from x and c1..C from x2 when x2 is set: the up path's
  // cat(h, skip) is normalized straight from its two halves, never copied.
  const float* x = nullptr;      // [B, c1 or C, HW]
  const float* x2 = nullptr;     // [B, C - c1, HW] or null
  int c1 = 0;                    // channels read from x when x2 is set
  const float* gamma = nullptr;  // [C]
  const float* beta = nullptr;   // [C]
  const float* scale = nullptr;  // [B, C] (row stride scale_stride) or null
  const float* shift = nullptr;  // [B, C] (row stride scale_stride) or null
  int scale_stride = 0;          // elements between batch rows of scale/shift
  float* y = nullptr;            // [B, C, HW]; may alias x
  // Instead of y (then null): the statistics only, as the per-(image, channel) affine map
  // y = (x - center) * mul + add that y would get, into [B, 3, C] (center, mul, add rows),
  // for a conv that applies it as it reads x (ConvArgs::norm). SiLU is the conv's.
  float* coeffs = nullptr;
};

// Multi-head softmax attention over the spatial positions, channels-first layout:
// qkv [B, 3C, HW] holds q (channels 0..C), k (C..2C), v (2C..3C); head h uses channels
// h*dim_head..(h+1)*dim_head of each. out[b, c, i] = sum_j softmax_j(q_i.k_j * scale) v[c, j].
struct AttentionParams {
  int batch = 1, channels = 0, hw = 0, heads = 1, dim_head = 0;
  float scale = 1.0f;  // dim_head^-0.5
};

struct AttentionArgs {
  const float* qkv = nullptr;  // [B, 3C, HW]
  float* out = nullptr;        // [B, C, HW]
};

// y[m, n] = sum_k x[m, k] * w[n, k] + bias[n], with SiLU applied to x first when silu_input.
// w is in torch nn.Linear layout [N, K]. Used by the small time-embedding path.
struct LinearParams {
  int m = 0, n = 0, k = 0;
  bool silu_input = false;
  bool silu_output = false;
};

struct LinearArgs {
  const float* x = nullptr;  // [M, K]
  const Weight* weight = nullptr;  // from prepare_linear
  const float* bias = nullptr;     // [N] or null
  float* y = nullptr;              // [M, N]
  const float* add = nullptr;      // [M, N] added to y, or null (class embedding)
};

// The consistency-model scheduler's elementwise step (diffusers'
// CMStochasticIterativeScheduler.step, io.cm4j.pipeline.CMStochasticIterativeScheduler), so
// a multistep loop keeps its images on the backend. Per element of image b:
//   denoised = c_out[b] * model_output + c_skip[b] * sample, clamped to [-1, 1] when clip
//   prev     = denoised + (noise * s_noise) * noise_scale[b]
// Every operation is one float32 operation rounded as written (never contracted into a
// fused multiply-add), so the result is bit for bit that of the Java scheduler. The clamp
// keeps NaN, as Java's Math.min/max do.
struct SchedulerStepParams {
  int batch = 1;
  int64_t image = 0;  // elements per image (C * H * W)
  bool clip = false;  // clip_denoised
  float s_noise = 1.0f;
};

struct SchedulerStepArgs {
  const float* model_output = nullptr;  // [B, image]
  const float* sample = nullptr;        // [B, image]
  const float* noise = nullptr;         // [B, image], or null for zeros (a one-step schedule)
  const float* c_skip = nullptr;        // [B]
  const float* c_out = nullptr;         // [B]
  const float* noise_scale = nullptr;   // [B] sqrt(sigma_hat^2 - sigma_min^2)
  float* prev = nullptr;                // [B, image]; may alias sample
};

// One step of the zero-shot editing loop (io.cm4j.edit.Editing; golden README, "Editing
// cases"), after the UNet, per element of image b, in two passes:
//   d = clamp(c_out[b] * model_output + c_skip[b] * sample, -1, 1)   (into model_output)
//   sample = R(y, d) + noise * noise_scale[b]      (sample = R(y, d) when noise is null)
// with R the replacement of the task, y = reference, M = mask_keep[b, pixel], q the unit
// luma vector (edit_luma_axis) and q.x = (q0*x0 + q1*x1) + q2*x2 per pixel:
//   kNone      d
//   kInpaint   M*y + (1-M)*d
//   kColorize  d + q (q.y - q.d)                    (3 channels)
//   kSuperres  (d - mean_p(d)) + y, mean_p(d) of each p x p patch: the patch summed row by
//              row, left to right, in float, then divided by p*p (into workspace first)
// Every operation is one float32 operation rounded as written (no fused multiply-add), so
// the result is bit for bit that of the Java loop. The clamp keeps NaN, as Java's does.
enum class EditReplacement { kNone = 0, kInpaint = 1, kColorize = 2, kSuperres = 3 };

struct EditStepParams {
  int batch = 1, channels = 0, size = 0;  // [B, C, S, S]
  EditReplacement replacement = EditReplacement::kNone;
  int patch = 0;  // kSuperres: p, dividing size
};

struct EditStepArgs {
  float* model_output = nullptr;      // [B, C, S, S] the UNet's output, replaced by d
  float* sample = nullptr;            // [B, C, S, S] x, replaced by the next x
  const float* reference = nullptr;   // [B, C, S, S] y, or null for kNone
  const float* mask_keep = nullptr;   // [B, S, S], kInpaint
  const float* noise = nullptr;       // [B, C, S, S], or null
  const float* c_skip = nullptr;      // [B]
  const float* c_out = nullptr;       // [B]
  const float* noise_scale = nullptr; // [B]
  float* workspace = nullptr;         // [B, C, S/p, S/p], kSuperres
};

// What is wrong with an edit_step's arguments, or null: both backends check with this.
inline const char* edit_step_problem(const EditStepParams& p, const EditStepArgs& a) {
  if (!a.model_output || !a.sample || !a.c_skip || !a.c_out || !a.noise_scale)
    return "edit_step: null pointer";
  if (p.batch <= 0 || p.channels <= 0 || p.size <= 0) return "edit_step: bad shape";
  switch (p.replacement) {
    case EditReplacement::kNone:
      return nullptr;
    case EditReplacement::kInpaint:
      return a.reference && a.mask_keep ? nullptr : "edit_step: inpaint needs reference and mask";
    case EditReplacement::kColorize:
      if (p.channels != 3) return "edit_step: colorize needs 3 channels";
      return a.reference ? nullptr : "edit_step: colorize needs a reference";
    case EditReplacement::kSuperres:
      if (p.patch <= 0 || p.size % p.patch != 0) return "edit_step: patch must divide the size";
      return a.reference && a.workspace ? nullptr : "edit_step: superres needs reference and workspace";
  }
  return "edit_step: unknown replacement";
}

// q = w / |w| for the luma weights w = (0.2989, 0.5870, 0.1140), in double, rounded once.
inline void edit_luma_axis(float q[3]) {
  const double w[3] = {0.2989, 0.5870, 0.1140};
  const double norm = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  for (int c = 0; c < 3; ++c) q[c] = static_cast<float>(w[c] / norm);
}

// diffusers UNet2DModel's conditioning, time_proj -> time_embedding (+ class_embedding):
//   emb = linear_2(silu(linear_1(sinusoid(t)))) + class_embedding[labels]
// with the sinusoid of timestep_embedding below (channels wide) and the class term only when
// class_table is set (class_embed_type None: an nn.Embedding lookup).
struct TimeEmbeddingParams {
  int batch = 1;
  int channels = 0;  // sinusoid width, linear_1's input (block_out_channels[0])
  int dim = 0;       // time_embed_dim, linear_1's and linear_2's output
  bool flip_sin_to_cos = true;
  float freq_shift = 0.0f;
};

struct TimeEmbeddingArgs {
  const float* t = nullptr;               // [B]
  const Weight* linear_1 = nullptr;       // [dim, channels] from prepare_linear
  const float* bias_1 = nullptr;          // [dim] or null
  const Weight* linear_2 = nullptr;       // [dim, dim] from prepare_linear
  const float* bias_2 = nullptr;          // [dim] or null
  const float* class_table = nullptr;     // [num_class_embeds, dim] or null
  const int64_t* class_labels = nullptr;  // [B] host memory, validated; with class_table
  float* workspace = nullptr;             // [B, channels + 2 * dim] for compose_time_embedding
  float* emb = nullptr;                   // [B, dim]
};

// Work a backend recorded once and can queue again as one launch (a CUDA graph): the same
// kernels with the same arguments, pointers included.
struct CapturedWork {
  virtual ~CapturedWork() = default;
  // Dependencies along which a kernel may start before the one it waits for has finished
  // (programmatic dependent launch, kernels/launch_mode.h).
  size_t programmatic_edges = 0;
};

// An activation buffer's shape, [batch, channels, h, w].
struct ActShape {
  int batch = 1, channels = 0, h = 1, w = 1;
  size_t numel() const { return static_cast<size_t>(batch) * channels * h * w; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Device memory for activations and per-model constants (bias, norm affine, ...).
  virtual Status alloc(size_t bytes, float** out) = 0;
  virtual void free(float* p) = 0;
  virtual Status upload(float* dst, const float* src, size_t count) = 0;
  virtual Status download(float* dst, const float* src, size_t count) = 0;
  // Copies of an activation (a buffer that conv2d, group_norm, attention or the resampling
  // ops read or write) between host float32 NCHW and the backend's storage of it. Plain
  // copies unless the backend stores activations in another layout or type.
  virtual Status upload_activation(float* dst, const float* src, const ActShape& shape) {
    return upload(dst, src, shape.numel());
  }
  virtual Status download_activation(float* dst, const float* src, const ActShape& shape) {
    return download(dst, src, shape.numel());
  }
  // The same between a float32 NCHW buffer of this backend and its storage of an activation,
  // for the sampling loop, which keeps its images as float32 on the backend. Only a backend
  // whose plain_activations() is false is asked for these.
  virtual bool plain_activations() const { return true; }
  virtual Status activation_from_f32(const float* /*src*/, float* /*dst*/,
                                     const ActShape& /*shape*/) {
    return {7 /* CM4J_ERR_INTERNAL */, "activation_from_f32: activations are plain float32"};
  }
  virtual Status activation_to_f32(const float* /*src*/, float* /*dst*/,
                                   const ActShape& /*shape*/) {
    return {7 /* CM4J_ERR_INTERNAL */, "activation_to_f32: activations are plain float32"};
  }

  // Weight preparation, once at load. Layouts are torch's.
  //   conv:   [c_out, c_in, k, k]       linear: [n, k]
  virtual Status prepare_conv(const float* w, int c_out, int c_in, int kernel,
                              std::unique_ptr<Weight>* out) = 0;
  // prepare_conv for a weight whose every call is `use` (any batch): the graph knows each
  // conv's geometry before its weight arrives, so a backend that keeps several forms of a
  // weight (the CPU's direct and Winograd) can keep only the one that call runs. A weight
  // prepared this way may refuse a call of another geometry.
  virtual Status prepare_conv_for(const float* w, const ConvParams& use,
                                  std::unique_ptr<Weight>* out) {
    return prepare_conv(w, use.c_out, use.c_in1 + use.c_in2, use.kernel, out);
  }
  virtual Status prepare_linear(const float* w, int n, int k, std::unique_ptr<Weight>* out) = 0;

  virtual Status conv2d(const ConvParams& p, const ConvArgs& a) = 0;
  // Whether conv2d(p, ...) takes ConvArgs::norm, so the plan skips writing the normalized
  // tensor (a group norm then only writes its coeffs). The results are those of the
  // unfused group_norm and conv2d, bit for bit where both convs sum in the same order (CUDA:
  // always under the fixed rule; a tuning file may time the fused conv into another split).
  virtual bool conv_fuses_norm(const ConvParams& /*p*/) const { return false; }
  virtual Status group_norm(const GroupNormParams& p, const GroupNormArgs& a) = 0;
  virtual Status attention(const AttentionParams& p, const AttentionArgs& a) = 0;
  virtual Status linear(const LinearParams& p, const LinearArgs& a) = 0;

  // [B, C, H, W] -> [B, C, H/2, W/2], mean of each 2x2 window.
  virtual Status avg_pool2(const float* x, float* y, int batch, int channels, int h, int w) = 0;
  // [B, C, H, W] -> [B, C, 2H, 2W], nearest neighbour.
  virtual Status upsample_nearest2(const float* x, float* y, int batch, int channels, int h,
                                   int w) = 0;
  // Sinusoidal timestep embedding as diffusers' get_timestep_embedding:
  // t [B] -> emb [B, dim]; exponent = -ln(10000) * i / (dim/2 - freq_shift);
  // [sin, cos] or [cos, sin] when flip_sin_to_cos.
  virtual Status timestep_embedding(const float* t, float* emb, int batch, int dim,
                                    bool flip_sin_to_cos, float freq_shift) = 0;
  // rows[b, :] = table[labels[b], :]; labels already validated. labels is host memory.
  virtual Status embedding_lookup(const float* table, const int64_t* labels, float* rows,
                                  int batch, int dim) = 0;
  // The whole time path up to emb (TimeEmbeddingParams), as one call.
  virtual Status time_embedding(const TimeEmbeddingParams& p, const TimeEmbeddingArgs& a) = 0;

  // scale_model_input: y[b, i] = x[b, i] / divisor[b], divisor = sqrt(sigma^2 + sigma_data^2)
  // (a float32 division, as the scheduler computes it, not a product with the reciprocal).
  // x, y [B, image] (y may alias x); divisor [B] in backend memory.
  virtual Status scale_model_input(const float* x, const float* divisor, float* y, int batch,
                                   int64_t image) = 0;
  // See SchedulerStepParams. The per-image scalars are in backend memory.
  virtual Status scheduler_step(const SchedulerStepParams& p, const SchedulerStepArgs& a) = 0;
  // See EditStepParams. The per-image scalars, reference, mask and noise are in backend memory.
  virtual Status edit_step(const EditStepParams& p, const EditStepArgs& a) = 0;

  // Waits for queued work (no-op on the CPU).
  virtual Status synchronize() = 0;

  // Capture and replay (CUDA graphs), when can_capture(): capture runs `queue`, whose calls
  // must only queue work (no waiting, no allocation, no host memory read later), recording
  // instead of running it; replay queues the recorded work again. Every argument is
  // recorded by value, so a replay reads and writes the same buffers as the capture did.
  virtual bool can_capture() const { return false; }
  virtual Status capture(const std::function<Status()>& /*queue*/,
                         std::unique_ptr<CapturedWork>* /*out*/) {
    return {2 /* CM4J_ERR_UNSUPPORTED */, "capture: not supported by this backend"};
  }
  virtual Status replay(const CapturedWork& /*work*/) {
    return {2 /* CM4J_ERR_UNSUPPORTED */, "replay: not supported by this backend"};
  }
  // Changes whenever the backend replaces a buffer of its own that ops use (a scratch
  // buffer grown), which captured work would still point to.
  virtual uint64_t scratch_epoch() const { return 0; }
};

// time_embedding as the separate calls timestep_embedding, linear (+SiLU), embedding_lookup
// and linear (+ the class rows), on a.workspace: the CPU backend's implementation and the
// CUDA backend's outside the candidate kernel set.
Status compose_time_embedding(Backend* backend, const TimeEmbeddingParams& p,
                              const TimeEmbeddingArgs& a);

// dtype CM4J_F32: the float32 reference. CM4J_BF16: convolutions (and the attention's
// qkv / to_out 1x1 convs) with weights packed as bf16 and activations rounded to bf16 as
// they enter the GEMM, fp32 accumulation; norms, softmax, attention products and linear
// layers stay float32. Null for any other dtype or when threads cannot be created.
std::unique_ptr<Backend> make_cpu_backend(int threads /* 0: all cores */, int dtype);
// Null with a message in *error when CUDA is unavailable or the library has no CUDA.
std::unique_ptr<Backend> make_cuda_backend(int device, int dtype, std::string* error);
// Usable CUDA devices; 0 with the reason in *error (no driver, no device, no CUDA build).
int cuda_device_count(std::string* error);

}  // namespace cm4j
