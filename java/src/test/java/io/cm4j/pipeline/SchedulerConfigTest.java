package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.Json;
import org.junit.jupiter.api.Test;

class SchedulerConfigTest {
  @Test
  void readsTheTinyPipelinesConfig() throws Exception {
    // The tiny pipeline was saved by diffusers 0.25 with the CD checkpoints' values.
    assertEquals(SchedulerConfig.DEFAULT,
        SchedulerConfig.read(GoldenFiles.file("tiny/pipeline/scheduler/scheduler_config.json")));
  }

  @Test
  void missingKeysTakeDiffusersDefaultsAndIntegersServeAsFloats() {
    SchedulerConfig c = SchedulerConfig.fromMap(Json.parseObject(
        "{\"num_train_timesteps\": 151, \"sigma_max\": 80, \"clip_denoised\": false,"
            + " \"_diffusers_version\": \"0.25.0\"}"));
    assertEquals(new SchedulerConfig(151, 0.002, 80.0, 0.5, 1.0, 7.0, false), c);
  }

  @Test
  void wrongTypesAreNamed() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SchedulerConfig.fromMap(Json.parseObject("{\"sigma_min\": \"0.002\"}")));
    assertEquals("`sigma_min` must be a number, found a string 0.002", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> SchedulerConfig.fromMap(Json.parseObject("{\"num_train_timesteps\": 40.5}")));
    assertEquals("`num_train_timesteps` must be an integer, found a number 40.5", e.getMessage());
  }

  @Test
  void anotherSchedulersConfigIsRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SchedulerConfig.fromMap(Json.parseObject("{\"_class_name\": \"DDPMScheduler\"}")));
    assertEquals("expected a CMStochasticIterativeScheduler config, found _class_name"
        + " DDPMScheduler", e.getMessage());
  }

  @Test
  void degenerateSchedulesAreRefused() {
    assertThrows(IllegalArgumentException.class,
        () -> new SchedulerConfig(1, 0.002, 80.0, 0.5, 1.0, 7.0, true));
    assertThrows(IllegalArgumentException.class,
        () -> new SchedulerConfig(40, 80.0, 0.002, 0.5, 1.0, 7.0, true));
    assertThrows(IllegalArgumentException.class,
        () -> new SchedulerConfig(40, 0.002, 80.0, 0.5, 1.0, 0.0, true));
  }

  @Test
  void valuesPastFloat32SamplingAreRefused() {
    // Each was accepted before and gave an all-NaN image, an infinite sigma or, for 2e9
    // training steps, ran out of heap.
    double[][] bad = {{40, 0.002, 1e308, 0.5, 1.0, 7.0}, {40, 0.002, 80.0, 1e308, 1.0, 7.0},
        {40, 0.002, 80.0, 0.5, 1e308, 7.0}, {40, 1e-320, 80.0, 0.5, 1.0, 7.0},
        {40, 0.002, 80.0, 0.5, 1.0, Double.POSITIVE_INFINITY}, {2e9, 0.002, 80.0, 0.5, 1.0, 7.0}};
    for (double[] b : bad) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> new SchedulerConfig((int) b[0], b[1], b[2], b[3], b[4], b[5], true));
      assertTrue(e.getMessage().startsWith("expected ")
          || e.getMessage().startsWith("`num_train_timesteps` must be in [2, 1000000]"),
          e.getMessage());
    }
    // The widest values allowed still give a finite schedule.
    CMStochasticIterativeScheduler s = new CMStochasticIterativeScheduler(
        new SchedulerConfig(40, 1e-15, 1e15, 1e15, 1e15, 7.0, true));
    s.setTimesteps(new int[] {39, 0});
    for (float sigma : s.sigmas()) {
      assertTrue(Float.isFinite(sigma) && sigma > 0, "sigma " + sigma);
    }
  }
}
