package io.cm4j.hub;

import static io.cm4j.cli.CliRun.assertBadInput;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Golden;
import io.cm4j.cli.CliRun;
import io.cm4j.cli.CliRun.Result;
import java.awt.image.Raster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Hub path of the CLI: {@code generate --model ID} and {@code download} against a loopback
 * Hub serving the tiny pipeline, with HF_ENDPOINT and HF_HUB_CACHE pointing at it.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CliFromHubTest {
  private static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";
  private static final String MODEL = "fake/tiny-cd";

  @TempDir Path tmp;

  /** A Hub whose {@link #MODEL} is the tiny golden pipeline, weights through the CDN. */
  private static FakeHub tinyHub() throws Exception {
    FakeHub hub = new FakeHub();
    Path dir = Golden.file("tiny/pipeline");
    hub.addRepo(MODEL, COMMIT)
        .file("model_index.json", Files.readString(dir.resolve("model_index.json")))
        .file("scheduler/scheduler_config.json",
            Files.readString(dir.resolve("scheduler/scheduler_config.json")))
        .file("unet/config.json", Files.readString(dir.resolve("unet/config.json")))
        .lfsFile("unet/diffusion_pytorch_model.safetensors",
            Files.readAllBytes(dir.resolve("unet/diffusion_pytorch_model.safetensors")));
    return hub;
  }

  @Test
  void generateWithAModelIdDownloadsOnceThenRunsOffline() throws Exception {
    Path local = tmp.resolve("local.png");
    Result r = CliRun.run(Map.of(), "generate", "--model", Golden.file("tiny/pipeline")
        .toString(), "--class", "145", "--seed", "12", "--device", "cpu", "--out",
        local.toString());
    assertEquals(0, r.exit(), r.err());
    try (FakeHub hub = tinyHub()) {
      Map<String, String> env = hub.env(tmp);
      Path png = tmp.resolve("x.png");
      r = CliRun.run(env, "generate", "--model", MODEL, "--class", "145", "--seed", "12",
          "--device", "cpu", "--out", png.toString());
      assertEquals(0, r.exit(), r.err());
      assertTrue(r.err().contains("models--fake--tiny-cd/snapshots/" + COMMIT), r.err());
      assertArrayEquals(pixels(local), pixels(png), "same image as from the local folder");
      assertEquals(1, hub.count("cdn", "GET"), "weights fetched once");

      Map<String, String> offline = new HashMap<>(env);
      offline.put("HF_HUB_OFFLINE", "1");
      hub.clearRequests();
      r = CliRun.run(offline, "generate", "--model", MODEL, "--class", "145", "--seed", "12",
          "--device", "cpu", "--out", png.toString());
      assertEquals(0, r.exit(), r.err());
      assertEquals(0, hub.requests().size(), "the cached model needs no request");
    }
  }

  @Test
  void downloadPrintsTheSnapshotFolder() throws Exception {
    try (FakeHub hub = tinyHub()) {
      Result r = CliRun.run(hub.env(tmp), "download", MODEL);
      assertEquals(0, r.exit(), r.err());
      Path snapshot = Path.of(r.out().strip());
      assertEquals(tmp.resolve("cache/models--fake--tiny-cd/snapshots/" + COMMIT), snapshot);
      assertTrue(Files.isRegularFile(snapshot.resolve("unet/diffusion_pytorch_model.safetensors")));
      assertTrue(Files.isRegularFile(snapshot.resolve("scheduler/scheduler_config.json")));

      r = CliRun.run(hub.env(tmp), "download", "fake/missing");
      assertBadInput(r, "fake/missing");
      r = CliRun.run(hub.env(tmp), "download", MODEL, "--revision", "v9");
      assertBadInput(r, "v9");
    }
  }

  @Test
  void downloadOfflineWithAnEmptyCache() {
    Result r = CliRun.run(Map.of("HF_HUB_OFFLINE", "1", "HF_HUB_CACHE",
        tmp.resolve("cache").toString(), "HF_HOME", tmp.toString()), "download");
    assertBadInput(r, HubClient.DEFAULT_MODEL_ID, "offline");
  }

  private static int[] pixels(Path png) throws Exception {
    Raster raster = ImageIO.read(png.toFile()).getRaster();
    return raster.getPixels(0, 0, raster.getWidth(), raster.getHeight(), (int[]) null);
  }
}
