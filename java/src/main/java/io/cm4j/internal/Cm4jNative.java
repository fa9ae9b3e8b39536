package io.cm4j.internal;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.ByPtrPtr;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Opaque;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * The JavaCPP binding of {@code native/include/cm4j.h}, one method per C function, names and
 * argument order as in the header. Internal: call {@link NativeLibrary#load()} before using it,
 * and only from {@code io.cm4j}, which validates arguments first.
 *
 * <p>Bulk data (weights, samples, outputs) travels as direct NIO buffers, so JNI passes their
 * addresses without copying; small arrays (shapes, timesteps, labels) as Java arrays.
 */
@Platform(include = "cm4j.h", link = "cm4j", library = "jnicm4j")
public final class Cm4jNative {
  private Cm4jNative() {}

  /** The opaque {@code cm4j_unet} engine handle. */
  @Opaque
  public static final class cm4j_unet extends Pointer {
    /** A null handle, for {@link #cm4j_unet_create} to fill in. */
    public cm4j_unet() {
      super((Pointer) null);
    }
  }

  public static native @Cast("const char*") String cm4j_last_error();

  public static native @Cast("const char*") String cm4j_version();

  public static native int cm4j_cuda_device_count();

  public static native int cm4j_synth_v1(@Cast("const char*") String name,
      @Cast("const int64_t*") long[] shape, int ndim, @Cast("uint64_t") long seed, float[] out,
      @Cast("int64_t") long n);

  /** config_json: NUL-terminated UTF-8 in a direct buffer. */
  public static native int cm4j_unet_create(@Cast("const char*") ByteBuffer configJson,
      @Cast("const char*") String device, int dtype, @ByPtrPtr cm4j_unet out);

  public static native void cm4j_unet_destroy(cm4j_unet unet);

  public static native int cm4j_unet_param_count(@Const cm4j_unet unet);

  public static native @Cast("const char*") String cm4j_unet_param_name(@Const cm4j_unet unet,
      int index);

  public static native int cm4j_unet_param_shape(@Const cm4j_unet unet, int index,
      @Cast("int64_t*") long[] shapeOut);

  public static native int cm4j_unet_in_channels(@Const cm4j_unet unet);

  public static native int cm4j_unet_out_channels(@Const cm4j_unet unet);

  public static native int cm4j_unet_sample_size(@Const cm4j_unet unet);

  public static native int cm4j_unet_num_class_embeds(@Const cm4j_unet unet);

  public static native int cm4j_unet_max_batch(@Const cm4j_unet unet);

  /** data: a direct buffer of nbytes little-endian elements. */
  public static native int cm4j_unet_bind(cm4j_unet unet, @Cast("const char*") String name,
      int dtype, @Cast("const int64_t*") long[] shape, int ndim,
      @Cast("const void*") ByteBuffer data, @Cast("int64_t") long nbytes);

  public static native int cm4j_unet_bind_synth(cm4j_unet unet, @Cast("uint64_t") long seed);

  public static native int cm4j_unet_finalize(cm4j_unet unet);

  /** sample and out: direct native-order buffers; classLabels null for unconditional models. */
  public static native int cm4j_unet_forward(cm4j_unet unet, int batch,
      @Cast("const float*") FloatBuffer sample, @Cast("const float*") float[] timestep,
      @Cast("const int64_t*") long[] classLabels, FloatBuffer out);

  /**
   * sampleIn, noise and sampleOut: direct native-order buffers (noise null for zeros); the
   * per-step arrays hold steps * batch values; classLabels null for unconditional models.
   */
  public static native int cm4j_unet_sample(cm4j_unet unet, int batch, int steps,
      @Cast("const float*") FloatBuffer sampleIn, @Cast("const float*") float[] timesteps,
      @Cast("const float*") float[] inputScale, @Cast("const float*") float[] cSkip,
      @Cast("const float*") float[] cOut, @Cast("const float*") float[] noiseScale, float sNoise,
      @Cast("const float*") FloatBuffer noise, @Cast("const int64_t*") long[] classLabels,
      int clip, FloatBuffer sampleOut);

  /**
   * The editing loop: buffers as for cm4j_unet_sample; reference null for CM4J_EDIT_NONE,
   * maskKeep null except for CM4J_EDIT_INPAINT.
   */
  public static native int cm4j_unet_edit(cm4j_unet unet, int batch, int steps,
      @Cast("const float*") FloatBuffer sampleIn, @Cast("const float*") float[] timesteps,
      @Cast("const float*") float[] inputScale, @Cast("const float*") float[] cSkip,
      @Cast("const float*") float[] cOut, @Cast("const float*") float[] noiseScale,
      @Cast("const float*") FloatBuffer noise, @Cast("const int64_t*") long[] classLabels,
      int replacement, int patch, @Cast("const float*") FloatBuffer reference,
      @Cast("const float*") FloatBuffer maskKeep, FloatBuffer sampleOut);

  public static native int cm4j_unet_set_capture_taps(cm4j_unet unet, int enable);

  public static native int cm4j_unet_tap_count(@Const cm4j_unet unet);

  public static native @Cast("const char*") String cm4j_unet_tap_name(@Const cm4j_unet unet,
      int index);

  public static native int cm4j_unet_tap_shape(@Const cm4j_unet unet, int index,
      @Cast("int64_t*") long[] shapeOut);

  /** dst: a direct native-order buffer of at least n floats. */
  public static native int cm4j_unet_tap_copy(@Const cm4j_unet unet, int index, FloatBuffer dst,
      @Cast("int64_t") long n);

  public static native int cm4j_unet_set_profile_ops(cm4j_unet unet, int enable);

  public static native int cm4j_unet_op_count(@Const cm4j_unet unet);

  public static native @Cast("const char*") String cm4j_unet_op_name(@Const cm4j_unet unet,
      int index);

  public static native double cm4j_unet_op_ms(@Const cm4j_unet unet, int index);

  public static native @Cast("int64_t") long cm4j_unet_weight_bytes(@Const cm4j_unet unet);

  public static native @Cast("int64_t") long cm4j_unet_arena_bytes(@Const cm4j_unet unet);
}
