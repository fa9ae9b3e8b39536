package io.cm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cm4j.internal.Cm4jNative;
import io.cm4j.internal.NativeLibrary;
import io.cm4j.weights.CheckpointException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Lifecycle, input validation and error reporting of {@link UNet}, on the tiny model. */
class UNetTest {
  private static UNet tiny;

  @TempDir Path dir;

  @BeforeAll
  static void open() throws Exception {
    tiny = UNet.open(Golden.file("tiny/pipeline/unet/diffusion_pytorch_model.safetensors"));
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  @Test
  void exposesConfigFacts() {
    assertEquals(3, tiny.inChannels());
    assertEquals(3, tiny.outChannels());
    assertEquals(32, tiny.sampleSize());
    assertEquals(1000, tiny.numClassEmbeds());
    assertEquals(Device.CPU, tiny.device());
    assertEquals(Precision.FP32, tiny.precision());
    assertTrue(tiny.weightBytes() > 0);
  }

  @Test
  void closeTwiceIsHarmlessAndUseAfterCloseThrows() throws Exception {
    UNet unet = UNet.open(Golden.file("tiny/pipeline"));
    unet.forward(FloatTensor.zeros(1, 3, 32, 32), new float[] {0f}, new long[] {1});
    unet.close();
    unet.close();
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> unet.forward(FloatTensor.zeros(1, 3, 32, 32), new float[] {0f}, new long[] {1}));
    assertEquals("UNet is closed", e.getMessage());
    assertThrows(IllegalStateException.class, unet::taps);
    assertThrows(IllegalStateException.class, () -> unet.setCaptureTaps(true));
    assertThrows(IllegalStateException.class, unet::weightBytes);
  }

  @Test
  void closeFreesTheEngineAtOnce() throws Exception {
    UNet unet = UNet.open(Golden.file("tiny/pipeline"));
    NativeEngine engine = unet.engine();
    assertFalse(engine.freed());
    unet.close();
    assertTrue(engine.freed());
  }

  @Test
  void anUnclosedUNetIsFreedOnceUnreachable() throws Exception {
    // The engine does not reach the UNet, so holding it keeps nothing alive but itself.
    NativeEngine engine = forgottenUNet();
    for (int i = 0; i < 200 && !engine.freed(); i++) {
      System.gc();
      Thread.sleep(25);
    }
    assertTrue(engine.freed(), "the Cleaner did not free an unreachable UNet's engine in 5 s");
  }

  private static NativeEngine forgottenUNet() throws Exception {
    UNet unet = UNet.open(Golden.file("tiny/pipeline"));
    unet.forward(FloatTensor.zeros(1, 3, 32, 32), new float[] {0f}, new long[] {1});
    return unet.engine();
  }

  @Test
  void opProfileTimesEveryOpWithoutChangingTheOutput() throws Exception {
    try (UNet unet = UNet.open(Golden.file("tiny/pipeline"))) {
      FloatTensor sample = FloatTensor.zeros(2, 3, 32, 32);
      for (int i = 0; i < sample.numel(); i++) {
        sample.buffer().put(i, (float) Math.cos(i));
      }
      float[] t = {5f, 700f};
      long[] labels = {7, 900};
      float[] plain = unet.forward(sample, t, labels).toArray();
      assertEquals(List.of(), unet.opProfile());

      unet.setProfileOps(true);
      float[] profiled = unet.forward(sample, t, labels).toArray();
      List<OpTime> ops = unet.opProfile();
      assertTrue(java.util.Arrays.equals(plain, profiled), "a profiled pass changed the output");
      assertTrue(ops.size() >= 20, "only " + ops.size() + " ops");
      assertTrue(ops.stream().allMatch(op -> !op.name().isEmpty() && op.millis() >= 0), ops::toString);
      assertTrue(ops.stream().anyMatch(op -> op.name().endsWith("conv_in")), ops::toString);

      unet.setProfileOps(false);
      assertEquals(List.of(), unet.opProfile());
      unet.close();
      assertThrows(IllegalStateException.class, unet::opProfile);
      assertThrows(IllegalStateException.class, () -> unet.setProfileOps(true));
    }
  }

  @Test
  void validatesInputsBeforeTheNativeCall() {
    assertInvalid(FloatTensor.zeros(3, 32, 32), new float[1], new long[1],
        "sample: expected rank 4 [batch, channels, height, width], found rank 3 [3, 32, 32]");
    assertInvalid(FloatTensor.zeros(1, 4, 32, 32), new float[1], new long[1],
        "sample: expected 3 channels, found 4");
    assertInvalid(FloatTensor.zeros(1, 3, 32, 16), new float[1], new long[1],
        "sample: expected 32x32 (sample_size), found 32x16");
    assertInvalid(FloatTensor.zeros(2, 3, 32, 32), new float[1], new long[2],
        "timestep: expected 2 values (one per batch item), found 1");
    assertInvalid(FloatTensor.zeros(1, 3, 32, 32), new float[] {Float.NaN}, new long[1],
        "timestep[0]: expected a finite value, found NaN");
    assertInvalid(FloatTensor.zeros(1, 3, 32, 32), new float[1], null,
        "class_labels: expected 1 labels (the model is class-conditional), found none");
    assertInvalid(FloatTensor.zeros(2, 3, 32, 32), new float[2], new long[] {5, 1000},
        "class_labels[1]: expected a label in [0, 1000), found 1000");
    assertInvalid(FloatTensor.zeros(1, 3, 32, 32), new float[1], new long[] {-1},
        "class_labels[0]: expected a label in [0, 1000), found -1");
  }

  @Test
  void concurrentForwardPassesAgree() throws Exception {
    FloatTensor sample = FloatTensor.zeros(1, 3, 32, 32);
    for (int i = 0; i < sample.numel(); i++) {
      sample.buffer().put(i, (float) Math.sin(i));
    }
    float[] reference = tiny.forward(sample, new float[] {10f}, new long[] {3}).toArray();
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try {
      List<Future<float[]>> results = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        results.add(pool.submit(
            () -> tiny.forward(sample, new float[] {10f}, new long[] {3}).toArray()));
      }
      for (Future<float[]> f : results) {
        assertEquals(0.0, Golden.relativeL2(f.get(), reference), 0.0);
      }
    } finally {
      pool.shutdown();
    }
  }

  @Test
  void refusesAnUnknownBlockType() throws Exception {
    Path config = dir.resolve("config.json");
    Files.writeString(config, Files.readString(Golden.file("tiny/pipeline/unet/config.json"))
        .replaceFirst("\"AttnDownBlock2D\"|\"ResnetDownsampleBlock2D\"|\"DownBlock2D\"",
            "\"FancyDownBlock2D\""));
    Cm4jException e = assertThrows(Cm4jException.class, () -> UNet.create(config,
        WeightSource.synthV1(1), Device.CPU, Precision.FP32));
    assertEquals(ErrorCode.UNSUPPORTED, e.code());
    assertTrue(e.getMessage().startsWith(config + ": "), e.getMessage());
    assertTrue(e.getMessage().contains("FancyDownBlock2D"), e.getMessage());
  }

  @Test
  void reportsMalformedConfigJson() throws Exception {
    Path config = dir.resolve("config.json");
    Files.writeString(config, "{\"sample_size\": 32,}");
    CheckpointException e = assertThrows(CheckpointException.class, () -> UNet.create(config,
        WeightSource.synthV1(1), Device.CPU, Precision.FP32));
    assertTrue(e.getMessage().contains("invalid JSON at offset 19"), e.getMessage());
  }

  @Test
  void refusesHalfPrecisionOnTheCpu() {
    Cm4jException e = assertThrows(Cm4jException.class, () -> UNet.open(
        Golden.file("tiny/pipeline"), Device.CPU, Precision.FP16));
    assertEquals(ErrorCode.UNSUPPORTED, e.code());
    assertEquals("dtype fp16 is not supported on the cpu device: expected fp32 or bf16",
        e.getMessage());
  }

  @Test
  void refusesCudaWhereThereIsNone() throws Exception {
    NativeLibrary.load();
    assumeTrue(Cm4jNative.cm4j_cuda_device_count() == 0, "a CUDA device is present");
    Cm4jException e = assertThrows(Cm4jException.class, () -> UNet.open(
        Golden.file("tiny/pipeline"), Device.parse("cuda"), Precision.FP32));
    assertEquals(ErrorCode.DEVICE, e.code());
    assertTrue(e.getMessage().startsWith("CUDA unavailable: "), e.getMessage());
    assertTrue(e.getMessage().length() > "CUDA unavailable: ".length() + 5, e.getMessage());
  }

  @Test
  void reportsMissingModelFiles() {
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> UNet.open(dir.resolve("nothing")));
    assertTrue(e.getMessage().endsWith("nothing: no such file or folder"), e.getMessage());
    e = assertThrows(CheckpointException.class, () -> UNet.open(dir));
    assertTrue(e.getMessage().contains("not a diffusers model folder"), e.getMessage());
  }

  private static void assertInvalid(FloatTensor sample, float[] t, long[] labels,
      String message) {
    Cm4jException e = assertThrows(Cm4jException.class, () -> tiny.forward(sample, t, labels));
    assertEquals(ErrorCode.INVALID_ARGUMENT, e.code());
    assertEquals(message, e.getMessage());
  }
}
