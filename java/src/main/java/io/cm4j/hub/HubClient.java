package io.cm4j.hub;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Downloads files of Hugging Face Hub model repositories into the cache shared with Python's
 * {@code huggingface_hub} ({@link HubCache}), the way its {@code hf_hub_download} does.
 *
 * <p>Settings come from environment variables, as in huggingface_hub: {@code HF_ENDPOINT}
 * (default https://huggingface.co); the token from {@code HF_TOKEN}, else
 * {@code HUGGING_FACE_HUB_TOKEN}, else the file {@code HF_TOKEN_PATH} or {@code $HF_HOME/token};
 * {@code HF_HUB_OFFLINE=1} (or {@code TRANSFORMERS_OFFLINE}) for no HTTP at all;
 * {@code HF_HUB_ETAG_TIMEOUT} and {@code HF_HUB_DOWNLOAD_TIMEOUT} in seconds (default 10).
 *
 * <p>Instances are immutable and thread-safe; concurrent downloads of one blob, from threads
 * or processes, fetch it once (see {@link BlobLock}).
 */
public final class HubClient {
  public static final String DEFAULT_ENDPOINT = "https://huggingface.co";
  /** The model {@code cm4j generate} uses when none is given. */
  public static final String DEFAULT_MODEL_ID = "openai/diffusers-cd_imagenet64_l2";
  public static final String DEFAULT_REVISION = "main";

  /** The files of a diffusers ConsistencyModelPipeline besides the UNet weights. */
  static final List<String> PIPELINE_FILES =
      List.of("model_index.json", "scheduler/scheduler_config.json", "unet/config.json");
  static final String UNET_SAFETENSORS = "unet/diffusion_pytorch_model.safetensors";
  // only where no safetensors exists: in the default model the .bin predates a fix
  static final String UNET_BIN = "unet/diffusion_pytorch_model.bin";

  private static final long RETRY_DELAY_MILLIS = 1000; // huggingface_hub's pause

  private final HubCache cache;
  private final HubHttp http;
  private final String offlineVariable; // the variable that turned offline mode on, or null
  private final long retryDelayMillis;

  /** A client configured by the environment variables {@code env} (see the class comment). */
  public HubClient(Map<String, String> env) {
    this(env, RETRY_DELAY_MILLIS);
  }

  HubClient(Map<String, String> env, long retryDelayMillis) {
    this.cache = new HubCache(env);
    String endpoint = HubCache.firstSet(env, "HF_ENDPOINT");
    endpoint = endpoint == null ? DEFAULT_ENDPOINT : endpoint.replaceAll("/+$", "");
    String[] token = token(env);
    this.http = new HubHttp(endpoint, token[0], token[1],
        timeoutMillis(env, "HF_HUB_ETAG_TIMEOUT"), timeoutMillis(env, "HF_HUB_DOWNLOAD_TIMEOUT"));
    this.offlineVariable = isTrue(env, "HF_HUB_OFFLINE") ? "HF_HUB_OFFLINE"
        : isTrue(env, "TRANSFORMERS_OFFLINE") ? "TRANSFORMERS_OFFLINE" : null;
    this.retryDelayMillis = retryDelayMillis;
  }

  /** A client configured by this process's environment. */
  public static HubClient fromEnvironment() {
    return new HubClient(System.getenv());
  }

  public HubCache cache() {
    return cache;
  }

  public String endpoint() {
    return http.endpoint();
  }

  /** Whether HF_HUB_OFFLINE is on: files come from the cache only. */
  public boolean isOffline() {
    return offlineVariable != null;
  }

  /** Where the token came from ("HF_TOKEN", a file path), or null when there is none. */
  public String tokenSource() {
    return http.tokenSource();
  }

  /** {@code file} with {@code progress} silent. */
  public Path resolveFile(String repoId, String revision, String path) throws HubException {
    return resolveFile(repoId, revision, path, Progress.NONE);
  }

  /**
   * The local path of {@code path} in model repository {@code repoId} at {@code revision}
   * (branch, tag or commit; null means main): {@code snapshots/{commit}/{path}} in the cache,
   * downloaded first when its blob is not there yet.
   *
   * @throws HubException when the file does not exist ({@link HubException.Kind#NOT_FOUND}),
   *     cannot be downloaded, or offline mode is on and it is not cached
   */
  public Path resolveFile(String repoId, String revision, String path, Progress progress)
      throws HubException {
    Resolved r = resolve(new Where(repoId, orMain(revision), path), progress, false);
    return r.file;
  }

  /**
   * As {@link #resolveFile}, but a file the repository does not have is reported as empty
   * (and remembered in {@code .no_exist/}, as huggingface_hub does) rather than an error.
   */
  public Optional<Path> resolveOptionalFile(String repoId, String revision, String path,
      Progress progress) throws HubException {
    return Optional.ofNullable(resolve(new Where(repoId, orMain(revision), path), progress, true)
        .file);
  }

  /**
   * Makes the cache hold a diffusers ConsistencyModelPipeline of {@code repoId}:
   * model_index.json, scheduler/scheduler_config.json, unet/config.json and the UNet weights,
   * {@code unet/diffusion_pytorch_model.safetensors}, or the {@code .bin} only when the
   * repository has no safetensors file. All come from the one commit model_index.json
   * resolved to; a second call costs one HEAD request and no download.
   *
   * @param revision branch, tag or commit; null means main
   * @return the snapshot folder, {@code snapshots/{commit}}: a diffusers model directory
   */
  public Path downloadModel(String repoId, String revision, Progress progress)
      throws HubException {
    Where index = new Where(repoId, orMain(revision), PIPELINE_FILES.get(0));
    String commit = resolve(index, progress, false).commit;
    for (String file : PIPELINE_FILES.subList(1, PIPELINE_FILES.size())) {
      resolve(new Where(repoId, commit, file), progress, false);
    }
    if (resolve(new Where(repoId, commit, UNET_SAFETENSORS), progress, true).file == null) {
      resolve(new Where(repoId, commit, UNET_BIN), progress, false);
    }
    return cache.snapshotDir(repoId, commit);
  }

  /**
   * The snapshot folder of a complete pipeline of {@code repoId} at {@code revision} already
   * in the cache (as {@link #downloadModel} leaves it), found without any HTTP request.
   */
  public Optional<Path> cachedModel(String repoId, String revision) throws HubException {
    Names.checkRepoId(repoId);
    Names.checkRevision(repoId, orMain(revision));
    try {
      Optional<String> commit = cache.commitFor(repoId, orMain(revision));
      if (commit.isEmpty()) {
        return Optional.empty();
      }
      String c = commit.get();
      for (String file : PIPELINE_FILES) {
        if (cache.cachedFile(repoId, c, file).isEmpty()) {
          return Optional.empty();
        }
      }
      boolean weights = cache.cachedFile(repoId, c, UNET_SAFETENSORS).isPresent()
          || (cache.knownMissing(repoId, c, UNET_SAFETENSORS)
              && cache.cachedFile(repoId, c, UNET_BIN).isPresent());
      return weights ? Optional.of(cache.snapshotDir(repoId, c)) : Optional.empty();
    } catch (IOException e) {
      throw cacheFailure(new Where(repoId, orMain(revision), PIPELINE_FILES.get(0)), e);
    }
  }

  /** A file's commit and local path (null: the repository does not have it). */
  private record Resolved(String commit, Path file) {}

  private Resolved resolve(Where where, Progress progress, boolean optional)
      throws HubException {
    Names.checkRepoId(where.repoId());
    Names.checkRevision(where.repoId(), where.revision());
    Names.checkFilePath(where.repoId(), where.path());
    try {
      if (offlineVariable != null) {
        return fromCache(where, optional).orElseThrow(() -> offline(where));
      }
      if (Names.isCommit(where.revision())) { // immutable: a cached answer is final
        Optional<Resolved> cached = fromCache(where, optional);
        if (cached.isPresent()) {
          return cached.get();
        }
      }
      HubHttp.FileMetadata meta;
      try {
        meta = http.head(where);
      } catch (HubHttp.EntryMissing missing) {
        if (missing.commit != null) {
          try {
            cache.markMissing(where.repoId(), missing.commit, where.path());
            cache.writeRef(where.repoId(), where.revision(), missing.commit);
          } catch (IOException readOnlyCache) {
            // only a saved request is lost, as in huggingface_hub
          }
        }
        if (optional) {
          return new Resolved(missing.commit, null);
        }
        throw new HubException(HubException.Kind.NOT_FOUND, where
            + ": the repository has no such file" + (missing.getMessage() == null ? ""
                : " (server: " + missing.getMessage() + ")"));
      } catch (HubException e) {
        // like huggingface_hub: the Hub unreachable or broken, but the file cached: use it
        if (e.kind() == HubException.Kind.NETWORK || e.kind() == HubException.Kind.SERVER) {
          Optional<Resolved> cached = fromCache(where, optional);
          if (cached.isPresent()) {
            return cached.get();
          }
        }
        throw e;
      }
      return store(where, meta, progress);
    } catch (IOException e) {
      throw cacheFailure(where, e);
    }
  }

  /** Links (downloading first if needed) the blob HEAD described; records the ref. */
  @SuppressWarnings("try") // the lock is held for the body's duration, not read
  private Resolved store(Where where, HubHttp.FileMetadata meta, Progress progress)
      throws HubException, IOException {
    String repoId = where.repoId();
    cache.writeRef(repoId, where.revision(), meta.commit());
    Path pointer = cache.snapshotFile(repoId, meta.commit(), where.path());
    if (Files.exists(pointer)) {
      return new Resolved(meta.commit(), pointer);
    }
    Path blob = cache.blob(repoId, meta.etag());
    if (!Files.exists(blob)) {
      try (BlobLock lock = BlobLock.acquire(cache.lockFile(repoId, meta.etag()))) {
        if (!Files.exists(blob)) { // another thread or process may have finished it meanwhile
          new BlobDownloader(http, retryDelayMillis).download(where, meta, blob, progress);
        }
        cache.linkSnapshot(repoId, meta.commit(), where.path(), meta.etag());
      }
    } else {
      cache.linkSnapshot(repoId, meta.commit(), where.path(), meta.etag());
    }
    return new Resolved(meta.commit(), pointer);
  }

  /** The file (or, if optional, its known absence) at the commit the cache has for revision. */
  private Optional<Resolved> fromCache(Where where, boolean optional) throws IOException {
    Optional<String> commit = cache.commitFor(where.repoId(), where.revision());
    if (commit.isEmpty()) {
      return Optional.empty();
    }
    String c = commit.get();
    Optional<Path> file = cache.cachedFile(where.repoId(), c, where.path());
    if (file.isPresent()) {
      return Optional.of(new Resolved(c, file.get()));
    }
    if (optional && cache.knownMissing(where.repoId(), c, where.path())) {
      return Optional.of(new Resolved(c, null));
    }
    return Optional.empty();
  }

  private HubException offline(Where where) {
    boolean known;
    try {
      known = cache.commitFor(where.repoId(), where.revision()).isPresent();
    } catch (IOException e) {
      known = false;
    }
    return new HubException(HubException.Kind.OFFLINE, where + ": offline mode is on ("
        + offlineVariable + " is set) and " + (known ? "this file is not in the cache"
            : "the cache has no snapshot of revision " + where.revision() + " of " + where.repoId())
        + " at " + cache.repoDir(where.repoId()) + "; download it once while online");
  }

  private HubException cacheFailure(Where where, IOException e) {
    return new HubException(HubException.Kind.IO, where + ": cannot use the Hugging Face cache at "
        + cache.root() + ": " + HubHttp.describe(e), e);
  }

  private static String orMain(String revision) {
    return revision == null ? DEFAULT_REVISION : revision;
  }

  /** {token, where it came from}, or {null, null}: huggingface_hub's get_token order. */
  private static String[] token(Map<String, String> env) {
    for (String name : new String[] {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
      String v = env.get(name);
      if (v != null && !v.isBlank()) {
        return new String[] {v.strip(), name};
      }
    }
    String pathVar = HubCache.firstSet(env, "HF_TOKEN_PATH");
    Path file = pathVar != null ? Path.of(pathVar) : HubCache.hfHome(env).resolve("token");
    try {
      if (Files.isRegularFile(file)) {
        String v = Files.readString(file, StandardCharsets.UTF_8).strip();
        if (!v.isEmpty()) {
          return new String[] {v, file.toString()};
        }
      }
    } catch (IOException unreadable) {
      // no token, as huggingface_hub does for an unreadable file
    }
    return new String[] {null, null};
  }

  // huggingface_hub's _is_true
  private static boolean isTrue(Map<String, String> env, String name) {
    String v = env.get(name);
    return v != null && List.of("1", "ON", "YES", "TRUE").contains(v.toUpperCase(Locale.ROOT));
  }

  private static int timeoutMillis(Map<String, String> env, String name) {
    String v = HubCache.firstSet(env, name);
    try {
      double seconds = v == null ? 10 : Double.parseDouble(v);
      return seconds > 0 ? (int) Math.min(Integer.MAX_VALUE, seconds * 1000) : 10_000;
    } catch (NumberFormatException e) {
      return 10_000;
    }
  }
}
