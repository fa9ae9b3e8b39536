package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class TensorOpsTest {

  @Test
  void halfRoundTripsEveryHalfValueAndRoundsToNearestEven() {
    for (int bits = 0; bits < 0x10000; bits++) {
      float f = Half.toFloat((short) bits);
      if (!Float.isNaN(f)) {
        assertEquals((short) bits, TensorOps.floatToHalf(f), Integer.toHexString(bits));
      } else {
        assertTrue(Float.isNaN(Half.toFloat(TensorOps.floatToHalf(f))));
      }
    }
    // halfway between 1 and the next half (1 + 2^-10) rounds to even (1); just above rounds up
    assertEquals(0x3c00, TensorOps.floatToHalf(1f + 0x1p-11f));
    assertEquals(0x3c01, TensorOps.floatToHalf(Math.nextUp(1f + 0x1p-11f)));
    assertEquals(0x3c02, TensorOps.floatToHalf(1f + 3 * 0x1p-11f));
    assertEquals(0x7c00, TensorOps.floatToHalf(65520f)); // rounds up to infinity
    assertEquals(0x7bff, TensorOps.floatToHalf(65519f));
    assertEquals(0x0001, TensorOps.floatToHalf(0x1p-24f)); // smallest subnormal
    assertEquals(0x0000, TensorOps.floatToHalf(0x1p-25f)); // tie to even: zero
    assertEquals(0x0001, TensorOps.floatToHalf(Math.nextUp(0x1p-25f)));
    assertEquals((short) 0x8000, TensorOps.floatToHalf(-0f));
  }

  @Test
  void bfloat16RoundsToNearestEven() {
    assertEquals(0x3f80, TensorOps.floatToBf16(1f));
    assertEquals(0x3f80, TensorOps.floatToBf16(Float.intBitsToFloat(0x3f808000))); // tie: even
    assertEquals(0x3f82, TensorOps.floatToBf16(Float.intBitsToFloat(0x3f818000))); // tie: even
    assertEquals(0x3f81, TensorOps.floatToBf16(Float.intBitsToFloat(0x3f808001)));
    assertTrue(Float.isNaN(Half.bf16ToFloat(TensorOps.floatToBf16(Float.NaN))));
  }
}
