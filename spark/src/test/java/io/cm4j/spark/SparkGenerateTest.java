package io.cm4j.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The spark-generate command: its arguments, exit codes and output, in-process. */
class SparkGenerateTest {
  @TempDir Path tmp;

  private record Run(int exit, String out, String err) {}

  private static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = SparkGenerate.commandLine().setOut(new PrintWriter(out))
        .setErr(new PrintWriter(err)).execute(args);
    return new Run(exit, out.toString(), err.toString());
  }

  private static void assertUsage(Run r, String message) {
    assertEquals(2, r.exit(), r.err());
    assertTrue(r.err().startsWith("spark-generate: " + message), r.err());
    assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
  }

  @AfterAll
  static void closeEngines() {
    ExecutorEngines.closeAll();
  }

  @Test
  void writesImagesAndManifests() throws Exception {
    List<TinyModel.Request> requests = TinyModel.requests(3);
    Path file = TinyModel.writeJsonl(tmp.resolve("r.jsonl"), TinyModel.jsonLines(requests));
    Path out = tmp.resolve("out");
    // the output as a Hadoop URI, as on a cluster (hdfs://, s3a://): made by the job itself
    Run r = run("--master", "local[2]", "--model", TinyModel.path().toString(), "--requests",
        file.toString(), "--output", out.toUri().toString(), "--device", "cpu", "--dtype",
        "fp32");
    assertEquals(0, r.exit(), r.err());
    assertEquals(List.of("wrote file:" + out.resolve("images"),
        "wrote file:" + out.resolve("manifest.jsonl"),
        "wrote file:" + out.resolve("manifest.parquet")), r.out().lines().toList());
    assertTrue(r.err().contains("spark-generate: 3 images, 0 errors in"), r.err());
    try (TinyModel tiny = new TinyModel()) {
      for (TinyModel.Request q : requests) {
        assertArrayEquals(tiny.png(q), Files.readAllBytes(out.resolve("images/" + q.id()
            + ".png")));
      }
    }
    assertEquals(3, Files.readAllLines(out.resolve("manifest.jsonl")).size());
  }

  @Test
  void badArgumentsAreUsageErrorsThatWriteNothing() throws Exception {
    Path file = TinyModel.writeJsonl(tmp.resolve("r.jsonl"),
        TinyModel.jsonLines(TinyModel.requests(1)));
    String model = TinyModel.path().toString();
    Path out = tmp.resolve("out");
    assertUsage(run("--model", model, "--requests", file.toString(), "--output",
        out.toString(), "--device", "gpu"), "--device invalid device 'gpu'");
    assertUsage(run("--model", model, "--requests", file.toString(), "--output",
        out.toString(), "--dtype", "int8"), "--dtype invalid dtype 'int8'");
    assertUsage(run("--model", tmp.resolve("nowhere").toString(), "--requests",
        file.toString(), "--output", out.toString()), "--model " + tmp.resolve("nowhere"));
    assertUsage(run("--model", model, "--requests", tmp.resolve("none.jsonl").toString(),
        "--output", out.toString()), "--requests " + tmp.resolve("none.jsonl") + ": no such");
    Path csv = Files.writeString(tmp.resolve("r.csv"), "id,class\n");
    assertUsage(run("--model", model, "--requests", csv.toString(), "--output",
        out.toString()), "--requests " + csv + ": expected a .jsonl (JSON lines) or .parquet");
    Path full = Files.createDirectories(tmp.resolve("full"));
    Files.writeString(full.resolve("x"), "");
    assertUsage(run("--model", model, "--requests", file.toString(), "--output",
        full.toString()), "--output " + full + ": exists and is not an empty folder");
    assertUsage(run("--model", model, "--output", out.toString()), "Missing required option");
    assertFalse(Files.exists(out), "nothing written");
  }
}
