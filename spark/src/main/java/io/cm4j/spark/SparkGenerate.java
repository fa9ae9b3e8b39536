package io.cm4j.spark;

import io.cm4j.hub.HubClient;
import io.cm4j.hub.HubException;
import io.cm4j.hub.ModelLocator;
import io.cm4j.hub.Progress;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code spark-generate}: a request file in, {@code DIR/images/ID.png} and
 * {@code DIR/manifest.jsonl} (and {@code .parquet}) out, on a Spark master of your choice.
 * The main class of the cm4j-spark jar for {@code spark-submit}. Exit codes as {@code cm4j}'s:
 * 0 done (rows with errors included: the manifest says which), 2 bad usage or input, 1 a
 * failed job.
 */
@Command(
    name = "spark-generate",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Generates one image per request row on Apache Spark, one engine per executor.",
        "Requests: JSON lines such as {\"id\": \"a1\", \"class\": 145, \"seed\": 12, \"steps\": 2}"
            + " (or \"timesteps\": [22, 0]), or a Parquet table of those columns. A row "
            + "without id is named row-INDEX; without class, its label is drawn from the seed "
            + "as `cm4j generate` draws it.",
        "Output: DIR/images/ID.png for every good row, and DIR/manifest.jsonl and "
            + "DIR/manifest.parquet with id, class, seed, schedule, status (ok or error), "
            + "error and sha256 for every row."})
public final class SparkGenerate implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--master", paramLabel = "URL",
      description = "Spark master: local[N], spark://HOST:PORT, ... (default: spark.master as "
          + "spark-submit sets it, else local[*]).")
  String master;

  @Option(names = "--model", paramLabel = "ID|DIR|FILE", required = true,
      description = "A Hugging Face model ID (each executor uses its Hugging Face cache), or a "
          + "model folder or file at a path every executor can read.")
  String model;

  @Option(names = "--revision", paramLabel = "REV",
      description = "Branch, tag or commit of a Hub model (default: main).")
  String revision;

  @Option(names = "--requests", paramLabel = "FILE.jsonl|FILE.parquet", required = true,
      description = "The request table.")
  String requests;

  @Option(names = "--output", paramLabel = "DIR", required = true,
      description = "A new or empty folder for images/ and the manifests.")
  String output;

  @Option(names = "--device", paramLabel = "auto|cpu[:threads]|cuda[:i]",
      defaultValue = GenerationOptions.AUTO,
      description = "auto (default): the GPU Spark assigns to each task "
          + "(spark.executor.resource.gpu.*), else the CPU with spark.executor.cores threads.")
  String device;

  @Option(names = "--dtype", paramLabel = "fp32|bf16|fp16", defaultValue = "fp32",
      description = "Engine dtype (default: ${DEFAULT-VALUE}).")
  String dtype;

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The command line with one-line messages and cm4j's exit codes. */
  public static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new SparkGenerate());
    cl.setParameterExceptionHandler((e, args) -> {
      e.getCommandLine().getErr().println("spark-generate: " + e.getMessage()
          + " (--help for usage)");
      return 2;
    });
    cl.setExecutionExceptionHandler((e, command, parsed) -> {
      command.getErr().println("spark-generate: " + rootMessage(e));
      return 1;
    });
    return cl;
  }

  @Override
  public Integer call() throws IOException {
    PrintWriter err = spec.commandLine().getErr();
    GenerationOptions options;
    try {
      options = new GenerationOptions(model, revision, device, dtype);
    } catch (IllegalArgumentException e) {
      throw usage((e.getMessage().startsWith("invalid dtype") ? "--dtype " : "--device ")
          + e.getMessage());
    }
    checkModel();
    // hdfs://, s3a://, ...: Hadoop's file systems, checked by the job (SparkGeneration.write)
    Path out = isUri(output) ? null : Path.of(output);
    boolean created = out != null && !Files.exists(out);
    if (out != null && !created && !isEmptyFolder(out)) {
      throw usage("--output " + output + ": exists and is not an empty folder");
    }
    if (!isUri(requests) && !Files.exists(Path.of(requests))) {
      throw usage("--requests " + requests + ": no such file");
    }
    try {
      Requests.isParquet(requests);
    } catch (IllegalArgumentException e) {
      throw usage("--requests " + requests + ": " + e.getMessage());
    }
    SparkConf conf = new SparkConf().setAppName("cm4j spark-generate");
    if (master != null) {
      conf.setMaster(master);
    } else if (!conf.contains("spark.master")) {
      conf.setMaster("local[*]");
    }
    long start = System.nanoTime();
    try (SparkSession spark = SparkSession.builder().config(conf).getOrCreate()) {
      Dataset<Row> table;
      try {
        table = Requests.read(spark, requests);
      } catch (IllegalArgumentException e) {
        throw usage("--requests " + requests + ": " + e.getMessage());
      }
      if (out != null) {
        Files.createDirectories(out);
      }
      SparkGeneration.Summary summary;
      try {
        summary = SparkGeneration.write(SparkGeneration.generate(table, options), output);
      } catch (RuntimeException | IOException e) {
        if (created) {
          deleteIfEmpty(out);
        }
        throw e;
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      err.printf(Locale.ROOT, "spark-generate: %d image%s, %d error%s in %.1f s (%.2f images/s) "
          + "on %s%n", summary.ok(), summary.ok() == 1 ? "" : "s", summary.errors(),
          summary.errors() == 1 ? "" : "s", seconds, summary.ok() / seconds,
          spark.sparkContext().master());
      PrintWriter stdout = spec.commandLine().getOut();
      for (String name : List.of(SparkGeneration.IMAGES, SparkGeneration.MANIFEST_JSONL,
          SparkGeneration.MANIFEST_PARQUET)) {
        stdout.println("wrote " + new org.apache.hadoop.fs.Path(output, name));
      }
      stdout.flush();
    }
    return 0;
  }

  /** The model resolves here and has a readable scheduler config; executors open it. */
  private void checkModel() {
    try {
      Path path = ModelLocator.resolve(model, revision,
          HubClient.fromEnvironment(), Progress.stderr());
      ConsistencyModelPipeline.readSchedulerConfig(path);
    } catch (IOException | HubException e) {
      throw usage("--model " + model + ": " + e.getMessage());
    }
  }

  private ParameterException usage(String message) {
    return new ParameterException(spec.commandLine(), message);
  }

  private static boolean isUri(String path) {
    return path.matches("[A-Za-z][A-Za-z0-9+.-]*://.*");
  }

  private static boolean isEmptyFolder(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return false;
    }
    try (Stream<Path> entries = Files.list(dir)) {
      return entries.findAny().isEmpty();
    }
  }

  private static void deleteIfEmpty(Path dir) {
    try {
      if (isEmptyFolder(dir)) {
        Files.delete(dir);
      }
    } catch (IOException ignored) {
      // left in place; the failure itself is what matters
    }
  }

  /** The innermost message: a failed Spark job's first line, else the deepest cause's. */
  private static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    String m = t.getMessage() == null ? t.toString() : t.getMessage();
    int eol = m.indexOf('\n');
    return eol < 0 ? m : m.substring(0, eol);
  }
}
