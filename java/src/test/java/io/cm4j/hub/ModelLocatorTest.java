package io.cm4j.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** --model: a local path as is, else a Hub model ID fetched once and then used offline. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ModelLocatorTest {
  @TempDir Path tmp;

  @Test
  void anExistingPathIsUsedAsItIs() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("org/name")); // even when it reads like an ID
    HubClient unreachable = new HubClient(Map.of("HF_ENDPOINT", "http://127.0.0.1:9",
        "HF_HUB_CACHE", tmp.resolve("cache").toString()));
    assertEquals(dir, ModelLocator.resolve(dir.toString(), null, unreachable, Progress.NONE));
    Path file = Files.writeString(tmp.resolve("w.safetensors"), "x");
    assertEquals(file, ModelLocator.resolve(file.toString(), null, unreachable, Progress.NONE));
  }

  @Test
  void somethingThatIsNeitherIsABadArgument() {
    HubClient client = new HubClient(Map.of("HF_HUB_OFFLINE", "1"));
    HubException e = assertThrows(HubException.class,
        () -> ModelLocator.resolve(tmp.resolve("nope").toString(), null, client, Progress.NONE));
    assertEquals(HubException.Kind.INVALID_ARGUMENT, e.kind());
    assertTrue(e.getMessage().contains("no such file or directory"), e.getMessage());
    assertTrue(ModelLocator.looksLikeModelId(HubClient.DEFAULT_MODEL_ID));
    assertFalse(ModelLocator.looksLikeModelId("gpt2"));
    assertFalse(ModelLocator.looksLikeModelId("./a/b"));
  }

  @Test
  void aModelIdIsFetchedOnceThenUsedWithoutRequests() throws Exception {
    try (FakeHub hub = new FakeHub()) {
      hub.addRepo("fake/m", "0123456789abcdef0123456789abcdef01234567")
          .file("model_index.json", "{}")
          .file("scheduler/scheduler_config.json", "{}")
          .file("unet/config.json", "{}")
          .lfsFile("unet/diffusion_pytorch_model.safetensors", FakeHub.randomBytes(1000, 3));
      HubClient client = new HubClient(hub.env(tmp), 10);
      Path dir = ModelLocator.resolve("fake/m", null, client, Progress.NONE);
      assertTrue(Files.isRegularFile(dir.resolve("unet/diffusion_pytorch_model.safetensors")));
      hub.clearRequests();
      assertEquals(dir, ModelLocator.resolve("fake/m", "main", client, Progress.NONE));
      assertTrue(hub.requests().isEmpty());

      HubException e = assertThrows(HubException.class,
          () -> ModelLocator.resolve("fake/typo", null, client, Progress.NONE));
      assertTrue(e.isBadInput());
      assertTrue(e.getMessage().contains("HF_TOKEN")
          && e.getMessage().contains("no local file or directory 'fake/typo'"), e.getMessage());
    }
  }
}
