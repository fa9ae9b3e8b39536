package io.cm4j.hub;

import java.util.regex.Pattern;

/**
 * Checks for the strings that become folder and file names in the cache. Model IDs, revisions
 * and file paths come from the user and etags and commits from the server; none of them may
 * escape the repository's folder ({@code ..}, absolute paths, backslashes).
 */
final class Names {
  private Names() {}

  // huggingface_hub's validate_repo_id: "[org/]name", parts of [\w.-] that begin and end with
  // a word character, no "--" or "..", at most 96 characters.
  private static final Pattern REPO_PART = Pattern.compile("[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?");
  private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");
  private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
  private static final Pattern ETAG = Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}");

  /** Whether {@code s} is a Hub model ID: {@code name} or {@code org/name}. */
  static boolean isRepoId(String s) {
    if (s == null || s.isEmpty() || s.length() > 96 || s.contains("--") || s.contains("..")) {
      return false;
    }
    String[] parts = s.split("/", -1);
    if (parts.length > 2) {
      return false;
    }
    for (String p : parts) {
      if (!REPO_PART.matcher(p).matches()) {
        return false;
      }
    }
    return true;
  }

  /** A full 40-hex commit hash: immutable, so cached answers for it never go stale. */
  static boolean isCommit(String s) {
    return s != null && COMMIT.matcher(s).matches();
  }

  /** An LFS etag is the SHA-256 of the file's contents; a git etag is a SHA-1 of the blob. */
  static boolean isSha256(String etag) {
    return SHA256.matcher(etag).matches();
  }

  static boolean isEtag(String s) {
    return s != null && ETAG.matcher(s).matches();
  }

  /** A relative slash-separated path with no empty, "." or ".." parts: safe below a folder. */
  static boolean isRelativePath(String s) {
    if (s == null || s.isEmpty() || s.indexOf('\\') >= 0 || s.startsWith("/")) {
      return false;
    }
    for (String p : s.split("/", -1)) {
      if (p.isEmpty() || p.equals(".") || p.equals("..")) {
        return false;
      }
      for (int i = 0; i < p.length(); i++) {
        if (Character.isISOControl(p.charAt(i))) {
          return false;
        }
      }
    }
    return true;
  }

  static void checkRepoId(String repoId) throws HubException {
    if (!isRepoId(repoId)) {
      throw new HubException(HubException.Kind.INVALID_ARGUMENT, "'" + repoId
          + "' is not a Hugging Face model ID: expected org/name (letters, digits, '-', '_', '.')");
    }
  }

  static void checkRevision(String repoId, String revision) throws HubException {
    if (!isRelativePath(revision)) {
      throw new HubException(HubException.Kind.INVALID_ARGUMENT,
          repoId + ": '" + revision + "' is not a valid revision (branch, tag or commit)");
    }
  }

  static void checkFilePath(String repoId, String path) throws HubException {
    if (!isRelativePath(path)) {
      throw new HubException(HubException.Kind.INVALID_ARGUMENT,
          repoId + ": '" + path + "' is not a valid file path inside a repository");
    }
  }
}
