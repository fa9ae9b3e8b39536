package io.cm4j.hub;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@link HubClient} against {@link FakeHub} on loopback: layout, caching, resume, errors. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HubClientTest {
  static final String REPO = "fake/cd-tiny";
  static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";
  static final String BIN_REPO = "fake/bin-only";
  static final String BIN_COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
  static final String ST = "unet/diffusion_pytorch_model.safetensors";
  static final String BIN = "unet/diffusion_pytorch_model.bin";
  static final byte[] WEIGHTS = FakeHub.randomBytes(300_000, 1);
  static final byte[] BIN_WEIGHTS = FakeHub.randomBytes(200_000, 2);

  @TempDir Path tmp;
  FakeHub hub;
  Path cache;

  @BeforeEach
  void start() throws IOException {
    hub = new FakeHub();
    cache = tmp.resolve("cache");
    hub.addRepo(REPO, COMMIT)
        .file("model_index.json", "{\"_class_name\": \"ConsistencyModelPipeline\"}")
        .file("scheduler/scheduler_config.json", "{\"num_train_timesteps\": 40}")
        .file("unet/config.json", "{\"sample_size\": 64}")
        .lfsFile(ST, WEIGHTS)
        .lfsFile(BIN, BIN_WEIGHTS);
    hub.addRepo(BIN_REPO, BIN_COMMIT)
        .file("model_index.json", "{}")
        .file("scheduler/scheduler_config.json", "{}")
        .file("unet/config.json", "{}")
        .lfsFile(BIN, BIN_WEIGHTS);
  }

  @AfterEach
  void stop() {
    hub.close();
  }

  private HubClient client(String... extraEnv) {
    Map<String, String> env = hub.env(tmp);
    for (int i = 0; i < extraEnv.length; i += 2) {
      env.put(extraEnv[i], extraEnv[i + 1]);
    }
    return new HubClient(env, 10);
  }

  private Path repoDir(String repo) {
    return cache.resolve(HubCache.repoFolderName(repo));
  }

  private List<Path> filesUnder(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(p -> !Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS))
          .collect(Collectors.toList());
    }
  }

  private List<Path> incompleteFiles() throws IOException {
    return filesUnder(cache).stream()
        .filter(p -> p.getFileName().toString().endsWith(".incomplete"))
        .collect(Collectors.toList());
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void firstDownloadPopulatesTheHuggingFaceLayout() throws Exception {
    RecordingProgress progress = new RecordingProgress();
    Path snapshot = client().downloadModel(REPO, "main", progress);

    Path repo = repoDir(REPO);
    assertEquals(repo.resolve("snapshots").resolve(COMMIT), snapshot);
    assertEquals(COMMIT, Files.readString(repo.resolve("refs/main"))); // bare hash, no newline

    String indexEtag = FakeHub.gitSha1(utf8("{\"_class_name\": \"ConsistencyModelPipeline\"}"));
    String weightsEtag = FakeHub.sha256(WEIGHTS);
    assertLink(snapshot.resolve("model_index.json"), "../../blobs/" + indexEtag);
    assertLink(snapshot.resolve(ST), "../../../blobs/" + weightsEtag);
    assertLink(snapshot.resolve("scheduler/scheduler_config.json"), "../../../blobs/"
        + FakeHub.gitSha1(utf8("{\"num_train_timesteps\": 40}")));
    assertLink(snapshot.resolve("unet/config.json"), "../../../blobs/"
        + FakeHub.gitSha1(utf8("{\"sample_size\": 64}")));
    assertArrayEquals(WEIGHTS, Files.readAllBytes(snapshot.resolve(ST)));
    assertFalse(Files.exists(snapshot.resolve(BIN)), "the .bin is not fetched when safetensors exists");

    try (Stream<Path> blobs = Files.list(repo.resolve("blobs"))) {
      assertEquals(4, blobs.count(), "one blob per downloaded file, nothing else");
    }
    assertTrue(incompleteFiles().isEmpty());
    assertTrue(Files.exists(cache.resolve(".locks/models--fake--cd-tiny/" + weightsEtag + ".lock")));

    assertEquals(4, hub.count("hub", "HEAD"));
    assertEquals(3, hub.count("hub", "GET"), "small files straight from the Hub");
    assertEquals(1, hub.count("cdn", "GET"), "the LFS file from the CDN");
    assertTrue(progress.events.contains("started " + ST + " 300000 0"));
    assertTrue(progress.events.contains("finished " + ST));
    assertEquals(300_000, progress.lastAdvance);
  }

  private static void assertLink(Path link, String target) throws IOException {
    assertTrue(Files.isSymbolicLink(link), link + " is a symlink");
    assertEquals(Path.of(target), Files.readSymbolicLink(link));
    assertTrue(Files.isRegularFile(link), link + " resolves to its blob");
  }

  @Test
  void aSecondCallDownloadsNothing() throws Exception {
    HubClient client = client();
    Path first = client.downloadModel(REPO, null, Progress.NONE);
    hub.clearRequests();
    RecordingProgress progress = new RecordingProgress();
    assertEquals(first, client.downloadModel(REPO, "main", progress));
    assertEquals(0, hub.count("hub", "GET") + hub.count("cdn", "GET"));
    assertEquals(1, hub.count("hub", "HEAD"), "only model_index.json is checked for a new commit");
    assertTrue(progress.events.isEmpty());
  }

  @Test
  void offlineModeUsesAPopulatedCacheWithoutRequests() throws Exception {
    Path online = client().downloadModel(REPO, "main", Progress.NONE);
    hub.clearRequests();
    HubClient offline = client("HF_HUB_OFFLINE", "1");
    assertTrue(offline.isOffline());
    assertEquals(online, offline.downloadModel(REPO, "main", Progress.NONE));
    assertEquals(online.resolve("unet/config.json"),
        offline.resolveFile(REPO, "main", "unet/config.json"));
    assertEquals(online.resolve(ST), offline.resolveFile(REPO, COMMIT, ST));
    assertTrue(hub.requests().isEmpty());
  }

  @Test
  void offlineModeWithAnEmptyCacheFailsClearlyAndWritesNothing() throws Exception {
    HubException e = assertThrows(HubException.class,
        () -> client("HF_HUB_OFFLINE", "1").downloadModel(REPO, "main", Progress.NONE));
    assertEquals(HubException.Kind.OFFLINE, e.kind());
    assertTrue(e.isBadInput());
    assertTrue(e.getMessage().contains("offline mode is on (HF_HUB_OFFLINE is set)"), e.getMessage());
    assertTrue(e.getMessage().contains(REPO) && e.getMessage().contains("model_index.json"),
        e.getMessage());
    assertTrue(hub.requests().isEmpty());
    assertEquals(List.of(), filesUnder(tmp));
  }

  @Test
  void offlineModeNamesTheMissingFileOfAPartlyCachedModel() throws Exception {
    client().resolveFile(REPO, "main", "model_index.json");
    HubException e = assertThrows(HubException.class,
        () -> client("HF_HUB_OFFLINE", "true").downloadModel(REPO, "main", Progress.NONE));
    assertEquals(HubException.Kind.OFFLINE, e.kind());
    assertTrue(e.getMessage().contains("scheduler/scheduler_config.json")
        && e.getMessage().contains("not in the cache"), e.getMessage());
  }

  @Test
  void aDroppedConnectionIsResumedWithRange() throws Exception {
    hub.dropNextGets.set(1);
    Path file = client().resolveFile(REPO, "main", ST);
    assertArrayEquals(WEIGHTS, Files.readAllBytes(file));
    List<FakeHub.Request> gets = cdnGets();
    assertEquals(2, gets.size());
    assertNull(gets.get(0).range());
    assertEquals("bytes=" + WEIGHTS.length / 2 + "-", gets.get(1).range());
    assertTrue(incompleteFiles().isEmpty());
  }

  @Test
  void aLeftOverPartialFileIsResumed() throws Exception {
    Path blobs = Files.createDirectories(repoDir(REPO).resolve("blobs"));
    String etag = FakeHub.sha256(WEIGHTS);
    Files.write(blobs.resolve(etag + ".cm4j1234abcd.incomplete"),
        java.util.Arrays.copyOf(WEIGHTS, 1000));
    Files.write(blobs.resolve(etag + ".cm4j99999999.incomplete"), new byte[10]); // shorter: dropped
    // huggingface_hub's partial files may be in use by a Python process: left alone
    Path python = Files.write(blobs.resolve(etag + ".0a1b2c3d.incomplete"), new byte[7]);
    Path legacyPython = Files.write(blobs.resolve(etag + ".incomplete"), new byte[7]);
    Path file = client().resolveFile(REPO, "main", ST);
    assertArrayEquals(WEIGHTS, Files.readAllBytes(file));
    List<FakeHub.Request> gets = cdnGets();
    assertEquals(1, gets.size());
    assertEquals("bytes=1000-", gets.get(0).range());
    assertEquals(List.of(legacyPython, python).stream().sorted().collect(Collectors.toList()),
        incompleteFiles().stream().sorted().collect(Collectors.toList()));
  }

  @Test
  void aPlain200ToARangeRequestRestartsTheFile() throws Exception {
    hub.ignoreRange = true;
    Path blobs = Files.createDirectories(repoDir(REPO).resolve("blobs"));
    String etag = FakeHub.sha256(WEIGHTS);
    Files.write(blobs.resolve(etag + ".cm4j0badbad0.incomplete"), new byte[5000]); // junk prefix
    hub.dropNextGets.set(1); // and once more after a drop, from the middle
    Path file = client().resolveFile(REPO, "main", ST);
    assertArrayEquals(WEIGHTS, Files.readAllBytes(file));
    List<FakeHub.Request> gets = cdnGets();
    assertEquals(2, gets.size());
    assertEquals("bytes=5000-", gets.get(0).range());
    assertTrue(gets.get(1).range() != null, "the second attempt asked to resume too");
    assertTrue(incompleteFiles().isEmpty());
  }

  @Test
  void corruptBytesAreRejectedAndNotCached() throws Exception {
    hub.corruptCdn = true;
    HubException e = assertThrows(HubException.class,
        () -> client().resolveFile(REPO, "main", ST));
    assertEquals(HubException.Kind.CORRUPT, e.kind());
    assertTrue(e.getMessage().contains(ST) && e.getMessage().contains("SHA-256"), e.getMessage());
    assertTrue(incompleteFiles().isEmpty());
    assertFalse(Files.exists(repoDir(REPO).resolve("blobs").resolve(FakeHub.sha256(WEIGHTS))));
    assertFalse(Files.exists(repoDir(REPO).resolve("snapshots").resolve(COMMIT).resolve(ST),
        java.nio.file.LinkOption.NOFOLLOW_LINKS));
  }

  @Test
  void withoutSafetensorsTheBinIsUsedAndTheAbsenceRemembered() throws Exception {
    HubClient client = client();
    Path snapshot = client.downloadModel(BIN_REPO, "main", Progress.NONE);
    assertArrayEquals(BIN_WEIGHTS, Files.readAllBytes(snapshot.resolve(BIN)));
    assertFalse(Files.exists(snapshot.resolve(ST)));
    Path marker = repoDir(BIN_REPO).resolve(".no_exist").resolve(BIN_COMMIT).resolve(ST);
    assertTrue(Files.isRegularFile(marker));
    assertEquals(0, Files.size(marker));

    hub.clearRequests();
    assertEquals(snapshot, client.downloadModel(BIN_REPO, "main", Progress.NONE));
    assertEquals(1, hub.requests().size(), "the marker spares the safetensors HEAD");
    assertEquals(Optional.of(snapshot), client.cachedModel(BIN_REPO, "main"));
    assertEquals(snapshot, client("HF_HUB_OFFLINE", "1").downloadModel(BIN_REPO, null, Progress.NONE));
  }

  @Test
  void aMissingRequiredFileIsNotFound() throws Exception {
    HubException e = assertThrows(HubException.class,
        () -> client().resolveFile(REPO, "main", "unet/missing.json"));
    assertEquals(HubException.Kind.NOT_FOUND, e.kind());
    assertTrue(e.getMessage().contains(REPO) && e.getMessage().contains("unet/missing.json"),
        e.getMessage());
    assertTrue(Files.exists(repoDir(REPO).resolve(".no_exist").resolve(COMMIT)
        .resolve("unet/missing.json")));
    assertEquals(Optional.empty(),
        client().resolveOptionalFile(REPO, "main", "unet/missing.json", Progress.NONE));
  }

  @Test
  void anUnknownRevisionIsNotFound() {
    HubException e = assertThrows(HubException.class,
        () -> client().downloadModel(REPO, "v9", Progress.NONE));
    assertEquals(HubException.Kind.NOT_FOUND, e.kind());
    assertTrue(e.getMessage().contains("no revision 'v9'"), e.getMessage());
  }

  @Test
  void a401NamesHfToken() throws Exception {
    hub.repos.get(REPO).requiredToken = "s3cret";
    HubException e = assertThrows(HubException.class,
        () -> client().downloadModel(REPO, "main", Progress.NONE));
    assertEquals(HubException.Kind.ACCESS_DENIED, e.kind());
    assertTrue(e.getMessage().contains(REPO) && e.getMessage().contains("HF_TOKEN")
        && e.getMessage().contains("private or gated"), e.getMessage());

    HubException wrong = assertThrows(HubException.class,
        () -> client("HF_TOKEN", "wrong").resolveFile(REPO, "main", "model_index.json"));
    assertTrue(wrong.getMessage().contains("the token from HF_TOKEN cannot read it"),
        wrong.getMessage());

    hub.repos.get(REPO).gated = true;
    HubException gated = assertThrows(HubException.class,
        () -> client().resolveFile(REPO, "main", "model_index.json"));
    assertTrue(gated.getMessage().contains("gated") && gated.getMessage().contains("HF_TOKEN"),
        gated.getMessage());
    assertEquals(List.of(), filesUnder(cache));
  }

  @Test
  void theTokenIsSentAsBearerToTheHubOnly() throws Exception {
    hub.repos.get(REPO).requiredToken = "s3cret";
    Path snapshot = client("HF_TOKEN", "s3cret").downloadModel(REPO, "main", Progress.NONE);
    assertArrayEquals(WEIGHTS, Files.readAllBytes(snapshot.resolve(ST)));
    for (FakeHub.Request r : hub.requests()) {
      assertEquals(r.server().equals("hub") ? "Bearer s3cret" : null, r.auth(), r.toString());
    }
  }

  @Test
  void theTokenComesFromTheEnvironmentThenTheTokenFile() throws Exception {
    assertNull(client().tokenSource());
    Path tokenFile = tmp.resolve("hf-home/token");
    Files.createDirectories(tokenFile.getParent());
    Files.writeString(tokenFile, "from-file\n");
    assertEquals(tokenFile.toString(), client().tokenSource());
    assertEquals("HUGGING_FACE_HUB_TOKEN",
        client("HUGGING_FACE_HUB_TOKEN", "b").tokenSource());
    assertEquals("HF_TOKEN",
        client("HF_TOKEN", "a", "HUGGING_FACE_HUB_TOKEN", "b").tokenSource());

    hub.repos.get(REPO).requiredToken = "from-file";
    client().resolveFile(REPO, "main", "model_index.json");
    assertEquals("Bearer from-file", hub.requests().get(0).auth());
  }

  @Test
  void hfEndpointIsRespected() throws Exception {
    assertEquals(HubClient.DEFAULT_ENDPOINT, new HubClient(Map.of()).endpoint());
    assertEquals("http://mirror.test", client("HF_ENDPOINT", "http://mirror.test/").endpoint());
    HubHttp http = new HubHttp("http://mirror.test", null, null, 1000, 1000);
    assertEquals("http://mirror.test/org/name/resolve/refs%2Fpr%2F1/unet/a%20b.json",
        http.resolveUrl("org/name", "refs/pr/1", "unet/a b.json").toString());

    int deadPort;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      deadPort = s.getLocalPort();
    }
    HubException e = assertThrows(HubException.class, () -> client("HF_ENDPOINT",
        "http://127.0.0.1:" + deadPort).resolveFile(REPO, "main", "model_index.json"));
    assertEquals(HubException.Kind.NETWORK, e.kind());
    assertTrue(e.getMessage().contains("127.0.0.1:" + deadPort), e.getMessage());
    HubException bad = assertThrows(HubException.class, () -> client("HF_ENDPOINT",
        "huggingface.co").resolveFile(REPO, "main", "model_index.json"));
    assertEquals(HubException.Kind.INVALID_ARGUMENT, bad.kind());
    assertTrue(bad.getMessage().contains("HF_ENDPOINT"), bad.getMessage());
    assertTrue(hub.requests().isEmpty());
  }

  @Test
  void anUnreachableHubFallsBackToTheCache() throws Exception {
    Path snapshot = client().downloadModel(REPO, "main", Progress.NONE);
    int deadPort;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      deadPort = s.getLocalPort();
    }
    assertEquals(snapshot, client("HF_ENDPOINT", "http://127.0.0.1:" + deadPort)
        .downloadModel(REPO, "main", Progress.NONE));
  }

  @Test
  void aRenamedRepositoryIsFollowedByRelativeRedirect() throws Exception {
    hub.renamed.put("old/name", REPO);
    Path file = client().resolveFile("old/name", "main", ST);
    assertArrayEquals(WEIGHTS, Files.readAllBytes(file));
    assertTrue(file.startsWith(repoDir("old/name")), "cached under the name asked for");

    hub.absoluteRenameRedirects = true; // same host and port: still the Hub, still followed
    hub.renamed.put("older/name", REPO);
    assertArrayEquals(WEIGHTS, Files.readAllBytes(client().resolveFile("older/name", "main", ST)));
  }

  @Test
  void badNamesAreRefusedBeforeAnyRequest() {
    for (String[] bad : new String[][] {{"../x", "main", "a"}, {REPO, "../main", "a"},
        {REPO, "main", "../../etc/passwd"}, {REPO, "main", "/abs"}, {"a/b/c", "main", "a"}}) {
      HubException e = assertThrows(HubException.class,
          () -> client().resolveFile(bad[0], bad[1], bad[2]));
      assertEquals(HubException.Kind.INVALID_ARGUMENT, e.kind());
    }
    assertTrue(hub.requests().isEmpty());
  }

  @Test
  void twoThreadsDownloadingOneFileMakeOneBlob() throws Exception {
    hub.cdnDelayMillis = 300; // keep the first download running while the second arrives
    CyclicBarrier together = new CyclicBarrier(2);
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      List<Future<Path>> results = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        HubClient own = client(); // separate clients: the lock is not per instance
        results.add(threads.submit(() -> {
          together.await(5, TimeUnit.SECONDS);
          return own.resolveFile(REPO, "main", ST);
        }));
      }
      Path a = results.get(0).get(20, TimeUnit.SECONDS);
      Path b = results.get(1).get(20, TimeUnit.SECONDS);
      assertEquals(a, b);
      assertArrayEquals(WEIGHTS, Files.readAllBytes(a));
    } finally {
      threads.shutdownNow();
    }
    assertEquals(1, cdnGets().size(), "the second thread waited for the first one's blob");
    try (Stream<Path> blobs = Files.list(repoDir(REPO).resolve("blobs"))) {
      assertEquals(List.of(FakeHub.sha256(WEIGHTS)),
          blobs.map(p -> p.getFileName().toString()).collect(Collectors.toList()));
    }
  }

  private List<FakeHub.Request> cdnGets() {
    return hub.requests().stream().filter(r -> r.server().equals("cdn"))
        .collect(Collectors.toList());
  }

  /** Progress calls as strings. */
  static final class RecordingProgress implements Progress {
    final List<String> events = new ArrayList<>();
    long lastAdvance = -1;

    @Override
    public void started(String path, long total, long resumedFrom) {
      events.add("started " + path + " " + total + " " + resumedFrom);
    }

    @Override
    public void advanced(long bytesOnDisk) {
      lastAdvance = bytesOnDisk;
    }

    @Override
    public void finished(String path) {
      events.add("finished " + path);
    }

    @Override
    public void aborted(String path) {
      events.add("aborted " + path);
    }
  }
}
