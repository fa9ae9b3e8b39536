package io.cm4j.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;

/**
 * Tasks that die mid-way, after some of their images were made and written, and run again:
 * local[2,4] allows 4 attempts per task.
 */
class TaskRetryTest extends LocalSpark {
  /** First attempts killed; the tasks run in this JVM (local mode), so a static counts them. */
  static final AtomicInteger KILLED = new AtomicInteger();
  /** Rows each task attempt has seen. */
  static final Map<Long, Integer> SEEN = new ConcurrentHashMap<>();

  @Override
  String master() {
    return "local[2,4]";
  }

  @Test
  void aTaskKilledMidWayAndRunAgainWritesTheSameOutput() throws Exception {
    List<TinyModel.Request> requests = TinyModel.requests(100); // 2 tasks of at most 64 rows
    Path file = TinyModel.writeJsonl(tmp.resolve("requests.jsonl"), TinyModel.jsonLines(requests));
    Dataset<Row> results = SparkGeneration.generate(Requests.read(spark, file.toString()),
        GenerationOptions.of(TinyModel.path().toString()));
    // every task's first attempt dies at its 10th row, after 9 images were generated and
    // handed to the writer
    Dataset<Row> dying = results.map((MapFunction<Row, Row>) row -> {
      TaskContext task = TaskContext.get();
      if (task.attemptNumber() == 0
          && SEEN.merge(task.taskAttemptId(), 1, Integer::sum) == 10) {
        KILLED.incrementAndGet();
        throw new IllegalStateException("killed for the test");
      }
      return row;
    }, Encoders.row(results.schema()));
    Path out = tmp.resolve("out");
    assertEquals(new SparkGeneration.Summary(100, 0), SparkGeneration.write(dying,
        out.toString()));
    assertTrue(KILLED.get() >= 2, "every task's first attempt was killed: " + KILLED.get());

    try (Stream<Path> files = Files.list(out.resolve("images"))) {
      assertEquals(requests.stream().map(r -> r.id() + ".png").sorted().toList(),
          files.map(p -> p.getFileName().toString()).sorted().toList(),
          "one PNG per request, nothing left from the killed attempts");
    }
    List<String> manifest = Files.readAllLines(out.resolve("manifest.jsonl"));
    assertEquals(100, manifest.size());
    for (int i = 0; i < requests.size(); i++) {
      TinyModel.Request r = requests.get(i);
      byte[] png = Files.readAllBytes(out.resolve("images/" + r.id() + ".png"));
      assertArrayEquals(tiny.png(r), png, r.json());
      assertTrue(manifest.get(i).contains("\"id\":\"" + r.id() + "\"")
          && manifest.get(i).contains(RowGenerator.sha256(png)), manifest.get(i));
    }
  }

  /** An engine that fails (here: closed under the tasks) is dropped; the retries open another. */
  @Test
  void aFailedEngineIsClosedAndTheRetryOpensAnother() throws Exception {
    List<TinyModel.Request> requests = TinyModel.requests(4);
    Path file = TinyModel.writeJsonl(tmp.resolve("few.jsonl"), TinyModel.jsonLines(requests));
    GenerationOptions options = GenerationOptions.of(TinyModel.path().toString());
    ExecutorEngines.forTask(options).close(); // every pass on the cached engine fails from now
    int opened = ExecutorEngines.openedCount();
    Path out = tmp.resolve("out-failed-engine");
    assertEquals(new SparkGeneration.Summary(4, 0), SparkGeneration.write(
        SparkGeneration.generate(Requests.read(spark, file.toString()), options), out.toString()));
    assertTrue(ExecutorEngines.openedCount() > opened, "a fresh engine was opened");
    for (TinyModel.Request r : requests) {
      assertArrayEquals(tiny.png(r), Files.readAllBytes(out.resolve("images/" + r.id() + ".png")),
          r.json());
    }
  }
}
