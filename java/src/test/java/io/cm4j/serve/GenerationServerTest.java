package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.weights.Json;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The HTTP demo on loopback: a bounded load test (every answer the PNG of the request run
 * alone, latencies reported), every kind of bad input a 400 with a JSON error, and mutated
 * bodies that never get anything but 200 or 400.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class GenerationServerTest {
  private static Tiny tiny;
  private static GenerationService service;
  private static GenerationServer server;
  private static HttpClient client;

  @BeforeAll
  static void start() throws Exception {
    tiny = new Tiny();
    service = GenerationService.open(Tiny.model(), ServiceOptions.builder().maxBatch(16)
        .queueCapacity(512).build());
    server = GenerationServer.builder(service).address(new InetSocketAddress("127.0.0.1", 0))
        .timeout(Duration.ofSeconds(30)).start();
    client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
    if (service != null) {
      service.close();
    }
    if (tiny != null) {
      tiny.close();
    }
  }

  /** The JSON body asking for combination {@code i} of {@link Tiny}. */
  static String json(int i) {
    GenerationRequest r = Tiny.request(i);
    StringBuilder sb = new StringBuilder("{\"seed\": ").append(r.seed());
    if (r.classLabels() != null) {
      sb.append(", \"class\": ").append(r.classLabels()[0]);
    }
    if (r.timesteps() != null) {
      sb.append(", \"timesteps\": ").append(Arrays.toString(r.timesteps()));
    } else {
      sb.append(", \"steps\": ").append(r.numInferenceSteps());
    }
    return sb.append('}').toString();
  }

  static HttpResponse<byte[]> post(String path, byte[] body) throws Exception {
    return client.send(HttpRequest.newBuilder(server.uri().resolve(path))
        .timeout(Duration.ofSeconds(30))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
        HttpResponse.BodyHandlers.ofByteArray());
  }

  static HttpResponse<byte[]> post(String path, String body) throws Exception {
    return post(path, body.getBytes(StandardCharsets.UTF_8));
  }

  /** Asserts a PNG answer holding exactly the uint8 pixels of combination i run alone. */
  static void assertImageOf(int i, HttpResponse<byte[]> response) throws IOException {
    assertEquals(200, response.statusCode(), () -> new String(response.body(),
        StandardCharsets.UTF_8));
    assertEquals("image/png", response.headers().firstValue("Content-Type").orElse(""));
    BufferedImage png = ImageIO.read(new ByteArrayInputStream(response.body()));
    byte[] expected = tiny.alone(i).toUint8(); // [1, H, W, 3]
    int size = png.getWidth();
    assertEquals(service.imageSize(), size);
    int[] rgb = png.getRaster().getPixels(0, 0, size, size, (int[]) null);
    for (int k = 0; k < rgb.length; k++) {
      if (rgb[k] != (expected[k] & 0xff)) {
        throw new AssertionError("combination " + i + ": PNG value " + k + " is " + rgb[k]
            + ", alone " + (expected[k] & 0xff));
      }
    }
    assertEquals(Long.toString(tiny.alone(i).seed()),
        response.headers().firstValue("X-Cm4j-Seed").orElse(""));
  }

  /** Asserts a JSON error answer with {@code status} whose message contains {@code part}. */
  static void assertError(int status, String part, HttpResponse<byte[]> response) {
    String body = new String(response.body(), StandardCharsets.UTF_8);
    assertEquals(status, response.statusCode(), body);
    assertTrue(response.headers().firstValue("Content-Type").orElse("")
        .startsWith("application/json"), "content type of " + body);
    Map<String, Object> parsed = Json.parseObject(body);
    Object error = assertInstanceOf(String.class, parsed.get("error"), body);
    assertTrue(((String) error).contains(part), "expected '" + part + "' in " + body);
  }

  @Test
  void loadTestOnLoopbackHasNoErrorsAndReportsLatencies() throws Exception {
    for (int i = 0; i < Tiny.COMBOS; i++) {
      tiny.alone(i);
    }
    int clients = 16;
    int perClient = 12;
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    long start = System.nanoTime();
    List<Long> latencies = new ArrayList<>();
    try {
      List<Future<List<Long>>> runs = new ArrayList<>();
      for (int c = 0; c < clients; c++) {
        int client = c;
        runs.add(pool.submit(() -> {
          List<Long> mine = new ArrayList<>();
          for (int r = 0; r < perClient; r++) {
            int combo = client * 5 + r;
            long t0 = System.nanoTime();
            HttpResponse<byte[]> response = post("/generate", json(combo));
            mine.add(System.nanoTime() - t0);
            assertImageOf(combo, response);
          }
          return mine;
        }));
      }
      for (Future<List<Long>> run : runs) {
        latencies.addAll(run.get(100, TimeUnit.SECONDS));
      }
    } finally {
      pool.shutdownNow();
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    long[] sorted = latencies.stream().mapToLong(Long::longValue).sorted().toArray();
    int n = sorted.length;
    System.out.printf(Locale.ROOT, "HTTP load test: %d requests from %d clients in %.2f s "
        + "(%.1f images/s), 0 errors; latency ms p50 %.1f p99 %.1f max %.1f; server %s%n", n,
        clients, seconds, n / seconds, sorted[(n - 1) / 2] / 1e6,
        sorted[(int) Math.ceil(0.99 * n) - 1] / 1e6, sorted[n - 1] / 1e6, service.stats());
    assertEquals(clients * perClient, n);
  }

  @Test
  void everyKindOfBadInputGets400WithAJsonError() throws Exception {
    String[][] cases = {
        {"", "unexpected end of input"},
        {"{", "expected a string key"},
        {"{\"class\": 1,}", "expected a string key"},
        {"[1, 2]", "expected a JSON object"},
        {"null", "found null"},
        {"\"class\"", "found a string"},
        {"{\"class\": 1000}", "class: expected a label in [0, 1000), found 1000"},
        {"{\"class\": -1}", "found -1"},
        {"{\"class\": 1.5}", "class: expected an integer, found the number 1.5"},
        {"{\"class\": \"5\"}", "class: expected an integer, found a string"},
        {"{\"seed\": true}", "seed: expected an integer, found a boolean"},
        {"{\"seed\": 99999999999999999999}", "does not fit in 64 bits"},
        {"{\"seed\": 1e999}", "out of the double range"},
        {"{\"steps\": 0}", "steps: expected 1 to 40, found 0"},
        {"{\"steps\": 41}", "steps: expected 1 to 40, found 41"},
        {"{\"steps\": 1, \"timesteps\": [1, 0]}", "not both"},
        {"{\"timesteps\": []}", "timesteps: expected 1 to 40 values, found 0"},
        {"{\"timesteps\": [0, 1]}", "strictly descending"},
        {"{\"timesteps\": [40]}", "timesteps[0]: expected a value in [0, 40), found 40"},
        {"{\"timesteps\": [3, -1]}", "found -1"},
        {"{\"timesteps\": \"22,0\"}", "timesteps: expected an array of integers"},
        {"{\"timesteps\": [[1]]}", "timesteps[0]: expected an integer, found an array"},
        {"{\"colour\": 1}", "unknown field \"colour\""},
        {"{\"class\": 1, \"class\": 2}", "duplicate key"},
        {"{\"class\": NaN}", "expected a value"},
        {"[".repeat(100), "nesting deeper than"},
        {"{\"class\": 1} {}", "after the JSON value"},
    };
    for (String[] c : cases) {
      assertError(400, c[1], post("/generate", c[0]));
    }
    assertError(400, "not valid UTF-8", post("/generate",
        new byte[] {'{', '"', (byte) 0xff, (byte) 0xfe, '"', ':', '1', '}'}));
    byte[] big = ("{\"class\": 1" + " ".repeat(5000) + "}").getBytes(StandardCharsets.UTF_8);
    assertError(413, "request body too large: expected at most 4096 bytes", post("/generate",
        big));
    // a body without a Content-Length (chunked) is refused unread
    assertError(411, "send Content-Length", client.send(HttpRequest.newBuilder(
        server.uri().resolve("/generate")).POST(HttpRequest.BodyPublishers.ofInputStream(
            () -> new ByteArrayInputStream(new byte[8192]))).build(),
        HttpResponse.BodyHandlers.ofByteArray()));
    assertError(405, "use POST", client.send(HttpRequest.newBuilder(
        server.uri().resolve("/generate")).GET().build(), HttpResponse.BodyHandlers.ofByteArray()));
    assertError(405, "use GET", post("/health", "{}"));
    assertError(404, "no such path", post("/generate/more", json(0)));
    // still serving
    assertImageOf(0, post("/generate", json(0)));
    HttpResponse<byte[]> health = client.send(HttpRequest.newBuilder(
        server.uri().resolve("/health")).GET().build(), HttpResponse.BodyHandlers.ofByteArray());
    assertEquals(200, health.statusCode());
    Map<String, Object> h = Json.parseObject(new String(health.body(), StandardCharsets.UTF_8));
    assertEquals("ok", h.get("status"));
    assertEquals(1000L, h.get("num_class_embeds"));
  }

  /**
   * Mutated valid bodies over HTTP from 4 clients: each answer is the image (200) or a JSON
   * error (400), nothing else, and the server stays up. Bounded by count (200) and time (60 s).
   */
  @Test
  void mutatedBodiesGetOnly200Or400() throws Exception {
    int clients = 4;
    int perClient = 50;
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    int ok = 0;
    int bad = 0;
    try {
      List<Future<int[]>> runs = new ArrayList<>();
      for (int c = 0; c < clients; c++) {
        int client = c;
        runs.add(pool.submit(() -> {
          Random random = new Random(7 + client);
          int[] counts = new int[2];
          for (int i = 0; i < perClient && System.nanoTime() < end; i++) {
            byte[] body = GenerateJsonFuzzTest.mutate(
                json(client * perClient + i).getBytes(StandardCharsets.UTF_8), random);
            HttpResponse<byte[]> r = post("/generate", body);
            if (r.statusCode() == 200) {
              assertEquals("image/png", r.headers().firstValue("Content-Type").orElse(""));
              counts[0]++;
            } else {
              assertError(400, "", r);
              counts[1]++;
            }
          }
          return counts;
        }));
      }
      for (Future<int[]> run : runs) {
        int[] counts = run.get(90, TimeUnit.SECONDS);
        ok += counts[0];
        bad += counts[1];
      }
    } finally {
      pool.shutdownNow();
    }
    System.out.printf("HTTP fuzz: %d mutated bodies: %d images, %d clean 400s%n", ok + bad, ok,
        bad);
    assertImageOf(1, post("/generate", json(1)));
  }

  @Test
  void aFullQueueGets503AndAClosedServiceToo() throws Exception {
    GenerationService small = GenerationService.open(Tiny.model(), ServiceOptions.builder()
        .maxBatch(1).queueCapacity(1).build());
    try (GenerationServer front = GenerationServer.builder(small)
        .address(new InetSocketAddress("127.0.0.1", 0)).start()) {
      URI uri = front.uri().resolve("/generate");
      List<java.util.concurrent.CompletableFuture<HttpResponse<byte[]>>> answers =
          new ArrayList<>();
      for (int i = 0; i < 12; i++) {
        answers.add(client.sendAsync(HttpRequest.newBuilder(uri)
            .POST(HttpRequest.BodyPublishers.ofString(json(7))).build(),
            HttpResponse.BodyHandlers.ofByteArray()));
      }
      int images = 0;
      int busy = 0;
      for (var answer : answers) {
        HttpResponse<byte[]> r = answer.get(60, TimeUnit.SECONDS);
        if (r.statusCode() == 200) {
          images++;
        } else {
          assertError(503, "queue full", r);
          assertEquals("1", r.headers().firstValue("Retry-After").orElse(""));
          busy++;
        }
      }
      assertTrue(images >= 1 && busy >= 1, images + " images, " + busy + " 503s");
      small.close();
      HttpResponse<byte[]> closed = client.send(HttpRequest.newBuilder(uri)
          .POST(HttpRequest.BodyPublishers.ofString(json(0))).build(),
          HttpResponse.BodyHandlers.ofByteArray());
      assertError(503, "closed", closed);
      assertEquals("1", closed.headers().firstValue("Retry-After").orElse(""));
      HttpResponse<String> metrics = client.send(HttpRequest.newBuilder(
          front.uri().resolve("/metrics")).GET().build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(200, metrics.statusCode(), metrics.body());
      assertTrue(metrics.body().contains("\ncm4j_native_memory_bytes 0\n"), metrics.body());
      HttpResponse<byte[]> health = client.send(HttpRequest.newBuilder(
          front.uri().resolve("/health")).GET().build(), HttpResponse.BodyHandlers.ofByteArray());
      assertEquals(503, health.statusCode());
    } finally {
      small.close();
    }
  }

  /** Raw bytes to the server, and all it answers until it closes. */
  static String exchange(GenerationServer to, String... parts) throws Exception {
    try (Socket s = new Socket("127.0.0.1", to.address().getPort())) {
      s.setSoTimeout(5000);
      for (String part : parts) {
        s.getOutputStream().write(part.getBytes(StandardCharsets.ISO_8859_1));
        Thread.sleep(200);
      }
      return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /** The generate limit (4096) applies to the declared length, before any of the body. */
  @Test
  void aBodyDeclaredOverThePathsLimitGets413BeforeItIsSent() throws Exception {
    String answer = exchange(server, "POST /generate HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    assertTrue(answer.startsWith("HTTP/1.1 413 ") && answer.contains("at most 4096 bytes"),
        answer);
    answer = exchange(server, "GET /health HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    assertTrue(answer.startsWith("HTTP/1.1 413 "), answer);
  }

  @Test
  void aDeadlinePassedBeforeTheRequestWasReadGets503WithRetryAfter() throws Exception {
    try (GenerationServer quick = GenerationServer.builder(service)
        .address(new InetSocketAddress("127.0.0.1", 0)).timeout(Duration.ofMillis(50)).start()) {
      String body = json(0);
      String answer = exchange(quick, "POST /generate HTTP/1.1\r\nConnection: close\r\n"
          + "Content-Length: " + body.length() + "\r\n\r\n", body); // 200 ms apart
      assertTrue(answer.startsWith("HTTP/1.1 503 ") && answer.contains("passed before the "
          + "request was read") && answer.contains("\r\nRetry-After: 1\r\n"), answer);
    }
  }

  /** What answering a result throws (say, PNG encoding) is a 500 to the client, not silence. */
  @Test
  void anAnswerThatThrowsGets500() {
    List<String> sent = new ArrayList<>();
    GenerationServer.answer((status, type, headers, body) -> sent.add(status + " "
        + new String(body, StandardCharsets.UTF_8)), result -> {
          throw new IllegalStateException("secret detail");
        }, "result", null);
    assertEquals(List.of("500 {\"error\":\"answering failed; the server log has the cause\"}\n"),
        sent);
  }

  static HttpResponse<String> get(String path) throws Exception {
    return client.send(HttpRequest.newBuilder(server.uri().resolve(path)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void thePageAndItsFilesComeFromTheJar() throws Exception {
    HttpResponse<String> page = get("/");
    assertEquals(200, page.statusCode());
    assertTrue(page.headers().firstValue("Content-Type").orElse("").startsWith("text/html"));
    assertTrue(page.body().contains("<script src=\"app.js\"></script>"), page.body());
    assertTrue(!page.body().contains("http://") && !page.body().contains("https://"),
        "the page loads nothing from elsewhere");
    assertTrue(get("/app.js").body().contains("fetch('generate'"));
    assertEquals(200, get("/app.css").statusCode());
    assertTrue(get("/imagenet-classes.txt").body().startsWith("tench\ngoldfish\n"));
  }

  @Test
  void eachImageComesWithItsClassNameAndLatency() throws Exception {
    HttpResponse<byte[]> r = post("/generate", "{\"class\": 1, \"seed\": 4}");
    assertEquals(200, r.statusCode());
    assertEquals("1", r.headers().firstValue("X-Cm4j-Class").orElse(""));
    assertEquals("goldfish", r.headers().firstValue("X-Cm4j-Class-Name").orElse(""));
    double ms = Double.parseDouble(r.headers().firstValue("X-Cm4j-Latency-Ms").orElse("-1"));
    assertTrue(ms > 0 && ms < 30_000, "latency " + ms);
  }

  private static final java.util.regex.Pattern SAMPLE = java.util.regex.Pattern.compile(
      "([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
          + "(-?[0-9.]+(E-?[0-9]+)?)");

  @Test
  void metricsAreInThePrometheusTextFormat() throws Exception {
    assertImageOf(2, post("/generate", json(2)));
    assertError(400, "expected a JSON object", post("/generate", "[]"));
    assertTrue(exchange(server, "GARBAGE\r\n\r\n").startsWith("HTTP/1.1 400 "));
    HttpResponse<String> r = get("/metrics");
    assertEquals(200, r.statusCode());
    assertEquals("text/plain; version=0.0.4; charset=utf-8",
        r.headers().firstValue("Content-Type").orElse(""));
    Map<String, Double> samples = new java.util.LinkedHashMap<>();
    for (String line : r.body().split("\n")) {
      if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
        continue;
      }
      java.util.regex.Matcher m = SAMPLE.matcher(line);
      assertTrue(m.matches(), "not a sample line: " + line);
      samples.put(line.substring(0, line.lastIndexOf(' ')), Double.parseDouble(m.group(4)));
    }
    assertTrue(samples.get("cm4j_http_requests_total{endpoint=\"/generate\",status=\"200\"}")
        >= 1);
    assertTrue(samples.get("cm4j_http_requests_total{endpoint=\"/generate\",status=\"400\"}")
        >= 1);
    assertTrue(samples.get("cm4j_http_requests_total{endpoint=\"connector\",status=\"400\"}")
        >= 1, "the connector's own answers");
    assertEquals(1.0, samples.get("cm4j_info{device=\"cpu\",dtype=\"fp32\",image_size=\"32\"}"));
    assertTrue(samples.get("cm4j_images_generated_total") >= 1);
    assertEquals(1.0, samples.get("cm4j_engine_serving{engine=\"0\",device=\"cpu\"}"));
    assertTrue(samples.get("cm4j_engine_passes_total{engine=\"0\",device=\"cpu\"}") >= 1);
    assertTrue(samples.get("cm4j_engine_images_total{engine=\"0\",device=\"cpu\"}") >= 2);
    assertTrue(samples.containsKey("cm4j_queue_depth"));
    assertTrue(samples.get("cm4j_native_memory_bytes") > 0);
    assertTrue(samples.get("cm4j_jvm_memory_used_bytes{area=\"heap\"}") > 0);
    for (String h : List.of("cm4j_batch_images", "cm4j_queue_wait_seconds",
        "cm4j_compute_seconds", "cm4j_latency_seconds")) {
      double previous = 0;
      for (Map.Entry<String, Double> e : samples.entrySet()) {
        if (e.getKey().startsWith(h + "_bucket{")) {
          assertTrue(e.getValue() >= previous, "cumulative buckets: " + e.getKey());
          previous = e.getValue();
        }
      }
      assertEquals(samples.get(h + "_count"), samples.get(h + "_bucket{le=\"+Inf\"}"), h);
      assertTrue(samples.get(h + "_count") >= 1, h);
    }
  }
}
