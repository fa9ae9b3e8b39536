package io.cm4j.serve;

import io.cm4j.edit.EditRequest;
import io.cm4j.edit.EditTask;
import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.serve.HttpConnector.Responder;
import io.cm4j.weights.Json;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import java.util.function.Function;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;

/**
 * The HTTP front end of a {@link GenerationService}:
 * <ul>
 *   <li>{@code GET /}: the page (generate form, gallery, live service view), plain
 *       HTML/CSS/JS from the jar;</li>
 *   <li>{@code POST /generate} with a JSON body (see {@link GenerateJson}:
 *       {@code {"class": 145, "seed": 12, "steps": 2}}) answers 200 with the image as a PNG,
 *       its class, class name, seed, timesteps and latency in {@code X-Cm4j-*} headers;</li>
 *   <li>{@code POST /edit/{task}} (inpaint, colorize, superres, sdedit, denoise) with a JSON
 *       body holding the image as a base64 PNG (see {@link EditJson}) answers 200 with the
 *       edited image as a PNG; {@code POST /edit/interpolate} with {@code alpha}, class and
 *       seed answers with the image at that position; edits share UNet passes with
 *       generations and other edits, with the same deadline, queue and errors;</li>
 *   <li>{@code GET /health}: the service's counters as JSON (503 once it is closed);</li>
 *   <li>{@code GET /metrics}: the same and more in the Prometheus text format.</li>
 * </ul>
 * Every failure is a JSON body {@code {"error": "..."}} that names the problem, never a stack
 * trace or an exception's text: 400 for a bad body, 404 and 405 for other paths and methods,
 * 408 for a request not received within {@link Builder#requestTimeout}, 411 for a chunked
 * body, 413 for a body over {@link Builder#maxBodyBytes} ({@link Builder#maxEditBodyBytes} for
 * an edit), answered from its declared length before the body is read, 503 with
 * {@code Retry-After} when the service queue is full, too many connections are open, the
 * deadline passed or the service is closing, 500 for anything else (logged).
 *
 * <p><b>Overload.</b> The accepting layer ({@link HttpConnector}) reads requests on one
 * selector thread, so a client that sends slowly holds a connection slot, not a thread, and
 * at most {@link Builder#maxConnections} are open. A request is submitted to the service as
 * soon as it is read and no thread waits for its result: the service queue is the only queue,
 * and a full one answers 503 at once. Each request's deadline ({@link Builder#timeout}) counts
 * from the arrival of its first byte. The defaults bound everything, so an embedding
 * application is protected without settings.
 *
 * <p>The server does not own the service: close both. Thread-safe: {@link #close()} may be
 * called from any thread.
 */
public final class GenerationServer implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(GenerationServer.class.getName());
  private static final String JSON = "application/json; charset=utf-8";
  private static final Map<String, String[]> PAGES = Map.of(
      "/", new String[] {"web/index.html", "text/html; charset=utf-8"},
      "/app.js", new String[] {"web/app.js", "text/javascript; charset=utf-8"},
      "/app.css", new String[] {"web/app.css", "text/css; charset=utf-8"},
      "/imagenet-classes.txt",
      new String[] {ImageNetClasses.RESOURCE, "text/plain; charset=utf-8"});

  private final GenerationService service;
  private final HttpConnector connector;
  private final ThreadPoolExecutor handlers;
  private final int maxBodyBytes;
  private final int maxEditBodyBytes;
  private final Duration timeout;
  private final int maxSteps;
  private final Map<String, byte[]> pages = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, LongAdder> answers = new ConcurrentHashMap<>();

  private GenerationServer(Builder b) throws IOException {
    this.service = b.service;
    this.maxBodyBytes = b.maxBodyBytes;
    this.maxEditBodyBytes = b.maxEditBodyBytes;
    this.timeout = b.timeout;
    this.maxSteps = b.maxSteps;
    int threads = b.threads > 0 ? b.threads
        : Math.max(2, Runtime.getRuntime().availableProcessors());
    AtomicInteger n = new AtomicInteger();
    // Handlers never wait on a socket or a result: they parse, submit, and encode PNGs. Their
    // queue holds at most one task per open connection.
    handlers = new ThreadPoolExecutor(threads, threads, 30, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), r -> {
          Thread t = new Thread(r, "cm4j-http-" + n.incrementAndGet());
          t.setDaemon(true);
          return t;
        });
    handlers.allowCoreThreadTimeOut(true);
    HttpConnector.Limits limits = new HttpConnector.Limits(b.maxConnections, b.requestTimeout,
        b.idleTimeout, b.requestTimeout.multipliedBy(3), 16 * 1024,
        path -> editTask(path) != null ? maxEditBodyBytes : maxBodyBytes);
    try {
      connector = new HttpConnector(b.address, limits, this::handle, handlers);
    } catch (IOException | RuntimeException e) {
      handlers.shutdownNow();
      throw e;
    }
  }

  /** A server for {@code service}; {@link Builder#start()} binds it and starts serving. */
  public static Builder builder(GenerationService service) {
    return new Builder(service);
  }

  /** The address bound, with the actual port when 0 was asked for. */
  public InetSocketAddress address() {
    return connector.address();
  }

  /** {@code http://host:port}. */
  public URI uri() {
    InetSocketAddress a = address();
    String host = a.getAddress().getHostAddress();
    return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":"
        + a.getPort());
  }

  /** Open connections now (slow and idle ones included). */
  public int openConnections() {
    return connector.openConnections();
  }

  /**
   * Whether it still accepts and answers: false once closed, or after its I/O thread died of
   * an internal error (logged), when nothing more can be served.
   */
  public boolean isServing() {
    return connector.isServing();
  }

  /** Stops listening and ends the exchanges in flight at once; the service stays open. */
  @Override
  public void close() {
    close(Duration.ZERO);
  }

  /**
   * Stops listening, gives the requests in flight up to {@code grace} to be answered, then
   * closes every connection. The service stays open: close it first to let its accepted
   * requests finish and be answered.
   */
  public void close(Duration grace) {
    connector.stopAccepting();
    long end = System.nanoTime() + grace.toNanos();
    while (connector.busyRequests() > 0 && System.nanoTime() - end < 0) {
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    connector.close();
    handlers.shutdownNow();
  }

  // ---- routing ----

  private void handle(HttpRequest request, Responder raw) {
    String path = request.path();
    EditTask task = editTask(path);
    String endpoint = path.equals("/generate") || path.equals("/health")
        || path.equals("/metrics") || PAGES.containsKey(path) ? path
        : task != null ? "/edit/" + task.cliName() : "other";
    Responder responder = (status, type, headers, body) -> {
      answers.computeIfAbsent(endpoint + " " + status, k -> new LongAdder()).increment();
      raw.send(status, type, headers, body);
    };
    String method = request.method();
    String allowed = path.equals("/generate") || task != null ? "POST" : "GET";
    if (endpoint.equals("other")) {
      sendError(responder, 404, "no such path: expected GET /, POST /generate, POST "
          + "/edit/{inpaint|colorize|superres|sdedit|denoise|interpolate}, GET /health or "
          + "GET /metrics");
    } else if (!method.equals(allowed)) {
      responder.send(405, JSON, Map.of("Allow", allowed), HttpConnector.errorBody("method "
          + method + " not allowed on " + path + ": use " + allowed));
    } else if (path.equals("/generate")) {
      generate(request, responder);
    } else if (task != null) {
      edit(request, task, responder);
    } else if (path.equals("/health")) {
      health(responder);
    } else if (path.equals("/metrics")) {
      responder.send(200, PrometheusText.CONTENT_TYPE, Map.of(), PrometheusText.render(
          service, requestCounts(), connector.openConnections())
          .getBytes(StandardCharsets.UTF_8));
    } else {
      String[] page = PAGES.get(path);
      responder.send(200, page[1], Map.of("Cache-Control", "no-cache"),
          pages.computeIfAbsent(page[0], GenerationServer::resource));
    }
  }

  /** The task of an /edit/{task} path; null for any other path. */
  private static EditTask editTask(String path) {
    if (!path.startsWith("/edit/")) {
      return null;
    }
    try {
      return EditTask.fromName(path.substring("/edit/".length()));
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  /** Answers by "endpoint status"; the connector's own (a request not routed) as "connector". */
  private Map<String, Long> requestCounts() {
    Map<String, Long> out = new TreeMap<>();
    answers.forEach((k, v) -> out.put(k, v.sum()));
    connector.answers().forEach((status, n) -> out.put("connector " + status, n));
    return out;
  }

  private static byte[] resource(String name) {
    try (InputStream in = GenerationServer.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("resource " + name + " missing from the jar");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void generate(HttpRequest http, Responder responder) {
    GenerationRequest request;
    try {
      request = GenerateJson.parse(http.body(), service.numClassEmbeds(),
          service.numTrainTimesteps(), maxSteps);
    } catch (BadRequestException e) {
      sendError(responder, 400, e.getMessage());
      return;
    }
    submit(http, responder, left -> service.submit(request, left), result -> sendImage(
        responder, result.toBufferedImages().get(0), result.classLabels(), result.seed(),
        result.timesteps(), Map.of(), http.arrivalNanos()));
  }

  private void edit(HttpRequest http, EditTask task, Responder responder) {
    EditRequest request;
    try {
      request = EditJson.parse(http.body(), task, service.imageSize(), service.numClassEmbeds(),
          service.numTrainTimesteps(), maxSteps);
    } catch (BadRequestException e) {
      sendError(responder, 400, e.getMessage());
      return;
    }
    submit(http, responder, left -> service.submitEdit(request, left), result -> sendImage(
        responder, result.toBufferedImages().get(0), result.classLabels(), result.seed(),
        result.timesteps(), Map.of("X-Cm4j-Task", task.cliName()), http.arrivalNanos()));
  }

  /**
   * Submits what {@code submit} makes of the deadline left since the request's arrival, and
   * answers from the handler pool when it is done: {@code answer} with the result, or the
   * error. Nothing waits for it.
   */
  private <R> void submit(HttpRequest http, Responder responder,
      Function<Duration, CompletableFuture<R>> submit, Consumer<R> answer) {
    long left = timeout.toNanos() - (System.nanoTime() - http.arrivalNanos());
    if (left <= 0) {
      unavailable(responder, "deadline of " + timeout.toMillis() + " ms passed before the "
          + "request was read");
      return;
    }
    CompletableFuture<R> future;
    try {
      future = submit.apply(Duration.ofNanos(left));
    } catch (IllegalArgumentException e) { // the request does not fit the model: its message
      sendError(responder, 400, e.getMessage());
      return;
    } catch (QueueFullException e) {
      unavailable(responder, e.getMessage());
      return;
    } catch (IllegalStateException e) {
      unavailable(responder, "server is shutting down: the service is closed");
      return;
    }
    future.whenCompleteAsync((result, error) -> answer(responder, answer, result, error),
        handlers);
  }

  /**
   * Answers a finished request: {@code answer} with its result, or its error. Whatever
   * {@code answer} throws (a bug, no memory for the PNG) is logged and answered 500: the
   * completion stage would swallow it, and the client would wait for nothing.
   */
  static <R> void answer(Responder responder, Consumer<R> answer, R result, Throwable error) {
    if (error == null) {
      try {
        answer.accept(result);
      } catch (Throwable e) {
        LOG.log(Level.ERROR, "answering failed", e);
        sendError(responder, 500, "answering failed; the server log has the cause");
      }
      return;
    }
    Throwable cause = error instanceof CompletionException && error.getCause() != null
        ? error.getCause() : error;
    if (cause instanceof DeadlineExceededException) {
      unavailable(responder, cause.getMessage());
    } else if (cause instanceof CancellationException) {
      unavailable(responder, "request cancelled: the service is closing");
    } else {
      LOG.log(Level.ERROR, "generation failed", cause);
      sendError(responder, 500, "generation failed; the server log has the cause");
    }
  }

  /** A 503 the client may retry after a second: overloaded, too late, or closing. */
  private static void unavailable(Responder responder, String message) {
    responder.send(503, JSON, Map.of("Retry-After", "1"), HttpConnector.errorBody(message));
  }

  private void sendImage(Responder responder, BufferedImage image, long[] labels, long seed,
      float[] timesteps, Map<String, String> more, long arrivalNanos) {
    byte[] png;
    try {
      png = png(image);
    } catch (IOException e) {
      LOG.log(Level.ERROR, "PNG encoding failed", e);
      sendError(responder, 500, "PNG encoding failed; the server log has the cause");
      return;
    }
    Map<String, String> headers = new LinkedHashMap<>(more);
    if (labels != null) {
      headers.put("X-Cm4j-Class", Long.toString(labels[0]));
      if (service.numClassEmbeds() == ImageNetClasses.COUNT) {
        headers.put("X-Cm4j-Class-Name", ImageNetClasses.name(labels[0]));
      }
    }
    headers.put("X-Cm4j-Seed", Long.toString(seed));
    headers.put("X-Cm4j-Timesteps", Arrays.toString(timesteps).replaceAll("[\\[\\] ]", ""));
    headers.put("X-Cm4j-Latency-Ms", String.format(Locale.ROOT, "%.1f",
        (System.nanoTime() - arrivalNanos) / 1e6));
    responder.send(200, "image/png", headers, png);
  }

  private void health(Responder responder) {
    ServiceStats s = service.stats();
    boolean open = !service.isClosed();
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("status", open ? "ok" : "closed");
    body.put("device", service.device().toString());
    body.put("dtype", service.precision().toString());
    body.put("image_size", (long) service.imageSize());
    body.put("num_class_embeds", (long) service.numClassEmbeds());
    body.put("max_batch", (long) service.options().maxBatch());
    body.put("max_steps", (long) Math.min(maxSteps, service.numTrainTimesteps()));
    body.put("queue_capacity", (long) service.options().queueCapacity());
    body.put("queued", (long) s.queued());
    body.put("in_progress", (long) s.inProgress());
    body.put("submitted", s.submitted());
    body.put("completed", s.completed());
    body.put("images", s.images());
    body.put("rejected", s.rejected());
    body.put("failed", s.failed());
    body.put("cancelled", s.cancelled());
    body.put("deadline_exceeded", s.deadlineExceeded());
    body.put("unet_passes", s.unetPasses());
    body.put("images_per_pass_mean", s.batchImages().mean());
    body.put("images_per_pass_max", s.batchImages().max());
    body.put("latency_ms_p50", s.latency().percentile(0.5) / 1e6);
    body.put("latency_ms_p99", s.latency().percentile(0.99) / 1e6);
    body.put("connections", (long) connector.openConnections());
    responder.send(open ? 200 : 503, JSON, Map.of(),
        (Json.write(body) + "\n").getBytes(StandardCharsets.UTF_8));
  }

  private static byte[] png(BufferedImage image) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    // An explicit in-memory stream: ImageIO's default for OutputStreams may cache in temp files.
    ImageWriter writer = ImageIO.getImageWritersByFormatName("png").next();
    try (ImageOutputStream out = new MemoryCacheImageOutputStream(bytes)) {
      writer.setOutput(out);
      writer.write(image);
    } finally {
      writer.dispose();
    }
    return bytes.toByteArray();
  }

  private static void sendError(Responder responder, int status, String message) {
    responder.send(status, JSON, Map.of(), HttpConnector.errorBody(message));
  }

  /** Settings of a {@link GenerationServer}. */
  public static final class Builder {
    private final GenerationService service;
    private InetSocketAddress address = new InetSocketAddress("127.0.0.1", 8080);
    private int maxBodyBytes = 4096;
    private int maxEditBodyBytes = 4 << 20;
    private Duration timeout = Duration.ofSeconds(30);
    private int maxSteps = 40;
    private int threads;
    private int maxConnections = 256;
    private Duration requestTimeout = Duration.ofSeconds(10);
    private Duration idleTimeout = Duration.ofSeconds(30);

    private Builder(GenerationService service) {
      this.service = Objects.requireNonNull(service, "service");
    }

    /** Where to listen (default 127.0.0.1:8080; port 0 picks a free one). */
    public Builder address(InetSocketAddress address) {
      this.address = Objects.requireNonNull(address, "address");
      return this;
    }

    /** Largest body of an edit, PNGs in base64 (default 4 MiB). */
    public Builder maxEditBodyBytes(int bytes) {
      if (bytes < 1) {
        throw new IllegalArgumentException("maxEditBodyBytes: expected at least 1, found "
            + bytes);
      }
      this.maxEditBodyBytes = bytes;
      return this;
    }

    /** Largest body of a generation accepted (default 4096 bytes). */
    public Builder maxBodyBytes(int bytes) {
      if (bytes < 1) {
        throw new IllegalArgumentException("maxBodyBytes: expected at least 1, found " + bytes);
      }
      this.maxBodyBytes = bytes;
      return this;
    }

    /** Deadline of each generation, from the arrival of its first byte (default 30 s). */
    public Builder timeout(Duration timeout) {
      this.timeout = positive("timeout", timeout);
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

    /**
     * Most open connections (default 256): more are answered 503 and closed at once. Slow and
     * idle connections count; each costs a socket and a buffer, no thread.
     */
    public Builder maxConnections(int connections) {
      if (connections < 1) {
        throw new IllegalArgumentException("maxConnections: expected at least 1, found "
            + connections);
      }
      this.maxConnections = connections;
      return this;
    }

    /**
     * Longest a client may take to send one request, headers and body, from its first byte
     * (default 10 s): slower ones get 408 and lose their connection. Three times this is the
     * longest a client may take to read an answer.
     */
    public Builder requestTimeout(Duration timeout) {
      this.requestTimeout = positive("requestTimeout", timeout);
      return this;
    }

    /** Longest a keep-alive connection may wait for its next request (default 30 s). */
    public Builder idleTimeout(Duration timeout) {
      this.idleTimeout = positive("idleTimeout", timeout);
      return this;
    }

    private static Duration positive(String what, Duration d) {
      if (d.isNegative() || d.isZero()) {
        throw new IllegalArgumentException(what + ": expected a positive duration, found " + d);
      }
      return d;
    }

    /**
     * Handler threads (default: one per core, at least 2). They parse requests, submit them
     * and encode the PNGs; none waits for a result or a socket.
     */
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
