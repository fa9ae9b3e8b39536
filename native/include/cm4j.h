/*
 * cm4j: the flat C API of the UNet executor.
 *
 * Opaque handles, create/destroy pairs, int status codes and a thread-local last-error
 * string. No C++ type, exception, abort() or exit() crosses this boundary: every failure
 * is a status code plus a message readable with cm4j_last_error().
 *
 * Life of an engine:
 *   cm4j_unet_create(config_json, "cpu", CM4J_F32, &unet)
 *   cm4j_unet_bind(...) once per named weight, or cm4j_unet_bind_synth(unet, seed)
 *   cm4j_unet_finalize(unet)      checks missing/unexpected/mis-shaped keys, packs weights
 *   cm4j_unet_forward(...)        any number of times, from any thread
 *   cm4j_unet_sample(...)         a whole sampling loop on the device, likewise
 *   cm4j_unet_edit(...)           the zero-shot editing loop on the device, likewise
 *   cm4j_unet_destroy(unet)
 */
#ifndef CM4J_H
#define CM4J_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. Keep in sync with io.cm4j.ErrorCode. */
#define CM4J_OK 0
#define CM4J_ERR_INVALID_ARGUMENT 1 /* a caller-supplied value is wrong (shape, label, ...) */
#define CM4J_ERR_UNSUPPORTED 2      /* a config key/value outside the supported family */
#define CM4J_ERR_WEIGHTS 3          /* missing, unexpected or mis-shaped weights */
#define CM4J_ERR_OUT_OF_MEMORY 4
#define CM4J_ERR_DEVICE 5           /* device unavailable or a device call failed */
#define CM4J_ERR_STATE 6            /* call out of order (forward before finalize, ...) */
#define CM4J_ERR_INTERNAL 7

/* Element types of bound weights and of the compute mode. */
#define CM4J_F32 0
#define CM4J_F16 1
#define CM4J_BF16 2

#if defined(__GNUC__)
#define CM4J_API __attribute__((visibility("default")))
#else
#define CM4J_API
#endif

typedef struct cm4j_unet cm4j_unet;

/* Message of the last failed call on this thread ("" when none). */
CM4J_API const char *cm4j_last_error(void);

/* Library version string, e.g. "0.1.0". */
CM4J_API const char *cm4j_version(void);

/* Number of usable CUDA devices; 0 with a message in cm4j_last_error() when none
 * (no driver, no device, or the library was built without CUDA). */
CM4J_API int cm4j_cuda_device_count(void);

/* Fills out[0..n) with synth-v1 weights for the named parameter (see golden README). */
CM4J_API int cm4j_synth_v1(const char *name, const int64_t *shape, int ndim, uint64_t seed, float *out,
                  int64_t n);

/* Parses a diffusers UNet2DModel config.json text and builds the execution plan.
 * device: "cpu" (one thread per core), "cpu:N" (N threads), "cuda" or "cuda:N" (device N). dtype: compute/storage mode; CM4J_F32 or CM4J_BF16 on the CPU. */
CM4J_API int cm4j_unet_create(const char *config_json, const char *device, int dtype, cm4j_unet **out);

/* Idempotent on NULL. */
CM4J_API void cm4j_unet_destroy(cm4j_unet *unet);

/* Expected parameters of the model, in state-dict order. Shapes have at most 4 dims. */
CM4J_API int cm4j_unet_param_count(const cm4j_unet *unet);
CM4J_API const char *cm4j_unet_param_name(const cm4j_unet *unet, int index);
CM4J_API int cm4j_unet_param_shape(const cm4j_unet *unet, int index, int64_t *shape_out /*[4]*/);

/* Model facts the Java side validates inputs against. */
CM4J_API int cm4j_unet_in_channels(const cm4j_unet *unet);
CM4J_API int cm4j_unet_out_channels(const cm4j_unet *unet);
CM4J_API int cm4j_unet_sample_size(const cm4j_unet *unet);
CM4J_API int cm4j_unet_num_class_embeds(const cm4j_unet *unet); /* 0 for unconditional models */
/* Most images one forward, sample or edit call takes: every activation of the batch must
   stay under 2^31 elements (910 for imagenet64, 85 for LSUN-256). */
CM4J_API int cm4j_unet_max_batch(const cm4j_unet *unet);

/* Binds one named tensor. data holds nbytes of little-endian dtype elements, row-major.
 * The data is copied (converted to the engine's storage type); the caller may free it after.
 * Name or shape problems are collected and reported together by cm4j_unet_finalize. */
CM4J_API int cm4j_unet_bind(cm4j_unet *unet, const char *name, int dtype, const int64_t *shape, int ndim,
                   const void *data, int64_t nbytes);

/* Binds every parameter with synth-v1 weights for the given seed. */
CM4J_API int cm4j_unet_bind_synth(cm4j_unet *unet, uint64_t seed);

/* Checks that every parameter is bound exactly once with the right shape, reporting every
 * missing, unexpected and mis-shaped key in one message; then packs weights for the backend. */
CM4J_API int cm4j_unet_finalize(cm4j_unet *unet);

/* One UNet forward pass.
 *   sample       [batch, in_channels, sample_size, sample_size] f32
 *   timestep     [batch] f32
 *   class_labels [batch] i64, NULL for unconditional models
 *   out          [batch, out_channels, sample_size, sample_size] f32
 * Thread-safe: concurrent calls on one engine are serialized. */
CM4J_API int cm4j_unet_forward(cm4j_unet *unet, int batch, const float *sample, const float *timestep,
                      const int64_t *class_labels, float *out);

/* A whole consistency-model sampling loop (diffusers' ConsistencyModelPipeline with
 * CMStochasticIterativeScheduler) on the engine's device: the sample is uploaded once, every
 * step runs on the device, and the final sample is downloaded once. For step s and image b,
 * with v[s,b] = v[s * batch + b]:
 *   model_input  = sample / input_scale[s,b]              (scale_model_input)
 *   model_output = unet(model_input, timesteps[s,b], class_labels)
 *   denoised     = c_out[s,b] * model_output + c_skip[s,b] * sample, clamped to [-1, 1]
 *                  when clip (NaN stays NaN)
 *   sample       = denoised + (noise[s] * s_noise) * noise_scale[s,b]
 * Each operation is one float32 operation rounded as written (no fused multiply-add), so the
 * result is bit for bit that of the same loop around cm4j_unet_forward on this engine with
 * the arithmetic done on the host in float32 (as io.cm4j.pipeline does).
 *   sample_in, sample_out  [batch, C, S, S] f32 (C = in_channels = out_channels); may alias
 *   timesteps, input_scale, c_skip, c_out, noise_scale  [steps, batch] f32; timesteps finite,
 *                          the others used as given
 *   noise        [steps, batch, C, S, S] f32: each step's draw, in order; NULL for zeros
 *                (a one-step schedule draws none)
 *   class_labels [batch] i64, NULL for unconditional models
 *   clip         0 or 1
 * Thread-safe like cm4j_unet_forward; taps, when enabled, are those of the last step. */
CM4J_API int cm4j_unet_sample(cm4j_unet *unet, int batch, int steps, const float *sample_in,
                     const float *timesteps, const float *input_scale, const float *c_skip,
                     const float *c_out, const float *noise_scale, float s_noise,
                     const float *noise, const int64_t *class_labels, int clip,
                     float *sample_out);

/* Replacement operators of cm4j_unet_edit. */
#define CM4J_EDIT_NONE 0     /* sdedit, denoise, interpolate */
#define CM4J_EDIT_INPAINT 1
#define CM4J_EDIT_COLORIZE 2
#define CM4J_EDIT_SUPERRES 3

/* The zero-shot editing loop (io.cm4j.edit; golden README, "Editing cases") on the engine's
 * device, uploaded and downloaded once like cm4j_unet_sample. For step s and image b:
 *   model_input  = sample / input_scale[s,b]
 *   model_output = unet(model_input, timesteps[s,b], class_labels)
 *   d            = clamp(c_out[s,b] * model_output + c_skip[s,b] * sample, -1, 1)
 *   sample       = R(reference, d) + noise[s] * noise_scale[s,b]   (no noise: R(reference, d))
 * with R by replacement (M = mask_keep, q the unit luma axis, q.x per pixel, mean_p the
 * patch x patch means summed row by row):
 *   CM4J_EDIT_NONE      d                         CM4J_EDIT_INPAINT   M*y + (1-M)*d
 *   CM4J_EDIT_COLORIZE  d + q (q.y - q.d)          CM4J_EDIT_SUPERRES  (d - mean_p(d)) + y
 * Each operation is one float32 operation rounded as written (no fused multiply-add), so the
 * result is bit for bit that of io.cm4j.edit's Java loop around cm4j_unet_forward. The final
 * clamp of the output is the caller's.
 *   sample_in, sample_out, reference  [batch, C, S, S] f32 (reference NULL for NONE)
 *   timesteps, input_scale, c_skip, c_out, noise_scale  [steps, batch] f32
 *   noise        [steps, batch, C, S, S] f32, each step's draw in order, or NULL (none)
 *   mask_keep    [batch, S, S] f32 of 0 and 1 (INPAINT; ignored otherwise)
 *   patch        SUPERRES: divides S
 * Thread-safe like cm4j_unet_forward. */
CM4J_API int cm4j_unet_edit(cm4j_unet *unet, int batch, int steps, const float *sample_in,
                   const float *timesteps, const float *input_scale, const float *c_skip,
                   const float *c_out, const float *noise_scale, const float *noise,
                   const int64_t *class_labels, int replacement, int patch,
                   const float *reference, const float *mask_keep, float *sample_out);

/* Debug taps: when enabled, the next forward passes keep the intermediate outputs the golden
 * files record (tap.time_embedding, tap.conv_in, tap.down_blocks.N, ...). */
CM4J_API int cm4j_unet_set_capture_taps(cm4j_unet *unet, int enable);
CM4J_API int cm4j_unet_tap_count(const cm4j_unet *unet);
CM4J_API const char *cm4j_unet_tap_name(const cm4j_unet *unet, int index);
/* Returns ndim (<= 4) and fills shape_out; -1 on error. */
CM4J_API int cm4j_unet_tap_shape(const cm4j_unet *unet, int index, int64_t *shape_out /*[4]*/);
CM4J_API int cm4j_unet_tap_copy(const cm4j_unet *unet, int index, float *dst, int64_t n);

/* Op profile, for benchmarks: while enabled, every forward pass (and every step of a
 * sampling loop) waits for each op to finish before starting the next and records its wall
 * time, so the profile shows where a pass's time goes at the cost of the overlap a plain
 * pass has. The accessors read the last profiled pass (count 0 before one). Enabling or
 * disabling clears it. Not synchronized with a pass running on another thread. */
CM4J_API int cm4j_unet_set_profile_ops(cm4j_unet *unet, int enable);
CM4J_API int cm4j_unet_op_count(const cm4j_unet *unet);
CM4J_API const char *cm4j_unet_op_name(const cm4j_unet *unet, int index); /* NULL out of range */
CM4J_API double cm4j_unet_op_ms(const cm4j_unet *unet, int index);        /* -1 out of range */

/* Bytes held by the engine: packed weights, and the activation arena of the last batch size. */
CM4J_API int64_t cm4j_unet_weight_bytes(const cm4j_unet *unet);
CM4J_API int64_t cm4j_unet_arena_bytes(const cm4j_unet *unet);

#ifdef __cplusplus
}
#endif

#endif /* CM4J_H */
