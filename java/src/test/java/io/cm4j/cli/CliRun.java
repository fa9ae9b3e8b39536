package io.cm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** Runs the CLI in-process with a given environment; checks exit codes and messages. */
public final class CliRun {
  private CliRun() {}

  /** Exit code, stdout and stderr of one run. */
  public record Result(int exit, String out, String err) {}

  public static Result run(Map<String, String> env, String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = Main.commandLine(new PrintWriter(out), new PrintWriter(err), env).execute(args);
    return new Result(exit, out.toString(), err.toString());
  }

  /** A run with an environment that reaches no Hub and has an empty, offline cache. */
  public static Result runOffline(Path tmp, String... args) {
    return run(Map.of("HF_HUB_OFFLINE", "1", "HF_HUB_CACHE", tmp.resolve("empty-cache").toString(),
        "HF_HOME", tmp.resolve("hf-home").toString()), args);
  }

  /**
   * Exit code 2, and the last stderr line (informational lines may precede it) names each of
   * {@code parts} and is the only error line (usage errors add one pointing to --help).
   */
  public static void assertBadInput(Result r, String... parts) {
    assertEquals(2, r.exit, "exit code; stderr: " + r.err);
    List<String> lines = r.err.strip().lines()
        .filter(l -> !l.startsWith("generate: ") && !l.startsWith("edit: ")).toList(); // progress
    assertTrue(lines.size() == 1 || (lines.size() == 2 && lines.get(1).startsWith("Try '")),
        "expected one error line, found: " + r.err);
    for (String part : parts) {
      assertTrue(lines.get(0).contains(part), "expected '" + part + "' in: " + r.err);
    }
    assertTrue(!r.err.contains("\tat "), "stack trace in: " + r.err);
  }

  /** The names in {@code dir}, hidden ones included. */
  public static List<String> list(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }
}
