package io.cm4j.weights.openai;

import io.cm4j.weights.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * The diffusers configs that go with each original OpenAI checkpoint, shipped as resources
 * ({@code index.json} names them), so a single {@code .pt} file is a complete model. The
 * checkpoint is recognised by its published file name ({@code cd_imagenet64_l2.pt}, ...): the
 * weights alone cannot tell a bedroom model from a cat model.
 *
 * <p>UNet configs: ImageNet-64 is diffusers' {@code openai/diffusers-cd_imagenet64_l2} config
 * (with its mid-block attention group norm fix, {@code attn_norm_num_groups} 32); LSUN-256 is
 * the conversion script's, unconditional with {@code default} time conditioning. A name holding
 * {@code test} (and none of those) gets the script's {@code TEST_UNET_CONFIG} (32x32, channels 32
 * and 64) and the CD scheduler, as diffusers' {@code convert_consistency_to_diffusers.py} gives
 * it. Schedulers: 40 training steps for CD, 201 for CT ImageNet-64, 151 for CT LSUN-256; sigma
 * 0.002 to 80.
 */
public final class OpenAIConfigs {
  /** The configs of one checkpoint name: UNet and scheduler, as JSON text. */
  public record Known(String checkpoint, String unetConfig, String schedulerConfig) {}

  private OpenAIConfigs() {}

  /** The names configs are shipped for ("cd_imagenet64_l2", ...), sorted. */
  public static TreeSet<String> names() {
    return new TreeSet<>(index().keySet());
  }

  /**
   * The configs for a checkpoint file name: the longest known name the file name contains
   * ({@code cd_imagenet64_l2.pt}, {@code openai-cd_imagenet64_l2.pt}), if any; {@code test}, the
   * shortest, only when no published name matches (the conversion script checks it last).
   */
  public static Optional<Known> forFileName(String fileName) {
    String best = null;
    for (String name : index().keySet()) {
      if (fileName.contains(name) && (best == null || name.length() > best.length())) {
        best = name;
      }
    }
    if (best == null) {
      return Optional.empty();
    }
    Map<?, ?> entry = (Map<?, ?>) index().get(best);
    return Optional.of(new Known(best, resource((String) entry.get("unet")),
        resource((String) entry.get("scheduler"))));
  }

  private static Map<String, Object> index() {
    return Json.parseObject(resource("index.json"));
  }

  private static String resource(String name) {
    try (InputStream in = OpenAIConfigs.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("resource missing from the jar: " + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
