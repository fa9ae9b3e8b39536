package io.cm4j.edit;

import io.cm4j.Cm4jException;
import io.cm4j.EditReplacement;
import io.cm4j.FloatTensor;
import io.cm4j.SamplingSteps;
import io.cm4j.UNet;
import java.util.Arrays;
import java.util.List;

/**
 * Runs several {@link Editing}s of one task and schedule as one batch: in Java around
 * {@link UNet#forward}, or on the UNet's device with {@link UNet#edit}
 * ({@link ImageEditor#runStepByStep}, {@link ImageEditor#runOnDevice}).
 */
final class EditBatch {
  private EditBatch() {}

  /** {@link ImageEditor#runStepByStep}. */
  static void runStepByStep(UNet unet, List<Editing> editings) throws Cm4jException {
    checkBatchable(editings);
    while (!editings.get(0).isDone()) {
      Batch batch = Batch.of(editings, unet);
      float[] input = new float[batch.elements];
      int at = 0;
      for (Editing e : editings) {
        float[] x = e.modelInput();
        System.arraycopy(x, 0, input, at, x.length);
        at += x.length;
      }
      float[] t = new float[batch.images];
      Arrays.fill(t, editings.get(0).timestep());
      float[] out = unet.forward(FloatTensor.of(batch.shape, input), t, batch.labels).toArray();
      at = 0;
      for (Editing e : editings) {
        int n = e.sampleArray().length;
        e.step(Arrays.copyOfRange(out, at, at + n));
        at += n;
      }
    }
  }

  /** {@link ImageEditor#runOnDevice}. */
  static void runOnDevice(UNet unet, List<Editing> editings) throws Cm4jException {
    checkBatchable(editings);
    Editing first = editings.get(0);
    Batch batch = Batch.of(editings, unet);
    Editing.Schedule schedule = first.schedule();
    int from = first.stepIndex();
    int steps = schedule.length() - from;
    if (steps == 0) {
      return;
    }
    int rows = steps * batch.images;
    float[] t = new float[rows];
    float[] inputScale = new float[rows];
    float[] cSkip = new float[rows];
    float[] cOut = new float[rows];
    float[] noiseScale = new float[rows];
    for (int s = 0; s < steps; s++) {
      for (int b = s * batch.images; b < (s + 1) * batch.images; b++) {
        t[b] = schedule.timesteps()[from + s];
        inputScale[b] = schedule.inputScale()[from + s];
        cSkip[b] = schedule.cSkip()[from + s];
        cOut[b] = schedule.cOut()[from + s];
        noiseScale[b] = schedule.noiseScale()[from + s];
      }
    }
    float[] noise = schedule.drawsNoise()
        ? new float[SamplingSteps.noiseLength(steps, batch.elements)] : null;
    float[] sample = new float[batch.elements];
    float[] reference = first.referenceArray() == null ? null : new float[batch.elements];
    float[] mask = first.maskKeep() == null ? null : new float[batch.elements / (int) batch
        .shape[1]];
    int at = 0;
    int maskAt = 0;
    for (Editing e : editings) {
      int n = e.sampleArray().length;
      System.arraycopy(e.sampleArray(), 0, sample, at, n);
      if (reference != null) {
        System.arraycopy(e.referenceArray(), 0, reference, at, n);
      }
      if (mask != null) {
        System.arraycopy(e.maskKeep(), 0, mask, maskAt, e.maskKeep().length);
        maskAt += e.maskKeep().length;
      }
      for (int s = 0; noise != null && s < steps; s++) {
        System.arraycopy(e.drawNoise(), 0, noise, s * batch.elements + at, n);
      }
      at += n;
    }
    long[] maskShape = {batch.images, 1, batch.shape[2], batch.shape[3]};
    EditReplacement replacement = new EditReplacement(first.kind(),
        reference == null ? null : FloatTensor.of(batch.shape, reference),
        mask == null ? null : FloatTensor.of(maskShape, mask), first.patch());
    long[] noiseShape = {steps, batch.shape[0], batch.shape[1], batch.shape[2], batch.shape[3]};
    SamplingSteps values = new SamplingSteps(batch.images, t, inputScale, cSkip, cOut,
        noiseScale, 1f, true);
    float[] out = unet.edit(FloatTensor.of(batch.shape, sample), values,
        noise == null ? null : FloatTensor.of(noiseShape, noise), batch.labels, replacement)
        .toArray();
    at = 0;
    for (Editing e : editings) {
      int n = e.sampleArray().length;
      e.advance(Arrays.copyOfRange(out, at, at + n), steps);
      at += n;
    }
  }

  /** The images, labels and shape of several edits side by side. */
  private record Batch(int images, int elements, long[] shape, long[] labels) {
    static Batch of(List<Editing> editings, UNet unet) {
      long images = 0;
      for (Editing e : editings) {
        images += e.batchSize();
      }
      unet.checkBatch("requests", images);
      long[] shape = editings.get(0).shape();
      shape[0] = images;
      long[] labels = editings.get(0).classLabels() == null ? null : new long[(int) images];
      int at = 0;
      for (Editing e : editings) {
        if (labels != null) {
          System.arraycopy(e.classLabels(), 0, labels, at, e.batchSize());
        }
        at += e.batchSize();
      }
      // images <= max_batch, so every activation, the sample's too, has under 2^31 elements
      return new Batch((int) images, (int) (shape[0] * shape[1] * shape[2] * shape[3]), shape,
          labels);
    }
  }

  /** Refuses edits that cannot share a UNet pass: another task, step or schedule. */
  static void checkBatchable(List<Editing> editings) {
    Editing first = editings.get(0);
    for (int i = 1; i < editings.size(); i++) {
      Editing e = editings.get(i);
      if (e.task() != first.task() || e.stepIndex() != first.stepIndex()
          || e.patch() != first.patch() || !e.schedule().equalValues(first.schedule())) {
        throw new IllegalArgumentException("requests[" + i + "]: a batch needs one task and "
            + "schedule: expected " + first.task().cliName() + " at timesteps "
            + Arrays.toString(first.timesteps()) + ", found " + e.task().cliName() + " at "
            + Arrays.toString(e.timesteps()));
      }
    }
  }
}
