package io.cm4j.bench;

import java.nio.file.Files;
import java.nio.file.Path;

/** Files the benchmarks read: a system property's path, else one found above the working folder. */
final class BenchFiles {
  private BenchFiles() {}

  /**
   * The path {@code property} names, else {@code relative} resolved against the working folder
   * or the first of its parents where it exists; null when there is none.
   */
  static Path find(String property, String relative) {
    String value = System.getProperty(property);
    if (value != null) {
      return Path.of(value);
    }
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path candidate = p.resolve(relative);
      if (Files.exists(candidate)) {
        return candidate;
      }
    }
    return null;
  }
}
