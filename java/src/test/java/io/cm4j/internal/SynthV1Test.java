package io.cm4j.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** cm4j_synth_v1 against the check values of the golden README and a Java transcription. */
class SynthV1Test {

  @BeforeAll
  static void load() throws Exception {
    NativeLibrary.load();
  }

  @Test
  void conv_inWeightHashAndFirstValues() {
    assertEquals(2082520131938120871L, fnv1a64("conv_in.weight"));
    // a [n, 1] shape divides by sqrt(1): the values are v itself
    assertArrayEquals(new float[] {0.1669389009475708f, -0.11213088035583496f,
        0.22824621200561523f}, synth("conv_in.weight", new long[] {3, 1}, 1));
    assertArrayEquals(new float[] {(float) v(fnv1a64("conv_in.weight") ^ 1, 0)},
        synth("conv_in.weight", new long[] {1, 1}, 1));
  }

  @Test
  void norm1WeightFirstValues() {
    // 1-D ".weight": 1 + 0.1 v
    float[] got = synth("down_blocks.0.resnets.0.norm1.weight", new long[] {3}, 1);
    double[] v = {0.932727575302124, 0.5653797388076782, -0.8662737607955933};
    for (int i = 0; i < 3; i++) {
      assertEquals((float) (1 + 0.1 * v[i]), got[i], 0f, "value " + i);
    }
  }

  @Test
  void wholeTensorsMatchTheJavaTranscription() {
    long[] shape = {8, 4, 3, 3};
    check("down_blocks.1.resnets.0.conv1.weight", shape, 1);
    check("down_blocks.1.resnets.0.conv1.weight", shape, 7);
    check("time_embedding.linear_1.bias", new long[] {37}, 1);
    check("mid_block.attentions.0.group_norm.weight", new long[] {16}, -1L);
  }

  private static void check(String name, long[] shape, long seed) {
    float[] got = synth(name, shape, seed);
    long fan = 1;
    for (int i = 1; i < shape.length; i++) {
      fan *= shape[i];
    }
    long key = fnv1a64(name) ^ seed;
    for (int i = 0; i < got.length; i++) {
      double v = v(key, i);
      double value = shape.length >= 2 ? v / Math.sqrt(fan)
          : name.endsWith(".weight") ? 1 + 0.1 * v : 0.05 * v;
      assertEquals((float) value, got[i], 0f, name + " seed " + seed + " index " + i);
    }
  }

  private static float[] synth(String name, long[] shape, long seed) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    float[] out = new float[(int) n];
    int status = Cm4jNative.cm4j_synth_v1(name, shape, shape.length, seed, out, n);
    assertEquals(0, status, Cm4jNative.cm4j_last_error());
    return out;
  }

  static long fnv1a64(String s) {
    long h = 0xCBF29CE484222325L;
    for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
      h ^= b & 0xff;
      h *= 0x100000001B3L;
    }
    return h;
  }

  /** v_i of the README: splitmix64 finalizer of key + (i+1) * golden gamma, 24 bits, in [-1, 1). */
  static double v(long key, long i) {
    long z = key + (i + 1) * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    z = z ^ (z >>> 31);
    double u = (z >>> 40) * 0x1p-24;
    return 2 * u - 1;
  }
}
