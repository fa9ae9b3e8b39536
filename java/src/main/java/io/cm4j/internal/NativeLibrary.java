package io.cm4j.internal;

import io.cm4j.Cm4jException;
import io.cm4j.ErrorCode;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Properties;
import org.bytedeco.javacpp.Loader;

/**
 * Loads libcm4j and its JNI glue (libjnicm4j), once per JVM, in this order:
 * <ol>
 *   <li>the system property {@value #PATH_PROPERTY}: a folder holding {@code libcm4j.so}, or
 *       that file itself (a library built elsewhere, e.g. with CUDA); the glue still comes
 *       from the jar. An explicit choice: when it does not load, that is the error (naming the
 *       path and the loader's reason), never a silent fallback to the bundled library;</li>
 *   <li>otherwise the library bundled in the jar under {@code io/cm4j/internal/<platform>/},
 *       through JavaCPP's {@link Loader}.</li>
 * </ol>
 * Each step is logged at DEBUG level (logger {@code io.cm4j.native}).
 */
public final class NativeLibrary {
  /** System property naming a libcm4j.so (or its folder) to use instead of the bundled one. */
  public static final String PATH_PROPERTY = "cm4j.library.path";

  private static final String LIBRARY_FILE = "libcm4j.so";
  private static final System.Logger LOG = System.getLogger("io.cm4j.native");

  private static String loadedFrom;
  private static String failure;

  private NativeLibrary() {}

  /** Loads the native library if not loaded yet; repeats the first failure otherwise. */
  public static synchronized void load() throws Cm4jException {
    if (loadedFrom != null) {
      return;
    }
    if (failure != null) {
      throw new Cm4jException(ErrorCode.LIBRARY_UNAVAILABLE, failure);
    }
    String property = System.getProperty(PATH_PROPERTY);
    if (property != null && !property.isBlank()) {
      Path file = Path.of(property);
      if (Files.isDirectory(file)) {
        file = file.resolve(LIBRARY_FILE);
      }
      LOG.log(Level.DEBUG, "cm4j: trying {0}={1} ({2})", PATH_PROPERTY, property, file);
      String why = tryExplicit(file);
      if (why == null) {
        String mapped = mappedPath().orElse(file.toAbsolutePath().toString());
        if (isSameFile(mapped, file)) {
          loadedFrom = mapped;
          LOG.log(Level.DEBUG, "cm4j: loaded {0}", loadedFrom);
          return;
        }
        why = "the loader used " + mapped + " instead";
      }
      failure = "cannot load the cm4j native library " + file + " named by " + PATH_PROPERTY
          + "=" + property + ": " + why;
      throw new Cm4jException(ErrorCode.LIBRARY_UNAVAILABLE, failure);
    }
    LOG.log(Level.DEBUG, "cm4j: trying the library bundled in the jar ({0}/)",
        Loader.getPlatform());
    try {
      String glue = Loader.load(Cm4jNative.class);
      loadedFrom = mappedPath().orElse("the bundled library");
      LOG.log(Level.DEBUG, "cm4j: loaded {0} (JNI glue {1})", loadedFrom, glue);
      return;
    } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
      LOG.log(Level.DEBUG, "cm4j: bundled library failed: {0}", e.toString());
      failure = "cannot load the cm4j native library bundled in the jar (io/cm4j/internal/"
          + Loader.getPlatform() + "/ on the class path): " + e.getMessage();
      throw new Cm4jException(ErrorCode.LIBRARY_UNAVAILABLE, failure);
    }
  }

  /** Where libcm4j was loaded from (null before {@link #load()} succeeded). */
  public static synchronized String loadedFrom() {
    return loadedFrom;
  }

  /** Loads libcm4j from {@code file} and the glue from the jar; null on success, else why not. */
  private static String tryExplicit(Path file) {
    if (!Files.isRegularFile(file)) {
      return "no " + LIBRARY_FILE + " there";
    }
    if (!file.getFileName().toString().equals(LIBRARY_FILE)) {
      // the JNI glue links against the soname libcm4j.so; another name would not satisfy it
      return "expected a folder holding " + LIBRARY_FILE + " or a file of that name";
    }
    // Loaded by path first, for the dynamic loader's own reason when it fails (JavaCPP would
    // try its bundled copy instead); the glue then finds it already loaded, by its soname.
    String path = file.toAbsolutePath().toString();
    try {
      System.load(path);
    } catch (UnsatisfiedLinkError e) {
      String why = String.valueOf(e.getMessage()); // "PATH: PATH: reason" from the JVM and dlerror
      while (why.startsWith(path + ": ")) {
        why = why.substring(path.length() + 2);
      }
      return why;
    }
    // JavaCPP searches platform.linkpath before its bundled resources when pathsFirst is set.
    Properties properties = new Properties();
    properties.putAll(Loader.loadProperties());
    properties.setProperty("platform.linkpath", file.toAbsolutePath().getParent().toString());
    try {
      Loader.load(Cm4jNative.class, properties, true);
    } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
      return e.getMessage();
    }
    return null;
  }

  private static boolean isSameFile(String a, Path b) {
    try {
      return Files.isSameFile(Path.of(a), b);
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * The libcm4j.so this process has mapped, from /proc/self/maps where there is one. A line is
   * "address perms offset dev inode path": the path is everything after the fifth field (it may
   * hold spaces), with " (deleted)" after it when the file was replaced since it was mapped.
   */
  private static Optional<String> mappedPath() {
    try {
      return Files.readAllLines(Path.of("/proc/self/maps")).stream()
          .map(line -> line.trim().split("\\s+", 6))
          .filter(f -> f.length == 6)
          .map(f -> f[5].replaceFirst(" \\(deleted\\)$", ""))
          .filter(p -> p.endsWith("/" + LIBRARY_FILE))
          .findFirst();
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }
}
