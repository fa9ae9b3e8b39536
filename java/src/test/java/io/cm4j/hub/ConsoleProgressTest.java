package io.cm4j.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The text of the progress bar and of its one-line-per-file form. */
class ConsoleProgressTest {
  private long now;

  @Test
  void sizesAndDurations() {
    assertEquals("999 B", ConsoleProgress.bytes(999));
    assertEquals("1.00 kB", ConsoleProgress.bytes(1000));
    assertEquals("532 MB", ConsoleProgress.bytes(532_100_000));
    assertEquals("1.18 GB", ConsoleProgress.bytes(1_183_000_000));
    assertEquals("12.3 MB", ConsoleProgress.bytes(12_340_000));
    assertEquals("1.00 MB", ConsoleProgress.bytes(999_600));
    assertEquals("0:52", ConsoleProgress.duration(52));
    assertEquals("12:05", ConsoleProgress.duration(725));
    assertEquals("1:02:03", ConsoleProgress.duration(3723));
  }

  @Test
  void aBarLine() {
    assertEquals("unet/diffusion_pytorch_model.safetensors  45% 532 MB/1.18 GB 10.0 MB/s ETA 1:05",
        ConsoleProgress.line("unet/diffusion_pytorch_model.safetensors", 532_000_000L,
            1_182_000_000L, 10_000_000));
    assertTrue(ConsoleProgress.line("x", 0, 10, 0).endsWith("ETA --:--"));
    String longName = "a/".repeat(40) + "weights.bin";
    assertTrue(ConsoleProgress.line(longName, 0, 10, 0).startsWith("...a/a/"));
  }

  @Test
  void onATerminalTheBarIsRedrawnInPlaceAtMostTenTimesASecond() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    ConsoleProgress p = new ConsoleProgress(new PrintStream(bytes, true, StandardCharsets.UTF_8),
        true, () -> now);
    p.started("w.bin", 1000, 0);
    for (int i = 1; i <= 100; i++) {
      now += 10_000_000L; // 10 ms per step: 1 s in all
      p.advanced(i * 10);
    }
    p.finished("w.bin");
    String out = bytes.toString(StandardCharsets.UTF_8);
    long draws = out.chars().filter(c -> c == '\r').count();
    assertTrue(draws >= 10 && draws <= 12, out);
    assertTrue(out.endsWith("w.bin 100% 1.00 kB/1.00 kB 1.00 kB/s ETA 0:00\n"), out);
  }

  @Test
  void elsewhereThereIsOneLinePerFileAndNoBar() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    ConsoleProgress p = new ConsoleProgress(new PrintStream(bytes, true, StandardCharsets.UTF_8),
        false, () -> now);
    p.started("unet/w.bin", 2_000_000, 500_000);
    now += 2_000_000_000L;
    p.advanced(2_000_000);
    p.finished("unet/w.bin");
    p.started("other", 10, 0);
    p.aborted("other");
    String out = bytes.toString(StandardCharsets.UTF_8);
    assertFalse(out.contains("\r"));
    assertEquals("downloaded unet/w.bin: 2.00 MB in 0:02 (750 kB/s, resumed at 500 kB)\n", out);
  }
}
