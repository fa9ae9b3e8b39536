package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
}
