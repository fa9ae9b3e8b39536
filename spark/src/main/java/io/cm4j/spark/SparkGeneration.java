package io.cm4j.spark;

import static org.apache.spark.sql.functions.col;

import java.io.IOException;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.ChecksumFileSystem;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.BytesWritable;
import org.apache.hadoop.io.Text;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;

/**
 * Generation as a Spark job: a table of requests in, a table of results out, and the results
 * written as PNG files and a manifest.
 *
 * <pre>{@code
 * Dataset<Row> requests = Requests.read(spark, "requests.jsonl");
 * Dataset<Row> results = SparkGeneration.generate(requests, GenerationOptions.of("/models/cd"));
 * SparkGeneration.write(results, "out");   // out/images/ID.png, out/manifest.jsonl, .parquet
 * }</pre>
 *
 * <p>Each executor JVM opens the engine once and its tasks share it (see
 * {@link GenerationOptions} for the model and device). The seed decides every byte of an
 * image, so a task that Spark runs again, after a failure or speculatively, makes the same
 * rows, and the files are committed through Spark's output committer, never half-written.
 */
public final class SparkGeneration {
  /** The request's position in the table (the order of the manifest). */
  public static final String INDEX = "index";
  /** {@code steps=N} or {@code timesteps=T,...}: what ran, or would have. */
  public static final String SCHEDULE = "schedule";
  /** {@code ok} or {@code error}. */
  public static final String STATUS = "status";
  /** Why a request made no image; null when it did. */
  public static final String ERROR = "error";
  /** The lowercase hex SHA-256 of the PNG. */
  public static final String SHA256 = "sha256";
  /** The PNG file's bytes, exactly what {@code cm4j generate} writes; null on error. */
  public static final String PNG = "png";

  static final String IMAGES = "images";
  static final String MANIFEST_JSONL = "manifest.jsonl";
  static final String MANIFEST_PARQUET = "manifest.parquet";
  private static final String STAGING = "_manifest.staging";
  private static final long ROWS_PER_TASK = 64;
  private static final long MAX_TASKS = 100_000;

  /** How a write went. */
  public record Summary(long ok, long errors) {}

  private SparkGeneration() {}

  /**
   * The results of {@code requests} (any table {@link Requests#normalize} takes): the request
   * columns, with a missing {@code id} made {@code row-INDEX} and a missing {@code class} the
   * label drawn from the seed (as {@code cm4j generate} without {@code --class}), then
   * {@link #INDEX}, {@link #SCHEDULE}, {@link #STATUS}, {@link #ERROR}, {@link #SHA256} and
   * {@link #PNG}. Lazy, like any Dataset, except for a job that finds ids used twice.
   */
  public static Dataset<Row> generate(Dataset<Row> requests, GenerationOptions options) {
    Dataset<Row> normalized = Requests.normalize(requests);
    JavaPairRDD<Row, Long> indexed = normalized.javaRDD().zipWithIndex();
    Map<String, Long> duplicates = indexed
        .mapToPair(r -> new Tuple2<>(r._1().isNullAt(0) ? "row-" + r._2() : r._1().getString(0),
            1L))
        .reduceByKey(Long::sum).filter(e -> e._2() > 1).collectAsMap();
    // a task per ROWS_PER_TASK requests at most, whatever the input's splits: the tasks stay
    // short (cheap to run again) and spread over every executor
    long rows = indexed.count();
    int tasks = (int) Math.min(MAX_TASKS, Math.max(
        requests.sparkSession().sparkContext().defaultParallelism(),
        (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK));
    JavaRDD<Row> results = indexed.repartition(tasks)
        .mapPartitions(new RowGenerator(options, duplicates, normalized.schema().size()));
    return requests.sparkSession().createDataFrame(results,
        RowGenerator.resultSchema(normalized.schema()));
  }

  /**
   * Writes {@code results} (from {@link #generate}) under {@code outputDir}, a path of any file
   * system Hadoop knows: {@code images/ID.png} for every good row, and {@code manifest.jsonl}
   * and {@code manifest.parquet} with id, class, seed, schedule, status, error and sha256 for
   * every row, in request order. All or nothing: after a failure none of them is left.
   *
   * @throws IllegalArgumentException when the folder already holds any of them
   */
  public static Summary write(Dataset<Row> results, String outputDir) throws IOException {
    SparkSession spark = results.sparkSession();
    Configuration conf = new Configuration(spark.sparkContext().hadoopConfiguration());
    conf.setBoolean("mapreduce.fileoutputcommitter.marksuccessfuljobs", false);
    Path out = new Path(outputDir);
    FileSystem fs = raw(out.getFileSystem(conf));
    Path images = new Path(out, IMAGES);
    Path jsonl = new Path(out, MANIFEST_JSONL);
    Path parquet = new Path(out, MANIFEST_PARQUET);
    Path staging = new Path(out, STAGING);
    for (Path p : new Path[] {images, jsonl, parquet, staging}) {
      if (fs.exists(p)) {
        throw new IllegalArgumentException(p + " exists already: write to a new folder");
      }
    }
    Dataset<Row> kept = results.persist(StorageLevel.MEMORY_AND_DISK());
    boolean done = false;
    try {
      kept.where(col(STATUS).equalTo("ok")).select(Requests.ID, PNG).javaRDD()
          .mapToPair(r -> new Tuple2<>(new Text(r.getString(0)), new BytesWritable(r.getAs(1))))
          .saveAsNewAPIHadoopFile(images.toString(), Text.class, BytesWritable.class,
              PngOutputFormat.class, conf);
      long ok = kept.where(col(STATUS).equalTo("ok")).count();
      long all = kept.count();
      // in parallel first, then one file each, in request order
      kept.select(INDEX, Requests.ID, Requests.CLASS, Requests.SEED, SCHEDULE, STATUS, ERROR,
          SHA256).write().parquet(new Path(staging, "parts").toString());
      Dataset<Row> manifest = spark.read().parquet(new Path(staging, "parts").toString())
          .coalesce(1).sortWithinPartitions(INDEX).drop(INDEX);
      manifest.write().option("ignoreNullFields", false).json(new Path(staging, "json")
          .toString());
      manifest.write().parquet(new Path(staging, "parquet").toString());
      moveSinglePart(fs, new Path(staging, "json"), jsonl);
      moveSinglePart(fs, new Path(staging, "parquet"), parquet);
      done = true;
      return new Summary(ok, all - ok);
    } finally {
      kept.unpersist();
      fs.delete(staging, true);
      if (!done) {
        for (Path p : new Path[] {images, jsonl, parquet}) {
          fs.delete(p, true);
        }
      }
    }
  }

  private static void moveSinglePart(FileSystem fs, Path dir, Path target) throws IOException {
    FileStatus[] parts = fs.globStatus(new Path(dir, "part-*"));
    if (parts == null || parts.length != 1) {
      throw new IOException(dir + ": expected one part file, found "
          + (parts == null ? 0 : parts.length));
    }
    if (!fs.rename(parts[0].getPath(), target)) {
      throw new IOException("cannot move " + parts[0].getPath() + " to " + target);
    }
  }

  /** The file system without Hadoop's .crc side files, where it has them. */
  private static FileSystem raw(FileSystem fs) {
    return fs instanceof ChecksumFileSystem c ? c.getRawFileSystem() : fs;
  }
}
