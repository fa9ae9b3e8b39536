package io.cm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.CheckpointException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** synth-v1 parameters are counted without overflow before anything is allocated. */
class SynthCheckpointTest {
  private static final Path CONFIG = Path.of("config.json");

  @Test
  void sizesAreCheckedProducts() throws CheckpointException {
    assertEquals(864, SynthCheckpoint.floatCount(CONFIG, "w", new long[] {32, 3, 3, 3}));
    assertEquals(1, SynthCheckpoint.floatCount(CONFIG, "scalar", new long[] {}));
    // 2^32 x 2^32 wraps to 0 in unchecked 64-bit arithmetic; a negative pair to a positive
    for (long[] shape : new long[][] {{1L << 32, 1L << 32}, {-4, -4}, {1L << 29, 2}}) {
      CheckpointException e = assertThrows(CheckpointException.class,
          () -> SynthCheckpoint.floatCount(CONFIG, "w", shape));
      assertTrue(e.getMessage().startsWith("config.json: parameter 'w' of shape ["), e.getMessage());
      assertTrue(e.getMessage().endsWith("] is too large to compute"), e.getMessage());
    }
  }
}
