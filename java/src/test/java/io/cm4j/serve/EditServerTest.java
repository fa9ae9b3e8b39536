package io.cm4j.serve;

import static io.cm4j.serve.GenerationServerTest.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cm4j.edit.EditImages;
import io.cm4j.edit.EditRequest;
import io.cm4j.edit.EditTask;
import io.cm4j.edit.ImageEditor;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code POST /edit/{task}} on the tiny model: each edit, sent alone or among concurrent edits
 * and generations that share its UNet passes, answers bit for bit the image
 * {@link ImageEditor#edit} makes of the same PNGs alone; bad bodies get 400 naming the field.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EditServerTest {
  private static GenerationService service;
  private static GenerationServer server;
  private static ConsistencyModelPipeline reference;
  private static HttpClient client;
  private static byte[] imagePng;
  private static byte[] maskPng;

  @BeforeAll
  static void start() throws Exception {
    service = GenerationService.open(Tiny.model(), ServiceOptions.DEFAULT);
    server = GenerationServer.builder(service).address(new InetSocketAddress("127.0.0.1", 0))
        .start();
    reference = ConsistencyModelPipeline.open(Tiny.model());
    client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    imagePng = png(reference.generate(GenerationRequest.builder().classLabels(1).seed(5)
        .build()).toBufferedImages().get(0));
    int size = service.imageSize();
    BufferedImage mask = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < size; y++) {
      for (int x = size / 4; x < size / 2; x++) {
        mask.setRGB(x, y, 0xffffff); // a white band: generate there
      }
    }
    maskPng = png(mask);
  }

  @AfterAll
  static void stop() {
    server.close();
    service.close();
    reference.close();
  }

  static byte[] png(BufferedImage image) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ImageIO.write(image, "png", out);
    return out.toByteArray();
  }

  private static String base64(byte[] png) {
    return Base64.getEncoder().encodeToString(png);
  }

  private static CompletableFuture<HttpResponse<byte[]>> postAsync(String path, String body) {
    return client.sendAsync(HttpRequest.newBuilder(server.uri().resolve(path))
        .timeout(Duration.ofSeconds(60)).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofByteArray());
  }

  /** The editor's image alone for these PNGs, as 8-bit RGB. */
  static int[] alone(ConsistencyModelPipeline pipeline, EditTask task, byte[] image,
      byte[] mask, long seed, Integer steps, long label) throws Exception {
    Path dir = Files.createTempDirectory("cm4j-edit-test");
    Path imageFile = Files.write(dir.resolve("image.png"), image);
    int size = pipeline.unet().sampleSize();
    EditRequest.Builder b = EditRequest.builder(task).classLabels(label).seed(seed)
        .image(EditImages.readImages(List.of(imageFile), size, true,
            task == EditTask.SUPERRES))
        .numInferenceSteps(steps);
    if (mask != null) {
      Path maskFile = Files.write(dir.resolve("mask.png"), mask);
      b.maskKeep(EditImages.readMasks(List.of(maskFile), size, true));
    }
    byte[] uint8 = ImageEditor.of(pipeline).edit(b.build()).toUint8(); // [1, H, W, 3]
    try (var files = Files.list(dir)) {
      for (Path f : files.toList()) {
        Files.delete(f);
      }
    }
    Files.delete(dir);
    int[] out = new int[uint8.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = uint8[i] & 0xff;
    }
    return out;
  }

  static int[] pixels(byte[] png) throws Exception {
    BufferedImage image = ImageIO.read(new ByteArrayInputStream(png));
    return image.getRaster().getPixels(0, 0, image.getWidth(), image.getHeight(), (int[]) null);
  }

  private static String body(byte[] mask, long seed, Integer steps) {
    return "{\"image\": \"data:image/png;base64," + base64(imagePng) + "\""
        + (mask == null ? "" : ", \"mask\": \"" + base64(mask) + "\"")
        + ", \"class\": 1, \"seed\": " + seed + (steps == null ? "" : ", \"steps\": " + steps)
        + "}";
  }

  @Test
  void concurrentEditsAndGenerationsEachGetTheirImageAlone() throws Exception {
    record Sent(EditTask task, long seed, Integer steps, CompletableFuture<HttpResponse<byte[]>> r) {}
    List<Sent> sent = new ArrayList<>();
    List<CompletableFuture<HttpResponse<byte[]>>> generations = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      sent.add(new Sent(EditTask.INPAINT, i, i == 0 ? null : i,
          postAsync("/edit/inpaint", body(maskPng, i, i == 0 ? null : i))));
      sent.add(new Sent(EditTask.COLORIZE, 10 + i, 2, postAsync("/edit/colorize",
          body(null, 10 + i, 2))));
      sent.add(new Sent(EditTask.SUPERRES, 20 + i, 1, postAsync("/edit/superres",
          body(null, 20 + i, 1))));
      generations.add(postAsync("/generate", GenerationServerTest.json(i)));
    }
    for (Sent s : sent) {
      HttpResponse<byte[]> r = s.r().get(60, TimeUnit.SECONDS);
      assertEquals(200, r.statusCode(), () -> new String(r.body()));
      assertEquals(s.task().cliName(), r.headers().firstValue("X-Cm4j-Task").orElse(""));
      assertEquals("goldfish", r.headers().firstValue("X-Cm4j-Class-Name").orElse(""));
      int[] expected = alone(reference, s.task(), imagePng,
          s.task() == EditTask.INPAINT ? maskPng : null, s.seed(), s.steps(), 1);
      int[] got = pixels(r.body());
      for (int k = 0; k < expected.length; k++) {
        assertEquals(expected[k], got[k], s.task() + " seed " + s.seed() + ": value " + k);
      }
    }
    for (var g : generations) {
      assertEquals(200, g.get(60, TimeUnit.SECONDS).statusCode());
    }
  }

  @Test
  void interpolationsAskedOnePositionEachAreThePositionsOfOneCall() throws Exception {
    double[] alphas = {0, 0.25, 0.5, 1};
    List<CompletableFuture<HttpResponse<byte[]>>> sent = new ArrayList<>();
    for (double alpha : alphas) {
      sent.add(postAsync("/edit/interpolate",
          "{\"alpha\": " + alpha + ", \"class\": 145, \"seed\": 6}"));
    }
    byte[] uint8 = ImageEditor.of(reference).edit(EditRequest.builder(EditTask.INTERPOLATE)
        .classLabels(145, 145, 145, 145).seed(6).alphas(alphas).build()).toUint8(); // [4, H, W, 3]
    int perImage = uint8.length / alphas.length;
    for (int i = 0; i < alphas.length; i++) {
      HttpResponse<byte[]> r = sent.get(i).get(60, TimeUnit.SECONDS);
      assertEquals(200, r.statusCode(), () -> new String(r.body()));
      int[] got = pixels(r.body());
      assertEquals(perImage, got.length);
      for (int k = 0; k < perImage; k++) {
        assertEquals(uint8[i * perImage + k] & 0xff, got[k], "alpha " + alphas[i] + ": value " + k);
      }
    }
  }

  @Test
  void badEditsGet400Or404Or405Or413NamingTheProblem() throws Exception {
    assertError(400, "image: expected a PNG in base64, found nothing",
        postAsync("/edit/inpaint", "{\"seed\": 1}").get());
    assertError(400, "image: not valid base64",
        postAsync("/edit/colorize", "{\"image\": \"%%%\"}").get());
    assertError(400, "image: not a PNG file", postAsync("/edit/colorize", "{\"image\": \""
        + base64("GIF89a....".getBytes()) + "\"}").get());
    // a PNG the decoder gives up on: its exception's text stays in the log's reach, not the answer
    HttpResponse<byte[]> truncated = postAsync("/edit/colorize", "{\"image\": \""
        + base64(Arrays.copyOf(imagePng, imagePng.length - 30)) + "\"}").get();
    assertEquals("{\"error\":\"image: unreadable PNG\"}\n",
        new String(truncated.body(), StandardCharsets.UTF_8));
    assertError(400, "mask_keep", postAsync("/edit/colorize", body(maskPng, 0, null)).get());
    assertError(400, "mask_keep", postAsync("/edit/inpaint", body(null, 0, null)).get());
    assertError(400, "steps: expected 1 to", postAsync("/edit/inpaint", body(maskPng, 0, 99))
        .get());
    assertError(400, "unknown field \"strength\"",
        postAsync("/edit/sdedit", "{\"strength\": 1}").get());
    assertError(400, "alpha: expected a number in [0, 1], found nothing",
        postAsync("/edit/interpolate", "{\"seed\": 1}").get());
    assertError(400, "alpha", postAsync("/edit/interpolate", "{\"alpha\": 1.5}").get());
    assertError(400, "unknown field \"image\"",
        postAsync("/edit/interpolate", "{\"alpha\": 0.5, \"image\": \"\"}").get());
    assertError(404, "no such path", postAsync("/edit/recolor", "{}").get());
    assertError(405, "use POST", client.send(HttpRequest.newBuilder(
        server.uri().resolve("/edit/inpaint")).GET().build(),
        HttpResponse.BodyHandlers.ofByteArray()));
    try (GenerationServer small = GenerationServer.builder(service)
        .address(new InetSocketAddress("127.0.0.1", 0)).maxEditBodyBytes(1000).start()) {
      assertError(413, "request body too large: expected at most 1000 bytes",
          client.send(HttpRequest.newBuilder(small.uri().resolve("/edit/inpaint"))
              .POST(HttpRequest.BodyPublishers.ofString(body(maskPng, 0, null))).build(),
              HttpResponse.BodyHandlers.ofByteArray()));
    }
  }
}
