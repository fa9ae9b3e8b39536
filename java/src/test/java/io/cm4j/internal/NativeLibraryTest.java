package io.cm4j.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.Loader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The loading order, each case in a fresh JVM (a JVM loads the library once). */
class NativeLibraryTest {
  @TempDir Path dir;

  @Test
  void loadsTheBundledLibraryByDefault() throws Exception {
    NativeLibrary.load();
    assertTrue(NativeLibrary.loadedFrom().endsWith("libcm4j.so"), NativeLibrary.loadedFrom());
    assertTrue(Cm4jNative.cm4j_version().matches("\\d+\\.\\d+\\.\\d+.*"));
  }

  /** One version: the library's comes from CMakeLists.txt's project(VERSION), the pom's too. */
  @Test
  void theLibraryVersionIsThePomVersion() throws Exception {
    NativeLibrary.load();
    String pom = System.getProperty("cm4j.project.version");
    assertTrue(pom != null && !pom.isBlank(), "cm4j.project.version is not set by the pom");
    assertEquals(pom.replaceFirst("-SNAPSHOT$", ""), Cm4jNative.cm4j_version());
  }

  @Test
  void cm4jLibraryPathFolderComesFirst() throws Exception {
    Path copy = dir.resolve("libcm4j.so");
    Files.copy(bundled(), copy, StandardCopyOption.REPLACE_EXISTING);
    String out = probe(dir.toString());
    assertTrue(out.startsWith("loaded " + copy + " version "), out);
    out = probe(copy.toString()); // the file itself works too
    assertTrue(out.startsWith("loaded " + copy + " version "), out);
  }

  /** /proc/self/maps ends a line with the path, which may hold spaces. */
  @Test
  void aLibraryPathWithSpacesLoads() throws Exception {
    Path copy = Files.createDirectories(dir.resolve("a folder")).resolve("libcm4j.so");
    Files.copy(bundled(), copy, StandardCopyOption.REPLACE_EXISTING);
    String out = probe(copy.toString());
    assertTrue(out.startsWith("loaded " + copy + " version "), out);
  }

  /** An explicit library that does not load is the error: no fallback to the bundled one. */
  @Test
  void aPathThatDoesNotLoadIsAnErrorNamingItAndWhy() throws Exception {
    Path nowhere = dir.resolve("nowhere");
    String out = probe(nowhere.toString());
    assertEquals("failed cannot load the cm4j native library " + nowhere
        + " named by cm4j.library.path=" + nowhere + ": no libcm4j.so there", out);
    Path junk = Files.writeString(dir.resolve("libcm4j.so"), "not a shared library");
    out = probe(junk.toString()).lines().reduce((first, last) -> last).orElse("");
    // after the JVM's own warnings: our message, with dlopen's reason
    assertEquals("failed cannot load the cm4j native library " + junk + " named by "
        + "cm4j.library.path=" + junk + ": file too short", out);
  }

  private static Path bundled() throws Exception {
    Path p = Path.of(Cm4jNative.class.getResource(
        Loader.getPlatform() + "/libcm4j.so").toURI());
    assertTrue(Files.isRegularFile(p), p.toString());
    return p;
  }

  private static String probe(String libraryPath) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add("-D" + NativeLibrary.PATH_PROPERTY + "=" + libraryPath);
    cmd.add(LoadProbe.class.getName());
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertEquals(0, p.waitFor(), out);
    return out;
  }
}
