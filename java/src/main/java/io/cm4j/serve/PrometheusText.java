package io.cm4j.serve;

import io.cm4j.internal.ProcessMemory;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * {@code GET /metrics}: the service in the Prometheus text exposition format (version 0.0.4).
 * Histograms are exported with fixed {@code le} bounds from a {@link Histogram}: exact for
 * batch sizes; for seconds, its buckets are 1/16 of a power of two wide, so a value within that
 * much below a bound may count above it. Values are exact: counters as integers, the rest as
 * Java's shortest decimal that reads back as the same double.
 */
final class PrometheusText {
  static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
  private static final double[] SECONDS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      0.5, 1, 2.5, 5, 10, 30, 60};
  private static final double[] IMAGES = {1, 2, 4, 8, 16, 32, 64, 128};

  private final StringBuilder out = new StringBuilder(4096);

  private PrometheusText() {}

  /**
   * @param requests HTTP answers so far, by "endpoint status" (e.g. "/generate 503")
   * @param connections open HTTP connections now
   */
  static String render(GenerationService service, Map<String, Long> requests,
      int connections) {
    PrometheusText t = new PrometheusText();
    ServiceStats s = service.stats();
    t.help("cm4j_info", "gauge", "The model's device and precision (value 1).");
    t.sample("cm4j_info", "device=\"" + service.device() + "\",dtype=\"" + service.precision()
        + "\",image_size=\"" + service.imageSize() + "\"", 1);
    t.engines(service.engineStats());
    t.help("cm4j_http_requests_total", "counter", "HTTP answers by endpoint and status.");
    requests.forEach((key, n) -> {
      int space = key.lastIndexOf(' ');
      t.sample("cm4j_http_requests_total", "endpoint=\"" + key.substring(0, space)
          + "\",status=\"" + key.substring(space + 1) + "\"", n);
    });
    t.help("cm4j_http_connections", "gauge", "Open HTTP connections.");
    t.sample("cm4j_http_connections", "", connections);
    t.help("cm4j_queue_depth", "gauge", "Requests waiting for their first step.");
    t.sample("cm4j_queue_depth", "", s.queued());
    t.help("cm4j_requests_in_progress", "gauge", "Requests between first and last step.");
    t.sample("cm4j_requests_in_progress", "", s.inProgress());
    t.help("cm4j_requests_total", "counter", "Requests by outcome.");
    t.sample("cm4j_requests_total", "outcome=\"completed\"", s.completed());
    t.sample("cm4j_requests_total", "outcome=\"rejected\"", s.rejected());
    t.sample("cm4j_requests_total", "outcome=\"failed\"", s.failed());
    t.sample("cm4j_requests_total", "outcome=\"cancelled\"", s.cancelled());
    t.sample("cm4j_requests_total", "outcome=\"deadline_exceeded\"", s.deadlineExceeded());
    t.help("cm4j_images_generated_total", "counter", "Images of completed requests.");
    t.sample("cm4j_images_generated_total", "", s.images());
    t.histogram("cm4j_batch_images", "Images in each UNet pass.", s.batchImages(), IMAGES, 1);
    t.histogram("cm4j_queue_wait_seconds", "From submit to the first step.", s.queueWait(),
        SECONDS, 1e9);
    t.histogram("cm4j_compute_seconds", "Each UNet pass.", s.compute(), SECONDS, 1e9);
    t.histogram("cm4j_latency_seconds", "From submit to the images, completed requests.",
        s.latency(), SECONDS, 1e9);
    MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
    t.help("cm4j_jvm_memory_used_bytes", "gauge", "JVM memory in use by area.");
    t.sample("cm4j_jvm_memory_used_bytes", "area=\"heap\"",
        memory.getHeapMemoryUsage().getUsed());
    t.sample("cm4j_jvm_memory_used_bytes", "area=\"nonheap\"",
        memory.getNonHeapMemoryUsage().getUsed());
    long direct = 0;
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      direct += Math.max(0, pool.getMemoryUsed());
    }
    t.sample("cm4j_jvm_memory_used_bytes", "area=\"buffers\"", direct);
    t.help("cm4j_native_memory_bytes", "gauge",
        "Native memory of the model: packed weights and activation arena.");
    t.sample("cm4j_native_memory_bytes", "", service.nativeBytes());
    long rss = ProcessMemory.residentBytes();
    if (rss >= 0) {
      t.help("process_resident_memory_bytes", "gauge", "Resident memory of the process.");
      t.sample("process_resident_memory_bytes", "", rss);
    }
    t.help("jvm_threads_current", "gauge", "Live JVM threads.");
    t.sample("jvm_threads_current", "", ManagementFactory.getThreadMXBean().getThreadCount());
    return t.out.toString();
  }

  /** Per engine of the pool, labelled by its index and device. */
  private void engines(List<EnginePool.EngineStats> engines) {
    help("cm4j_engine_serving", "gauge", "1 while the engine is in the pool, 0 once it failed.");
    engineSamples("cm4j_engine_serving", engines, e -> e.serving() ? 1 : 0);
    help("cm4j_engine_passes_total", "counter", "UNet passes run by the engine.");
    engineSamples("cm4j_engine_passes_total", engines, e -> e.passes());
    help("cm4j_engine_images_total", "counter", "Images in the engine's passes.");
    engineSamples("cm4j_engine_images_total", engines, e -> e.images());
    help("cm4j_engine_busy_seconds_total", "counter", "Time the engine spent in passes.");
    engineSamples("cm4j_engine_busy_seconds_total", engines, e -> e.busySeconds());
  }

  private void engineSamples(String name, List<EnginePool.EngineStats> engines,
      ToDoubleFunction<EnginePool.EngineStats> value) {
    for (int i = 0; i < engines.size(); i++) {
      EnginePool.EngineStats e = engines.get(i);
      sample(name, "engine=\"" + i + "\",device=\"" + e.device() + "\"", value.applyAsDouble(e));
    }
  }

  private void help(String name, String type, String help) {
    out.append("# HELP ").append(name).append(' ').append(help).append('\n');
    out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
  }

  private void sample(String name, String labels, double value) {
    sample(name, labels, number(value));
  }

  private void sample(String name, String labels, long value) {
    sample(name, labels, Long.toString(value));
  }

  private void sample(String name, String labels, String value) {
    out.append(name);
    if (!labels.isEmpty()) {
      out.append('{').append(labels).append('}');
    }
    out.append(' ').append(value).append('\n');
  }

  /** {@code scale}: histogram units per exported unit (1e9 for nanoseconds as seconds). */
  private void histogram(String name, String help, Histogram.Snapshot h, double[] bounds,
      double scale) {
    help(name, "histogram", help);
    for (double le : bounds) {
      sample(name + "_bucket", "le=\"" + number(le) + "\"", h.countAtMost((long) (le * scale)));
    }
    sample(name + "_bucket", "le=\"+Inf\"", h.count());
    sample(name + "_sum", "", h.sum() / scale);
    sample(name + "_count", "", h.count());
  }

  static String number(double v) {
    return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v)
        : Double.toString(v);
  }
}
