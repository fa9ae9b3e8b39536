package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Abuse on loopback, bounded and self-stopping: slow clients (slowloris) do not stop normal
 * clients from getting images within their deadline; ten times the queue at once gets 503s at
 * once and no timeouts; afterwards the server's threads, connections and memory return to
 * their idle level.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OverloadTest {
  private static final int SLOW_CLIENTS = 200;

  private static HttpClient client() {
    return HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build();
  }

  private static HttpRequest generate(URI base, int i) {
    return HttpRequest.newBuilder(base.resolve("/generate")).timeout(Duration.ofSeconds(30))
        .POST(HttpRequest.BodyPublishers.ofString(GenerationServerTest.json(i))).build();
  }

  private static long serverThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith("cm4j-")).count();
  }

  private static long heapAfterGc() throws InterruptedException {
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(50);
    }
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }

  @Test
  void slowClientsHoldConnectionsNotThreadsAndOverloadGets503sAtOnce() throws Exception {
    int queue = 8;
    try (GenerationService service = GenerationService.open(Tiny.model(), ServiceOptions
        .builder().maxBatch(8).queueCapacity(queue).build());
        GenerationServer server = GenerationServer.builder(service)
            .address(new InetSocketAddress("127.0.0.1", 0)).maxConnections(400)
            .requestTimeout(Duration.ofSeconds(60)) // the slow clients stay; 408 is tested below
            .idleTimeout(Duration.ofSeconds(2)) // closes the client's idle keep-alives
            .start()) {
      URI base = server.uri();
      HttpClient client = client();
      assertEquals(200, client.send(generate(base, 0), HttpResponse.BodyHandlers.ofByteArray())
          .statusCode());
      long idleThreads = serverThreads();
      long idleHeap = heapAfterGc();

      // Slowloris: 200 connections, each sending one byte of its headers a second.
      List<Socket> slow = new ArrayList<>();
      for (int i = 0; i < SLOW_CLIENTS; i++) {
        slow.add(new Socket("127.0.0.1", base.getPort()));
      }
      byte[] head = "POST /generate HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII);
      AtomicBoolean stop = new AtomicBoolean();
      Thread dripper = new Thread(() -> {
        for (int b = 0; b < head.length && !stop.get(); b++) {
          for (Socket s : slow) {
            try {
              s.getOutputStream().write(head[b]);
            } catch (IOException e) {
              throw new AssertionError("a slow connection was dropped within its request "
                  + "timeout", e);
            }
          }
          sleep(1000);
        }
      });
      dripper.start();
      sleep(1500);
      awaitConnections(server, SLOW_CLIENTS, "the slow connections held");
      // Normal clients meanwhile: every request answered with its image, well within its
      // deadline (30 s), although the slow connections hold more sockets than handler threads.
      long worst = 0;
      for (int round = 0; round < 4; round++) {
        List<CompletableFuture<HttpResponse<byte[]>>> answers = new ArrayList<>();
        long start = System.nanoTime();
        for (int i = 0; i < 4; i++) {
          answers.add(client.sendAsync(generate(base, i), HttpResponse.BodyHandlers
              .ofByteArray()));
        }
        for (var a : answers) {
          HttpResponse<byte[]> r = a.get(30, TimeUnit.SECONDS);
          assertEquals(200, r.statusCode(), () -> new String(r.body(), StandardCharsets.UTF_8));
        }
        worst = Math.max(worst, System.nanoTime() - start);
      }
      assertTrue(server.openConnections() >= SLOW_CLIENTS, "slow connections still open: "
          + server.openConnections());
      System.out.printf("slowloris: %d slow connections held; 16 normal requests answered, "
          + "worst round %.0f ms%n", SLOW_CLIENTS, worst / 1e6);
      assertTrue(worst < TimeUnit.SECONDS.toNanos(10), "worst round " + worst / 1e6 + " ms");
      stop.set(true);
      dripper.join();
      for (Socket s : slow) {
        s.close();
      }

      // Ten times the queue at once: every request answered, 503s with Retry-After at once.
      int burst = 10 * queue;
      List<CompletableFuture<HttpResponse<byte[]>>> answers = new ArrayList<>();
      long[] sent = new long[burst];
      long[] answered = new long[burst];
      for (int i = 0; i < burst; i++) {
        int k = i;
        sent[k] = System.nanoTime();
        answers.add(client.sendAsync(generate(base, 7), HttpResponse.BodyHandlers.ofByteArray())
            .whenComplete((r, e) -> answered[k] = System.nanoTime()));
      }
      int images = 0;
      int busy = 0;
      long slowest503 = 0;
      for (int i = 0; i < burst; i++) {
        HttpResponse<byte[]> r = answers.get(i).get(60, TimeUnit.SECONDS);
        if (r.statusCode() == 200) {
          images++;
        } else {
          GenerationServerTest.assertError(503, "queue full", r);
          assertEquals("1", r.headers().firstValue("Retry-After").orElse(""));
          busy++;
          slowest503 = Math.max(slowest503, answered[i] - sent[i]);
        }
      }
      System.out.printf("burst of %d on a queue of %d: %d images, %d 503s, slowest 503 "
          + "%.1f ms%n", burst, queue, images, busy, slowest503 / 1e6);
      assertTrue(busy > 0, "no 503 among " + burst);
      assertTrue(images >= queue, images + " images");
      assertTrue(slowest503 < TimeUnit.SECONDS.toNanos(5), "a 503 took " + slowest503 / 1e6
          + " ms");

      // Back to idle: the connections close, no thread or memory is left behind.
      client = null;
      answers.clear();
      awaitConnections(server, 0, "every connection closed");
      assertTrue(serverThreads() <= idleThreads + Runtime.getRuntime().availableProcessors(),
          serverThreads() + " server threads, " + idleThreads + " when idle");
      long heap = heapAfterGc();
      assertTrue(heap < idleHeap + (64L << 20), "heap " + (heap >> 20) + " MiB, "
          + (idleHeap >> 20) + " MiB when idle");
    }
  }

  @Test
  void aRequestTooSlowToArriveGets408AndLosesItsConnection() throws Exception {
    try (GenerationService service = GenerationService.open(Tiny.model(), ServiceOptions.DEFAULT);
        GenerationServer server = GenerationServer.builder(service)
            .address(new InetSocketAddress("127.0.0.1", 0))
            .requestTimeout(Duration.ofMillis(500)).maxConnections(2).start();
        Socket slow = new Socket("127.0.0.1", server.address().getPort())) {
      slow.setSoTimeout(5000);
      OutputStream out = slow.getOutputStream();
      out.write("GET /health HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII));
      long start = System.nanoTime();
      String answer = readAll(slow.getInputStream());
      long took = System.nanoTime() - start;
      assertTrue(answer.startsWith("HTTP/1.1 408 "), answer);
      assertTrue(answer.contains("request not received within 500 ms"), answer);
      assertTrue(took < TimeUnit.SECONDS.toNanos(3), took / 1e6 + " ms");

      // Beyond maxConnections: 503 at once, then closed.
      try (Socket a = new Socket("127.0.0.1", server.address().getPort());
          Socket b = new Socket("127.0.0.1", server.address().getPort());
          Socket c = new Socket("127.0.0.1", server.address().getPort())) {
        c.setSoTimeout(5000);
        String refused = readAll(c.getInputStream());
        assertTrue(refused.startsWith("HTTP/1.1 503 "), refused);
        assertTrue(refused.contains("too many connections: at most 2"), refused);
      }
    }
  }

  private static String readAll(InputStream in) throws IOException {
    return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
  }

  private static void awaitConnections(GenerationServer server, int expected, String what)
      throws InterruptedException {
    GenerationServiceTest.awaitTrue(() -> expected == 0 ? server.openConnections() == 0
        : server.openConnections() >= expected, what + " (" + server.openConnections()
        + " open)");
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
