package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The accepting layer on raw sockets, with a handler that echoes what it was given: framing
 * (pipelining, bodies, 100-continue, Connection: close) and every malformed request answered
 * with a JSON error, never with an exception's text.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HttpConnectorTest {
  private ExecutorService handlers;
  private HttpConnector connector;

  @BeforeEach
  void start() throws IOException {
    handlers = Executors.newFixedThreadPool(2);
    connector = connector(16, Duration.ofSeconds(5));
  }

  /** Bodies up to 100 bytes, 1000 on /big; /large answers 32 MiB. */
  private HttpConnector connector(int maxConnections, Duration requestTimeout)
      throws IOException {
    HttpConnector.Limits limits = new HttpConnector.Limits(maxConnections, requestTimeout,
        Duration.ofSeconds(5), Duration.ofSeconds(5), 1024,
        path -> path.equals("/big") ? 1000 : 100);
    return new HttpConnector(new InetSocketAddress("127.0.0.1", 0), limits,
        (request, responder) -> {
          if (request.path().equals("/boom")) {
            throw new IllegalStateException("secret internal detail");
          }
          if (request.path().equals("/large")) {
            responder.send(200, "application/octet-stream", Map.of(), new byte[32 << 20]);
            return;
          }
          responder.send(200, "text/plain", Map.of("X-Path", request.path()),
              (request.method() + " " + request.path() + "?" + request.query() + " "
                  + new String(request.body(), StandardCharsets.UTF_8))
                  .getBytes(StandardCharsets.UTF_8));
        }, handlers);
  }

  @AfterEach
  void stop() {
    connector.close();
    handlers.shutdownNow();
  }

  /** Sends {@code request} and reads until the server closes or {@code answers} arrived. */
  private String exchange(String request, int answers) throws IOException {
    try (Socket s = new Socket("127.0.0.1", connector.address().getPort())) {
      s.setSoTimeout(5000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
      InputStream in = s.getInputStream();
      StringBuilder got = new StringBuilder();
      byte[] buffer = new byte[4096];
      while (count(got.toString(), "HTTP/1.1 ") - count(got.toString(), "HTTP/1.1 100 ")
          < answers || !complete(got.toString())) {
        int n = in.read(buffer);
        if (n < 0) {
          break;
        }
        got.append(new String(buffer, 0, n, StandardCharsets.ISO_8859_1));
      }
      return got.toString();
    }
  }

  private static boolean complete(String text) {
    int last = text.lastIndexOf("Content-Length: ");
    if (last < 0) {
      return false;
    }
    int end = text.indexOf("\r\n", last);
    if (end < 0) {
      return false;
    }
    int length = Integer.parseInt(text.substring(last + 16, end));
    int body = text.indexOf("\r\n\r\n", last);
    return body >= 0 && text.length() - body - 4 >= length;
  }

  private static int count(String text, String part) {
    int n = 0;
    for (int i = text.indexOf(part); i >= 0; i = text.indexOf(part, i + 1)) {
      n++;
    }
    return n;
  }

  @Test
  void pipelinedRequestsAreAnsweredInOrderOnOneConnection() throws IOException {
    String answer = exchange("GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
        + "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 2);
    int first = answer.indexOf("GET /a?x=1 ");
    int second = answer.indexOf("POST /b? hello");
    assertTrue(first > 0 && second > first, answer);
    assertTrue(answer.contains("Connection: keep-alive"), answer);
  }

  @Test
  void expectContinueGets100BeforeTheBodyIsSent() throws IOException {
    try (Socket s = new Socket("127.0.0.1", connector.address().getPort())) {
      s.setSoTimeout(5000);
      s.getOutputStream().write(("POST /c HTTP/1.1\r\nContent-Length: 3\r\nExpect: "
          + "100-continue\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
      byte[] interim = s.getInputStream().readNBytes(25);
      assertEquals("HTTP/1.1 100 Continue\r\n\r\n", new String(interim,
          StandardCharsets.ISO_8859_1));
      s.getOutputStream().write("abc".getBytes(StandardCharsets.ISO_8859_1));
      s.getOutputStream().write("GET /d HTTP/1.1\r\nConnection: close\r\n\r\n"
          .getBytes(StandardCharsets.ISO_8859_1));
      String rest = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
      assertTrue(rest.contains("POST /c? abc") && rest.contains("GET /d? "), rest);
      assertTrue(rest.endsWith("GET /d? "), "closed after Connection: close: " + rest);
    }
  }

  @Test
  void malformedRequestsGetAJsonErrorAndAreClosed() throws IOException {
    String[][] cases = {
        {"GARBAGE\r\n\r\n", "400 ", "malformed request line"},
        {"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", "400 ", "malformed header line 1"},
        {"POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "400 ", "Content-Length"},
        {"POST /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n", "413 ", "at most 100 bytes"},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "411 ",
            "send Content-Length"},
        {"GET /x HTTP/1.1\r\nX: " + "a".repeat(2000) + "\r\n\r\n", "431 ", "at most 1024"},
        {"GET /boom HTTP/1.1\r\n\r\n", "500 ", "internal error"},
        // framing a server must not guess at (RFC 9112 5.1, 5.2, 6.3)
        {"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "400 ",
            "Content-Length: given more than once"},
        {"POST /x HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", "400 ", "Content-Length"},
        {"POST /x HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello", "400 ", "Content-Length"},
        {"POST /x HTTP/1.1\r\nContent-Length: 00000000005\r\n\r\nhello", "400 ",
            "Content-Length"},
        {"POST /x HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", "400 ",
            "malformed header line 1"},
        {"GET /x HTTP/1.1\r\nX-A: a\r\n folded: b\r\n\r\n", "400 ", "malformed header line 2"},
        {"POST /big HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", "413 ", "at most 1000 bytes"},
    };
    for (String[] c : cases) {
      String answer = exchange(c[0], 1);
      assertTrue(answer.startsWith("HTTP/1.1 " + c[1]), c[0] + " -> " + answer);
      assertTrue(answer.contains("application/json") && answer.contains(c[2]),
          c[0] + " -> " + answer);
      assertTrue(!answer.contains("secret") && !answer.contains("Exception"), answer);
    }
    assertEquals(0, awaitClosed(), "every connection closed");
  }

  @Test
  void eachPathHasItsBodyLimit() throws IOException {
    String body = "b".repeat(1000);
    String answer = exchange("POST /big HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + body, 1);
    assertTrue(answer.startsWith("HTTP/1.1 200 ") && answer.endsWith(body), answer);
  }

  @Test
  void headersArrivingOneByteAtATimeAreFramedAsWhole() throws Exception {
    try (Socket s = new Socket("127.0.0.1", connector.address().getPort())) {
      s.setSoTimeout(5000);
      s.setTcpNoDelay(true);
      for (byte b : "POST /x HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
          .getBytes(StandardCharsets.ISO_8859_1)) {
        s.getOutputStream().write(b);
        s.getOutputStream().flush();
        Thread.sleep(1);
      }
      String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
      assertTrue(answer.startsWith("HTTP/1.1 200 ") && answer.endsWith("POST /x? ok"), answer);
    }
  }

  @Test
  void theConnectorsOwnAnswersAreCountedByStatus() throws IOException {
    exchange("GARBAGE\r\n\r\n", 1);
    exchange("POST /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 1);
    exchange("GET /boom HTTP/1.1\r\n\r\n", 1);
    exchange("GET /fine HTTP/1.1\r\nConnection: close\r\n\r\n", 1); // the handler's own
    assertEquals(Map.of(400, 1L, 413, 1L, 500, 1L), connector.answers());
  }

  /**
   * Connections whose partial requests time out and which then close, in the sweep that
   * expires them: a key cancelled in that pass is still in the selector's set, and the
   * connector must skip it rather than stop. Each connection closes at its deadline plus
   * 0-100 ms, one every 0.7 ms or so, so closes fall in the sweeps (every 100 ms).
   */
  @Test
  void connectionsClosingAsTheirRequestTimesOutDoNotStopTheServer() throws Exception {
    connector.close();
    connector = connector(512, Duration.ofMillis(200));
    int n = 150;
    for (int round = 0; round < 3; round++) {
      List<Socket> sockets = new ArrayList<>();
      long[] sent = new long[n];
      for (int i = 0; i < n; i++) {
        Socket s = new Socket("127.0.0.1", connector.address().getPort());
        s.getOutputStream().write("GET /slow HTTP/1.1\r\nHost:".getBytes(
            StandardCharsets.ISO_8859_1));
        sent[i] = System.nanoTime();
        sockets.add(s);
      }
      for (int i = 0; i < n; i++) {
        long at = sent[i] + TimeUnit.MILLISECONDS.toNanos(200) + i * 100_000_000L / n;
        LockSupport.parkNanos(at - System.nanoTime());
        sockets.get(i).close();
      }
    }
    assertTrue(connector.isServing(), "the I/O thread is alive");
    String answer = exchange("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", 1);
    assertTrue(answer.startsWith("HTTP/1.1 200 ") && answer.endsWith("GET /health? "), answer);
  }

  /** A request stays busy until its answer's last byte is written, not when it is handed over. */
  @Test
  void aRequestIsBusyUntilItsAnswerIsWritten() throws Exception {
    try (Socket s = new Socket("127.0.0.1", connector.address().getPort())) {
      s.setSoTimeout(5000);
      s.getOutputStream().write("GET /large HTTP/1.1\r\nConnection: close\r\n\r\n".getBytes(
          StandardCharsets.ISO_8859_1));
      s.getInputStream().readNBytes(12); // the answer has begun: the handler has sent it
      Thread.sleep(200); // the 32 MiB cannot all be in the socket buffers: it is being written
      assertEquals(1, connector.busyRequests(), "busy while the answer is being written");
      long read = 12 + s.getInputStream().transferTo(OutputStream.nullOutputStream());
      assertTrue(read > 32 << 20, "whole answer read: " + read);
    }
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (connector.busyRequests() > 0 && System.nanoTime() < end) {
      Thread.sleep(5);
    }
    assertEquals(0, connector.busyRequests(), "not busy once written");
  }

  /** Once the server stops accepting, a keep-alive request's answer says the connection closes. */
  @Test
  void anAnswerAfterStopAcceptingSaysConnectionClose() throws IOException {
    try (Socket s = new Socket("127.0.0.1", connector.address().getPort())) {
      s.setSoTimeout(5000);
      byte[] request = "GET /a HTTP/1.1\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1);
      s.getOutputStream().write(request);
      String first = readAnswer(s.getInputStream());
      assertTrue(first.contains("Connection: keep-alive"), first);
      connector.stopAccepting();
      s.getOutputStream().write(request);
      String second = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
      assertTrue(second.startsWith("HTTP/1.1 200 ") && second.contains("Connection: close\r\n"),
          second);
    }
  }

  /** Reads one answer with a Content-Length body. */
  private static String readAnswer(InputStream in) throws IOException {
    StringBuilder got = new StringBuilder();
    while (!complete(got.toString())) {
      int b = in.read();
      if (b < 0) {
        break;
      }
      got.append((char) b);
    }
    return got.toString();
  }

  private int awaitClosed() {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (connector.openConnections() > 0 && System.nanoTime() < end) {
      Thread.onSpinWait();
    }
    return connector.openConnections();
  }
}
