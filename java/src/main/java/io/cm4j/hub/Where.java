package io.cm4j.hub;

/** The file a request is about; its {@code toString} starts every message about it. */
record Where(String repoId, String revision, String path) {
  @Override
  public String toString() {
    return repoId + ": " + path + " (revision " + revision + ")";
  }
}
