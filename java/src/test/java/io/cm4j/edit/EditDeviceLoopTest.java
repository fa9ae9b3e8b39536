package io.cm4j.edit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cm4j.Device;
import io.cm4j.Golden;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.SchedulerConfig;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The editing loop on the UNet's device ({@link ImageEditor#runOnDevice}, cm4j_unet_edit)
 * against the Java step-by-step loop around {@link UNet#forward}, bit for bit, on the CPU
 * backend for every golden case; and a batch of several edits against each alone.
 */
class EditDeviceLoopTest {
  private static UNet unet;
  private static ImageEditor editor;

  @BeforeAll
  static void open() throws Exception {
    Path model = Golden.file("tiny/pipeline");
    unet = UNet.open(model, Device.CPU, Precision.FP32);
    SchedulerConfig config = ConsistencyModelPipeline.readSchedulerConfig(model);
    editor = new ImageEditor(unet, config);
  }

  @AfterAll
  static void close() {
    unet.close();
  }

  private static float[] stepByStep(EditRequest r) throws Exception {
    Editing e = editor.start(r);
    editor.runStepByStep(List.of(e));
    return e.sample();
  }

  @ParameterizedTest
  @EnumSource(EditTask.class)
  void deviceLoopEqualsTheJavaLoopBitForBit(EditTask task) throws Exception {
    EditRequest r = EditGoldenTest.request(task);
    Editing device = editor.start(r);
    editor.runOnDevice(List.of(device));
    assertArrayEquals(stepByStep(r), device.sample(), task.cliName());
    EditGoldenTest.assertGolden("device fp32", task, device.result());
  }

  @Test
  void aBatchOfEditsEqualsEachAlone() throws Exception {
    EditRequest golden = EditGoldenTest.request(EditTask.INPAINT);
    EditRequest other = EditRequest.builder(EditTask.INPAINT).image(golden.image())
        .maskKeep(golden.maskKeep()).classLabels(golden.classLabels()).seed(77)
        .timesteps(golden.timesteps()).build();
    List<EditResult> together = editor.edit(List.of(golden, other));
    assertEquals(2, together.size());
    assertArrayEquals(editor.edit(golden).out().toArray(), together.get(0).out().toArray());
    Editing alone = editor.start(other);
    editor.runStepByStep(List.of(alone));
    assertArrayEquals(alone.result().out().toArray(), together.get(1).out().toArray());
  }

  @Test
  void superresFromALowResolutionImageOnTheDevice() throws Exception {
    EditRequest golden = EditGoldenTest.request(EditTask.SUPERRES);
    float[] image = golden.image().toArray();
    float[] low = Replacement.patchMeans(image, 9, 32, 8); // [3, 3, 4, 4]
    EditRequest fromLow = EditRequest.builder(EditTask.SUPERRES)
        .image(io.cm4j.FloatTensor.of(new long[] {3, 3, 4, 4}, low))
        .classLabels(golden.classLabels()).seed(golden.seed()).timesteps(golden.timesteps())
        .build();
    // the same reference as from the full image, so the same output
    assertArrayEquals(editor.edit(golden).out().toArray(), editor.edit(fromLow).out().toArray());
  }
}
