package io.cm4j.serve;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.pipeline.GenerationResult;
import io.cm4j.weights.Json;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;

/**
 * A small HTTP front end of a {@link GenerationService}, on the JDK's own server
 * ({@code com.sun.net.httpserver}), for demos and load tests:
 * <ul>
 *   <li>{@code POST /generate} with a JSON body (see {@link GenerateJson}:
 *       {@code {"class": 145, "seed": 12, "steps": 2}}) answers 200 with the image as a PNG,
 *       its class, seed and timesteps in {@code X-Cm4j-*} headers;</li>
 *   <li>{@code GET /health} answers 200 with the service's counters as JSON (503 once the
 *       service is closed).</li>
 * </ul>
 * Every failure is a JSON body {@code {"error": "..."}}: 400 for a bad body (not UTF-8, not
 * JSON, unknown fields, values out of range, larger than {@link Builder#maxBodyBytes}), 404 and
 * 405 for other paths and methods, 503 when the queue is full, the deadline passed or the
 * service is closing, 500 for anything else. No input stops the server: each exchange's
 * failures end with that exchange.
 *
 * <p>Each request blocks one handler thread until its image is ready (or its deadline
 * passes), so the handler pool must be at least as large as the batches it should form; the
 * default is {@code max(16, 2 * maxBatch)}. The server does not own the service: close both.
 * Thread-safe: the JDK server runs exchanges on the handler pool, and {@link #close()} may be
 * called from any thread.
 *
 * <p>The JDK server takes two settings from system properties, read once when its classes
 * load. This class sets {@code sun.net.httpserver.nodelay=true} unless it is set already (see
 * below); {@code cm4j serve} also bounds the time a client may take to send its request
 * ({@code sun.net.httpserver.maxReqTime}), which an embedding application should do too.
 */
public final class GenerationServer implements AutoCloseable {
  static {
    // The JDK server writes a response's headers and body in two writes. With Nagle's
    // algorithm on, the body waits for the client's (delayed) ACK of the headers: 40 ms more
    // per answer on Linux, measured 46 ms against 3 ms for a 400 on loopback. No effect if
    // the JDK's server classes were loaded before this one.
    if (System.getProperty("sun.net.httpserver.nodelay") == null) {
      System.setProperty("sun.net.httpserver.nodelay", "true");
    }
  }

  private final GenerationService service;
  private final HttpServer server;
  private final ExecutorService handlers;
  private final int maxBodyBytes;
  private final Duration timeout;
  private final int maxSteps;

  private GenerationServer(Builder b) throws IOException {
    this.service = b.service;
    this.maxBodyBytes = b.maxBodyBytes;
    this.timeout = b.timeout;
    this.maxSteps = b.maxSteps;
    int threads = b.threads > 0 ? b.threads : Math.max(16, 2 * service.options().maxBatch());
    AtomicInteger n = new AtomicInteger();
    handlers = new ThreadPoolExecutor(threads, threads, 30, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), r -> {
          Thread t = new Thread(r, "cm4j-http-" + n.incrementAndGet());
          t.setDaemon(true);
          return t;
        });
    try {
      server = HttpServer.create(b.address, 0);
    } catch (IOException | RuntimeException e) {
      handlers.shutdownNow();
      throw e;
    }
    server.setExecutor(handlers);
    server.createContext("/", this::handle);
    server.start();
  }

  /** A server for {@code service}; {@link Builder#start()} binds it and starts serving. */
  public static Builder builder(GenerationService service) {
    return new Builder(service);
  }

  /** The address bound, with the actual port when 0 was asked for. */
  public InetSocketAddress address() {
    return server.getAddress();
  }

  /** {@code http://host:port}. */
  public URI uri() {
    InetSocketAddress a = address();
    String host = a.getAddress().getHostAddress();
    return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":"
        + a.getPort());
  }

  /** Stops listening and ends the exchanges in flight at once; the service stays open. */
  @Override
  public void close() {
    close(Duration.ZERO);
  }

  /**
   * Stops listening, gives the exchanges in flight up to {@code grace} (whole seconds) to
   * answer, then ends the rest (they answer 503 if they still can). The service stays open:
   * close it first to let its accepted requests finish and be answered.
   */
  public void close(Duration grace) {
    server.stop((int) Math.min(Integer.MAX_VALUE, (grace.toMillis() + 999) / 1000));
    handlers.shutdownNow(); // wakes handlers waiting on a result
  }

  private void handle(HttpExchange exchange) {
    try (exchange) {
      String path = exchange.getRequestURI().getPath();
      String method = exchange.getRequestMethod();
      if ("/generate".equals(path)) {
        if (!"POST".equals(method)) {
          exchange.getResponseHeaders().set("Allow", "POST");
          sendError(exchange, 405, "method " + method + " not allowed on /generate: use POST");
        } else {
          generate(exchange);
        }
      } else if ("/health".equals(path)) {
        if (!"GET".equals(method)) {
          exchange.getResponseHeaders().set("Allow", "GET");
          sendError(exchange, 405, "method " + method + " not allowed on /health: use GET");
        } else {
          health(exchange);
        }
      } else {
        sendError(exchange, 404, "no such path: expected POST /generate or GET /health");
      }
    } catch (IOException e) {
      // the client went away: nothing to answer
    } catch (RuntimeException | Error e) { // a bug: answer if still possible, keep serving
      try {
        sendError(exchange, 500, "internal error: " + e);
      } catch (IOException | RuntimeException ignored) {
        // headers already sent, or the client went away
      }
    }
  }

  private void generate(HttpExchange exchange) throws IOException {
    GenerationRequest request;
    try {
      request = GenerateJson.parse(readBody(exchange), service.numClassEmbeds(),
          service.numTrainTimesteps(), maxSteps);
    } catch (BadRequestException e) {
      sendError(exchange, 400, e.getMessage());
      return;
    }
    Future<GenerationResult> future;
    try {
      future = service.submit(request, timeout);
    } catch (IllegalArgumentException e) {
      sendError(exchange, 400, e.getMessage());
      return;
    } catch (QueueFullException e) {
      exchange.getResponseHeaders().set("Retry-After", "1");
      sendError(exchange, 503, e.getMessage());
      return;
    } catch (IllegalStateException e) {
      sendError(exchange, 503, "server is shutting down: " + e.getMessage());
      return;
    }
    GenerationResult result;
    try {
      result = future.get();
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof DeadlineExceededException || cause instanceof CancellationException) {
        sendError(exchange, 503, cause.getMessage());
      } else {
        sendError(exchange, 500, "generation failed: " + cause);
      }
      return;
    } catch (CancellationException e) {
      sendError(exchange, 503, "request cancelled: " + e.getMessage());
      return;
    } catch (InterruptedException e) {
      future.cancel(true);
      sendError(exchange, 503, "server is shutting down");
      return;
    }
    byte[] png = png(result);
    var headers = exchange.getResponseHeaders();
    headers.set("Content-Type", "image/png");
    long[] labels = result.classLabels();
    if (labels != null) {
      headers.set("X-Cm4j-Class", Long.toString(labels[0]));
    }
    headers.set("X-Cm4j-Seed", Long.toString(result.seed()));
    float[] ts = result.timesteps();
    headers.set("X-Cm4j-Timesteps", Arrays.toString(ts).replaceAll("[\\[\\] ]", ""));
    exchange.sendResponseHeaders(200, png.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(png);
    }
  }

  /** At most maxBodyBytes of body; more is a BadRequestException, read no further. */
  private byte[] readBody(HttpExchange exchange) throws IOException, BadRequestException {
    String length = exchange.getRequestHeaders().getFirst("Content-Length");
    if (length != null) {
      long declared;
      try {
        declared = Long.parseLong(length.trim());
      } catch (NumberFormatException e) {
        throw new BadRequestException("Content-Length: expected a number, found " + length);
      }
      if (declared > maxBodyBytes) {
        throw tooLarge(declared + " bytes");
      }
    }
    try (InputStream in = exchange.getRequestBody()) {
      byte[] body = in.readNBytes(maxBodyBytes + 1);
      if (body.length > maxBodyBytes) {
        throw tooLarge("more");
      }
      return body;
    }
  }

  private BadRequestException tooLarge(String found) {
    return new BadRequestException("request body too large: expected at most " + maxBodyBytes
        + " bytes, found " + found);
  }

  private void health(HttpExchange exchange) throws IOException {
    ServiceStats s = service.stats();
    boolean open = !service.isClosed();
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("status", open ? "ok" : "closed");
    body.put("image_size", (long) service.imageSize());
    body.put("num_class_embeds", (long) service.numClassEmbeds());
    body.put("max_batch", (long) service.options().maxBatch());
    body.put("queued", (long) s.queued());
    body.put("in_progress", (long) s.inProgress());
    body.put("submitted", s.submitted());
    body.put("completed", s.completed());
    body.put("rejected", s.rejected());
    body.put("failed", s.failed());
    body.put("cancelled", s.cancelled());
    body.put("deadline_exceeded", s.deadlineExceeded());
    body.put("unet_passes", s.unetPasses());
    body.put("images_per_pass_mean", s.batchImages().mean());
    body.put("latency_ms_p50", s.latency().percentile(0.5) / 1e6);
    body.put("latency_ms_p99", s.latency().percentile(0.99) / 1e6);
    sendJson(exchange, open ? 200 : 503, body);
  }

  private static byte[] png(GenerationResult result) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    // An explicit in-memory stream: ImageIO's default for OutputStreams may cache in temp files.
    ImageWriter writer = ImageIO.getImageWritersByFormatName("png").next();
    try (ImageOutputStream out = new MemoryCacheImageOutputStream(bytes)) {
      writer.setOutput(out);
      writer.write(result.toBufferedImages().get(0));
    } finally {
      writer.dispose();
    }
    return bytes.toByteArray();
  }

  private static void sendError(HttpExchange exchange, int status, String message)
      throws IOException {
    sendJson(exchange, status, Map.of("error", message));
  }

  private static void sendJson(HttpExchange exchange, int status, Map<String, Object> body)
      throws IOException {
    byte[] bytes = (Json.write(body) + "\n").getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  /** Settings of a {@link GenerationServer}. */
  public static final class Builder {
    private final GenerationService service;
    private InetSocketAddress address = new InetSocketAddress("127.0.0.1", 8080);
    private int maxBodyBytes = 4096;
    private Duration timeout = Duration.ofSeconds(30);
    private int maxSteps = 40;
    private int threads;

    private Builder(GenerationService service) {
      this.service = Objects.requireNonNull(service, "service");
    }

    /** Where to listen (default 127.0.0.1:8080; port 0 picks a free one). */
    public Builder address(InetSocketAddress address) {
      this.address = Objects.requireNonNull(address, "address");
      return this;
    }

    /** Largest request body accepted (default 4096 bytes). */
    public Builder maxBodyBytes(int bytes) {
      if (bytes < 1) {
        throw new IllegalArgumentException("maxBodyBytes: expected at least 1, found " + bytes);
      }
      this.maxBodyBytes = bytes;
      return this;
    }

    /** Deadline of each generation, from its arrival (default 30 s). */
    public Builder timeout(Duration timeout) {
      if (timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("timeout: expected a positive duration, found "
            + timeout);
      }
      this.timeout = timeout;
      return this;
    }

    /** Most steps (or custom timesteps) one request may ask for (default 40). */
    public Builder maxSteps(int steps) {
      if (steps < 1) {
        throw new IllegalArgumentException("maxSteps: expected at least 1, found " + steps);
      }
      this.maxSteps = steps;
      return this;
    }

    /** Handler threads (default max(16, 2 * maxBatch)). */
    public Builder threads(int threads) {
      if (threads < 1) {
        throw new IllegalArgumentException("threads: expected at least 1, found " + threads);
      }
      this.threads = threads;
      return this;
    }

    /** Binds the address and starts serving. */
    public GenerationServer start() throws IOException {
      return new GenerationServer(this);
    }
  }

  @Override
  public String toString() {
    return "GenerationServer[" + uri() + ", max body " + maxBodyBytes + " bytes, timeout "
        + timeout.toMillis() + " ms, max steps " + maxSteps + "]";
  }
}
