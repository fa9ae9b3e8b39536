package io.cm4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Golden;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code cm4j serve}: option errors exit 2 with one line; a run serves PNGs, then stops. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ServeCommandTest {
  @TempDir Path tmp;

  private String tiny() {
    return Golden.file("tiny/pipeline").toString();
  }

  @Test
  void badOptionsExit2WithOneLine() {
    CliRun.assertBadInput(CliRun.runOffline(tmp, "serve", "--model", tiny(), "--max-batch", "0"),
        "--max-batch 0", "at least 1");
    CliRun.assertBadInput(CliRun.runOffline(tmp, "serve", "--model", tiny(), "--port", "70000"),
        "--port 70000");
    CliRun.assertBadInput(CliRun.runOffline(tmp, "serve", "--model", tiny(), "--max-wait-ms",
        "-1"), "--max-wait-ms");
    CliRun.assertBadInput(CliRun.runOffline(tmp, "serve", "--model",
        tmp.resolve("nothing").toString(), "--port", "0"), "nothing");
    CliRun.assertBadInput(CliRun.runOffline(tmp, "serve", "--model", tiny(), "--device",
        "cpu:1-0"), "--device invalid device range 'cpu:1-0'");
  }

  @Test
  void servesAnImageThenStopsAfterTheGivenTime() throws Exception {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() -> Main.commandLine(
        new PrintWriter(out), new PrintWriter(err), Map.of("HF_HUB_OFFLINE", "1"))
        .execute("serve", "--model", tiny(), "--port", "0", "--max-batch", "4",
            "--max-wait-ms", "1", "--stop-after", "5", "--device", "cpu:0-1"));
    Pattern listening = Pattern.compile("listening on (http://\\S+) ");
    Matcher m = listening.matcher("");
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!m.find()) {
      assertTrue(System.nanoTime() < end && !exit.isDone(), "no 'listening on' line: " + err);
      Thread.sleep(20);
      m = listening.matcher(err.toString());
    }
    URI uri = URI.create(m.group(1));
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(uri.resolve("/generate"))
        .POST(HttpRequest.BodyPublishers.ofString("{\"class\": 145, \"seed\": 12}")).build(),
        HttpResponse.BodyHandlers.ofByteArray());
    assertEquals(200, r.statusCode(), new String(r.body()));
    assertEquals("image/png", r.headers().firstValue("Content-Type").orElse(""));
    assertEquals(0, exit.get(30, TimeUnit.SECONDS), "stderr: " + err);
    assertTrue(err.toString().contains("serve: stopped; ServiceStats[submitted 1"),
        err.toString());
    assertEquals(2, err.toString().lines().filter(l -> l.startsWith("serve: engine "
        + "EngineStats[device=cpu:")).count(), "one engine per CPU thread group: " + err);
  }
}
