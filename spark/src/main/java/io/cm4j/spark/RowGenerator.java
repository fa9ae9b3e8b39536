package io.cm4j.spark;

import io.cm4j.Cm4jException;
import io.cm4j.ErrorCode;
import io.cm4j.hub.HubException;
import io.cm4j.pipeline.CMStochasticIterativeScheduler;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import scala.Tuple2;

/**
 * Turns a partition of normalized requests (with each row's position in the table) into
 * result rows, lazily, one image per row through the executor's shared engine. A request's
 * own problems become its {@code error}; an engine failure fails the task, so that Spark runs
 * it again. The seed decides every byte, so a task run twice writes the same rows.
 */
final class RowGenerator implements FlatMapFunction<Iterator<Tuple2<Row, Long>>, Row> {
  private static final long serialVersionUID = 1L;
  /** Names images/ID.png: no separators, nothing hidden, a sane length. */
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}");
  private static final int MALFORMED_SHOWN = 200;

  private final GenerationOptions options;
  private final Map<String, Long> duplicates; // id -> how many rows have it
  private final int width; // columns of the normalized request table

  RowGenerator(GenerationOptions options, Map<String, Long> duplicates, int width) {
    this.options = options;
    this.duplicates = Map.copyOf(duplicates);
    this.width = width;
  }

  /** The result table: the request columns, then what the generation adds. */
  static StructType resultSchema(StructType requests) {
    return requests.add(SparkGeneration.INDEX, DataTypes.LongType, false)
        .add(SparkGeneration.SCHEDULE, DataTypes.StringType)
        .add(SparkGeneration.STATUS, DataTypes.StringType, false)
        .add(SparkGeneration.ERROR, DataTypes.StringType)
        .add(SparkGeneration.SHA256, DataTypes.StringType)
        .add(SparkGeneration.PNG, DataTypes.BinaryType);
  }

  @Override
  public Iterator<Row> call(Iterator<Tuple2<Row, Long>> rows) {
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return rows.hasNext();
      }

      @Override
      public Row next() {
        Tuple2<Row, Long> row = rows.next();
        try {
          return generate(row._1(), row._2());
        } catch (IOException | Cm4jException | HubException e) {
          throw new IllegalStateException("cm4j engine (" + options + "): " + e.getMessage(), e);
        }
      }
    };
  }

  private Row generate(Row request, long index) throws IOException, Cm4jException, HubException {
    List<Object> values = new ArrayList<>(width + 6);
    for (int i = 0; i < width; i++) {
      values.add(request.get(i));
    }
    int id = request.fieldIndex(Requests.ID);
    if (request.isNullAt(id)) {
      values.set(id, "row-" + index);
    }
    values.add(index);
    Outcome outcome = outcome(request, (String) values.get(id));
    if (outcome.label != null) {
      values.set(request.fieldIndex(Requests.CLASS), outcome.label);
    }
    values.add(outcome.schedule);
    values.add(outcome.error == null ? "ok" : "error");
    values.add(outcome.error);
    values.add(outcome.png == null ? null : sha256(outcome.png));
    values.add(outcome.png);
    return RowFactory.create(values.toArray());
  }

  /** The image, or why there is none; the label drawn when the request has none. */
  private record Outcome(String schedule, String error, byte[] png, Long label) {
    static Outcome error(String schedule, String error) {
      return new Outcome(schedule, error, null, null);
    }
  }

  private Outcome outcome(Row request, String id) throws IOException, Cm4jException, HubException {
    String corrupt = request.getAs(Requests.CORRUPT);
    if (corrupt != null) {
      String shown = corrupt.length() > MALFORMED_SHOWN
          ? corrupt.substring(0, MALFORMED_SHOWN) + "..." : corrupt;
      return Outcome.error(null, "malformed request (expected integer class, seed, steps, an "
          + "array of integer timesteps, a string id): " + shown);
    }
    Long steps = request.getAs(Requests.STEPS);
    List<Long> timesteps = request.isNullAt(request.fieldIndex(Requests.TIMESTEPS)) ? null
        : request.getList(request.fieldIndex(Requests.TIMESTEPS));
    String schedule = timesteps != null
        ? "timesteps=" + timesteps.stream().map(String::valueOf).collect(Collectors.joining(","))
        : "steps=" + (steps == null ? 1 : steps);
    if (!ID.matcher(id).matches()) {
      return Outcome.error(schedule, "id '" + id + "': expected 1 to 128 letters, digits, '.', "
          + "'_' or '-', not starting with '.' (it names images/" + id + ".png)");
    }
    if (duplicates.containsKey(id)) {
      return Outcome.error(schedule, "id '" + id + "': " + duplicates.get(id) + " requests have "
          + "it (it names images/" + id + ".png)");
    }
    Long seed = request.getAs(Requests.SEED);
    if (seed == null) {
      return Outcome.error(schedule, "seed: missing");
    }
    if (steps != null && timesteps != null) {
      return Outcome.error(schedule, "steps and timesteps: give one or the other");
    }
    GenerationRequest.Builder b = GenerationRequest.builder().seed(seed);
    try {
      if (timesteps != null) {
        b.timesteps(timesteps.stream().mapToInt(t -> Math.toIntExact(t)).toArray());
      } else {
        b.numInferenceSteps(Math.toIntExact(steps == null ? 1 : steps));
      }
    } catch (ArithmeticException e) {
      return Outcome.error(schedule, schedule + ": out of range");
    }
    ConsistencyModelPipeline pipeline = ExecutorEngines.forTask(options);
    Long label = request.getAs(Requests.CLASS);
    if (label != null) {
      if (!pipeline.unet().isClassConditional()) {
        return Outcome.error(schedule, "class: the model is unconditional");
      }
      b.classLabels(label);
    }
    GenerationRequest built = b.build();
    try { // the scheduler's refusal, named after the column (as generate --steps does)
      new CMStochasticIterativeScheduler(pipeline.schedulerConfig())
          .setTimesteps(built.numInferenceSteps(), built.timesteps());
    } catch (IllegalArgumentException e) {
      return Outcome.error(schedule, schedule + ": " + e.getMessage());
    }
    GenerationResult result;
    try {
      result = pipeline.generate(built);
    } catch (IllegalArgumentException e) { // a label out of range
      return Outcome.error(schedule, "class: " + e.getMessage());
    } catch (Cm4jException | IllegalStateException e) { // the engine's (or it is closed)
      if (!(e instanceof Cm4jException c) || c.code() != ErrorCode.INVALID_ARGUMENT) {
        ExecutorEngines.discard(pipeline, e);
      }
      throw e;
    }
    long[] labels = result.classLabels();
    return new Outcome(schedule, null, png(result), labels == null ? null : labels[0]);
  }

  /** The PNG `cm4j generate` writes for the result's image (ImageOutput.writePng's encoder). */
  static byte[] png(GenerationResult result) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    if (!ImageIO.write(result.toBufferedImages().get(0), "png", bytes)) {
      throw new IOException("no PNG writer");
    }
    return bytes.toByteArray();
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }
}
