package io.cm4j.weights.openai;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.Checkpoints;
import io.cm4j.weights.Json;
import io.cm4j.weights.TestData;
import io.cm4j.weights.torch.TorchZipCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The OpenAI-to-diffusers name map, checked by two independent descriptions of the same UNet:
 * the parameter list OpenAI's {@code cm/unet.py} builds, and the one diffusers'
 * {@code UNet2DModel} builds (the latter checked against the tiny model's real file). Mapping
 * the first must give exactly the second, names and shapes, for every shipped config.
 */
class OpenAIKeyMapTest {

  @Test
  void diffusersDescriptionMatchesTheTinyModelFile() throws IOException {
    Map<String, long[]> expected = diffusersParams(config(TestData.tinyUnet()
        .resolve("config.json")));
    try (Checkpoint c = Checkpoints.open(TestData.tinyUnet())) {
      assertShapes(expected, c);
    }
  }

  @Test
  void openaiDescriptionMatchesTheTinyOpenAIFile() throws IOException {
    Map<String, long[]> openai = openaiParams(config(TestData.tinyUnet().resolve("config.json")));
    try (Checkpoint raw = TorchZipCheckpoint.open(
        TestData.golden().resolve("tiny/openai/tiny_cd_test.pt"))) {
      assertEquals(new ArrayList<>(openai.keySet()), raw.names());
      assertShapes(openai, raw);
    }
  }

  @Test
  void everyShippedConfigMapsOpenAINamesToDiffusersNames() throws IOException {
    List<Map<String, Object>> configs = new ArrayList<>();
    for (String name : OpenAIConfigs.names()) {
      configs.add(Json.parseObject(OpenAIConfigs.forFileName(name + ".pt").orElseThrow()
          .unetConfig()));
    }
    configs.add(config(TestData.golden().resolve("lsun_mini/config.json")));
    configs.add(config(TestData.golden().resolve("imagenet64/config.json")));
    configs.add(config(TestData.tinyUnet().resolve("config.json")));
    for (Map<String, Object> config : configs) {
      assertMapsExactly(config);
    }
  }

  @Test
  void convolutionResamplersMapToo() {
    Map<String, Object> config = new LinkedHashMap<>(
        config(TestData.tinyUnet().resolve("config.json")));
    config.put("block_out_channels", List.of(32L, 64L, 64L));
    config.put("down_block_types", List.of("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"));
    config.put("up_block_types", List.of("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"));
    config.put("downsample_type", "conv");
    config.put("upsample_type", "conv");
    config.put("num_class_embeds", null);
    config.put("resnet_time_scale_shift", "default");
    assertMapsExactly(config);
  }

  @Test
  void qkvSplitsIntoRowBlocksAndProjectionsSqueeze() {
    OpenAIKeyMap m = OpenAIKeyMap.fromConfig(config(TestData.tinyUnet().resolve("config.json")));
    List<OpenAIKeyMap.Target> qkv = m.map("middle_block.1.qkv.weight", new long[] {192, 64, 1});
    assertEquals(3, qkv.size());
    for (int i = 0; i < 3; i++) {
      assertEquals("mid_block.attentions.0." + new String[] {"to_q", "to_k", "to_v"}[i]
          + ".weight", qkv.get(i).name());
      assertArrayEquals(new long[] {64, 64}, qkv.get(i).shape());
      assertEquals(i, qkv.get(i).part());
    }
    assertArrayEquals(new long[] {64},
        m.map("middle_block.1.qkv.bias", new long[] {192}).get(2).shape());
    OpenAIKeyMap.Target out = m.map("middle_block.1.proj_out.weight", new long[] {64, 64, 1, 1})
        .get(0);
    assertEquals("mid_block.attentions.0.to_out.0.weight", out.name());
    assertArrayEquals(new long[] {64, 64}, out.shape());
  }

  @Test
  void namesOutsideTheStructureAreRefused() {
    OpenAIKeyMap m = OpenAIKeyMap.fromConfig(config(TestData.tinyUnet().resolve("config.json")));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> m.map("input_blocks.99.0.in_layers.0.weight", new long[] {1}));
    assertTrue(e.getMessage().contains("no place in the config's block structure"));
    e = assertThrows(IllegalArgumentException.class,
        () -> m.map("input_blocks.1.0.mystery.weight", new long[] {1}));
    assertTrue(e.getMessage().contains("not a parameter of its module"));
    e = assertThrows(IllegalArgumentException.class,
        () -> m.map("middle_block.1.qkv.weight", new long[] {64, 64, 3}));
    assertTrue(e.getMessage().contains("expected a 1x1 convolution"), e.getMessage());
  }

  /** diffusers' converter maps any name holding "test" with its TEST_UNET_CONFIG. */
  @Test
  void aTestCheckpointGetsTheConvertersTestConfig() throws IOException {
    OpenAIConfigs.Known test = OpenAIConfigs.forFileName("tiny_cd_test.pt").orElseThrow();
    assertEquals("test", test.checkpoint());
    // the golden tiny model was made from that config by diffusers
    assertEquals(config(TestData.tinyUnet().resolve("config.json")),
        Json.parseObject(test.unetConfig()));
    assertEquals(40L, Json.parseObject(test.schedulerConfig()).get("num_train_timesteps"));
    // published names come first, as in the converter
    assertEquals("cd_imagenet64_l2",
        OpenAIConfigs.forFileName("cd_imagenet64_l2_test.pt").orElseThrow().checkpoint());
    Path pt = TestData.golden().resolve("tiny/openai/tiny_cd_test.pt");
    try (Checkpoint c = Checkpoints.open(pt);
        Checkpoint diffusers = Checkpoints.open(TestData.tinyUnet())) {
      assertEquals(diffusers.names().stream().sorted().toList(),
          c.names().stream().sorted().toList());
    }
  }

  @Test
  void configsAreChosenByPublishedFileName() throws IOException {
    assertEquals("cd_imagenet64_l2",
        OpenAIConfigs.forFileName("cd_imagenet64_l2.pt").orElseThrow().checkpoint());
    assertEquals("cd_imagenet64_lpips",
        OpenAIConfigs.forFileName("openai-cd_imagenet64_lpips.pt").orElseThrow().checkpoint());
    assertEquals("ct_cat256", OpenAIConfigs.forFileName("ct_cat256.pt").orElseThrow()
        .checkpoint());
    assertTrue(OpenAIConfigs.forFileName("tiny_cd.pt").isEmpty());
    assertEquals(10, OpenAIConfigs.names().size());
    Map<String, Object> sched = Json.parseObject(
        OpenAIConfigs.forFileName("ct_bedroom256.pt").orElseThrow().schedulerConfig());
    assertEquals(151L, sched.get("num_train_timesteps"));
    assertEquals(201L, Json.parseObject(OpenAIConfigs.forFileName("ct_imagenet64.pt")
        .orElseThrow().schedulerConfig()).get("num_train_timesteps"));
    assertEquals(40L, Json.parseObject(OpenAIConfigs.forFileName("cd_cat256_lpips.pt")
        .orElseThrow().schedulerConfig()).get("num_train_timesteps"));
    // The ImageNet-64 config is the Hub's (golden imagenet64/config.json), key for key.
    Map<String, Object> shipped = Json.parseObject(
        OpenAIConfigs.forFileName("cd_imagenet64_l2.pt").orElseThrow().unetConfig());
    Map<String, Object> hub = config(TestData.golden().resolve("imagenet64/config.json"));
    for (Map.Entry<String, Object> e : hub.entrySet()) {
      if (!e.getKey().startsWith("_")) {
        assertEquals(e.getValue(), shipped.get(e.getKey()), e.getKey());
      }
    }
  }

  // ---- the two descriptions ----

  private static void assertMapsExactly(Map<String, Object> config) {
    OpenAIKeyMap m = OpenAIKeyMap.fromConfig(config);
    Map<String, long[]> mapped = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : openaiParams(config).entrySet()) {
      for (OpenAIKeyMap.Target t : m.map(e.getKey(), e.getValue())) {
        assertTrue(mapped.put(t.name(), t.shape()) == null, "twice: " + t.name());
      }
    }
    Map<String, long[]> expected = diffusersParams(config);
    assertEquals(new TreeSet<>(expected.keySet()),
        new TreeSet<>(mapped.keySet()), "names for " + config.get("block_out_channels"));
    for (String name : expected.keySet()) {
      assertArrayEquals(expected.get(name), mapped.get(name), name);
    }
  }

  private static void assertShapes(Map<String, long[]> expected, Checkpoint c)
      throws IOException {
    assertEquals(new TreeSet<>(expected.keySet()),
        new TreeSet<>(c.names()));
    for (String name : expected.keySet()) {
      assertArrayEquals(expected.get(name), c.info(name).shape(), name);
    }
  }

  /** The parameters OpenAI's UNetModel declares for the equivalent of a diffusers config. */
  static Map<String, long[]> openaiParams(Map<String, Object> config) {
    Map<String, long[]> p = new LinkedHashMap<>();
    long[] chans = longs(config.get("block_out_channels"));
    List<?> down = (List<?>) config.get("down_block_types");
    int blocks = (int) (long) (Long) config.get("layers_per_block");
    boolean scaleShift = "scale_shift".equals(config.get("resnet_time_scale_shift"));
    boolean updown = "resnet".equals(config.get("downsample_type"));
    long mc = chans[0];
    long ted = 4 * mc;
    linear(p, "time_embed.0", ted, mc);
    linear(p, "time_embed.2", ted, ted);
    if (config.get("num_class_embeds") != null) {
      p.put("label_emb.weight", new long[] {(Long) config.get("num_class_embeds"), ted});
    }
    conv(p, "input_blocks.0.0", mc, 3, 3);
    List<Long> stack = new ArrayList<>(List.of(mc));
    long ch = mc;
    int k = 1;
    for (int level = 0; level < chans.length; level++) {
      boolean attn = down.get(level).toString().contains("Attn");
      for (int i = 0; i < blocks; i++, k++) {
        resblock(p, "input_blocks." + k + ".0", ch, chans[level], ted, scaleShift);
        ch = chans[level];
        if (attn) {
          attention(p, "input_blocks." + k + ".1", ch);
        }
        stack.add(ch);
      }
      if (level != chans.length - 1) {
        if (updown) {
          resblock(p, "input_blocks." + k + ".0", ch, ch, ted, scaleShift);
        } else {
          conv(p, "input_blocks." + k + ".0.op", ch, ch, 3);
        }
        stack.add(ch);
        k++;
      }
    }
    resblock(p, "middle_block.0", ch, ch, ted, scaleShift);
    attention(p, "middle_block.1", ch);
    resblock(p, "middle_block.2", ch, ch, ted, scaleShift);
    k = 0;
    for (int level = chans.length - 1; level >= 0; level--) {
      boolean attn = down.get(level).toString().contains("Attn");
      for (int i = 0; i <= blocks; i++, k++) {
        long ich = stack.remove(stack.size() - 1);
        resblock(p, "output_blocks." + k + ".0", ch + ich, chans[level], ted, scaleShift);
        ch = chans[level];
        if (attn) {
          attention(p, "output_blocks." + k + ".1", ch);
        }
        if (level > 0 && i == blocks) {
          String at = "output_blocks." + k + "." + (attn ? 2 : 1);
          if (updown) {
            resblock(p, at, ch, ch, ted, scaleShift);
          } else {
            conv(p, at + ".conv", ch, ch, 3);
          }
        }
      }
    }
    norm(p, "out.0", ch);
    conv(p, "out.2", 3, mc, 3);
    return p;
  }

  /** The parameters diffusers' UNet2DModel declares for a config (its state-dict names). */
  static Map<String, long[]> diffusersParams(Map<String, Object> config) {
    Map<String, long[]> p = new LinkedHashMap<>();
    long[] boc = longs(config.get("block_out_channels"));
    List<?> down = (List<?>) config.get("down_block_types");
    List<?> up = (List<?>) config.get("up_block_types");
    int layers = (int) (long) (Long) config.get("layers_per_block");
    boolean scaleShift = "scale_shift".equals(config.get("resnet_time_scale_shift"));
    long ted = 4 * boc[0];
    conv(p, "conv_in", boc[0], 3, 3);
    linear(p, "time_embedding.linear_1", ted, boc[0]);
    linear(p, "time_embedding.linear_2", ted, ted);
    if (config.get("num_class_embeds") != null) {
      p.put("class_embedding.weight", new long[] {(Long) config.get("num_class_embeds"), ted});
    }
    long out = boc[0];
    for (int i = 0; i < boc.length; i++) {
      long in = out;
      out = boc[i];
      String b = "down_blocks." + i;
      for (int j = 0; j < layers; j++) {
        resnet(p, b + ".resnets." + j, j == 0 ? in : out, out, ted, scaleShift);
        if (down.get(i).toString().startsWith("Attn")) {
          attn(p, b + ".attentions." + j, out);
        }
      }
      if (i < boc.length - 1) {
        if (down.get(i).toString().startsWith("Resnet")
            || "resnet".equals(config.get("downsample_type"))) {
          resnet(p, b + ".downsamplers.0", out, out, ted, scaleShift);
        } else {
          conv(p, b + ".downsamplers.0.conv", out, out, 3);
        }
      }
    }
    long last = boc[boc.length - 1];
    resnet(p, "mid_block.resnets.0", last, last, ted, scaleShift);
    attn(p, "mid_block.attentions.0", last);
    resnet(p, "mid_block.resnets.1", last, last, ted, scaleShift);
    long[] rev = boc.clone();
    for (int i = 0; i < rev.length / 2; i++) {
      long t = rev[i];
      rev[i] = rev[rev.length - 1 - i];
      rev[rev.length - 1 - i] = t;
    }
    long prevOut = rev[0];
    for (int i = 0; i < rev.length; i++) {
      long outCh = rev[i];
      long inCh = rev[Math.min(i + 1, rev.length - 1)];
      String b = "up_blocks." + i;
      for (int j = 0; j <= layers; j++) {
        long skip = j == layers ? inCh : outCh;
        long resIn = j == 0 ? prevOut : outCh;
        resnet(p, b + ".resnets." + j, resIn + skip, outCh, ted, scaleShift);
        if (up.get(i).toString().startsWith("Attn")) {
          attn(p, b + ".attentions." + j, outCh);
        }
      }
      if (i < rev.length - 1) {
        if (up.get(i).toString().startsWith("Resnet")
            || "resnet".equals(config.get("upsample_type"))) {
          resnet(p, b + ".upsamplers.0", outCh, outCh, ted, scaleShift);
        } else {
          conv(p, b + ".upsamplers.0.conv", outCh, outCh, 3);
        }
      }
      prevOut = outCh;
    }
    norm(p, "conv_norm_out", boc[0]);
    conv(p, "conv_out", 3, boc[0], 3);
    return p;
  }

  private static void resblock(Map<String, long[]> p, String at, long in, long out, long ted,
      boolean scaleShift) {
    norm(p, at + ".in_layers.0", in);
    conv(p, at + ".in_layers.2", out, in, 3);
    linear(p, at + ".emb_layers.1", scaleShift ? 2 * out : out, ted);
    norm(p, at + ".out_layers.0", out);
    conv(p, at + ".out_layers.3", out, out, 3);
    if (in != out) {
      conv(p, at + ".skip_connection", out, in, 1);
    }
  }

  private static void attention(Map<String, long[]> p, String at, long ch) {
    norm(p, at + ".norm", ch);
    p.put(at + ".qkv.weight", new long[] {3 * ch, ch, 1});
    p.put(at + ".qkv.bias", new long[] {3 * ch});
    p.put(at + ".proj_out.weight", new long[] {ch, ch, 1});
    p.put(at + ".proj_out.bias", new long[] {ch});
  }

  private static void resnet(Map<String, long[]> p, String at, long in, long out, long ted,
      boolean scaleShift) {
    norm(p, at + ".norm1", in);
    conv(p, at + ".conv1", out, in, 3);
    linear(p, at + ".time_emb_proj", scaleShift ? 2 * out : out, ted);
    norm(p, at + ".norm2", out);
    conv(p, at + ".conv2", out, out, 3);
    if (in != out) {
      conv(p, at + ".conv_shortcut", out, in, 1);
    }
  }

  private static void attn(Map<String, long[]> p, String at, long ch) {
    norm(p, at + ".group_norm", ch);
    for (String s : new String[] {"to_q", "to_k", "to_v", "to_out.0"}) {
      linear(p, at + "." + s, ch, ch);
    }
  }

  private static void norm(Map<String, long[]> p, String at, long ch) {
    p.put(at + ".weight", new long[] {ch});
    p.put(at + ".bias", new long[] {ch});
  }

  private static void linear(Map<String, long[]> p, String at, long out, long in) {
    p.put(at + ".weight", new long[] {out, in});
    p.put(at + ".bias", new long[] {out});
  }

  private static void conv(Map<String, long[]> p, String at, long out, long in, long k) {
    p.put(at + ".weight", new long[] {out, in, k, k});
    p.put(at + ".bias", new long[] {out});
  }

  private static long[] longs(Object list) {
    return ((List<?>) list).stream().mapToLong(o -> (Long) o).toArray();
  }

  static Map<String, Object> config(Path p) {
    try {
      return Json.parseObject(Files.readString(p));
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }
}
