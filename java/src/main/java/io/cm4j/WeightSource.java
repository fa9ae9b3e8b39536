package io.cm4j;

import io.cm4j.internal.Cm4jNative;
import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Checkpoints;
import io.cm4j.weights.DType;
import io.cm4j.weights.TensorEntry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Where a UNet's weights come from: a checkpoint in any format {@link Checkpoints#open} reads
 * (safetensors, torch {@code .bin}/{@code .pt}, Paddle {@code .pdparams}, original OpenAI
 * naming), each tensor handed to the engine as a direct buffer (a view of the memory-mapped
 * file where the file stores it as needed) without a copy into the Java heap; or synth-v1,
 * deterministic weights computed from a seed (see the golden README), so a real-size model runs
 * with no download.
 */
public abstract class WeightSource {
  WeightSource() {}

  /** The tensors of a diffusers safetensors file (or any checkpoint file), by state-dict name. */
  public static WeightSource safetensors(Path file) {
    return checkpoint(file);
  }

  /**
   * The tensors of a checkpoint file or model folder in any supported format, opened when bound
   * and closed right after (the engine copies what it is given).
   */
  public static WeightSource checkpoint(Path fileOrFolder) {
    return new FromPath(Objects.requireNonNull(fileOrFolder, "fileOrFolder"));
  }

  /** The tensors of an open checkpoint, which stays the caller's to close. */
  public static WeightSource of(Checkpoint checkpoint) {
    return new FromCheckpoint(Objects.requireNonNull(checkpoint, "checkpoint"));
  }

  /** synth-v1 weights for {@code seed} (an unsigned 64-bit value). */
  public static WeightSource synthV1(long seed) {
    return new SynthV1(seed);
  }

  /** Binds every weight to a created, not yet finalized engine. */
  abstract void bindTo(Cm4jNative.cm4j_unet unet) throws IOException, Cm4jException;

  /** How messages name these weights: a file path, or "synth-v1 seed N". */
  @Override
  public abstract String toString();

  /** Binds every tensor of {@code c}, one at a time. */
  static void bind(Checkpoint c, Cm4jNative.cm4j_unet unet) throws IOException, Cm4jException {
    String context = c.path().toString();
    for (String name : c.names()) {
      TensorEntry t = c.get(name);
      int dtype = nativeDType(c, t);
      ByteBuffer data = t.data();
      if (!data.isDirect()) { // the readers hand out direct buffers; a safety net for others
        data = ByteBuffer.allocateDirect(data.remaining()).put(data.duplicate()).flip();
      }
      long[] shape = t.shape();
      NativeCalls.check(Cm4jNative.cm4j_unet_bind(unet, name, dtype, shape, shape.length,
          data, data.remaining()), "cm4j_unet_bind", context);
    }
  }

  private static int nativeDType(Checkpoint c, TensorEntry t) throws CheckpointException {
    if (t.dtype() == DType.F32) {
      return Precision.FP32.code();
    } else if (t.dtype() == DType.F16) {
      return Precision.FP16.code();
    } else if (t.dtype() == DType.BF16) {
      return Precision.BF16.code();
    }
    throw new CheckpointException(c.path(), "weight '" + t.name() + "' has dtype " + t.dtype()
        + ", expected F32, F16 or BF16");
  }

  private static final class FromPath extends WeightSource {
    private final Path path;

    FromPath(Path path) {
      this.path = path;
    }

    @Override
    void bindTo(Cm4jNative.cm4j_unet unet) throws IOException, Cm4jException {
      try (Checkpoint c = Checkpoints.open(path)) {
        bind(c, unet);
      }
    }

    @Override
    public String toString() {
      return path.toString();
    }
  }

  private static final class FromCheckpoint extends WeightSource {
    private final Checkpoint checkpoint;

    FromCheckpoint(Checkpoint checkpoint) {
      this.checkpoint = checkpoint;
    }

    @Override
    void bindTo(Cm4jNative.cm4j_unet unet) throws IOException, Cm4jException {
      bind(checkpoint, unet);
    }

    @Override
    public String toString() {
      return checkpoint.path().toString();
    }
  }

  private static final class SynthV1 extends WeightSource {
    private final long seed;

    SynthV1(long seed) {
      this.seed = seed;
    }

    @Override
    void bindTo(Cm4jNative.cm4j_unet unet) throws Cm4jException {
      NativeCalls.check(Cm4jNative.cm4j_unet_bind_synth(unet, seed), "cm4j_unet_bind_synth",
          toString());
    }

    @Override
    public String toString() {
      return "synth-v1 seed " + Long.toUnsignedString(seed);
    }
  }
}
