package io.cm4j.weights;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The named tensors of a UNet checkpoint in any supported format, under diffusers' state-dict
 * names ({@code down_blocks.1.attentions.0.to_q.weight}), each F32, F16 or BF16, little-endian,
 * row-major. Whatever the file held (torch storages with strides, Paddle's transposed Linear
 * weights, OpenAI's fused qkv) has already been undone; open one with {@link Checkpoints#open}.
 *
 * <p>Tensor data is read lazily by {@link #get}: where the file stores a tensor as it is needed
 * the data is a view of the memory-mapped file (valid while the checkpoint is open), otherwise a
 * new direct buffer. Instances are safe to share between threads; {@link #close} drops the
 * mappings and may be called more than once.
 */
public interface Checkpoint extends AutoCloseable {
  /** The file the tensors come from. */
  Path path();

  /**
   * What the file is: "safetensors", "torch" (torch.save zip), "paddle" (.pdparams) or "openai"
   * (the original consistency_models naming, in a torch zip).
   */
  String format();

  /** Tensor names, in the file's order. */
  List<String> names();

  /** Name, dtype and shape of one tensor, without touching its data. */
  TensorInfo info(String name) throws CheckpointException;

  /** One tensor with its data. */
  TensorEntry get(String name) throws CheckpointException;

  /**
   * The diffusers UNet config (JSON text) these weights go with, when known: the shipped config
   * for an OpenAI checkpoint of a known name, otherwise a {@code config.json} beside the file
   * (the default, which only a reader that knows better overrides).
   */
  default Optional<String> matchingConfig() throws CheckpointException {
    return Checkpoints.configBeside(path());
  }

  /**
   * The scheduler config (JSON text), when known: shipped for OpenAI checkpoints, otherwise
   * (the default) {@code ../scheduler/scheduler_config.json} when the file sits in a diffusers
   * {@code unet/} folder.
   */
  default Optional<String> schedulerConfig() throws CheckpointException {
    return Checkpoints.schedulerBeside(path());
  }

  /** Whether a tensor of this name is present. */
  default boolean contains(String name) {
    return names().contains(name);
  }

  /** Format, tensor count, dtypes and sizes, for {@code weights inspect}. */
  default CheckpointSummary inspect() throws CheckpointException {
    return CheckpointSummary.of(this);
  }

  /**
   * Compares the tensors with what a model expects (name to shape): missing, unexpected and
   * mis-shaped names, all at once.
   */
  default KeyCheck check(Map<String, long[]> expected) throws CheckpointException {
    return KeyCheck.of(this, expected);
  }

  /** Releases the file; tensors handed out before must not be used afterwards. */
  @Override
  void close();
}
