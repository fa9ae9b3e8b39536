package io.cm4j.cli;

import static io.cm4j.cli.CliRun.assertBadInput;
import static io.cm4j.cli.CliRun.list;
import static io.cm4j.cli.CliRun.runOffline;
import static io.cm4j.cli.TensorDiff.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Golden;
import io.cm4j.cli.CliRun.Result;
import io.cm4j.weights.Json;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.TestData;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cm4j noise}: torch's randn draws for every golden RNG case; bad input exits 2. */
class NoiseCommandTest {
  @TempDir Path tmp;

  @Test
  void drawsMatchTorch() throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(
        Golden.file("torch_randn_cases.safetensors"))) {
      for (String index : new TreeSet<>(golden.metadata().keySet())) {
        Map<String, Object> meta = Json.parseObject(golden.metadata().get(index));
        String shape = ((List<?>) meta.get("shape")).stream().map(Object::toString)
            .collect(Collectors.joining(","));
        Path out = tmp.resolve(index + ".safetensors");
        Result r = runOffline(tmp, "noise", "--seed", meta.get("seed").toString(), "--shape",
            shape, "--count", "2", "--output", out.toString());
        assertEquals(0, r.exit(), r.err());
        try (SafetensorsFile got = SafetensorsFile.open(out)) {
          assertEquals(List.of("0", "1"), got.names());
          assertArrayEquals(golden.get(index + ".first").shape(), got.get("0").shape());
          double err = Math.max(
              maxAbsDiff(golden.floats(index + ".first"), got.floats("0")),
              maxAbsDiff(golden.floats(index + ".second"), got.floats("1")));
          System.out.printf("cli noise case %s %s: max abs error %.2e%n", index, meta, err);
          assertTrue(err <= 1e-5, "max abs error " + err);
        }
      }
    }
  }

  @Test
  void badArguments() throws Exception {
    String out = tmp.resolve("n.safetensors").toString();
    assertBadInput(runOffline(tmp, "noise", "--seed", "1", "--shape", "2,-3", "--output", out),
        "--shape 2,-3", "negative");
    assertBadInput(runOffline(tmp, "noise", "--seed", "1", "--shape", "2,x", "--output", out),
        "--shape");
    assertBadInput(runOffline(tmp, "noise", "--seed", "1", "--shape", "4", "--count", "0",
        "--output", out), "--count 0");
    assertBadInput(runOffline(tmp, "noise", "--seed", "1", "--shape", "4", "--output",
        tmp.resolve("no/n.safetensors").toString()), "--output", "does not exist");
    assertBadInput(runOffline(tmp, "noise", "--shape", "4", "--output", out), "--seed");
    // A product past 2^63 (it used to overflow), and more draws than the heap holds.
    assertBadInput(runOffline(tmp, "noise", "--seed", "1", "--shape", "4294967296,4294967296",
        "--output", out), "--shape 4294967296,4294967296", "over 2^63 elements");
    assertBadInput(runOffline(tmp, "noise", "--seed", "1", "--shape", "1", "--count",
        "2147483647", "--output", out), "--count 2147483647", "more than half the JVM's heap");
    assertEquals(List.of(), list(tmp));
    Path fifo = TestData.mkfifo(tmp.resolve("f.safetensors"));
    assertBadInput(runOffline(tmp, "noise", "--seed", "1", "--shape", "4", "--output",
        fifo.toString()), "--output " + fifo + ": not a regular file");
    assertTrue(TestData.isOther(fifo), "the FIFO stays a FIFO");
    assertEquals(List.of("f.safetensors"), list(tmp));
  }
}
