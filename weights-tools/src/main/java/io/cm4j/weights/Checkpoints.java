package io.cm4j.weights;

import io.cm4j.weights.openai.OpenAICheckpoint;
import io.cm4j.weights.openai.OpenAIConfigs;
import io.cm4j.weights.paddle.PaddleCheckpoint;
import io.cm4j.weights.torch.TorchZipCheckpoint;
import java.io.InputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Opens a UNet checkpoint in any supported format, recognised by its content:
 * <ul>
 *   <li>safetensors (an 8-byte header length, then a JSON object);
 *   <li>a torch.save zip archive ({@code PK} magic): {@code diffusion_pytorch_model.bin}, or an
 *       original OpenAI {@code .pt} file, recognised by its {@code input_blocks.*} names and
 *       mapped to diffusers names with the config shipped for its file name;
 *   <li>a pickled dict of numpy arrays: Paddle's {@code .pdparams};
 *   <li>the pre-1.6 torch format (a pickled magic number) is recognised and refused with a hint.
 * </ul>
 * A directory is a diffusers model (or its {@code unet/} folder): the weights file in it is
 * opened, safetensors first.
 */
public final class Checkpoints {
  /** Weights files looked for in a model directory, in order of preference. */
  public static final List<String> WEIGHT_FILES = List.of(
      "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
      "model_state.pdparams");

  // torch < 1.6 pickles this magic number first: PROTO 2, LONG1 of 10 bytes, little-endian.
  private static final byte[] LEGACY_TORCH_MAGIC = {(byte) 0x8a, 0x0a, 0x6c, (byte) 0xfc,
      (byte) 0x9c, 0x46, (byte) 0xf9, 0x20, 0x6a, (byte) 0xa8, 0x50, 0x19};
  private static final long MAX_CONFIG_BYTES = 1 << 20;

  private Checkpoints() {}

  /** Opens a checkpoint file or model directory. */
  public static Checkpoint open(Path path) throws CheckpointException {
    return open(path, null);
  }

  /**
   * Opens a checkpoint file or model directory; {@code unetConfig}, when not null, is the
   * diffusers UNet config to map a file in the original OpenAI naming with (needed when its file
   * name is not one of {@link OpenAIConfigs#names()}; ignored for other files).
   */
  public static Checkpoint open(Path path, Path unetConfig) throws CheckpointException {
    Path file = weightsFile(path);
    Checkpoint c;
    switch (detect(file)) {
      case "safetensors":
        c = SafetensorsCheckpoint.open(file);
        break;
      case "torch":
        c = TorchZipCheckpoint.open(file);
        break;
      case "pickle":
        c = PaddleCheckpoint.open(file);
        break;
      default:
        throw new AssertionError();
    }
    if (!OpenAICheckpoint.isOpenAI(c)) {
      return c;
    }
    String unet;
    String scheduler = null;
    try {
      if (unetConfig != null) {
        unet = read(unetConfig);
      } else {
        String fileName = file.getFileName().toString();
        Optional<OpenAIConfigs.Known> known = OpenAIConfigs.forFileName(fileName);
        if (known.isEmpty()) {
          throw new CheckpointException(file, "uses the original OpenAI naming, but the file "
              + "name matches none of the checkpoints configs are shipped for "
              + OpenAIConfigs.names() + "; use the published file name or give a UNet config");
        }
        unet = known.get().unetConfig();
        scheduler = known.get().schedulerConfig();
      }
    } catch (CheckpointException e) {
      c.close();
      throw e;
    }
    return OpenAICheckpoint.wrap(c, unet, scheduler);
  }

  /**
   * The file a path names: itself, or for a directory its weights file ({@link #WEIGHT_FILES},
   * in the directory or its {@code unet/} folder).
   */
  public static Path weightsFile(Path path) throws CheckpointException {
    if (!Files.isDirectory(path)) {
      return path;
    }
    for (Path dir : List.of(path.resolve("unet"), path)) {
      for (String name : WEIGHT_FILES) {
        Path f = dir.resolve(name);
        if (Files.isRegularFile(f)) {
          return f;
        }
      }
    }
    throw new CheckpointException(path, "no weights file in the directory or its unet/ folder "
        + "(looked for " + String.join(", ", WEIGHT_FILES) + ")");
  }

  /**
   * The container format of a file from its first bytes: "safetensors", "torch" (zip) or
   * "pickle"; the legacy torch format and anything else are refused.
   */
  public static String detect(Path file) throws CheckpointException {
    byte[] head = new byte[16];
    int n = CheckpointException.reading(file, () -> {
      try (InputStream in = Files.newInputStream(file)) {
        return in.readNBytes(head, 0, head.length);
      }
    });
    if (n >= 4 && head[0] == 'P' && head[1] == 'K' && (head[2] == 3 || head[2] == 5)) {
      return "torch";
    }
    if (n >= 2 && (head[0] & 0xff) == 0x80 && head[1] >= 2 && head[1] <= 5) {
      if (n >= 14 && java.util.Arrays.equals(head, 2, 14, LEGACY_TORCH_MAGIC, 0, 12)) {
        throw new CheckpointException(file, "unsupported legacy torch format (saved by torch "
            + "before 1.6 or with _use_new_zipfile_serialization=False); re-save it with "
            + "torch>=1.6: torch.save(torch.load(f), f2)");
      }
      return "pickle";
    }
    if (n >= 9 && head[8] == '{') {
      return "safetensors";
    }
    StringBuilder hex = new StringBuilder();
    for (int i = 0; i < Math.min(n, 8); i++) {
      hex.append(String.format("%02x ", head[i] & 0xff));
    }
    throw new CheckpointException(file, n == 0 ? "empty file, not a checkpoint"
        : "not a supported checkpoint (first bytes " + hex.toString().trim()
        + "): expected safetensors, a torch.save zip, or a Paddle .pdparams pickle");
  }

  /**
   * The diffusers UNet config beside a weights file ({@code config.json} in the same folder),
   * when there is one that describes a UNet.
   */
  public static Optional<String> configBeside(Path weights) throws CheckpointException {
    Path parent = weights.toAbsolutePath().getParent();
    Path config = parent == null ? null : parent.resolve("config.json");
    if (config == null || !Files.isRegularFile(config)) {
      return Optional.empty();
    }
    String text = read(config);
    try {
      Map<String, Object> json = Json.parseObject(text);
      return json.containsKey("down_block_types") ? Optional.of(text) : Optional.empty();
    } catch (JsonException e) {
      throw new CheckpointException(config, "not valid JSON: " + e.getMessage());
    }
  }

  /** The scheduler config of the diffusers model a {@code unet/} weights file belongs to. */
  public static Optional<String> schedulerBeside(Path weights) throws CheckpointException {
    Path unet = weights.toAbsolutePath().getParent();
    if (unet == null || unet.getFileName() == null
        || !unet.getFileName().toString().equals("unet") || unet.getParent() == null) {
      return Optional.empty();
    }
    Path config = unet.getParent().resolve("scheduler").resolve("scheduler_config.json");
    return Files.isRegularFile(config) ? Optional.of(read(config)) : Optional.empty();
  }

  static String read(Path config) throws CheckpointException {
    return CheckpointException.reading(config, () -> {
      if (Files.size(config) > MAX_CONFIG_BYTES) {
        throw new CheckpointException(config, "config file over " + MAX_CONFIG_BYTES + " bytes");
      }
      try {
        return Files.readString(config, StandardCharsets.UTF_8);
      } catch (CharacterCodingException e) { // its own message is only "Input length = 1"
        throw new CheckpointException(config, "not valid UTF-8");
      }
    });
  }
}
