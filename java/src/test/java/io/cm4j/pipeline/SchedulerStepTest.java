package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/**
 * Multistep {@code step} (no golden case records one in isolation) against Algorithm 1 evaluated
 * in double, CT schedules, step bookkeeping and {@code add_noise}.
 */
class SchedulerStepTest {
  private static final int N = 2 * 3 * 4 * 4;

  private static float[] values(long seed, float scale) {
    float[] x = new TorchGenerator(seed).randn(N);
    for (int i = 0; i < N; i++) {
      x[i] *= scale;
    }
    return x;
  }

  /** Algorithm 1 in double from the float32 sigmas: float32 rounding is the only difference. */
  private static double reference(SchedulerConfig c, float sigma, float sigmaNext, float out,
      float sample, float noise) {
    double sd = c.sigmaData();
    double shifted = sigma - c.sigmaMin();
    double cSkip = sd * sd / (shifted * shifted + sd * sd);
    double cOut = shifted * sd / Math.sqrt((double) sigma * sigma + sd * sd);
    double denoised = Math.max(-1, Math.min(1, cOut * out + cSkip * sample));
    double hat = Math.min(Math.max(sigmaNext, c.sigmaMin()), c.sigmaMax());
    return denoised + noise * c.sNoise() * Math.sqrt(hat * hat - c.sigmaMin() * c.sigmaMin());
  }

  @Test
  void multistepMatchesAlgorithm1InDouble() {
    SchedulerConfig config = SchedulerConfig.DEFAULT;
    CMStochasticIterativeScheduler scheduler = new CMStochasticIterativeScheduler(config);
    scheduler.setTimesteps(3);
    assertTrue(scheduler.drawsNoise());
    float[] sigmas = scheduler.sigmas();
    float[] sample = values(1, 80f);
    float[] noise = values(2, 1f);
    // Not the last step: the last one's noise scale is float32 cancellation, checked below.
    for (int k = 0; k < 2; k++) {
      float t = scheduler.timesteps()[k];
      float[] modelOutput = values(10 + k, 1.5f);
      float[] prev = scheduler.step(modelOutput, t, sample, noise);
      double worst = 0;
      for (int i = 0; i < N; i++) {
        double ref =
            reference(config, sigmas[k], sigmas[k + 1], modelOutput[i], sample[i], noise[i]);
        worst = Math.max(worst, Math.abs(prev[i] - ref) / Math.max(1, Math.abs(ref)));
      }
      assertTrue(worst < 1e-6, "step " + k + ": error " + worst + " exceeds a few float32 ulp");
      sample = prev;
    }
    assertEquals(OptionalInt.of(2), scheduler.stepIndex());
  }

  @Test
  void lastStepAddsNoiseScaledByFloat32Cancellation() {
    // diffusers adds noise * sqrt(f32(0.002)^2 - f32(0.002^2)) = sqrt(2^-41) at the last step.
    CMStochasticIterativeScheduler scheduler =
        new CMStochasticIterativeScheduler(SchedulerConfig.DEFAULT);
    scheduler.setTimesteps(new int[] {22, 0});
    float[] zero = new float[N];
    float[] noise = values(3, 1f);
    float[] ts = scheduler.timesteps();
    scheduler.step(zero, ts[0], zero, noise);
    float[] last = scheduler.step(zero, ts[1], zero, noise); // denoised = 0
    float scale = 6.7434956e-07f;
    assertEquals(scale, (float) Math.sqrt(0x1p-41));
    for (int i = 0; i < N; i++) {
      assertEquals(noise[i] * scale, last[i]);
    }
    assertThrows(IllegalStateException.class, () -> scheduler.step(zero, ts[1], zero, noise));
  }

  @Test
  void oneStepIgnoresNoiseAndMultistepRequiresIt() {
    CMStochasticIterativeScheduler scheduler =
        new CMStochasticIterativeScheduler(SchedulerConfig.DEFAULT);
    scheduler.setTimesteps(1);
    assertFalse(scheduler.drawsNoise());
    float[] sample = values(4, 80f);
    float[] out = values(5, 1f);
    float t = scheduler.timesteps()[0];
    float[] withoutNoise = scheduler.step(out, t, sample, null);
    scheduler.setTimesteps(1);
    assertArrayEquals(withoutNoise, scheduler.step(out, t, sample, values(6, 1f)));

    scheduler.setTimesteps(2);
    float t0 = scheduler.timesteps()[0];
    assertThrows(IllegalArgumentException.class, () -> scheduler.step(out, t0, sample, null));
  }

  @Test
  void boundaryConditionIsTheIdentityAtSigmaMin() {
    CMStochasticIterativeScheduler scheduler =
        new CMStochasticIterativeScheduler(SchedulerConfig.DEFAULT);
    CMStochasticIterativeScheduler.BoundaryScalings s =
        scheduler.getScalingsForBoundaryCondition(0.002f);
    assertEquals(1f, s.cSkip());
    assertTrue(Math.abs(s.cOut()) < 1e-9f, "c_out " + s.cOut());
  }

  @Test
  void unknownTimestepIsRefused() {
    CMStochasticIterativeScheduler scheduler =
        new CMStochasticIterativeScheduler(SchedulerConfig.DEFAULT);
    scheduler.setTimesteps(4);
    assertThrows(IllegalArgumentException.class,
        () -> scheduler.scaleModelInput(new float[N], 12.5f));
  }

  @Test
  void consistencyTrainingSchedules() {
    for (int trainSteps : new int[] {151, 201}) {
      SchedulerConfig config = new SchedulerConfig(trainSteps, 0.002, 80.0, 0.5, 1.0, 7.0, true);
      CMStochasticIterativeScheduler scheduler = new CMStochasticIterativeScheduler(config);
      scheduler.setTimesteps(1);
      assertArrayEquals(new float[] {80f, 0.002f}, scheduler.sigmas());
      assertArrayEquals(new float[] {(float) (250 * Math.log(80))}, scheduler.timesteps());

      // Two steps: training steps [ratio, 0], so the second sigma sits at ramp ratio / (N - 1).
      scheduler.setTimesteps(2);
      int ratio = trainSteps / 2;
      double inv = 1 / 7.0;
      double max = Math.pow(80, inv);
      double ramp = ratio / (double) (trainSteps - 1);
      double mid = Math.pow(max + ramp * (Math.pow(0.002, inv) - max), 7);
      float[] sigmas = scheduler.sigmas();
      assertEquals(3, sigmas.length);
      assertEquals((float) mid, sigmas[1], Math.ulp((float) mid));
      assertEquals((float) (250 * Math.log(mid)), scheduler.timesteps()[1], 1e-4f);

      scheduler.setTimesteps(new int[] {trainSteps - 1, 0});
      assertArrayEquals(new float[] {80f, 0.002f, 0.002f}, scheduler.sigmas());
      assertEquals(trainSteps, config.numTrainTimesteps());
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> scheduler.setTimesteps(new int[] {trainSteps, 0}));
      assertEquals("`timesteps` must start before `self.config.train_timesteps`: " + trainSteps
          + ".", e.getMessage());
    }
  }

  @Test
  void addNoiseUsesEachItemsSigma() {
    CMStochasticIterativeScheduler scheduler =
        new CMStochasticIterativeScheduler(SchedulerConfig.DEFAULT);
    scheduler.setTimesteps(4);
    float[] ts = scheduler.timesteps();
    float[] sigmas = scheduler.sigmas();
    float[] original = values(7, 1f);
    float[] noise = values(8, 1f);
    float[] noisy = scheduler.addNoise(original, noise, new float[] {ts[1], ts[3]});
    for (int i = 0; i < N; i++) {
      float sigma = i < N / 2 ? sigmas[1] : sigmas[3];
      assertEquals(original[i] + noise[i] * sigma, noisy[i]);
    }
  }
}
