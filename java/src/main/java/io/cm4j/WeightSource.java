package io.cm4j;

import io.cm4j.internal.Cm4jNative;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.TensorEntry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Where a UNet's weights come from: a safetensors file (memory-mapped, handed to the engine
 * without a heap copy) or synth-v1, deterministic weights computed from a seed (see the golden
 * README), so a real-size model runs with no download.
 */
public abstract class WeightSource {
  WeightSource() {}

  /** The tensors of a diffusers safetensors file, under their state-dict names. */
  public static WeightSource safetensors(Path file) {
    return new Safetensors(Objects.requireNonNull(file, "file"));
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

  private static final class Safetensors extends WeightSource {
    private final Path file;

    Safetensors(Path file) {
      this.file = file;
    }

    @Override
    void bindTo(Cm4jNative.cm4j_unet unet) throws IOException, Cm4jException {
      try (SafetensorsFile st = SafetensorsFile.open(file)) {
        for (String name : st.names()) {
          TensorEntry t = st.get(name);
          int dtype = nativeDType(t);
          ByteBuffer data = t.data();
          if (!data.isDirect()) { // readers of other formats may hand heap buffers
            data = ByteBuffer.allocateDirect(data.remaining()).put(data.duplicate()).flip();
          }
          long[] shape = t.shape();
          NativeCalls.check(Cm4jNative.cm4j_unet_bind(unet, name, dtype, shape, shape.length,
              data, data.remaining()), "cm4j_unet_bind", file.toString());
        }
      }
    }

    private int nativeDType(TensorEntry t) throws CheckpointException {
      if (t.dtype() == DType.F32) {
        return Precision.FP32.code();
      } else if (t.dtype() == DType.F16) {
        return Precision.FP16.code();
      } else if (t.dtype() == DType.BF16) {
        return Precision.BF16.code();
      }
      throw new CheckpointException(file, "weight '" + t.name() + "' has dtype " + t.dtype()
          + ", expected F32, F16 or BF16");
    }

    @Override
    public String toString() {
      return file.toString();
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
