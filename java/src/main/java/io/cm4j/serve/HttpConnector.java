package io.cm4j.serve;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.ToIntFunction;

/**
 * The accepting layer of {@link GenerationServer}: one thread with a NIO selector accepts
 * connections, reads each request whole (headers and body) and writes each response, so no
 * other thread ever waits on a socket. A client that sends slowly holds a connection slot,
 * never a thread, and loses it when {@link Limits#requestTimeout} passes before its request is
 * complete (slowloris). Connections beyond {@link Limits#maxConnections} get a 503 and are
 * closed at once.
 *
 * <p>HTTP/1.1 with keep-alive, one request at a time per connection (a pipelined request is
 * read once the previous answer is written). Bodies need {@code Content-Length}; chunked
 * bodies get 411, a length over the path's limit 413 before any of the body is read, and the
 * body's buffer grows as its bytes arrive, not to the length declared. A complete request goes
 * to {@link Handler#handle} on the handler executor, which answers through the
 * {@link Responder}, from any thread, once. The errors the connector answers itself (400, 408,
 * 411, 413, 431, 500 for a handler that threw, 503) are counted by status
 * ({@link #answers()}); a handler that threw is logged.
 */
final class HttpConnector implements AutoCloseable {
  /** Answers one request; must call {@link Responder#send} exactly once, from any thread. */
  interface Handler {
    void handle(HttpRequest request, Responder responder);
  }

  /** The answer to one request. */
  interface Responder {
    /** Sends the response; later calls do nothing. Header names as they should be written. */
    void send(int status, String contentType, Map<String, String> headers, byte[] body);
  }

  /**
   * How much a client may hold.
   *
   * @param maxConnections open connections at most; more are answered 503 and closed
   * @param requestTimeout from a request's first byte to its last, at most
   * @param idleTimeout an open connection with no request in progress is closed after this
   * @param writeTimeout a response must be taken by the client within this
   * @param maxHeaderBytes request line and headers, at most
   * @param maxBodyBytes request body at most, by the request's path; more gets 413 without
   *     being read
   */
  record Limits(int maxConnections, Duration requestTimeout, Duration idleTimeout,
      Duration writeTimeout, int maxHeaderBytes, ToIntFunction<String> maxBodyBytes) {}

  private static final System.Logger LOG = System.getLogger(HttpConnector.class.getName());
  private static final String JSON = "application/json; charset=utf-8";
  private static final byte[] HEADER_END = {'\r', '\n', '\r', '\n'};
  private static final long SWEEP_NANOS = 100_000_000L;

  private final Limits limits;
  private final Handler handler;
  private final Executor handlers;
  private final ServerSocketChannel server;
  private final Selector selector;
  private final Thread thread;
  private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
  private final AtomicInteger open = new AtomicInteger();
  private final AtomicInteger busy = new AtomicInteger(); // requests being handled or written
  private final Map<Integer, LongAdder> answers = new ConcurrentHashMap<>(); // our own, by status
  private final AtomicBoolean closed = new AtomicBoolean();
  private volatile boolean accepting = true;

  HttpConnector(InetSocketAddress address, Limits limits, Handler handler, Executor handlers)
      throws IOException {
    this.limits = Objects.requireNonNull(limits, "limits");
    this.handler = Objects.requireNonNull(handler, "handler");
    this.handlers = Objects.requireNonNull(handlers, "handlers");
    selector = Selector.open();
    try {
      server = ServerSocketChannel.open();
      server.bind(address, 1024);
      server.configureBlocking(false);
      server.register(selector, SelectionKey.OP_ACCEPT);
    } catch (IOException | RuntimeException e) {
      selector.close();
      throw e;
    }
    thread = new Thread(this::run, "cm4j-http-io");
    thread.setDaemon(true);
    thread.start();
  }

  InetSocketAddress address() {
    try {
      return (InetSocketAddress) server.getLocalAddress();
    } catch (IOException e) {
      throw new IllegalStateException("connector closed", e);
    }
  }

  /** Open connections now. */
  int openConnections() {
    return open.get();
  }

  /** Requests being handled or answered now: until the answer's last byte is written. */
  int busyRequests() {
    return busy.get();
  }

  /** Whether the I/O thread still serves: false once closed, or when it died of a bug. */
  boolean isServing() {
    return thread.isAlive() && !closed.get();
  }

  /** The answers the connector gave itself (not through a handler), by status. */
  Map<Integer, Long> answers() {
    Map<Integer, Long> out = new TreeMap<>();
    answers.forEach((status, n) -> out.put(status, n.sum()));
    return out;
  }

  private void count(int status) {
    answers.computeIfAbsent(status, k -> new LongAdder()).increment();
  }

  /** Stops accepting; open connections and requests in flight go on. */
  void stopAccepting() {
    accepting = false;
    tasks.add(() -> {
      try {
        server.close();
      } catch (IOException e) {
        // nothing left to do with it
      }
    });
    selector.wakeup();
  }

  /** Closes every connection and the selector; waits for the I/O thread. Idempotent. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    accepting = false;
    selector.wakeup();
    boolean interrupted = false;
    while (thread.isAlive() && Thread.currentThread() != thread) {
      try {
        thread.join();
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  // ---- the I/O thread ----

  private void run() {
    long nextSweep = System.nanoTime() + SWEEP_NANOS;
    try {
      while (!closed.get()) {
        selector.select(SWEEP_NANOS / 1_000_000);
        for (Runnable task; (task = tasks.poll()) != null; ) {
          task.run();
        }
        for (SelectionKey key : selector.selectedKeys()) {
          if (!key.isValid()) {
            continue;
          }
          if (key.isAcceptable()) {
            try {
              accept();
            } catch (RuntimeException | Error e) { // out of memory: later accepts may do
              LOG.log(Level.ERROR, "HTTP accept failed", e);
            }
          } else if (key.attachment() instanceof Connection c) {
            serve(c, () -> {
              if (key.isWritable()) {
                c.write();
              } else if (key.isReadable()) {
                c.read();
              }
            });
          }
        }
        selector.selectedKeys().clear();
        long now = System.nanoTime();
        if (now - nextSweep >= 0) {
          nextSweep = now + SWEEP_NANOS;
          for (SelectionKey key : selector.keys()) {
            // a key cancelled in this pass (its connection closed) stays listed until the
            // next select
            if (key.isValid() && key.attachment() instanceof Connection c && !c.closed
                && now - c.deadline >= 0) {
              serve(c, c::expired);
            }
          }
        }
      }
    } catch (IOException | ClosedSelectorException e) {
      if (!closed.get()) {
        LOG.log(Level.ERROR, "HTTP connector stopped: its selector failed", e);
      }
    } catch (RuntimeException | Error e) {
      LOG.log(Level.ERROR, "HTTP connector stopped by a bug: nothing more is served", e);
    } finally {
      for (SelectionKey key : selector.keys()) {
        if (key.attachment() instanceof Connection c) {
          c.close();
        }
      }
      try {
        server.close();
        selector.close();
      } catch (IOException e) {
        // closing anyway
      }
    }
  }

  /**
   * Runs {@code step} of {@code c}'s exchange; a bug there (or an OutOfMemoryError) loses this
   * connection, not the server.
   */
  private static void serve(Connection c, Runnable step) {
    try {
      step.run();
    } catch (RuntimeException | Error e) {
      LOG.log(Level.ERROR, "HTTP connection dropped by an internal error", e);
      c.close();
    }
  }

  private void accept() {
    while (accepting) {
      SocketChannel channel;
      try {
        channel = server.accept();
      } catch (IOException e) {
        return; // closed by stopAccepting, or out of file descriptors: try again later
      }
      if (channel == null) {
        return;
      }
      try {
        channel.configureBlocking(false);
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        if (open.get() >= limits.maxConnections()) {
          // Best effort: a fresh socket's send buffer takes this small answer whole.
          channel.write(ByteBuffer.wrap(response(503, JSON, Map.of("Retry-After", "1"),
              errorBody("too many connections: at most " + limits.maxConnections()
                  + " are served at once"), false)));
          count(503);
          channel.close();
          continue;
        }
        Connection c = new Connection(channel);
        c.key = channel.register(selector, SelectionKey.OP_READ, c);
        open.incrementAndGet();
      } catch (IOException e) {
        try {
          channel.close();
        } catch (IOException ignored) {
          // gone already
        }
      }
    }
  }

  /** One client connection; its fields belong to the I/O thread. */
  private final class Connection {
    final SocketChannel channel;
    SelectionKey key;
    ByteBuffer in;
    int headerEnd = -1; // index after the blank line, once found
    int searched; // bytes searched for the blank line so far
    int bodyLength;
    boolean keepAlive;
    long arrival;
    long deadline;
    boolean inRequest; // first byte read, answer not yet written
    boolean handedOver; // to the handler, answer not yet written: counted in busy
    ByteBuffer out;
    boolean closeAfterWrite;
    boolean draining; // answered and closing: reads what the client still sends, then closes
    boolean closed;

    Connection(SocketChannel channel) {
      this.channel = channel;
      this.in = ByteBuffer.allocate(Math.min(1024, limits.maxHeaderBytes()));
      this.deadline = System.nanoTime() + limits.requestTimeout().toNanos();
    }

    void read() {
      if (draining) {
        drain();
        return;
      }
      int n;
      try {
        if (!in.hasRemaining()) { // twice as large, up to the headers' or the body's end
          int most = headerEnd < 0 ? limits.maxHeaderBytes() : headerEnd + bodyLength;
          grow(Math.max(in.capacity(), Math.min(most, 2 * in.capacity())));
        }
        n = channel.read(in);
      } catch (IOException e) {
        close();
        return;
      }
      if (n < 0) {
        close();
        return;
      }
      if (n > 0 && !inRequest) {
        inRequest = true;
        arrival = System.nanoTime();
        deadline = arrival + limits.requestTimeout().toNanos();
      }
      parse();
    }

    /** Acts on what has been read: waits for more, answers an error, or hands over. */
    void parse() {
      if (headerEnd < 0) {
        // the blank line may straddle what was searched and what is new
        headerEnd = indexOf(in, HEADER_END, Math.max(0, searched - HEADER_END.length + 1));
        searched = in.position();
        if (headerEnd < 0) {
          if (in.position() >= limits.maxHeaderBytes()) {
            fail(431, "request headers too large: at most " + limits.maxHeaderBytes()
                + " bytes");
          }
          return;
        }
        headerEnd += HEADER_END.length;
        if (!readHead()) {
          return;
        }
      }
      if (in.position() < headerEnd + bodyLength) {
        return; // more body to come
      }
      key.interestOps(0);
      handedOver = true;
      busy.incrementAndGet();
      HttpRequest request = request();
      boolean keep = keepAlive;
      try {
        handlers.execute(() -> handle(request, keep));
      } catch (RejectedExecutionException e) {
        fail(503, "server is shutting down", Map.of("Retry-After", "1"));
      }
    }

    private HttpRequest head;

    void grow(int capacity) {
      if (capacity == in.capacity()) {
        return;
      }
      ByteBuffer bigger = ByteBuffer.allocate(capacity);
      in.flip();
      bigger.put(in);
      in = bigger;
    }

    /** Parses the request line and headers; false when it answered an error instead. */
    boolean readHead() {
      String text = new String(in.array(), 0, headerEnd - HEADER_END.length,
          StandardCharsets.ISO_8859_1);
      String[] lines = text.split("\r\n", -1);
      String[] start = lines[0].split(" ", -1);
      if (start.length != 3 || start[0].isEmpty() || !start[1].startsWith("/")
          || !start[2].startsWith("HTTP/1.")) {
        fail(400, "malformed request line: expected METHOD /path HTTP/1.1");
        return false;
      }
      Map<String, String> headers = new HashMap<>();
      for (int i = 1; i < lines.length; i++) {
        String line = lines[i];
        int colon = line.indexOf(':');
        if (colon <= 0 || line.charAt(0) == ' ' || line.charAt(0) == '\t') {
          // a leading space is an obsolete line folding (RFC 9112 5.2): refused, not joined
          fail(400, "malformed header line " + i + ": expected Name: value");
          return false;
        }
        String name = line.substring(0, colon);
        if (name.indexOf(' ') >= 0 || name.indexOf('\t') >= 0) { // RFC 9112 5.1: a 400
          fail(400, "malformed header line " + i + ": no space allowed in or after the name");
          return false;
        }
        if (headers.put(name.toLowerCase(Locale.ROOT), line.substring(colon + 1).trim()) != null
            && name.equalsIgnoreCase("content-length")) { // which one frames the body?
          fail(400, "Content-Length: given more than once");
          return false;
        }
      }
      String target = start[1];
      int q = target.indexOf('?');
      String path = q < 0 ? target : target.substring(0, q);
      if (headers.containsKey("transfer-encoding")) {
        fail(411, "chunked request bodies are not supported: send Content-Length");
        return false;
      }
      String length = headers.get("content-length");
      bodyLength = 0;
      if (length != null) {
        if (!length.matches("[0-9]{1,10}")) { // no sign, no list: Long.parseLong takes "+5"
          fail(400, "Content-Length: expected a number of bytes");
          return false;
        }
        long declared = Long.parseLong(length);
        int most = limits.maxBodyBytes().applyAsInt(path);
        if (declared > most) {
          fail(413, "request body too large: expected at most " + most + " bytes, found "
              + declared);
          return false;
        }
        bodyLength = (int) declared;
      }
      String connection = headers.getOrDefault("connection", "").toLowerCase(Locale.ROOT);
      keepAlive = start[2].equals("HTTP/1.1") ? !connection.contains("close")
          : connection.contains("keep-alive");
      head = new HttpRequest(start[0], path, q < 0 ? "" : target.substring(q + 1),
          Map.copyOf(headers), new byte[0], arrival);
      if (bodyLength > 0 && "100-continue".equalsIgnoreCase(headers.get("expect"))
          && in.position() < headerEnd + bodyLength) {
        try {
          channel.write(ByteBuffer.wrap("HTTP/1.1 100 Continue\r\n\r\n"
              .getBytes(StandardCharsets.ISO_8859_1)));
        } catch (IOException e) {
          close();
          return false;
        }
      }
      return true;
    }

    /** The request read, with its body; keeps any bytes after it for the next request. */
    HttpRequest request() {
      byte[] body = new byte[bodyLength];
      System.arraycopy(in.array(), headerEnd, body, 0, bodyLength);
      int rest = in.position() - headerEnd - bodyLength;
      byte[] next = new byte[rest];
      System.arraycopy(in.array(), headerEnd + bodyLength, next, 0, rest);
      in = ByteBuffer.allocate(Math.max(1024, rest));
      in.put(next);
      headerEnd = -1;
      searched = 0;
      return new HttpRequest(head.method(), head.path(), head.query(), head.headers(), body,
          head.arrivalNanos());
    }

    /** On a handler thread. */
    void handle(HttpRequest request, boolean keep) {
      AtomicBoolean sent = new AtomicBoolean();
      Responder responder = (status, type, headers, body) -> {
        if (sent.compareAndSet(false, true)) {
          tasks.add(() -> serve(this, () -> startWrite(status, type, headers, body, !keep)));
          selector.wakeup();
        }
      };
      try {
        handler.handle(request, responder);
      } catch (RuntimeException | Error e) { // a bug: answer without its text
        LOG.log(Level.ERROR, "handler failed on " + request.method() + " " + request.path(), e);
        if (!sent.get()) {
          count(500);
        }
        responder.send(500, JSON, Map.of(), errorBody("internal error"));
      }
    }

    /** Answers an error and closes: what follows the request cannot be trusted. */
    void fail(int status, String message) {
      fail(status, message, Map.of());
    }

    void fail(int status, String message, Map<String, String> headers) {
      key.interestOps(0);
      count(status);
      startWrite(status, JSON, headers, errorBody(message), true);
    }

    /** On the I/O thread, which alone knows whether the connection stays open after it. */
    void startWrite(int status, String type, Map<String, String> headers, byte[] body,
        boolean thenClose) {
      if (closed) {
        return;
      }
      closeAfterWrite = thenClose || !accepting;
      out = ByteBuffer.wrap(response(status, type, headers, body, !closeAfterWrite));
      deadline = System.nanoTime() + limits.writeTimeout().toNanos();
      write();
    }

    void write() {
      try {
        channel.write(out);
      } catch (IOException e) {
        close();
        return;
      }
      if (out.hasRemaining()) {
        key.interestOps(SelectionKey.OP_WRITE);
        return;
      }
      out = null;
      done();
      if (closeAfterWrite) {
        linger();
        return;
      }
      inRequest = in.position() > 0;
      long now = System.nanoTime();
      arrival = now;
      deadline = now + (inRequest ? limits.requestTimeout() : limits.idleTimeout()).toNanos();
      key.interestOps(SelectionKey.OP_READ);
      if (inRequest) {
        parse(); // a pipelined request already read
      }
    }

    /**
     * Closes after the answer without losing it: closing a socket with unread input resets
     * the connection, and the client may then never see the answer (say a 413 while it still
     * sends the body). So the output is shut, and what the client sends is read and dropped
     * until it closes too, for at most a second.
     */
    void linger() {
      try {
        channel.shutdownOutput();
      } catch (IOException e) {
        close();
        return;
      }
      draining = true;
      in = ByteBuffer.allocate(4096);
      deadline = System.nanoTime() + Math.min(1_000_000_000L, limits.requestTimeout().toNanos());
      key.interestOps(SelectionKey.OP_READ);
    }

    void drain() {
      try {
        in.clear();
        if (channel.read(in) >= 0) {
          return;
        }
      } catch (IOException e) {
        // gone: close
      }
      close();
    }

    /** Its deadline passed: a request too slow to arrive, an idle or a stuck connection. */
    void expired() {
      if (draining || out != null || !inRequest) {
        close(); // a client that does not take its answer, or an idle keep-alive
      } else if (key.interestOps() != 0) {
        fail(408, "request not received within " + limits.requestTimeout().toMillis() + " ms");
      } // else being handled: the service's deadline bounds it
    }

    /** The request handed over is answered, or will never be: no longer busy. */
    void done() {
      if (handedOver) {
        handedOver = false;
        busy.decrementAndGet();
      }
    }

    void close() {
      if (closed) {
        return;
      }
      closed = true;
      done();
      open.decrementAndGet();
      key.cancel();
      try {
        channel.close();
      } catch (IOException e) {
        // closed anyway
      }
    }
  }

  private static int indexOf(ByteBuffer buffer, byte[] pattern, int from) {
    byte[] a = buffer.array();
    int end = buffer.position() - pattern.length;
    outer:
    for (int i = from; i <= end; i++) {
      for (int j = 0; j < pattern.length; j++) {
        if (a[i + j] != pattern[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  static byte[] errorBody(String message) {
    return (io.cm4j.weights.Json.write(Map.of("error", message)) + "\n")
        .getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] response(int status, String contentType, Map<String, String> headers,
      byte[] body, boolean keepAlive) {
    StringBuilder sb = new StringBuilder(128).append("HTTP/1.1 ").append(status).append(' ')
        .append(reason(status)).append("\r\n");
    sb.append("Content-Type: ").append(contentType).append("\r\n");
    sb.append("Content-Length: ").append(body.length).append("\r\n");
    sb.append("Connection: ").append(keepAlive ? "keep-alive" : "close").append("\r\n");
    for (Map.Entry<String, String> h : headers.entrySet()) {
      sb.append(h.getKey()).append(": ").append(h.getValue()).append("\r\n");
    }
    byte[] head = sb.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1);
    byte[] all = new byte[head.length + body.length];
    System.arraycopy(head, 0, all, 0, head.length);
    System.arraycopy(body, 0, all, head.length, body.length);
    return all;
  }

  private static String reason(int status) {
    return switch (status) {
      case 200 -> "OK";
      case 400 -> "Bad Request";
      case 404 -> "Not Found";
      case 405 -> "Method Not Allowed";
      case 408 -> "Request Timeout";
      case 411 -> "Length Required";
      case 413 -> "Content Too Large";
      case 431 -> "Request Header Fields Too Large";
      case 500 -> "Internal Server Error";
      case 503 -> "Service Unavailable";
      default -> "Status";
    };
  }
}
