package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.UNet;
import io.cm4j.internal.Cm4jNative;
import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.TensorEntry;
import io.cm4j.weights.TensorInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * synth-v1 weights (golden README) for every parameter a config's model expects, seen as a
 * {@link Checkpoint} of float32 tensors computed on demand, so {@code weights convert
 * --random-weights SEED --config FILE} can write a real-size model file with no download.
 */
final class SynthCheckpoint implements Checkpoint {
  private final Path config;
  private final String json;
  private final long seed;
  private final Map<String, long[]> params;
  private final List<String> names;

  private SynthCheckpoint(Path config, String json, long seed, Map<String, long[]> params) {
    this.config = config;
    this.json = json;
    this.seed = seed;
    this.params = params;
    this.names = List.copyOf(params.keySet());
  }

  /** The parameters {@code config} describes, with synth-v1 values for {@code seed}. */
  static SynthCheckpoint open(Path config, long seed) throws IOException, Cm4jException {
    Map<String, long[]> params = UNet.expectedParameters(config); // reads and checks the config
    return new SynthCheckpoint(config, Files.readString(config, StandardCharsets.UTF_8), seed,
        params);
  }

  /** The config file the tensors are computed for. */
  @Override
  public Path path() {
    return config;
  }

  @Override
  public String format() {
    return "synth-v1";
  }

  @Override
  public List<String> names() {
    return names;
  }

  @Override
  public boolean contains(String name) {
    return params.containsKey(name);
  }

  @Override
  public TensorInfo info(String name) throws CheckpointException {
    return new TensorInfo(name, DType.F32, shape(name));
  }

  @Override
  public TensorEntry get(String name) throws CheckpointException {
    long[] shape = shape(name);
    int n = floatCount(config, name, shape);
    float[] values = new float[n];
    int status = Cm4jNative.cm4j_synth_v1(name, shape, shape.length, seed, values, n);
    if (status != 0) {
      throw new CheckpointException(config, "synth-v1 of '" + name + "' failed: "
          + Cm4jNative.cm4j_last_error());
    }
    ByteBuffer data = ByteBuffer.allocateDirect(n * 4).order(ByteOrder.LITTLE_ENDIAN);
    data.asFloatBuffer().put(values);
    return new TensorEntry(name, DType.F32, shape, data);
  }

  /** The elements of a parameter, counted without overflow; at most what one buffer holds. */
  static int floatCount(Path config, String name, long[] shape) throws CheckpointException {
    long n = 1;
    try {
      for (long d : shape) {
        if (d < 0) {
          throw new ArithmeticException("negative dimension");
        }
        n = Math.multiplyExact(n, d);
      }
    } catch (ArithmeticException e) {
      n = Long.MAX_VALUE;
    }
    if (n > Integer.MAX_VALUE / 4) {
      throw new CheckpointException(config, "parameter '" + name + "' of shape "
          + Arrays.toString(shape) + " is too large to compute");
    }
    return (int) n;
  }

  private long[] shape(String name) throws CheckpointException {
    long[] shape = params.get(name);
    if (shape == null) {
      throw new CheckpointException(config, "no parameter named '" + name + "'");
    }
    return shape.clone();
  }

  @Override
  public Optional<String> matchingConfig() {
    return Optional.of(json);
  }

  @Override
  public Optional<String> schedulerConfig() {
    return Optional.empty();
  }

  @Override
  public void close() {}

  @Override
  public String toString() {
    return "synth-v1 seed " + Long.toUnsignedString(seed) + " for " + config;
  }
}
