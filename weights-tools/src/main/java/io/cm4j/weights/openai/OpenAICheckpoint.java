package io.cm4j.weights.openai;

import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Json;
import io.cm4j.weights.JsonException;
import io.cm4j.weights.SlotTable;
import io.cm4j.weights.TensorEntry;
import io.cm4j.weights.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * An original OpenAI {@code consistency_models} checkpoint seen under diffusers names: wraps the
 * checkpoint that holds the OpenAI-named tensors (a torch zip, usually) and maps every name
 * with {@link OpenAIKeyMap}. The fused qkv splits and 1x1-convolution squeezes are views of the
 * source tensors (row blocks and reshapes of contiguous data), so nothing is copied.
 */
public final class OpenAICheckpoint implements Checkpoint {
  private final Checkpoint source;
  private final String unetConfig;
  private final String schedulerConfig;
  private final SlotTable<OpenAIKeyMap.Target> targets;

  private OpenAICheckpoint(Checkpoint source, String unetConfig, String schedulerConfig,
      Map<String, OpenAIKeyMap.Target> targets) {
    this.source = source;
    this.unetConfig = unetConfig;
    this.schedulerConfig = schedulerConfig;
    this.targets = new SlotTable<>(source.path(), "checkpoint", targets);
  }

  /** Whether a checkpoint's names are OpenAI's ({@code input_blocks.0.0.weight}, ...). */
  public static boolean isOpenAI(Checkpoint c) {
    return c.contains("input_blocks.0.0.weight") && c.contains("out.2.weight");
  }

  /**
   * Maps an OpenAI-named checkpoint with the given diffusers UNet config (JSON text); the
   * scheduler config may be null when unknown. Takes ownership of {@code source}: closing this
   * closes it, and so does a failure here.
   */
  public static OpenAICheckpoint wrap(Checkpoint source, String unetConfig,
      String schedulerConfig) throws CheckpointException {
    try {
      Map<String, Object> config;
      try {
        config = Json.parseObject(unetConfig);
      } catch (JsonException e) {
        throw new CheckpointException(source.path(), "UNet config is not valid JSON: "
            + e.getMessage());
      }
      Map<String, OpenAIKeyMap.Target> targets = new LinkedHashMap<>();
      try {
        OpenAIKeyMap map = OpenAIKeyMap.fromConfig(config);
        for (String name : source.names()) {
          for (OpenAIKeyMap.Target t : map.map(name, source.info(name).shape())) {
            if (targets.put(t.name(), t) != null) {
              throw new IllegalArgumentException("two OpenAI keys map to '" + t.name() + "'");
            }
          }
        }
      } catch (IllegalArgumentException e) {
        throw new CheckpointException(source.path(), e.getMessage()
            + " (is the UNet config the one for this checkpoint?)");
      }
      return new OpenAICheckpoint(source, unetConfig, schedulerConfig,
          Collections.unmodifiableMap(targets));
    } catch (CheckpointException | RuntimeException e) {
      source.close();
      throw e;
    }
  }

  @Override
  public Path path() {
    return source.path();
  }

  @Override
  public String format() {
    return source.format().equals("torch") ? "openai" : "openai (" + source.format() + ")";
  }

  @Override
  public List<String> names() {
    return targets.names();
  }

  @Override
  public boolean contains(String name) {
    return targets.contains(name);
  }

  @Override
  public TensorInfo info(String name) throws CheckpointException {
    OpenAIKeyMap.Target t = targets.get(name);
    return new TensorInfo(name, source.info(t.source()).dtype(), t.shape());
  }

  @Override
  public TensorEntry get(String name) throws CheckpointException {
    OpenAIKeyMap.Target t = targets.get(name);
    TensorEntry src = source.get(t.source());
    ByteBuffer data = src.data();
    if (t.part() >= 0) { // one third of the rows of a contiguous [3C, ...] tensor
      int third = data.remaining() / 3;
      int from = data.position() + t.part() * third;
      data = data.duplicate().position(from).limit(from + third).slice();
    }
    return new TensorEntry(name, src.dtype(), t.shape(),
        data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN));
  }

  @Override
  public Optional<String> matchingConfig() {
    return Optional.of(unetConfig);
  }

  @Override
  public Optional<String> schedulerConfig() {
    return Optional.ofNullable(schedulerConfig);
  }

  @Override
  public void close() {
    targets.close();
    source.close();
  }

  @Override
  public String toString() {
    return "OpenAICheckpoint[" + source + "]";
  }
}
