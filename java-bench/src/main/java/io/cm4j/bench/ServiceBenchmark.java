package io.cm4j.bench;

import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import io.cm4j.serve.GenerationService;
import io.cm4j.serve.ServiceOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One-image, one-step generations of the tiny model through a {@link GenerationService} on
 * the CPU, from as many callers as JMH runs threads ({@link ServiceBench} runs 1, 4 and 16),
 * each waiting for its image before asking for the next: batching {@code on} (up to 16 images
 * per UNet pass, 2 ms wait) against {@code off} (one request per pass, the same service
 * otherwise). Throughput mode gives images per second over all callers; sample-time mode the
 * latency percentiles a caller sees.
 *
 * <p>The model is {@code -Dcm4j.bench.model=DIR}, else {@code shared/golden/tiny/pipeline}
 * found above the working directory.
 */
@State(Scope.Benchmark)
@BenchmarkMode({Mode.Throughput, Mode.SampleTime})
@OutputTimeUnit(TimeUnit.SECONDS)
public class ServiceBenchmark {
  @Param({"on", "off"})
  public String batching;

  private GenerationService service;
  private final AtomicLong next = new AtomicLong();

  @Setup(Level.Trial)
  public void open() throws Exception {
    ServiceOptions options = ServiceOptions.builder()
        .maxBatch("on".equals(batching) ? 16 : 1)
        .maxWait(Duration.ofMillis(2))
        .queueCapacity(1024)
        .build();
    service = GenerationService.open(model(), options);
  }

  @TearDown(Level.Trial)
  public void close() {
    System.out.println("\n" + batching + ": " + service.stats());
    service.close();
  }

  /** A different seed and class each call, as independent users would send. */
  @Benchmark
  public GenerationResult generate() throws Exception {
    long k = next.getAndIncrement();
    return service.submit(GenerationRequest.builder().classLabels(k % 1000).seed(k).build())
        .get();
  }

  static Path model() {
    Path model = BenchFiles.find("cm4j.bench.model", "shared/golden/tiny/pipeline");
    if (model == null) {
      throw new IllegalStateException("tiny model not found: set -Dcm4j.bench.model=DIR");
    }
    return model;
  }
}
