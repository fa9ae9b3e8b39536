package io.cm4j.weights.openai;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Names of the original OpenAI {@code consistency_models} UNet ({@code cm/unet.py}) translated
 * to diffusers' {@code UNet2DModel}, derived from a diffusers config's block structure, as
 * diffusers' {@code scripts/convert_consistency_to_diffusers.py} does it.
 *
 * <p>OpenAI numbers its modules in one flat sequence: {@code input_blocks.N} (conv_in, then per
 * level {@code layers_per_block} resnets, each with an attention when the level has one, then a
 * downsampler), {@code middle_block.0..2}, and {@code output_blocks.N} ({@code layers_per_block
 * + 1} per level, the level's upsampler inside the last one). Walking the config's
 * {@code down_block_types}/{@code up_block_types} in the same order gives each OpenAI module its
 * diffusers prefix; inside a module the parameter names follow fixed tables below.
 *
 * <p>Attention: {@code qkv} is a 1x1 convolution of shape [3C, C, 1] whose output channels are
 * q, k, v one after the other (the layout {@code QKVFlashAttention} reads as
 * "(three h d)"), so to_q/to_k/to_v are its three row blocks; the head-interleaved "(h three d)"
 * split of {@code QKVAttentionLegacy} does not apply to these checkpoints (the diffusers
 * conversion chunks in three likewise, and the stored test checkpoint confirms it).
 */
public final class OpenAIKeyMap {
  /** How the parameters of one OpenAI module are named in diffusers. */
  enum Kind { PLAIN, RESNET, ATTENTION, CONV_DOWNSAMPLE, CONV_UPSAMPLE }

  private record Module(String prefix, Kind kind) {}

  /**
   * One diffusers tensor made from an OpenAI tensor: its name and shape, and which third of the
   * source's rows it takes ({@code part} 0..2 for a split qkv, -1 for all of it).
   */
  public record Target(String name, long[] shape, String source, int part) {
    public Target {
      shape = shape.clone();
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }
  }

  private static final Map<String, String> RESNET = Map.of(
      "in_layers.0", "norm1", "in_layers.2", "conv1", "emb_layers.1", "time_emb_proj",
      "out_layers.0", "norm2", "out_layers.3", "conv2", "skip_connection", "conv_shortcut");
  private static final Map<String, String> ATTENTION = Map.of(
      "norm", "group_norm", "proj_out", "to_out.0");

  private final Map<String, Module> modules = new LinkedHashMap<>();

  private OpenAIKeyMap() {}

  /**
   * The map for a diffusers UNet2DModel config (parsed JSON).
   *
   * @throws IllegalArgumentException when the config has no OpenAI equivalent
   */
  public static OpenAIKeyMap fromConfig(Map<String, Object> config) {
    OpenAIKeyMap m = new OpenAIKeyMap();
    m.add("time_embed.0", "time_embedding.linear_1", Kind.PLAIN);
    m.add("time_embed.2", "time_embedding.linear_2", Kind.PLAIN);
    if (config.get("num_class_embeds") != null) {
      m.add("label_emb", "class_embedding", Kind.PLAIN);
    }
    m.add("input_blocks.0.0", "conv_in", Kind.PLAIN);
    int layers = intValue(config, "layers_per_block");
    List<String> down = strings(config, "down_block_types");
    List<String> up = strings(config, "up_block_types");
    String downsampleType = String.valueOf(config.getOrDefault("downsample_type", "conv"));
    String upsampleType = String.valueOf(config.getOrDefault("upsample_type", "conv"));

    int n = 1;
    for (int i = 0; i < down.size(); i++) {
      boolean attn = hasAttention(down.get(i), "Down");
      for (int j = 0; j < layers; j++, n++) {
        m.add("input_blocks." + n + ".0", "down_blocks." + i + ".resnets." + j, Kind.RESNET);
        if (attn) {
          m.add("input_blocks." + n + ".1", "down_blocks." + i + ".attentions." + j,
              Kind.ATTENTION);
        }
      }
      if (i < down.size() - 1) {
        boolean resnet = down.get(i).contains("Downsample") || downsampleType.equals("resnet");
        m.add("input_blocks." + n + ".0", "down_blocks." + i + ".downsamplers.0",
            resnet ? Kind.RESNET : Kind.CONV_DOWNSAMPLE);
        n++;
      }
    }

    boolean midAttention = !Boolean.FALSE.equals(config.get("add_attention"));
    m.add("middle_block.0", "mid_block.resnets.0", Kind.RESNET);
    if (midAttention) {
      m.add("middle_block.1", "mid_block.attentions.0", Kind.ATTENTION);
      m.add("middle_block.2", "mid_block.resnets.1", Kind.RESNET);
    } else {
      m.add("middle_block.1", "mid_block.resnets.1", Kind.RESNET);
    }

    n = 0;
    for (int i = 0; i < up.size(); i++) {
      boolean attn = hasAttention(up.get(i), "Up");
      for (int j = 0; j < layers + 1; j++, n++) {
        m.add("output_blocks." + n + ".0", "up_blocks." + i + ".resnets." + j, Kind.RESNET);
        if (attn) {
          m.add("output_blocks." + n + ".1", "up_blocks." + i + ".attentions." + j,
              Kind.ATTENTION);
        }
      }
      if (i < up.size() - 1) { // inside the level's last output block, after its attention
        boolean resnet = up.get(i).contains("Upsample") || upsampleType.equals("resnet");
        m.add("output_blocks." + (n - 1) + "." + (attn ? 2 : 1),
            "up_blocks." + i + ".upsamplers.0", resnet ? Kind.RESNET : Kind.CONV_UPSAMPLE);
      }
    }
    m.add("out.0", "conv_norm_out", Kind.PLAIN);
    m.add("out.2", "conv_out", Kind.PLAIN);
    return m;
  }

  private void add(String openai, String diffusers, Kind kind) {
    modules.put(openai, new Module(diffusers, kind));
  }

  /**
   * The diffusers tensors an OpenAI tensor becomes: one, or three for a fused qkv.
   *
   * @throws IllegalArgumentException when the name has no place in the config's structure or
   *     the shape is not what the module holds
   */
  public List<Target> map(String name, long[] shape) {
    int dot = name.lastIndexOf('.');
    String param = name.substring(dot + 1); // weight / bias
    String path = dot < 0 ? "" : name.substring(0, dot);
    // The module is the longest registered prefix of the parameter's path.
    String owner = null;
    for (String p = path; !p.isEmpty(); p = p.contains(".") ? p.substring(0, p.lastIndexOf('.'))
        : "") {
      if (modules.containsKey(p)) {
        owner = p;
        break;
      }
    }
    if (owner == null || dot < 0) {
      throw new IllegalArgumentException("OpenAI key '" + name
          + "' has no place in the config's block structure");
    }
    Module m = modules.get(owner);
    String inner = path.substring(owner.length()).replaceFirst("^\\.", "");
    switch (m.kind) {
      case PLAIN:
        return one(name, inner.isEmpty() ? m.prefix + "." + param : null, shape);
      case RESNET:
        return one(name, RESNET.containsKey(inner)
            ? m.prefix + "." + RESNET.get(inner) + "." + param : null, shape);
      case CONV_DOWNSAMPLE:
        return one(name, inner.equals("op") ? m.prefix + ".conv." + param : null, shape);
      case CONV_UPSAMPLE:
        return one(name, inner.equals("conv") ? m.prefix + ".conv." + param : null, shape);
      case ATTENTION:
        if (inner.equals("qkv")) {
          return splitQkv(name, m.prefix, param, shape);
        }
        if (inner.equals("proj_out")) {
          return one(name, m.prefix + ".to_out.0." + param, squeeze(name, shape));
        }
        return one(name, ATTENTION.containsKey(inner)
            ? m.prefix + "." + ATTENTION.get(inner) + "." + param : null, shape);
      default:
        throw new AssertionError(m.kind);
    }
  }

  private static List<Target> one(String source, String target, long[] shape) {
    if (target == null) {
      throw new IllegalArgumentException("OpenAI key '" + source
          + "' is not a parameter of its module");
    }
    return List.of(new Target(target, shape, source, -1));
  }

  /** qkv [3C, C, 1] (or [3C]) -> to_q, to_k, to_v [C, C] (or [C]): the three row blocks. */
  private static List<Target> splitQkv(String source, String prefix, String param,
      long[] shape) {
    long[] s = param.equals("weight") ? squeeze(source, shape) : shape;
    if (s.length == 0 || s[0] % 3 != 0 || s.length > 2) {
      throw new IllegalArgumentException("OpenAI key '" + source + "' has shape "
          + Arrays.toString(shape) + ", expected [3C, C, 1] or [3C]");
    }
    long[] part = s.clone();
    part[0] /= 3;
    List<Target> out = new ArrayList<>();
    String[] names = {"to_q", "to_k", "to_v"};
    for (int i = 0; i < 3; i++) {
      out.add(new Target(prefix + "." + names[i] + "." + param, part, source, i));
    }
    return out;
  }

  /** A 1x1 convolution weight [O, I, 1(, 1)] as the Linear weight [O, I]; others unchanged. */
  private static long[] squeeze(String source, long[] shape) {
    if (shape.length <= 2) {
      return shape;
    }
    for (int i = 2; i < shape.length; i++) {
      if (shape[i] != 1) {
        throw new IllegalArgumentException("OpenAI key '" + source + "' has shape "
            + Arrays.toString(shape) + ", expected a 1x1 convolution");
      }
    }
    return new long[] {shape[0], shape[1]};
  }

  private static boolean hasAttention(String type, String direction) {
    switch (type) {
      case "DownBlock2D":
      case "ResnetDownsampleBlock2D":
      case "UpBlock2D":
      case "ResnetUpsampleBlock2D":
        return false;
      case "AttnDownBlock2D":
      case "AttnDownsampleBlock2D":
      case "AttnUpBlock2D":
      case "AttnUpsampleBlock2D":
        return true;
      default:
        throw new IllegalArgumentException(direction.toLowerCase() + " block type '" + type
            + "' has no equivalent in the OpenAI UNet");
    }
  }

  private static int intValue(Map<String, Object> config, String key) {
    Object v = config.get(key);
    if (!(v instanceof Long) || (Long) v < 1 || (Long) v > 64) {
      throw new IllegalArgumentException("config '" + key + "' must be a small positive integer,"
          + " found " + v);
    }
    return (int) (long) (Long) v;
  }

  private static List<String> strings(Map<String, Object> config, String key) {
    Object v = config.get(key);
    List<String> out = new ArrayList<>();
    if (v instanceof List) {
      for (Object o : (List<?>) v) {
        if (!(o instanceof String)) {
          out.clear();
          break;
        }
        out.add((String) o);
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("config '" + key
          + "' must be a non-empty list of block type names, found " + v);
    }
    return out;
  }
}
