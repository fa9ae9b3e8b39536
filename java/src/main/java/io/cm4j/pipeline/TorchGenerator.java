package io.cm4j.pipeline;

/**
 * A seeded source of normal samples that reproduces {@code torch.randn(shape, generator=g)} for a
 * CPU {@code torch.Generator} after {@code g.manual_seed(seed)}, so that a seed gives the same
 * latents and step noise as diffusers' {@code ConsistencyModelPipeline}.
 *
 * <p>PyTorch fills a float32 tensor in one of two ways, and both are reproduced here:
 * <ul>
 *   <li>16 or more elements ({@code normal_fill}): one float uniform per element, then a float32
 *       Box–Muller over each block of 16 (element j pairs with j + 8). When the size is not a
 *       multiple of 16 the last 16 slots are redrawn and transformed again, overwriting.</li>
 *   <li>fewer than 16 elements: one double-precision Box–Muller per element, whose second value
 *       is cached in the generator and consumed by the next small draw.</li>
 * </ul>
 * PyTorch's AVX2 path evaluates log/sin/cos with its own float32 approximations; evaluating them
 * in double and rounding to float lands within 5e-7 of it on the golden cases (bound: 1e-5).
 * Not thread-safe, like a torch generator shared between threads.
 */
public final class TorchGenerator {
  private static final float TWO_PI = (float) (2.0 * Math.PI); // _mm256_set1_ps(2.0f * pi<double>)
  private static final double FLOAT_UNIT = 0x1.0p-24;
  private static final double DOUBLE_UNIT = 0x1.0p-53;

  private MT19937 engine;
  private boolean hasCachedNormal;
  private double cachedNormal;

  /** Same as {@code torch.Generator().manual_seed(seed)}. */
  public TorchGenerator(long seed) {
    manualSeed(seed);
  }

  /** Reseeds the engine and drops the cached normal, as {@code manual_seed} does; returns this. */
  public TorchGenerator manualSeed(long seed) {
    engine = new MT19937(seed);
    hasCachedNormal = false;
    return this;
  }

  /** {@code torch.randn(shape, generator=this)} in float32, row-major. */
  public float[] randn(long... shape) {
    float[] out = new float[numel(shape)];
    if (out.length >= 16) {
      normalFill(out);
    } else {
      for (int i = 0; i < out.length; i++) {
        out[i] = (float) nextDoubleNormal();
      }
    }
    return out;
  }

  /**
   * {@code torch.randint(low, high, (n,), generator=this)} (int64): each value is
   * {@code low + next_u32 % (high - low)}, one 32-bit draw per value, as ATen's
   * {@code uniform_int_from_to_distribution} does for ranges below 2^28 (larger ranges switch to
   * 64-bit draws there and are refused here).
   */
  public long[] randint(long low, long high, int n) {
    long range = high - low;
    if (range < 1 || range >= 1L << 28) {
      throw new IllegalArgumentException("randint: expected 0 < high - low < 2^28, found low="
          + low + ", high=" + high);
    }
    if (n < 0) {
      throw new IllegalArgumentException("randint: negative count " + n);
    }
    long[] out = new long[n];
    for (int i = 0; i < n; i++) {
      out[i] = low + engine.nextU32() % range;
    }
    return out;
  }

  private static int numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape: " + d);
      }
      n = Math.multiplyExact(n, d);
    }
    if (n > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensor of " + n + " elements is too large for one array");
    }
    return (int) n;
  }

  private void normalFill(float[] data) {
    int n = data.length;
    for (int i = 0; i < n; i++) {
      data[i] = nextFloatUniform();
    }
    for (int i = 0; i + 16 <= n; i += 16) {
      normalFill16(data, i);
    }
    if (n % 16 != 0) {
      // torch redraws the tail's last 16 slots rather than pairing a partial block.
      int start = n - 16;
      for (int i = 0; i < 16; i++) {
        data[start + i] = nextFloatUniform();
      }
      normalFill16(data, start);
    }
  }

  private static void normalFill16(float[] data, int offset) {
    for (int j = 0; j < 8; j++) {
      float u1 = 1f - data[offset + j]; // [0, 1) -> (0, 1] so the log is finite
      float u2 = data[offset + j + 8];
      float radius = (float) Math.sqrt(-2f * (float) Math.log(u1));
      float theta = TWO_PI * u2;
      data[offset + j] = radius * (float) Math.cos(theta);
      data[offset + j + 8] = radius * (float) Math.sin(theta);
    }
  }

  /** at::uniform_real_distribution<float>: 24 random bits of one 32-bit draw. */
  private float nextFloatUniform() {
    return (float) ((engine.nextU32() & 0xffffff) * FLOAT_UNIT);
  }

  /** at::uniform_real_distribution<double>: 53 bits of (first draw << 32 | second draw). */
  private double nextDoubleUniform() {
    long hi = engine.nextU32();
    long lo = engine.nextU32();
    return (((hi << 32) | lo) & ((1L << 53) - 1)) * DOUBLE_UNIT;
  }

  /** at::normal_distribution<double>, including the generator's cached second sample. */
  private double nextDoubleNormal() {
    if (hasCachedNormal) {
      hasCachedNormal = false;
      return cachedNormal;
    }
    double u1 = nextDoubleUniform();
    double u2 = nextDoubleUniform();
    double r = Math.sqrt(-2.0 * Math.log1p(-u2));
    double theta = 2.0 * Math.PI * u1;
    cachedNormal = r * Math.sin(theta);
    hasCachedNormal = true;
    return r * Math.cos(theta);
  }
}
