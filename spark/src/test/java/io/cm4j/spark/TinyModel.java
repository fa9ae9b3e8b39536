package io.cm4j.spark;

import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.LongStream;

/**
 * The tiny golden model, requests over it, and each request's PNG as the Java pipeline and
 * {@code cm4j generate}'s writer make it alone: what the Spark job must reproduce byte for
 * byte.
 */
final class TinyModel implements AutoCloseable {
  private final ConsistencyModelPipeline pipeline;

  TinyModel() throws Exception {
    this.pipeline = ConsistencyModelPipeline.open(path());
  }

  static Path path() {
    return Path.of(System.getProperty("cm4j.golden", "../../shared/golden"), "tiny/pipeline");
  }

  /** One request: class and seed, then steps (timesteps null) or timesteps. */
  record Request(String id, long classLabel, long seed, Integer steps, long[] timesteps) {
    String json() {
      return "{\"id\": \"" + id + "\", \"class\": " + classLabel + ", \"seed\": " + seed
          + (timesteps != null ? ", \"timesteps\": " + LongStream.of(timesteps)
              .mapToObj(Long::toString).collect(Collectors.joining(", ", "[", "]"))
              : steps != null ? ", \"steps\": " + steps : "")
          + "}";
    }
  }

  /** {@code n} requests over many classes and seeds: one step, two, custom timesteps. */
  static List<Request> requests(int n) {
    List<Request> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      long seed = i % 5 == 0 ? (1L << 40) + i : 7919L * i;
      long label = (37L * i + 11) % 1000;
      String id = String.format("r%03d", i);
      out.add(switch (i % 3) {
        case 0 -> new Request(id, label, seed, null, null);
        case 1 -> new Request(id, label, seed, 2, null);
        default -> new Request(id, label, seed, null, new long[] {22, 0});
      });
    }
    return out;
  }

  static Path writeJsonl(Path file, List<String> lines) throws IOException {
    return Files.write(file, lines);
  }

  static List<String> jsonLines(List<Request> requests) {
    return requests.stream().map(Request::json).toList();
  }

  /** The PNG the pipeline makes for {@code r}, written by GenerationResult.writePng. */
  byte[] png(Request r) throws Exception {
    GenerationRequest.Builder b = GenerationRequest.builder().classLabels(r.classLabel())
        .seed(r.seed());
    if (r.timesteps() != null) {
      b.timesteps(LongStream.of(r.timesteps()).mapToInt(t -> (int) t).toArray());
    } else if (r.steps() != null) {
      b.numInferenceSteps(r.steps());
    }
    Path file = Files.createTempFile("cm4j-spark-expected", ".png");
    try {
      pipeline.generate(b.build()).writePng(0, file);
      return Files.readAllBytes(file);
    } finally {
      Files.delete(file);
    }
  }

  @Override
  public void close() {
    pipeline.close();
  }
}
