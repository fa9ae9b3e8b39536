package io.cm4j.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A loopback stand-in for the Hub: {@code /{org}/{name}/resolve/{revision}/{path}} answers HEAD
 * and GET as huggingface.co does (X-Repo-Commit, ETag, X-Linked-Etag/-Size, X-Error-Code), with
 * a 302 to a second server (the "CDN", another port) for LFS files, which serves
 * {@code /cdn/{sha256}} with Range support. Switches make the CDN cut a body short, ignore Range,
 * corrupt bytes or answer slowly. Every request is logged; after {@link #MAX_REQUESTS} the
 * servers answer 500, so a looping client fails instead of hanging.
 */
final class FakeHub implements AutoCloseable {
  static final int MAX_REQUESTS = 200;

  /** One logged request: server ("hub"/"cdn"), method, raw path, Range and Authorization. */
  record Request(String server, String method, String path, String range, String auth) {}

  /** A model repository at one commit; {@code lfs} files are served through the CDN. */
  static final class Repo {
    final String commit;
    final Map<String, byte[]> files = new LinkedHashMap<>();
    final Set<String> lfs = ConcurrentHashMap.newKeySet();
    volatile String requiredToken;
    volatile boolean gated;

    Repo(String commit) {
      this.commit = commit;
    }

    Repo file(String path, String text) {
      files.put(path, text.getBytes(StandardCharsets.UTF_8));
      return this;
    }

    Repo lfsFile(String path, byte[] data) {
      files.put(path, data);
      lfs.add(path);
      return this;
    }
  }

  private final HttpServer hub;
  private final HttpServer cdn;
  private final ExecutorService pool = Executors.newFixedThreadPool(8);
  final Map<String, Repo> repos = new ConcurrentHashMap<>();
  final Map<String, String> renamed = new ConcurrentHashMap<>();
  final List<Request> requests = new ArrayList<>();
  /** CDN GETs still to cut off halfway through the body. */
  final AtomicInteger dropNextGets = new AtomicInteger();
  volatile boolean ignoreRange;
  volatile boolean corruptCdn;
  volatile long cdnDelayMillis;
  /** The host name in CDN redirects: another name than the Hub's makes it another host. */
  volatile String cdnHostName = "127.0.0.1";
  /** Redirect renamed repositories with an absolute URL on the Hub's own host. */
  volatile boolean absoluteRenameRedirects;

  FakeHub() throws IOException {
    hub = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
    cdn = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
    hub.createContext("/", ex -> serve(ex, "hub"));
    cdn.createContext("/", ex -> serve(ex, "cdn"));
    hub.setExecutor(pool);
    cdn.setExecutor(pool);
    hub.start();
    cdn.start();
  }

  String endpoint() {
    return "http://127.0.0.1:" + hub.getAddress().getPort();
  }

  private String cdnBase() {
    return "http://" + cdnHostName + ":" + cdn.getAddress().getPort();
  }

  Repo addRepo(String id, String commit) {
    Repo r = new Repo(commit);
    repos.put(id, r);
    return r;
  }

  /**
   * The environment of a client of this server: cache under {@code tmp/cache}, HF_HOME and HOME
   * under {@code tmp} (so no real token file is read), short timeouts.
   */
  Map<String, String> env(Path tmp) {
    Map<String, String> env = new HashMap<>();
    env.put("HF_ENDPOINT", endpoint());
    env.put("HF_HUB_CACHE", tmp.resolve("cache").toString());
    env.put("HF_HOME", tmp.resolve("hf-home").toString());
    env.put("HOME", tmp.resolve("home").toString());
    env.put("HF_HUB_ETAG_TIMEOUT", "5");
    env.put("HF_HUB_DOWNLOAD_TIMEOUT", "5");
    return env;
  }

  synchronized List<Request> requests() {
    return new ArrayList<>(requests);
  }

  synchronized void clearRequests() {
    requests.clear();
  }

  long count(String server, String method) {
    return requests().stream()
        .filter(r -> r.server.equals(server) && r.method.equals(method)).count();
  }

  private void serve(HttpExchange ex, String server) throws IOException {
    int n;
    synchronized (this) {
      requests.add(new Request(server, ex.getRequestMethod(), ex.getRequestURI().getRawPath(),
          ex.getRequestHeaders().getFirst("Range"),
          ex.getRequestHeaders().getFirst("Authorization")));
      n = requests.size();
    }
    try (ex) {
      if (n > MAX_REQUESTS) {
        ex.sendResponseHeaders(500, -1);
      } else if (server.equals("hub")) {
        hub(ex);
      } else {
        cdn(ex);
      }
    }
  }

  private static final Pattern RESOLVE = Pattern.compile("/([^/]+)/([^/]+)/resolve/([^/]+)/(.+)");

  private void hub(HttpExchange ex) throws IOException {
    Matcher m = RESOLVE.matcher(ex.getRequestURI().getRawPath());
    if (!m.matches()) {
      ex.sendResponseHeaders(404, -1);
      return;
    }
    String repoId = m.group(1) + "/" + m.group(2);
    String revision = URLDecoder.decode(m.group(3), StandardCharsets.UTF_8);
    String path = URLDecoder.decode(m.group(4), StandardCharsets.UTF_8);
    var headers = ex.getResponseHeaders();
    String newId = renamed.get(repoId);
    if (newId != null) { // a renamed repository: relative redirect, as the Hub does
      headers.set("Location", (absoluteRenameRedirects ? endpoint() : "") + "/" + newId
          + "/resolve/" + m.group(3) + "/" + m.group(4));
      ex.sendResponseHeaders(307, -1);
      return;
    }
    Repo repo = repos.get(repoId);
    String auth = ex.getRequestHeaders().getFirst("Authorization");
    if (repo == null || (repo.requiredToken != null
        && !("Bearer " + repo.requiredToken).equals(auth))) {
      boolean gated = repo != null && repo.gated;
      headers.set("X-Error-Code", gated ? "GatedRepo" : "RepoNotFound");
      headers.set("X-Error-Message", gated ? "Access to model " + repoId + " is restricted."
          : "Repository not found");
      ex.sendResponseHeaders(401, -1);
      return;
    }
    if (!revision.equals("main") && !revision.equals(repo.commit)) {
      headers.set("X-Error-Code", "RevisionNotFound");
      headers.set("X-Error-Message", "Invalid rev id: " + revision);
      ex.sendResponseHeaders(404, -1);
      return;
    }
    headers.set("X-Repo-Commit", repo.commit);
    byte[] data = repo.files.get(path);
    if (data == null) {
      headers.set("X-Error-Code", "EntryNotFound");
      headers.set("X-Error-Message", "Entry not found");
      ex.sendResponseHeaders(404, -1);
      return;
    }
    boolean head = ex.getRequestMethod().equals("HEAD");
    if (repo.lfs.contains(path)) {
      String sha = hex("SHA-256", data);
      byte[] body = ("Found. Redirecting to " + cdnBase()).getBytes(StandardCharsets.UTF_8);
      headers.set("ETag", "\"" + gitSha1(("version https://git-lfs.github.com/spec/v1\noid sha256:"
          + sha + "\nsize " + data.length + "\n").getBytes(StandardCharsets.UTF_8)) + "\"");
      headers.set("X-Linked-Etag", "\"" + sha + "\"");
      headers.set("X-Linked-Size", Long.toString(data.length));
      headers.set("Location", cdnBase() + "/cdn/" + sha + "?X-Amz-Signature=fake");
      send(ex, 302, body, head);
      return;
    }
    headers.set("ETag", "W/\"" + gitSha1(data) + "\""); // weak, to exercise normalization
    send(ex, 200, data, head);
  }

  private void cdn(HttpExchange ex) throws IOException {
    String path = ex.getRequestURI().getRawPath();
    byte[] data = path.startsWith("/cdn/") ? blob(path.substring(5)) : null;
    if (data == null) {
      ex.sendResponseHeaders(404, -1);
      return;
    }
    if (ex.getRequestMethod().equals("HEAD")) {
      send(ex, 200, data, true);
      return;
    }
    if (ex.getRequestHeaders().getFirst("Authorization") != null) {
      ex.sendResponseHeaders(400, -1); // a signed CDN URL must not get the Hub token
      return;
    }
    sleep(cdnDelayMillis);
    if (corruptCdn) {
      data = data.clone();
      data[data.length / 2] ^= 1;
    }
    int from = 0;
    String range = ex.getRequestHeaders().getFirst("Range");
    Matcher m = range == null ? null : Pattern.compile("bytes=(\\d+)-").matcher(range);
    if (m != null && m.matches() && !ignoreRange) {
      from = Integer.parseInt(m.group(1));
      if (from >= data.length) {
        ex.getResponseHeaders().set("Content-Range", "bytes */" + data.length);
        ex.sendResponseHeaders(416, -1);
        return;
      }
      ex.getResponseHeaders().set("Content-Range",
          "bytes " + from + "-" + (data.length - 1) + "/" + data.length);
    }
    int length = data.length - from;
    ex.sendResponseHeaders(from > 0 ? 206 : 200, length);
    OutputStream body = ex.getResponseBody();
    if (dropNextGets.getAndUpdate(k -> Math.max(0, k - 1)) > 0) {
      body.write(data, from, length / 2);
      body.flush();
      // an exception out of the handler makes the server close the connection mid-body
      throw new IOException("fake CDN: dropping the connection");
    }
    body.write(data, from, length);
  }

  private static void send(HttpExchange ex, int status, byte[] body, boolean head)
      throws IOException {
    if (head) {
      ex.getResponseHeaders().set("Content-Length", Integer.toString(body.length));
      ex.sendResponseHeaders(status, -1);
    } else {
      ex.sendResponseHeaders(status, body.length);
      ex.getResponseBody().write(body);
    }
  }

  private byte[] blob(String sha) {
    for (Repo r : repos.values()) {
      for (String p : r.lfs) {
        byte[] d = r.files.get(p);
        if (hex("SHA-256", d).equals(sha)) {
          return d;
        }
      }
    }
    return null;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The git blob id of a file, the etag the Hub gives files not in LFS. */
  static String gitSha1(byte[] data) {
    byte[] header = ("blob " + data.length + "\0").getBytes(StandardCharsets.UTF_8);
    byte[] all = new byte[header.length + data.length];
    System.arraycopy(header, 0, all, 0, header.length);
    System.arraycopy(data, 0, all, header.length, data.length);
    return hex("SHA-1", all);
  }

  static String sha256(byte[] data) {
    return hex("SHA-256", data);
  }

  private static String hex(String algorithm, byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance(algorithm).digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  static byte[] randomBytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Override
  public void close() {
    hub.stop(0);
    cdn.stop(0);
    pool.shutdownNow();
  }
}
