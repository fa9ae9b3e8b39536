package io.cm4j.edit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.FloatTensor;
import io.cm4j.Golden;
import io.cm4j.weights.SafetensorsFile;
import java.awt.image.BufferedImage;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PNG inputs: the golden PNGs give exactly the golden tensors; sizes, masks and resizing. */
class EditImagesTest {
  static List<Path> pngs(String task, String prefix, int count) {
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      files.add(Golden.file(String.format("editing/tiny_%s/%s_%02d.png", task, prefix, i)));
    }
    return files;
  }

  @Test
  void goldenImagesAndMasksReadAsTheirTensors() throws Exception {
    try (SafetensorsFile in = SafetensorsFile.open(
        Golden.file("editing/tiny_inpaint.inputs.safetensors"))) {
      FloatTensor images = EditImages.readImages(pngs("inpaint", "image", 7), 32, false, false);
      assertArrayEquals(in.floats("image"), images.toArray());
      FloatTensor masks = EditImages.readMasks(pngs("inpaint", "mask", 7), 32, false);
      assertArrayEquals(in.floats("mask_keep"), masks.toArray());
      assertArrayEquals(new long[] {7, 1, 32, 32}, masks.shape());
    }
  }

  @Test
  void lowResolutionImagesKeepTheirSizeForSuperres() throws Exception {
    FloatTensor low = EditImages.readImages(pngs("superres", "lowres", 3), 32, false, true);
    assertArrayEquals(new long[] {3, 3, 4, 4}, low.shape());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> EditImages.readImages(pngs("superres", "lowres", 1), 32, false, false));
    assertTrue(e.getMessage().contains("expected a 32x32 image"), e.getMessage());
  }

  /** The declared size is checked before decoding: a small file can declare a huge image. */
  @Test
  void refusesAHugeDeclaredSizeBeforeDecoding(@TempDir Path tmp) throws Exception {
    Path small = tmp.resolve("small.png");
    ImageIO.write(new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB), "png", small.toFile());
    byte[] bytes = Files.readAllBytes(small);
    ByteBuffer.wrap(bytes).putInt(16, 30000).putInt(20, 30000); // IHDR width, height
    Path bomb = Files.write(tmp.resolve("bomb.png"), bytes);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> EditImages.readImages(List.of(bomb), 32, true, false));
    assertTrue(e.getMessage().startsWith(bomb + ": 30000x30000 pixels is too large"),
        e.getMessage());
    ByteBuffer.wrap(bytes).putInt(16, EditImages.MAX_SIDE + 1).putInt(20, 1);
    Path strip = Files.write(tmp.resolve("strip.png"), bytes);
    e = assertThrows(IllegalArgumentException.class,
        () -> EditImages.readImages(List.of(strip), 32, true, false));
    assertTrue(e.getMessage().contains("16385x1 pixels is too large"), e.getMessage());
  }

  @Test
  void refusesNonPngAndNonBinaryMasks(@TempDir Path tmp) throws Exception {
    Path text = Files.writeString(tmp.resolve("a.png"), "not an image");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> EditImages.readImages(List.of(text), 32, false, false));
    assertTrue(e.getMessage().contains("not a PNG"), e.getMessage());
    BufferedImage gray = new BufferedImage(32, 32, BufferedImage.TYPE_BYTE_GRAY);
    gray.getRaster().setSample(3, 4, 0, 128);
    Path mask = tmp.resolve("m.png");
    ImageIO.write(gray, "png", mask.toFile());
    e = assertThrows(IllegalArgumentException.class,
        () -> EditImages.readMasks(List.of(mask), 32, false));
    assertTrue(e.getMessage().contains("binary mask") && e.getMessage().contains("x=3, y=4"),
        e.getMessage());
  }

  @Test
  void resizeCropsTheCenterAndAveragesAreas(@TempDir Path tmp) throws Exception {
    // 96x64: the centre 64x64 holds 2x2 blocks of one value each, the rest is white
    BufferedImage image = new BufferedImage(96, 64, BufferedImage.TYPE_3BYTE_BGR);
    for (int y = 0; y < 64; y++) {
      for (int x = 0; x < 96; x++) {
        int v = x < 16 || x >= 80 ? 255 : ((x - 16) / 2 * 7 + y / 2 * 3) % 256;
        image.getRaster().setPixel(x, y, new int[] {v, v, 255 - v});
      }
    }
    Path file = tmp.resolve("wide.png");
    ImageIO.write(image, "png", file.toFile());
    assertThrows(IllegalArgumentException.class,
        () -> EditImages.readImages(List.of(file), 32, false, false));
    float[] out = EditImages.readImages(List.of(file), 32, true, false).toArray();
    for (int y = 0; y < 32; y++) {
      for (int x = 0; x < 32; x++) {
        int v = (x * 7 + y * 3) % 256;
        assertEquals(v / 127.5f - 1f, out[y * 32 + x], "red at " + x + "," + y);
        assertEquals((255 - v) / 127.5f - 1f, out[2 * 1024 + y * 32 + x], "blue");
      }
    }
    // 48 -> 32: each output pixel covers 1.5 source pixels
    int[][] rows = new int[48][48];
    for (int y = 0; y < 48; y++) {
      for (int x = 0; x < 48; x++) {
        rows[y][x] = x % 3 == 0 ? 90 : 30;
      }
    }
    int[][] small = EditImages.resized(rows, 1, 32);
    assertEquals(Math.round((90 + 0.5 * 30) / 1.5), small[5][0]);
    assertEquals(Math.round((0.5 * 30 + 30) / 1.5), small[5][1]);
  }
}
