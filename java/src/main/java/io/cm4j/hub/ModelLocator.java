package io.cm4j.hub;

import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Turns a {@code --model} argument into a local path: an existing file or directory as it is,
 * else a Hub model ID ({@code org/name}) fetched once into the Hugging Face cache and then
 * used from there with no network request (run {@link HubClient#downloadModel} — the CLI's
 * {@code download} — to pick up a newer commit of a branch). A local path wins over a Hub ID
 * of the same spelling, as in diffusers.
 */
public final class ModelLocator {
  private ModelLocator() {}

  /**
   * {@link #resolve(String, String, HubClient, Progress)} with revision main, the process's
   * environment and a progress bar on stderr.
   */
  public static Path resolve(String modelArg) throws HubException {
    return resolve(modelArg, null, HubClient.fromEnvironment(), Progress.stderr());
  }

  /**
   * @param modelArg a diffusers directory, a weights file, or a Hub model ID; null or blank
   *     means {@link HubClient#DEFAULT_MODEL_ID}
   * @param revision branch, tag or commit of a Hub model (null: main); unused for local paths
   * @return the local path, or the snapshot folder of the cached model (a diffusers directory)
   */
  public static Path resolve(String modelArg, String revision, HubClient client,
      Progress progress) throws HubException {
    String arg = modelArg == null || modelArg.isBlank() ? HubClient.DEFAULT_MODEL_ID : modelArg;
    Optional<Path> local = existing(arg);
    if (local.isPresent()) {
      return local.get();
    }
    if (!looksLikeModelId(arg)) {
      throw new HubException(HubException.Kind.INVALID_ARGUMENT, "model '" + arg
          + "': no such file or directory, and not a Hugging Face model ID (org/name)");
    }
    Optional<Path> cached = client.cachedModel(arg, revision);
    if (cached.isPresent()) {
      return cached.get();
    }
    try {
      return client.downloadModel(arg, revision, progress);
    } catch (HubException e) {
      if (e.kind() != HubException.Kind.NOT_FOUND && e.kind() != HubException.Kind.ACCESS_DENIED) {
        throw e;
      }
      // maybe a mistyped local path rather than a model ID: say that was looked for too
      throw new HubException(e.kind(), e.getMessage() + " (no local file or directory '" + arg
          + "' exists either)", e);
    }
  }

  /** Whether {@code s} has the form of a Hub model ID, {@code org/name}. */
  public static boolean looksLikeModelId(String s) {
    return s != null && s.indexOf('/') > 0 && Names.isRepoId(s);
  }

  private static Optional<Path> existing(String arg) {
    try {
      Path p = Path.of(arg);
      return Files.exists(p) ? Optional.of(p.toAbsolutePath().normalize()) : Optional.empty();
    } catch (InvalidPathException e) {
      return Optional.empty();
    }
  }
}
