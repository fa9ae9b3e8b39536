package io.cm4j.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.TestData;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

class ImageOutputTest {
  @TempDir Path dir;

  @Test
  void denormalizeScalesClampsAndPermutes() {
    // [1, 3, 1, 2]: channel planes r = {-1, 3}, g = {0, 1}, b = {0.5, -7}.
    float[] nchw = {-1f, 3f, 0f, 1f, 0.5f, -7f};
    assertArrayEquals(new float[] {0f, 0.5f, 0.75f, 1f, 1f, 0f},
        ImageOutput.denormalizeToNhwc(nchw, 1, 3, 1, 2));
    assertThrows(IllegalArgumentException.class,
        () -> ImageOutput.denormalizeToNhwc(nchw, 1, 3, 2, 2));
  }

  @Test
  void uint8RoundsHalfToEvenLikeNumpy() {
    float[] halves = new float[6];
    for (int k = 0; k < halves.length; k++) {
      halves[k] = (k + 0.5f) / 255f; // times 255f gives exactly k + 0.5
    }
    assertArrayEquals(new byte[] {0, 2, 2, 4, 4, 6}, ImageOutput.toUint8(halves));
    assertArrayEquals(new byte[] {0, (byte) 255}, ImageOutput.toUint8(new float[] {0f, 1f}));
    assertThrows(IllegalArgumentException.class,
        () -> ImageOutput.toUint8(new float[] {Float.NaN}));
  }

  /** diffusers' own {@code image} to {@code image_uint8} conversion, recorded in every case. */
  @TestFactory
  List<DynamicTest> uint8MatchesThePipelineCases() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    try (DirectoryStream<Path> files =
        Files.newDirectoryStream(GoldenFiles.file("tiny/pipeline_cases"), "*.safetensors")) {
      for (Path file : files) {
        tests.add(DynamicTest.dynamicTest(file.getFileName().toString(), () -> {
          try (SafetensorsFile golden = SafetensorsFile.open(file)) {
            byte[] ours = ImageOutput.toUint8(golden.floats("image"));
            long[] expected = golden.longs("image_uint8");
            assertEquals(expected.length, ours.length);
            for (int i = 0; i < ours.length; i++) {
              assertEquals(expected[i], ours[i] & 0xff, "pixel " + i);
            }
          }
        }));
      }
    }
    assertFalse(tests.isEmpty(), "no pipeline cases found");
    return tests;
  }

  @Test
  void pngRoundTripsAndLeavesNoTemporaryFile() throws IOException {
    // [2, 1, 2, 3]: two 2x1 RGB images.
    byte[] pixels = {10, 20, 30, (byte) 200, (byte) 210, (byte) 220, 1, 2, 3, 4, 5, 6};
    List<BufferedImage> images = ImageOutput.toBufferedImages(pixels, 2, 1, 2, 3);
    assertEquals(2, images.size());
    Path png = dir.resolve("out.png");
    Files.writeString(png, "an older file to replace");
    ImageOutput.writePng(images.get(0), png);
    BufferedImage back = ImageIO.read(png.toFile());
    assertEquals(0x0a141e, back.getRGB(0, 0) & 0xffffff);
    assertEquals(0xc8d2dc, back.getRGB(1, 0) & 0xffffff);
    assertEquals(0x040506, images.get(1).getRGB(1, 0) & 0xffffff);
    try (Stream<Path> left = Files.list(dir)) {
      assertEquals(List.of(png), left.toList());
    }
  }

  @Test
  void grayImages() {
    BufferedImage gray = ImageOutput.toBufferedImages(new byte[] {0, (byte) 255}, 1, 1, 2, 1)
        .get(0);
    assertEquals(BufferedImage.TYPE_BYTE_GRAY, gray.getType());
    assertEquals(255, gray.getRaster().getSample(1, 0, 0));
  }

  @Test
  void unwritableDestinationFailsWithoutLeavingFiles() throws IOException {
    BufferedImage image = ImageOutput.toBufferedImages(new byte[3], 1, 1, 1, 3).get(0);
    assertThrows(IOException.class,
        () -> ImageOutput.writePng(image, dir.resolve("missing/out.png")));
    Path blocker = Files.createDirectory(dir.resolve("taken.png")); // a directory in the way
    Files.writeString(blocker.resolve("keep"), "x");
    assertThrows(IOException.class, () -> ImageOutput.writePng(image, blocker));
    try (Stream<Path> left = Files.list(dir)) {
      assertEquals(List.of(blocker), left.toList());
    }
  }

  @Test
  void pngsAreWrittenThroughLinksWithAPlainCreatesPermissions() throws Exception {
    BufferedImage image = ImageOutput.toBufferedImages(new byte[3], 1, 1, 1, 3).get(0);
    Set<PosixFilePermission> plain = TestData.plainCreatePermissions(dir);
    Path fresh = dir.resolve("fresh.png");
    ImageOutput.writePng(image, fresh);
    assertEquals(plain, Files.getPosixFilePermissions(fresh));
    Path link = Files.createSymbolicLink(dir.resolve("link.png"), Path.of("fresh.png"));
    Set<PosixFilePermission> groupRead = PosixFilePermissions.fromString("rw-r-----");
    Files.setPosixFilePermissions(fresh, groupRead);
    ImageOutput.writePng(image, link);
    assertTrue(Files.isSymbolicLink(link), "the link stays a link");
    assertEquals(groupRead, Files.getPosixFilePermissions(fresh), "the replaced file's");
    Path fifo = TestData.mkfifo(dir.resolve("fifo.png"));
    IOException e = assertThrows(IOException.class, () -> ImageOutput.writePng(image, fifo));
    assertTrue(e.getMessage().endsWith(fifo + ": not a regular file"), e.getMessage());
    assertTrue(TestData.isOther(fifo), "the FIFO stays a FIFO");
    try (Stream<Path> left = Files.list(dir)) {
      assertEquals(List.of("fifo.png", "fresh.png", "link.png"),
          left.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }
}
