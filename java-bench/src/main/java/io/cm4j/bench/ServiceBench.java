package io.cm4j.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs {@link ServiceBenchmark} with 1, 4 and 16 callers and prints one table: throughput
 * (images/s over all callers) and the latency a caller sees (p50, p99), batching on and off,
 * headed by the machine it ran on. Settings are system properties:
 * {@code bench.threads} (default {@code 1,4,16}), {@code bench.warmup} and {@code bench.measure}
 * (seconds per iteration, default 3 and 4), {@code bench.iterations} (default 3).
 */
public final class ServiceBench {
  private ServiceBench() {}

  public static void main(String[] args) throws Exception {
    String machine = machine();
    List<String> rows = new ArrayList<>();
    int warmup = Integer.getInteger("bench.warmup", 3);
    int measure = Integer.getInteger("bench.measure", 4);
    int iterations = Integer.getInteger("bench.iterations", 3);
    for (String t : System.getProperty("bench.threads", "1,4,16").split(",")) {
      int threads = Integer.parseInt(t.trim());
      Options options = new OptionsBuilder()
          .include(ServiceBenchmark.class.getName())
          .threads(threads)
          .forks(1)
          .warmupIterations(1)
          .warmupTime(TimeValue.seconds(warmup))
          .measurementIterations(iterations)
          .measurementTime(TimeValue.seconds(measure))
          .jvmArgsAppend("-Dcm4j.bench.model=" + ServiceBenchmark.model())
          .shouldFailOnError(true)
          .build();
      Collection<RunResult> results = new Runner(options).run();
      for (String batching : new String[] {"on", "off"}) {
        double throughput = Double.NaN;
        double throughputError = Double.NaN;
        double p50 = Double.NaN;
        double p99 = Double.NaN;
        for (RunResult r : results) {
          if (!batching.equals(r.getParams().getParam("batching"))) {
            continue;
          }
          Result<?> primary = r.getPrimaryResult();
          if (r.getParams().getMode() == org.openjdk.jmh.annotations.Mode.Throughput) {
            throughput = primary.getScore();
            throughputError = primary.getScoreError();
          } else { // sample time, in seconds per operation
            p50 = primary.getStatistics().getPercentile(50) * 1e3;
            p99 = primary.getStatistics().getPercentile(99) * 1e3;
          }
        }
        rows.add(String.format(Locale.ROOT, "| %2d callers | batching %-3s | %7.1f ± %5.1f "
            + "| %8.1f | %8.1f |", threads, batching, throughput, throughputError, p50, p99));
      }
    }
    System.out.println();
    System.out.println("cm4j serving benchmark: tiny model (32x32, 1 step), CPU fp32, " + machine);
    System.out.println("| callers    | batching     | images/s (99.9% CI) | p50 ms   | p99 ms   |");
    System.out.println("|------------|--------------|---------------------|----------|----------|");
    rows.forEach(System.out::println);
  }

  /** CPU model, cores, JVM and load average, as the results should name them. */
  static String machine() {
    String cpu = "unknown CPU";
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name")) {
          cpu = line.substring(line.indexOf(':') + 1).trim();
          break;
        }
      }
    } catch (IOException e) {
      // not Linux: keep "unknown CPU"
    }
    String load = "";
    try {
      load = ", load average " + Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
    } catch (IOException e) {
      // not Linux
    }
    return cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores, Java "
        + System.getProperty("java.version") + load;
  }
}
