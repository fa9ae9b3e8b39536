package io.cm4j.cli;

import static io.cm4j.cli.CliRun.assertBadInput;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Golden;
import io.cm4j.cli.CliRun.Result;
import io.cm4j.weights.Json;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code cm4j bench} on the tiny model: its JSON lines, its table, and its usage errors. */
class BenchCommandTest {
  private static final String TINY = Golden.file("tiny/pipeline").toString();
  private static final String TINY_CONFIG = Golden.file("tiny/pipeline/unet/config.json")
      .toString();

  static Result run(String... args) {
    List<String> all = new ArrayList<>(List.of("bench"));
    all.addAll(List.of(args));
    return CliRun.run(Map.of(), all.toArray(String[]::new));
  }

  @Test
  void jsonLinesOfTheTinyModel() {
    Result r = run("--model", TINY, "--batch", "1,3", "--iters", "3", "--threads", "2", "--json");
    assertEquals(0, r.exit(), r.err());
    List<Map<String, Object>> rows = jsonLines(r.out());
    assertEquals(2, rows.size(), r.out());
    for (int i = 0; i < rows.size(); i++) {
      Map<String, Object> row = rows.get(i);
      assertEquals(i == 0 ? 1L : 3L, number(row, "batch").longValue(), r.out());
      assertEquals("fp32", row.get("dtype"));
      assertEquals("cpu:2", row.get("device"));
      assertEquals(2L, number(row, "threads").longValue());
      assertEquals(3L, number(row, "iters").longValue());
      assertEquals(1L, number(row, "warmup").longValue());
      assertSensible(row);
    }
    // the tiny model's packed fp32 weights are the same whatever the batch
    assertEquals(rows.get(0).get("weights_mb"), rows.get(1).get("weights_mb"));
  }

  @Test
  void jsonOfAConfigWithRandomWeights() {
    Result r = run("--config", TINY_CONFIG, "--random-weights", "3", "--batch", "2",
        "--iters", "2", "--warmup", "0", "--device", "cpu:1", "--json");
    assertEquals(0, r.exit(), r.err());
    List<Map<String, Object>> rows = jsonLines(r.out());
    assertEquals(1, rows.size(), r.out());
    assertEquals(1L, number(rows.get(0), "threads").longValue());
    assertEquals(0L, number(rows.get(0), "warmup").longValue());
    assertSensible(rows.get(0));
  }

  @Test
  @SuppressWarnings("unchecked")
  void slowestOpsOfAProfiledPass() {
    Result r = run("--model", TINY, "--batch", "2", "--iters", "1", "--device", "cpu:1",
        "--ops", "5", "--json");
    assertEquals(0, r.exit(), r.err());
    Map<String, Object> row = jsonLines(r.out()).get(0);
    List<Map<String, Object>> ops = (List<Map<String, Object>>) row.get("slowest_ops");
    assertEquals(5, ops.size(), r.out());
    double shares = 0;
    for (int i = 0; i < ops.size(); i++) {
      assertTrue(!((String) ops.get(i).get("name")).isEmpty(), r.out());
      double ms = number(ops.get(i), "ms").doubleValue();
      assertTrue(ms >= 0 && (i == 0 || ms <= number(ops.get(i - 1), "ms").doubleValue()),
          "slowest first: " + r.out());
      shares += number(ops.get(i), "share").doubleValue();
    }
    assertTrue(shares > 0 && shares <= 1.0001, r.out());

    Result table = run("--model", TINY, "--batch", "1", "--iters", "1", "--device", "cpu:1",
        "--ops", "3");
    assertEquals(0, table.exit(), table.err());
    List<String> lines = table.out().strip().lines().toList();
    assertEquals(7, lines.size(), table.out());
    assertEquals("  slowest ops at batch 1 (each waited for):", lines.get(3));
    for (String line : lines.subList(4, 7)) {
      assertTrue(line.matches(" +\\d+\\.\\d{3} ms +\\d+\\.\\d%  \\S+"), line);
    }
  }

  @Test
  void tableOfTheTinyModel() {
    Result r = run("--model", TINY, "--batch", "1,2", "--iters", "1", "--device", "cpu:1");
    assertEquals(0, r.exit(), r.err());
    List<String> lines = r.out().strip().lines().toList();
    assertEquals(4, lines.size(), r.out());
    assertTrue(lines.get(0).matches("bench: cpu:1 fp32, opened in \\d+\\.\\d\\d s; 1 timed "
        + "pass\\(es\\) per batch after 1 warm-up"), lines.get(0));
    assertEquals(List.of("batch", "dtype", "threads", "best", "s/image", "median", "s/image",
        "images/s", "weights", "MB", "arena", "MB", "peak", "RSS", "MB"), words(lines.get(1)));
    for (int i = 0; i < 2; i++) {
      List<String> cells = words(lines.get(2 + i));
      assertEquals(9, cells.size(), lines.get(2 + i));
      assertEquals(List.of(String.valueOf(i + 1), "fp32", "1"), cells.subList(0, 3));
      // one timed pass: its best is its median, and images/s is its inverse
      double best = Double.parseDouble(cells.get(3));
      assertTrue(best > 0, lines.get(2 + i));
      assertEquals(cells.get(3), cells.get(4));
      assertEquals(1 / best, Double.parseDouble(cells.get(5)), 0.01 / best + 1e-3);
      for (String cell : cells.subList(6, 9)) {
        assertTrue(Double.parseDouble(cell) > 0, lines.get(2 + i));
      }
    }
  }

  @Test
  void helpExplainsTheOptions() {
    Result r = run("--help");
    assertEquals(0, r.exit());
    for (String option : List.of("--model", "--config", "--random-weights", "--batch", "--iters",
        "--warmup", "--device", "--dtype", "--threads", "--ops", "--json", "median", "VmHWM")) {
      assertTrue(r.out().contains(option), option + " in: " + r.out());
    }
  }

  @Test
  void usageErrors() {
    assertBadInput(run("--batch", "1"),
        "expected --model DIR|FILE, or --config config.json with --random-weights SEED");
    assertBadInput(run("--config", TINY_CONFIG), "--config needs --random-weights SEED");
    assertBadInput(run("--model", TINY, "--random-weights", "1"), "--model cannot be combined");
    assertBadInput(run("--model", TINY, "--batch", "1,0"), "--batch", "at least 1", "found 0");
    assertBadInput(run("--model", TINY, "--batch", "1,x"), "--batch", "'x'");
    assertBadInput(run("--model", TINY, "--iters", "0"), "--iters", "found 0");
    assertBadInput(run("--model", TINY, "--iters", "many"), "--iters", "'many'");
    assertBadInput(run("--model", TINY, "--warmup", "-1"), "--warmup", "found -1");
    assertBadInput(run("--model", TINY, "--iters", "2147483647"), "--iters",
        "1 to 100000 timed passes", "found 2147483647");
    assertBadInput(run("--model", TINY, "--warmup", "2147483647"), "--warmup", "0 to 100000");
    assertBadInput(run("--model", TINY, "--ops", "-2"), "--ops", "found -2");
    assertBadInput(run("--model", TINY, "--threads", "0"), "--threads 0", "found 0");
    assertBadInput(run("--model", TINY, "--threads", "2", "--device", "cpu:4"),
        "--threads 2", "contradicts --device cpu:4");
    assertBadInput(run("--model", TINY, "--threads", "2", "--device", "cuda"),
        "--threads 2", "CPU only");
    assertBadInput(run("--model", TINY, "--device", "tpu"), "--device", "invalid device 'tpu'");
    assertBadInput(run("--model", TINY, "--dtype", "fp16"), "--dtype fp16", "expected fp32");
    assertBadInput(run("--model", TINY + "/absent"), "--model", "absent");
    assertBadInput(run("--model", TINY, "--batch", "100000000"), "--batch 100000000");
    assertBadInput(run("--model", TINY, "--json", "extra"), "extra");
  }

  // --- helpers ---

  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> jsonLines(String out) {
    return out.strip().lines().map(l -> (Map<String, Object>) Json.parse(l)).toList();
  }

  private static Number number(Map<String, Object> row, String key) {
    assertTrue(row.get(key) instanceof Number, key + " in " + row);
    return (Number) row.get(key);
  }

  /** Positive times and memory, best <= median, images/s the inverse of the best. */
  private static void assertSensible(Map<String, Object> row) {
    double best = number(row, "best_s_per_image").doubleValue();
    double median = number(row, "median_s_per_image").doubleValue();
    assertTrue(best > 0 && best <= median, row.toString());
    assertEquals(1 / best, number(row, "images_per_s").doubleValue(), 1e-5 / best, row.toString());
    for (String key : List.of("open_s", "weights_mb", "arena_mb", "peak_rss_mb")) {
      assertTrue(number(row, key).doubleValue() > 0, key + " in " + row);
    }
  }

  private static List<String> words(String line) {
    return List.of(line.strip().split("\\s+"));
  }
}
