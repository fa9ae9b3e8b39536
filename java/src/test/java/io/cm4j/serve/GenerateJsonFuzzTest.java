package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.pipeline.GenerationRequest;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzing of the {@code POST /generate} body parser: random bytes, random JSON-ish text and
 * mutations of valid bodies. Every input must give a request within the limits or a
 * {@link BadRequestException} with a message, quickly: no other exception, no hang. Bounded by
 * count (30,000 inputs) and time (20 s); the seed is fixed so failures replay.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class GenerateJsonFuzzTest {
  private static final int CLASSES = 1000;
  private static final int TRAIN_STEPS = 40;
  private static final int MAX_STEPS = 40;
  private static final String[] VALID = {
      "{\"class\": 145, \"seed\": 12, \"steps\": 2}",
      "{\"seed\": 0}",
      "{}",
      "{\"class\": 0, \"timesteps\": [39, 22, 0]}",
      "{\"class\": 999, \"seed\": -9223372036854775808, \"steps\": 40}",
      " {\n\t\"steps\" : 1 , \"class\":7 } ",
  };
  /** Pieces a mutation may splice in: tokens that stress the parser and the range checks. */
  private static final String[] TOKENS = {
      "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "0", "-", "-0", "1e999",
      "1.5", "9223372036854775808", "-1", "1000", "40", "null", "true", "NaN", "Infinity",
      "\"class\"", "\"seed\"", "\"steps\"", "\"timesteps\"", "[1,0]", "[0,1]", "[]",
      "\u0000", "\u00e9", "\ud83d\ude00", "[".repeat(70), "{\"a\":".repeat(70), " ",
  };

  static byte[] mutate(byte[] valid, Random random) {
    byte[] b = valid.clone();
    int edits = 1 + random.nextInt(2);
    for (int e = 0; e < edits; e++) {
      int at = b.length == 0 ? 0 : random.nextInt(b.length + 1);
      switch (random.nextInt(6)) {
        case 0: // flip a bit
          if (b.length > 0) {
            b[Math.min(at, b.length - 1)] ^= (byte) (1 << random.nextInt(8));
          }
          break;
        case 1: // delete a run
          if (b.length > 0) {
            int from = Math.min(at, b.length - 1);
            int to = Math.min(b.length, from + 1 + random.nextInt(4));
            b = concat(Arrays.copyOfRange(b, 0, from), Arrays.copyOfRange(b, to, b.length));
          }
          break;
        case 2: // truncate
          b = Arrays.copyOf(b, at);
          break;
        case 3: // a random byte
          b = concat(concat(Arrays.copyOfRange(b, 0, at), new byte[] {(byte) random.nextInt()}),
              Arrays.copyOfRange(b, at, b.length));
          break;
        default: // a token
          byte[] token = TOKENS[random.nextInt(TOKENS.length)].getBytes(StandardCharsets.UTF_8);
          b = concat(concat(Arrays.copyOfRange(b, 0, at), token),
              Arrays.copyOfRange(b, at, b.length));
      }
    }
    return b;
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static byte[] randomText(Random random) {
    StringBuilder sb = new StringBuilder();
    int pieces = random.nextInt(12);
    for (int i = 0; i < pieces; i++) {
      sb.append(TOKENS[random.nextInt(TOKENS.length)]);
    }
    return sb.toString().getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] randomBytes(Random random) {
    byte[] b = new byte[random.nextInt(64)];
    random.nextBytes(b);
    return b;
  }

  @Test
  void everyInputGivesARequestWithinLimitsOrACleanError() {
    Random random = new Random(20240611);
    long start = System.nanoTime();
    long end = start + TimeUnit.SECONDS.toNanos(20);
    int accepted = 0;
    int refused = 0;
    long slowest = 0;
    for (int i = 0; i < 30_000 && System.nanoTime() < end; i++) {
      byte[] body;
      switch (i % 4) {
        case 0:
          body = randomBytes(random);
          break;
        case 1:
          body = randomText(random);
          break;
        default:
          body = mutate(VALID[random.nextInt(VALID.length)].getBytes(StandardCharsets.UTF_8),
              random);
      }
      long t0 = System.nanoTime();
      try {
        checkWithinLimits(GenerateJson.parse(body, CLASSES, TRAIN_STEPS, MAX_STEPS));
        accepted++;
      } catch (BadRequestException e) {
        assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), "empty message");
        refused++;
      } catch (RuntimeException | Error e) {
        throw new AssertionError("input " + i + " " + Arrays.toString(body) + " ("
            + new String(body, StandardCharsets.UTF_8) + "): " + e, e);
      }
      slowest = Math.max(slowest, System.nanoTime() - t0);
    }
    System.out.printf("request fuzz: %d inputs in %.2f s: %d accepted, %d refused with 400; "
        + "slowest %.2f ms%n", accepted + refused, (System.nanoTime() - start) / 1e9, accepted,
        refused, slowest / 1e6);
    assertTrue(accepted + refused >= 10_000, "only " + (accepted + refused) + " inputs in 20 s");
    assertTrue(accepted > 0 && refused > 0, accepted + " accepted, " + refused + " refused");
  }

  @Test
  void validBodiesGiveTheRequestTheyDescribe() throws Exception {
    GenerationRequest r = GenerateJson.parse(VALID[0].getBytes(StandardCharsets.UTF_8), CLASSES,
        TRAIN_STEPS, MAX_STEPS);
    assertEquals(12, r.seed());
    assertEquals(145, r.classLabels()[0]);
    assertEquals(2, r.numInferenceSteps());
    GenerationRequest t = GenerateJson.parse(VALID[3].getBytes(StandardCharsets.UTF_8), CLASSES,
        TRAIN_STEPS, MAX_STEPS);
    assertEquals("[39, 22, 0]", Arrays.toString(t.timesteps()));
    GenerationRequest defaults = GenerateJson.parse("{}".getBytes(StandardCharsets.UTF_8),
        CLASSES, TRAIN_STEPS, MAX_STEPS);
    assertEquals(0, defaults.seed());
    assertEquals(null, defaults.classLabels()); // drawn from the seed by the pipeline
    assertEquals(1, defaults.numInferenceSteps());
  }

  private static void checkWithinLimits(GenerationRequest r) {
    assertEquals(1, r.batchSize());
    long[] labels = r.classLabels();
    if (labels != null) {
      assertTrue(labels.length == 1 && labels[0] >= 0 && labels[0] < CLASSES, r.toString());
    }
    int[] ts = r.timesteps();
    if (ts != null) {
      assertTrue(ts.length >= 1 && ts.length <= MAX_STEPS, r.toString());
      for (int k = 0; k < ts.length; k++) {
        assertTrue(ts[k] >= 0 && ts[k] < TRAIN_STEPS && (k == 0 || ts[k] < ts[k - 1]),
            r.toString());
      }
    } else {
      assertTrue(r.numInferenceSteps() >= 1 && r.numInferenceSteps() <= MAX_STEPS,
          r.toString());
    }
  }
}
