package io.cm4j.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.TestData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The cache root huggingface_hub would pick, and the layout helpers. */
class HubCacheTest {
  @TempDir Path tmp;

  @Test
  void theRootIsResolvedInHuggingFaceHubsOrder() {
    Map<String, String> env = new HashMap<>(Map.of(
        "HF_HUB_CACHE", "/a/hub-cache",
        "HUGGINGFACE_HUB_CACHE", "/b/legacy",
        "HF_HOME", "/c/hf-home",
        "XDG_CACHE_HOME", "/d/xdg",
        "HOME", "/e/home"));
    assertEquals(Path.of("/a/hub-cache"), HubCache.resolveRoot(env));
    env.remove("HF_HUB_CACHE");
    assertEquals(Path.of("/b/legacy"), HubCache.resolveRoot(env));
    env.remove("HUGGINGFACE_HUB_CACHE");
    assertEquals(Path.of("/c/hf-home/hub"), HubCache.resolveRoot(env));
    env.remove("HF_HOME");
    assertEquals(Path.of("/d/xdg/huggingface/hub"), HubCache.resolveRoot(env));
    env.remove("XDG_CACHE_HOME");
    assertEquals(Path.of("/e/home/.cache/huggingface/hub"), HubCache.resolveRoot(env));
  }

  @Test
  void emptyValuesAreUnsetAndTildeIsHome() {
    Map<String, String> env = Map.of("HF_HUB_CACHE", "", "HF_HOME", "~/hf", "HOME", "/e/home");
    assertEquals(Path.of("/e/home/hf/hub"), HubCache.resolveRoot(env));
    assertEquals(Path.of("/e/home/hf/hub"), new HubCache(env).root());
  }

  @Test
  void folderNamesFollowHuggingFaceHub() {
    HubCache cache = new HubCache(tmp);
    assertEquals("models--openai--diffusers-cd_imagenet64_l2",
        HubCache.repoFolderName("openai/diffusers-cd_imagenet64_l2"));
    assertEquals("models--gpt2", HubCache.repoFolderName("gpt2"));
    assertEquals(tmp.resolve(".locks/models--o--n/abc.lock"), cache.lockFile("o/n", "abc"));
    assertEquals(tmp.resolve("models--o--n/.no_exist/c/unet/x.bin"),
        cache.noExistMarker("o/n", "c", "unet/x.bin"));
    assertEquals(tmp.resolve("models--o--n/refs/refs/pr/1"), cache.refFile("o/n", "refs/pr/1"));
  }

  @Test
  void refsAreBareHashesAndReadTolerantly() throws Exception {
    HubCache cache = new HubCache(tmp);
    String commit = "0123456789abcdef0123456789abcdef01234567";
    assertEquals(Optional.empty(), cache.commitFor("o/n", "main"));
    cache.writeRef("o/n", "main", commit);
    assertEquals(commit, Files.readString(cache.refFile("o/n", "main")));
    // readable as a plain create makes it (0666 less the umask), as huggingface_hub's refs are
    assertEquals(TestData.plainCreatePermissions(tmp),
        Files.getPosixFilePermissions(cache.refFile("o/n", "main")));
    assertEquals(List.of("main"), names(cache.refFile("o/n", "main").getParent()));
    Files.writeString(cache.refFile("o/n", "v1"), commit + "\n"); // as written by hand
    assertEquals(Optional.of(commit), cache.commitFor("o/n", "v1"));
    assertEquals(Optional.of(commit), cache.commitFor("o/n", commit));
    cache.writeRef("o/n", commit, commit);
    assertTrue(Files.notExists(cache.refFile("o/n", commit)), "no ref for a commit hash");
  }

  @Test
  void snapshotLinksAreRelativeAndDanglingOnesReplaced() throws Exception {
    HubCache cache = new HubCache(tmp);
    Path blob = cache.blob("o/n", "e1");
    Files.createDirectories(blob.getParent());
    Files.writeString(blob, "data");
    Path link = cache.linkSnapshot("o/n", "c", "a/b/file.json", "e1");
    assertEquals(Path.of("../../../../blobs/e1"), Files.readSymbolicLink(link));
    assertEquals("data", Files.readString(link));

    Path dangling = cache.snapshotFile("o/n", "c", "top.json");
    Files.createSymbolicLink(dangling, Path.of("../../blobs/gone"));
    cache.linkSnapshot("o/n", "c", "top.json", "e1");
    assertEquals(Path.of("../../blobs/e1"), Files.readSymbolicLink(dangling));
    assertEquals(Optional.of(dangling), cache.cachedFile("o/n", "c", "top.json"));
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }
}
