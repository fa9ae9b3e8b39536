package io.cm4j.hub;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The Hugging Face cache folder, in the layout of Python's {@code huggingface_hub} so both share
 * one copy of each model:
 *
 * <pre>
 * {root}/models--{org}--{name}/blobs/{etag}                  file contents, named by etag
 *                              refs/{revision}               the commit a branch/tag pointed to
 *                              snapshots/{commit}/{path}     relative symlinks into blobs/
 *                              .no_exist/{commit}/{path}     empty markers: file known absent
 * {root}/.locks/models--{org}--{name}/{etag}.lock            one downloader per blob
 * </pre>
 *
 * <p>The root is the first of {@code HF_HUB_CACHE}, {@code HUGGINGFACE_HUB_CACHE},
 * {@code $HF_HOME/hub}, {@code $XDG_CACHE_HOME/huggingface/hub}, {@code ~/.cache/huggingface/hub}
 * (huggingface_hub's {@code constants.py}). Instances are immutable and thread-safe.
 */
public final class HubCache {
  private final Path root;

  /** A cache rooted at {@code root}. */
  public HubCache(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  /** The cache the environment variables {@code env} select (see the class comment). */
  public HubCache(Map<String, String> env) {
    this(resolveRoot(env));
  }

  /** The cache this process's environment selects. */
  public static HubCache fromEnvironment() {
    return new HubCache(System.getenv());
  }

  /** The cache root the environment variables {@code env} select. */
  public static Path resolveRoot(Map<String, String> env) {
    String explicit = firstSet(env, "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE");
    return explicit != null ? expandUser(explicit, env) : hfHome(env).resolve("hub");
  }

  /** {@code HF_HOME}, else {@code $XDG_CACHE_HOME/huggingface}, else {@code ~/.cache/huggingface}. */
  static Path hfHome(Map<String, String> env) {
    String hfHome = firstSet(env, "HF_HOME");
    if (hfHome != null) {
      return expandUser(hfHome, env);
    }
    String xdg = firstSet(env, "XDG_CACHE_HOME");
    Path cache = xdg != null ? expandUser(xdg, env) : userHome(env).resolve(".cache");
    return cache.resolve("huggingface");
  }

  /** The first of {@code names} set to a non-empty value in {@code env}, or null. */
  static String firstSet(Map<String, String> env, String... names) {
    for (String name : names) {
      String v = env.get(name);
      if (v != null && !v.isEmpty()) {
        return v;
      }
    }
    return null;
  }

  // Python's os.path.expanduser: a leading "~" is $HOME.
  private static Path expandUser(String path, Map<String, String> env) {
    if (path.equals("~") || path.startsWith("~/")) {
      return userHome(env).resolve(path.equals("~") ? "" : path.substring(2));
    }
    return Paths.get(path);
  }

  private static Path userHome(Map<String, String> env) {
    String home = firstSet(env, "HOME");
    return Paths.get(home != null ? home : System.getProperty("user.home"));
  }

  public Path root() {
    return root;
  }

  /** {@code models--org--name}: huggingface_hub's {@code repo_folder_name} for a model. */
  public static String repoFolderName(String repoId) {
    return "models--" + repoId.replace("/", "--");
  }

  public Path repoDir(String repoId) {
    return root.resolve(repoFolderName(repoId));
  }

  public Path blob(String repoId, String etag) {
    return repoDir(repoId).resolve("blobs").resolve(etag);
  }

  public Path snapshotDir(String repoId, String commit) {
    return repoDir(repoId).resolve("snapshots").resolve(commit);
  }

  /** {@code snapshots/{commit}/{path}}: where the file of a revision is read from. */
  public Path snapshotFile(String repoId, String commit, String path) {
    return snapshotDir(repoId, commit).resolve(path);
  }

  public Path refFile(String repoId, String revision) {
    return repoDir(repoId).resolve("refs").resolve(revision);
  }

  public Path noExistMarker(String repoId, String commit, String path) {
    return repoDir(repoId).resolve(".no_exist").resolve(commit).resolve(path);
  }

  public Path lockFile(String repoId, String etag) {
    return root.resolve(".locks").resolve(repoFolderName(repoId)).resolve(etag + ".lock");
  }

  /**
   * The commit {@code revision} stands for in the cache: itself when it is a commit hash, else
   * the content of {@code refs/{revision}} (empty when absent or not a commit hash).
   */
  public Optional<String> commitFor(String repoId, String revision) throws IOException {
    if (Names.isCommit(revision)) {
      return Optional.of(revision);
    }
    Path ref = refFile(repoId, revision);
    if (!Files.isRegularFile(ref)) {
      return Optional.empty();
    }
    String commit = Files.readString(ref, StandardCharsets.UTF_8).trim();
    return Names.isCommit(commit) ? Optional.of(commit) : Optional.empty();
  }

  /** The snapshot file when it is present and its link resolves to a blob. */
  public Optional<Path> cachedFile(String repoId, String commit, String path) {
    Path file = snapshotFile(repoId, commit, path);
    return Files.isRegularFile(file) ? Optional.of(file) : Optional.empty();
  }

  /** Whether the Hub said {@code path} does not exist at {@code commit}. */
  public boolean knownMissing(String repoId, String commit, String path) {
    return Files.exists(noExistMarker(repoId, commit, path));
  }

  /**
   * Records that branch or tag {@code revision} points at {@code commit}. Nothing is written for
   * a commit hash, nor when the ref already says so (the cache may be read-only then).
   */
  void writeRef(String repoId, String revision, String commit) throws IOException {
    if (revision.equals(commit)) {
      return;
    }
    Path ref = refFile(repoId, revision);
    if (Files.isRegularFile(ref)
        && Files.readString(ref, StandardCharsets.UTF_8).trim().equals(commit)) {
      return;
    }
    Files.createDirectories(ref.getParent());
    // huggingface_hub writes the bare hash, no newline; a rename keeps readers from a torn file.
    // Files.createFile, not createTempFile: the ref gets a plain create's permissions (0666 less
    // the umask) as huggingface_hub's do, not owner-only ones in a cache others may share
    String random = String.format(Locale.ROOT, "%016x", ThreadLocalRandom.current().nextLong());
    Path tmp = Files.createFile(ref.resolveSibling(".ref" + random + ".tmp"));
    try {
      Files.writeString(tmp, commit, StandardCharsets.UTF_8);
      Files.move(tmp, ref, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  void markMissing(String repoId, String commit, String path) throws IOException {
    Path marker = noExistMarker(repoId, commit, path);
    Files.createDirectories(marker.getParent());
    try {
      Files.createFile(marker);
    } catch (FileAlreadyExistsException alreadyMarked) {
      // another downloader recorded it first
    }
  }

  /**
   * Makes {@code snapshots/{commit}/{path}} a relative symlink to {@code blobs/{etag}}
   * ({@code ../../blobs/e} at the top, one more {@code ../} per folder level), so the cache
   * folder can be moved. A dangling link left by a deleted blob is replaced. Where the file
   * system has no symlinks the blob is copied, as huggingface_hub does.
   */
  Path linkSnapshot(String repoId, String commit, String path, String etag) throws IOException {
    Path pointer = snapshotFile(repoId, commit, path);
    Path blob = blob(repoId, etag);
    Files.createDirectories(pointer.getParent());
    Path target = pointer.getParent().relativize(blob);
    try {
      Files.createSymbolicLink(pointer, target);
    } catch (FileAlreadyExistsException e) {
      if (!Files.exists(pointer)) { // dangling: its blob was deleted
        Files.deleteIfExists(pointer);
        try {
          Files.createSymbolicLink(pointer, target);
        } catch (FileAlreadyExistsException repairedMeanwhile) {
          // another downloader made the same link
        }
      }
    } catch (UnsupportedOperationException | FileSystemException noSymlinks) {
      Files.copy(blob, pointer, StandardCopyOption.REPLACE_EXISTING);
    }
    return pointer;
  }
}
