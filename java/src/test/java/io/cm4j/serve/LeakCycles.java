package io.cm4j.serve;

import io.cm4j.FloatTensor;
import io.cm4j.UNet;
import io.cm4j.pipeline.GenerationRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The child process of {@link NativeMemoryLeakTest}: runs create/use/close cycles and prints
 * {@code sample CYCLE RSS_KB THREADS} after a garbage collection at the end of warm-up and
 * nine more times, so the parent can see whether native memory or threads pile up.
 *
 * <pre>LeakCycles unet|service MODEL CYCLES WARMUP</pre>
 */
public final class LeakCycles {
  private LeakCycles() {}

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    Path model = Path.of(args[1]);
    int cycles = Integer.parseInt(args[2]);
    int warmup = Integer.parseInt(args[3]);
    int every = Math.max(1, (cycles - warmup) / 9);
    for (int i = 1; i <= cycles; i++) {
      if (mode.equals("unet")) {
        try (UNet unet = UNet.open(model)) {
          int s = unet.sampleSize();
          unet.forward(FloatTensor.zeros(1, 3, s, s), new float[] {250f}, new long[] {i % 1000});
        }
      } else {
        try (GenerationService service = GenerationService.open(model, ServiceOptions.DEFAULT)) {
          service.submit(GenerationRequest.builder().classLabels(i % 1000).seed(i).build())
              .get(30, TimeUnit.SECONDS);
        }
      }
      if (i == warmup || (i > warmup && ((i - warmup) % every == 0 || i == cycles))) {
        sample(i);
      }
    }
  }

  /**
   * After a collection, so that memory the JVM frees only through the collector (direct
   * buffers of tensors, mappings of closed safetensors files) is not mistaken for a leak.
   */
  private static void sample(int cycle) throws Exception {
    System.gc();
    Thread.sleep(200); // cleaners run after the collection, on their own thread
    System.gc();
    Thread.sleep(100);
    long rss = -1;
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        rss = Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    System.out.println("sample " + cycle + " " + rss + " " + Thread.activeCount());
    System.out.flush();
  }
}
