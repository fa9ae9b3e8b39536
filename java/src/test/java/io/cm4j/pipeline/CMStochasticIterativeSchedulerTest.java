package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.Json;
import io.cm4j.weights.SafetensorsFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The scheduler against {@code scheduler_cases.safetensors}, recorded from diffusers' scheduler:
 * for each case the sigmas and timesteps after {@code set_timesteps}, {@code scale_model_input}
 * of a sample at the first timestep and, for one-step schedules, {@code step} with model output
 * {@code tanh(scaled) * 0.7}.
 *
 * <p>Tolerance: 1e-6 relative, i.e. at most a few float32 ulp (2^-23 = 1.2e-7). The schedule and
 * the scaling are computed the way diffusers computes them, so they should agree to the last bit
 * except where a double transcendental ({@code pow}, {@code log}) differs from numpy's by an ulp
 * next to a float32 rounding boundary; {@code step} additionally sees the difference between
 * Java's tanh and torch's float32 tanh in the test's model output.
 */
class CMStochasticIterativeSchedulerTest {
  private static final double TOLERANCE = 1e-6;

  @TestFactory
  List<DynamicTest> everyGoldenCase() throws Exception {
    List<DynamicTest> tests = new ArrayList<>();
    Path file = GoldenFiles.file("scheduler_cases.safetensors");
    try (SafetensorsFile golden = SafetensorsFile.open(file)) {
      for (String index : new TreeSet<>(golden.metadata().keySet())) {
        String metaText = golden.metadata().get(index);
        Map<String, Object> meta = Json.parseObject(metaText);
        @SuppressWarnings("unchecked")
        SchedulerConfig config = SchedulerConfig.fromMap((Map<String, Object>) meta.get("config"));
        Object steps = meta.get("set_timesteps");
        float[] sigmas = golden.floats(index + ".sigmas");
        float[] timesteps = golden.floats(index + ".timesteps");
        float[] sample = golden.floats(index + ".sample");
        float[] scaled = golden.floats(index + ".scaled");
        float[] prevSample = golden.contains(index + ".prev_sample")
            ? golden.floats(index + ".prev_sample") : null;
        tests.add(DynamicTest.dynamicTest("case " + index + " " + metaText, () -> {
          CMStochasticIterativeScheduler scheduler = new CMStochasticIterativeScheduler(config);
          if (steps instanceof List<?> list) {
            scheduler.setTimesteps(list.stream().mapToInt(t -> ((Long) t).intValue()).toArray());
          } else {
            scheduler.setTimesteps(((Long) steps).intValue());
          }
          StringBuilder report = new StringBuilder("scheduler case " + index + " " + metaText);
          check(report, "sigmas", sigmas, scheduler.sigmas());
          check(report, "timesteps", timesteps, scheduler.timesteps());
          float t0 = scheduler.timesteps()[0];
          float[] ours = scheduler.scaleModelInput(sample, t0);
          check(report, "scaled", scaled, ours);
          if (prevSample != null) {
            float[] modelOutput = new float[ours.length];
            for (int i = 0; i < ours.length; i++) {
              modelOutput[i] = (float) Math.tanh(scaled[i]) * 0.7f;
            }
            check(report, "prev_sample", prevSample, scheduler.step(modelOutput, t0, sample, null));
          }
          System.out.println(report);
        }));
      }
    }
    assertFalse(tests.isEmpty(), "no cases in scheduler_cases.safetensors");
    return tests;
  }

  private static void check(StringBuilder report, String what, float[] expected, float[] actual) {
    double rel = GoldenFiles.maxRelDiff(expected, actual);
    report.append(String.format(": %s max rel %.3g (abs %.3g)", what, rel,
        GoldenFiles.maxAbsDiff(expected, actual)));
    assertTrue(rel <= TOLERANCE, what + " max relative error " + rel + " > " + TOLERANCE);
  }
}
