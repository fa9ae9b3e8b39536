package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** set_timesteps' argument checks, with diffusers' messages, and that a refusal changes nothing. */
class SetTimestepsValidationTest {
  private final CMStochasticIterativeScheduler scheduler =
      new CMStochasticIterativeScheduler(SchedulerConfig.DEFAULT); // 40 training steps

  private void assertRefused(String message, Executable call) {
    scheduler.setTimesteps(2);
    float[] before = scheduler.timesteps();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
    assertEquals(message, e.getMessage());
    assertArrayEquals(before, scheduler.timesteps(), "a refused call must keep the schedule");
  }

  @Test
  void neither() {
    assertRefused("Exactly one of `num_inference_steps` or `timesteps` must be supplied.",
        () -> scheduler.setTimesteps(null, null));
  }

  @Test
  void both() {
    assertRefused("Can only pass one of `num_inference_steps` or `timesteps`.",
        () -> scheduler.setTimesteps(2, new int[] {22, 0}));
  }

  @Test
  void notDescending() {
    assertRefused("`timesteps` must be in descending order.",
        () -> scheduler.setTimesteps(new int[] {0, 22}));
    assertRefused("`timesteps` must be in descending order.",
        () -> scheduler.setTimesteps(new int[] {22, 22, 0}));
  }

  @Test
  void startingAtOrAfterTrainTimesteps() {
    assertRefused("`timesteps` must start before `self.config.train_timesteps`: 40.",
        () -> scheduler.setTimesteps(new int[] {40, 0}));
  }

  @Test
  void endingBelowZero() {
    // diffusers would take them, for sigmas past sigma_max: -2^31 made an infinite one.
    assertRefused("`timesteps` must not be negative, found -1.",
        () -> scheduler.setTimesteps(new int[] {22, -1}));
    assertRefused("`timesteps` must not be negative, found -2147483648.",
        () -> scheduler.setTimesteps(new int[] {10, Integer.MIN_VALUE}));
    scheduler.setTimesteps(new int[] {22, 0});
    assertEquals(2, scheduler.timesteps().length);
  }

  @Test
  void emptyCustomTimesteps() {
    assertRefused("`timesteps` must not be empty.", () -> scheduler.setTimesteps(new int[0]));
  }

  @Test
  void moreStepsThanTrainTimesteps() {
    assertRefused("`num_inference_steps`: 41 cannot be larger than `self.config.train_timesteps`:"
            + " 40 as the unet model trained with this scheduler can only handle maximal 40"
            + " timesteps.",
        () -> scheduler.setTimesteps(41));
  }

  @Test
  void nonPositiveSteps() {
    assertRefused("`num_inference_steps` must be at least 1, found 0.",
        () -> scheduler.setTimesteps(0));
  }

  @Test
  void theLargestAllowedValuesAreAccepted() {
    scheduler.setTimesteps(40);
    assertEquals(40, scheduler.timesteps().length);
    scheduler.setTimesteps(new int[] {39});
    assertEquals(1, scheduler.timesteps().length);
  }
}
