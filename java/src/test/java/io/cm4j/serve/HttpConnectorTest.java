package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
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
    HttpConnector.Limits limits = new HttpConnector.Limits(16, Duration.ofSeconds(5),
        Duration.ofSeconds(5), Duration.ofSeconds(5), 1024, 100);
    connector = new HttpConnector(new InetSocketAddress("127.0.0.1", 0), limits,
        (request, responder) -> {
          if (request.path().equals("/boom")) {
            throw new IllegalStateException("secret internal detail");
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

  private int awaitClosed() {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (connector.openConnections() > 0 && System.nanoTime() < end) {
      Thread.onSpinWait();
    }
    return connector.openConnections();
  }
}
