package io.cm4j.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.cli.Main;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.weights.Json;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/** The Spark job in local[2] mode against the Java pipeline and `cm4j generate`. */
class SparkGenerationTest extends LocalSpark {
  @Override
  String master() {
    return "local[2]";
  }

  private SparkGeneration.Summary generate(Path requests, Path out) throws Exception {
    return SparkGeneration.write(SparkGeneration.generate(Requests.read(spark,
        requests.toString()), GenerationOptions.of(TinyModel.path().toString())), out.toString());
  }

  @Test
  void twoHundredRequestsAreTheJavaPipelinesImages() throws Exception {
    List<TinyModel.Request> requests = TinyModel.requests(200);
    Path file = TinyModel.writeJsonl(tmp.resolve("requests.jsonl"), TinyModel.jsonLines(requests));
    Path out = tmp.resolve("out200");
    int enginesBefore = ExecutorEngines.openedCount();
    assertEquals(new SparkGeneration.Summary(200, 0), generate(file, out));
    assertTrue(ExecutorEngines.openedCount() - enginesBefore <= 1,
        "one engine for every task of the executor");

    try (Stream<Path> files = Files.list(out.resolve("images"))) {
      assertEquals(requests.stream().map(r -> r.id() + ".png").sorted().toList(),
          files.map(p -> p.getFileName().toString()).sorted().toList(),
          "one PNG per request and nothing else");
    }
    List<Map<String, Object>> manifest = jsonl(out.resolve("manifest.jsonl"));
    assertEquals(200, manifest.size());
    for (int i = 0; i < requests.size(); i++) {
      TinyModel.Request r = requests.get(i);
      byte[] png = Files.readAllBytes(out.resolve("images/" + r.id() + ".png"));
      assertArrayEquals(tiny.png(r), png, r.json());
      Map<String, Object> line = manifest.get(i);
      assertEquals(r.id(), line.get("id"), "manifest in request order");
      assertEquals(r.classLabel(), ((Number) line.get("class")).longValue());
      assertEquals(r.seed(), ((Number) line.get("seed")).longValue());
      assertEquals("ok", line.get("status"));
      assertTrue(line.containsKey("error") && line.get("error") == null, line.toString());
      assertEquals(RowGenerator.sha256(png), line.get("sha256"));
      assertEquals(r.timesteps() != null ? "timesteps=22,0"
          : "steps=" + (r.steps() == null ? 1 : r.steps()), line.get("schedule"));
    }
    List<Row> parquet = spark.read().parquet(out.resolve("manifest.parquet").toString())
        .collectAsList();
    assertEquals(200, parquet.size());
    for (int i = 0; i < parquet.size(); i++) {
      assertEquals(manifest.get(i).get("id"), parquet.get(i).getAs("id"));
      assertEquals(manifest.get(i).get("sha256"), parquet.get(i).getAs("sha256"));
    }
    try (Stream<Path> files = Files.list(out)) {
      assertEquals(List.of("images", "manifest.jsonl", "manifest.parquet"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }

    // `cm4j generate` itself, for one request of each schedule
    for (TinyModel.Request r : List.of(requests.get(0), requests.get(1), requests.get(5))) {
      Path cli = tmp.resolve("cli-" + r.id() + ".png");
      StringWriter err = new StringWriter();
      int exit = Main.commandLine(new PrintWriter(new StringWriter()), new PrintWriter(err))
          .execute(cliArgs(r, cli));
      assertEquals(0, exit, err.toString());
      assertArrayEquals(Files.readAllBytes(cli),
          Files.readAllBytes(out.resolve("images/" + r.id() + ".png")), r.json());
    }
  }

  private static String[] cliArgs(TinyModel.Request r, Path png) {
    String schedule = r.timesteps() != null ? "--timesteps=22,0"
        : "--steps=" + (r.steps() == null ? 1 : r.steps());
    return new String[] {"generate", "--model", TinyModel.path().toString(), "--device", "cpu",
        "--class", Long.toString(r.classLabel()), "--seed", Long.toString(r.seed()), schedule,
        "--out", png.toString()};
  }

  @Test
  void badRequestsLandInTheErrorColumn() throws Exception {
    Path file = TinyModel.writeJsonl(tmp.resolve("bad.jsonl"), List.of(
        "{\"id\": \"good\", \"class\": 3, \"seed\": 4, \"steps\": 2}",
        "{\"id\": \"class-range\", \"class\": 1000, \"seed\": 1}",
        "{\"id\": \"class-negative\", \"class\": -1, \"seed\": 1}",
        "{\"id\": \"ascending\", \"class\": 1, \"seed\": 1, \"timesteps\": [0, 22]}",
        "{\"id\": \"too-late\", \"class\": 1, \"seed\": 1, \"timesteps\": [40, 0]}",
        "{\"id\": \"no-steps\", \"class\": 1, \"seed\": 1, \"steps\": 0}",
        "{\"id\": \"no-seed\", \"class\": 1}",
        "{\"id\": \"both\", \"class\": 1, \"seed\": 1, \"steps\": 2, \"timesteps\": [22, 0]}",
        "{\"id\": \"../escape\", \"class\": 1, \"seed\": 1}",
        "{\"id\": \"twice\", \"class\": 1, \"seed\": 1}",
        "{\"id\": \"twice\", \"class\": 2, \"seed\": 2}",
        "{\"id\": \"text-seed\", \"class\": 1, \"seed\": \"x\"}",
        "{not json",
        "{\"class\": 5, \"seed\": 6}",
        "{\"id\": \"drawn\", \"seed\": 7}"));
    Path out = tmp.resolve("bad");
    assertEquals(new SparkGeneration.Summary(3, 12), generate(file, out));

    Map<String, Map<String, Object>> byId = new HashMap<>();
    List<Map<String, Object>> manifest = jsonl(out.resolve("manifest.jsonl"));
    assertEquals(15, manifest.size());
    manifest.forEach(m -> byId.merge((String) m.get("id"), m, (a, b) -> a));
    assertError(byId, "class-range", "class: class label 1000 is out of range");
    assertError(byId, "class-negative", "class: class label -1 is out of range");
    assertError(byId, "ascending", "timesteps=0,22: `timesteps` must be in descending order");
    assertError(byId, "too-late", "timesteps=40,0: `timesteps` must start before");
    assertError(byId, "no-steps", "steps=0: `num_inference_steps` must be at least 1");
    assertError(byId, "no-seed", "seed: missing");
    assertError(byId, "both", "steps and timesteps: give one or the other");
    assertError(byId, "../escape", "id '../escape': expected 1 to 128 letters");
    assertError(byId, "twice", "id 'twice': 2 requests have it");
    assertError(byId, "row-12", "malformed request");
    assertTrue(manifest.stream().anyMatch(m -> String.valueOf(m.get("error"))
        .contains("\"seed\": \"x\"")), "the malformed line is quoted: " + manifest);

    // the good rows, an id made from the row index and a label drawn from the seed included
    assertEquals("ok", byId.get("good").get("status"));
    assertEquals("ok", byId.get("row-13").get("status"));
    long drawn = ConsistencyModelPipeline.randomClassLabels(7, 1, 1000)[0];
    assertEquals(drawn, ((Number) byId.get("drawn").get("class")).longValue());
    assertArrayEquals(tiny.png(new TinyModel.Request("drawn", drawn, 7, null, null)),
        Files.readAllBytes(out.resolve("images/drawn.png")));
    assertArrayEquals(tiny.png(new TinyModel.Request("good", 3, 4, 2, null)),
        Files.readAllBytes(out.resolve("images/good.png")));
    try (Stream<Path> files = Files.list(out.resolve("images"))) {
      assertEquals(List.of("drawn.png", "good.png", "row-13.png"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  private static void assertError(Map<String, Map<String, Object>> byId, String id,
      String reason) {
    Map<String, Object> row = byId.get(id);
    assertEquals("error", row.get("status"), id);
    assertTrue(String.valueOf(row.get("error")).startsWith(reason), id + ": " + row);
    assertNull(row.get("sha256"), id);
  }

  @Test
  void parquetRequestsOfNarrowerIntegersGiveTheSameImages() throws Exception {
    StructType schema = new StructType().add("id", DataTypes.StringType)
        .add("class", DataTypes.IntegerType).add("seed", DataTypes.LongType)
        .add("timesteps", DataTypes.createArrayType(DataTypes.IntegerType))
        .add("note", DataTypes.StringType);
    List<Row> rows = List.of(RowFactory.create("p0", 145, 12L, List.of(22, 0), "kept"),
        RowFactory.create("p1", 7, 3L, null, "too"));
    Path file = tmp.resolve("requests.parquet");
    spark.createDataFrame(rows, schema).write().parquet(file.toString());

    Dataset<Row> results = SparkGeneration.generate(Requests.read(spark, file.toString()),
        GenerationOptions.of(TinyModel.path().toString()));
    Map<String, Row> byId = results.collectAsList().stream()
        .collect(Collectors.toMap(r -> r.getAs("id"), r -> r));
    assertArrayEquals(tiny.png(new TinyModel.Request("p0", 145, 12, null, new long[] {22, 0})),
        (byte[]) byId.get("p0").getAs("png"));
    assertArrayEquals(tiny.png(new TinyModel.Request("p1", 7, 3, null, null)),
        (byte[]) byId.get("p1").getAs("png"));
    assertEquals("kept", byId.get("p0").getAs("note"), "other request columns pass through");

    spark.createDataFrame(List.of(RowFactory.create("x", 1.5)), new StructType()
        .add("id", DataTypes.StringType).add("class", DataTypes.DoubleType))
        .write().parquet(tmp.resolve("double.parquet").toString());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Requests.read(spark, tmp.resolve("double.parquet").toString()));
    assertEquals("column class is double, expected an integer", e.getMessage());
  }

  private static List<Map<String, Object>> jsonl(Path file) throws Exception {
    return Files.readAllLines(file).stream().map(Json::parseObject).toList();
  }
}
