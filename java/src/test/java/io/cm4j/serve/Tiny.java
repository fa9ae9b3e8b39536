package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cm4j.Golden;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The tiny golden model and a set of requests over it, with each request's images computed
 * alone by a pipeline of its own: what any batched run must reproduce bit for bit.
 */
final class Tiny implements AutoCloseable {
  /** Distinct (seed, class, schedule) combinations; few, so the references are cheap. */
  static final int COMBOS = 12;

  private final ConsistencyModelPipeline reference;
  private final ConcurrentMap<Integer, GenerationResult> alone = new ConcurrentHashMap<>();

  Tiny() throws Exception {
    reference = ConsistencyModelPipeline.open(model());
  }

  static Path model() {
    return Golden.file("tiny/pipeline");
  }

  /**
   * Combination {@code i % COMBOS}: mostly one step (the common case, and cheap), some two
   * or three, one with custom timesteps and one with labels drawn from the seed.
   */
  static GenerationRequest request(int i) {
    int c = Math.floorMod(i, COMBOS);
    GenerationRequest.Builder b = GenerationRequest.builder().seed(1000 + 17L * c);
    if (c != 5) {
      b.classLabels((83L * c + 7) % 1000);
    }
    if (c == 3) {
      b.numInferenceSteps(2);
    } else if (c == 7) {
      b.numInferenceSteps(3);
    } else if (c == 10) {
      b.timesteps(30, 12, 0);
    } else {
      b.numInferenceSteps(1);
    }
    return b.build();
  }

  /** All combinations, for tests that want each once. */
  static List<GenerationRequest> all() {
    List<GenerationRequest> out = new ArrayList<>();
    for (int i = 0; i < COMBOS; i++) {
      out.add(request(i));
    }
    return out;
  }

  /** The result of combination {@code i} run alone (computed once). */
  GenerationResult alone(int i) {
    return alone.computeIfAbsent(Math.floorMod(i, COMBOS), c -> {
      try {
        return reference.generate(request(c));
      } catch (Exception e) {
        throw new AssertionError("reference run of combination " + c + " failed", e);
      }
    });
  }

  /** Asserts {@code actual} is bit for bit the result of combination {@code i} alone. */
  void assertSameAsAlone(int i, GenerationResult actual) {
    GenerationResult expected = alone(i);
    assertArrayEquals(expected.classLabels(), actual.classLabels(), "labels of combination " + i);
    assertArrayEquals(expected.timesteps(), actual.timesteps(), "timesteps of combination " + i);
    float[] e = expected.imageArray();
    float[] a = actual.imageArray();
    assertEquals(e.length, a.length, "image size of combination " + i);
    for (int k = 0; k < e.length; k++) {
      if (Float.floatToRawIntBits(e[k]) != Float.floatToRawIntBits(a[k])) {
        throw new AssertionError("combination " + i + " (" + request(i) + "): image value " + k
            + " is " + a[k] + " batched, " + e[k] + " alone");
      }
    }
  }

  /** A pipeline over the same model, for tests that need one of their own. */
  ConsistencyModelPipeline reference() {
    return reference;
  }

  @Override
  public void close() {
    reference.close();
  }
}
