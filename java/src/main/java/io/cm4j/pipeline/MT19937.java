package io.cm4j.pipeline;

/**
 * The 32-bit Mersenne Twister exactly as PyTorch's CPU generator runs it
 * (ATen's {@code mt19937}): standard {@code init_genrand} seeding from the low 32 bits of the seed,
 * standard twist and tempering. Not thread-safe; {@link TorchGenerator} owns one.
 */
final class MT19937 {
  private static final int N = 624;
  private static final int M = 397;
  private static final int MATRIX_A = 0x9908b0df;
  private static final int UPPER_MASK = 0x80000000;
  private static final int LOWER_MASK = 0x7fffffff;

  private final int[] state = new int[N];
  private int next = N;

  MT19937(long seed) {
    // torch.manual_seed keeps only the low 32 bits (init_with_uint32).
    state[0] = (int) seed;
    for (int j = 1; j < N; j++) {
      int prev = state[j - 1];
      state[j] = 1812433253 * (prev ^ (prev >>> 30)) + j; // wraps mod 2^32 like uint32_t
    }
  }

  /** The next tempered 32-bit output, as an unsigned value in the low bits of a long. */
  long nextU32() {
    if (next >= N) {
      twist();
    }
    int y = state[next++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y & 0xffffffffL;
  }

  private void twist() {
    for (int i = 0; i < N; i++) {
      int y = (state[i] & UPPER_MASK) | (state[(i + 1) % N] & LOWER_MASK);
      int v = state[(i + M) % N] ^ (y >>> 1);
      state[i] = (y & 1) != 0 ? v ^ MATRIX_A : v;
    }
    next = 0;
  }
}
