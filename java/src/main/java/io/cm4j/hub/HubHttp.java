package io.cm4j.hub;

import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * The two requests of a Hub download, as huggingface_hub makes them: a HEAD of
 * {@code {endpoint}/{repo}/resolve/{revision}/{path}} for the metadata, then a GET of the
 * location it names. {@link HttpURLConnection} rather than {@code java.net.http.HttpClient}
 * because it has a per-read timeout: a stalled CDN connection fails and is resumed instead of
 * hanging the download forever.
 */
final class HubHttp {
  /** What a HEAD says about a file: the GET goes to {@code location}. */
  record FileMetadata(String commit, String etag, long size, URI location) {}

  /** The file does not exist at that revision; {@code commit} is null when unknown. */
  static final class EntryMissing extends Exception {
    private static final long serialVersionUID = 1L;
    final String commit;

    EntryMissing(String commit, String message) {
      super(message, null, false, false);
      this.commit = commit;
    }
  }

  private static final int MAX_REDIRECTS = 10;

  private final String endpoint;
  private final URI endpointUri;
  private final String token;
  private final String tokenSource;
  private final int headTimeoutMs;
  private final int downloadTimeoutMs;

  /**
   * @param token sent as {@code Authorization: Bearer} to the endpoint's host only, never to a
   *     CDN on another host (its signed URLs need none); null for anonymous requests
   * @param tokenSource where the token came from, for messages ("HF_TOKEN", a file path)
   */
  HubHttp(String endpoint, String token, String tokenSource, int headTimeoutMs,
      int downloadTimeoutMs) {
    this.endpoint = endpoint;
    this.endpointUri = parseEndpoint(endpoint);
    this.token = token;
    this.tokenSource = tokenSource;
    this.headTimeoutMs = headTimeoutMs;
    this.downloadTimeoutMs = downloadTimeoutMs;
  }

  String endpoint() {
    return endpoint;
  }

  /** The endpoint as a URI, or null when it is not an absolute http(s) URL. */
  private static URI parseEndpoint(String endpoint) {
    try {
      URI u = new URI(endpoint);
      String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
      return (scheme.equals("http") || scheme.equals("https")) && u.getHost() != null ? u : null;
    } catch (URISyntaxException e) {
      return null;
    }
  }

  String tokenSource() {
    return tokenSource;
  }

  /** huggingface_hub's hf_hub_url: the revision fully escaped ("refs/pr/1" is one segment). */
  URI resolveUrl(String repoId, String revision, String path) {
    StringBuilder url = new StringBuilder(endpoint).append('/').append(repoId)
        .append("/resolve/").append(escape(revision)).append('/');
    String[] parts = path.split("/");
    for (int i = 0; i < parts.length; i++) {
      url.append(i == 0 ? "" : "/").append(escape(parts[i]));
    }
    return URI.create(url.toString());
  }

  private static String escape(String segment) {
    return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
  }

  /**
   * The metadata of one file. Follows only redirects within the Hub's own host (a renamed
   * repository); one to another host (the CDN of an LFS file) ends the HEAD, its headers carry
   * the metadata and its location is where the GET goes.
   */
  FileMetadata head(Where where) throws HubException, EntryMissing {
    if (endpointUri == null) {
      throw new HubException(HubException.Kind.INVALID_ARGUMENT, where + ": HF_ENDPOINT '"
          + endpoint + "' is not an http(s) URL such as " + HubClient.DEFAULT_ENDPOINT);
    }
    URI url = resolveUrl(where.repoId(), where.revision(), where.path());
    for (int hop = 0; ; hop++) {
      HttpURLConnection c = null;
      try {
        c = open("HEAD", url, headTimeoutMs);
        int status = c.getResponseCode();
        String location = c.getHeaderField("Location");
        if (status >= 300 && status < 400 && location != null) {
          URI target = redirectTarget(where, url, location);
          if (sameAuthority(target, url)) { // a relative Location included
            if (hop >= MAX_REDIRECTS) {
              throw new HubException(HubException.Kind.SERVER, where + ": too many redirects");
            }
            url = target;
            continue;
          }
          return metadata(where, c, target, true);
        }
        if (status >= 400) {
          String code = c.getHeaderField("X-Error-Code");
          String commit = c.getHeaderField("X-Repo-Commit");
          if ("EntryNotFound".equals(code) || (status == 404 && code == null && commit != null)) {
            throw new EntryMissing(Names.isCommit(commit) ? commit : null,
                c.getHeaderField("X-Error-Message"));
          }
          throw failure(where, c, status, url);
        }
        if (status < 200 || status >= 300) {
          throw new HubException(HubException.Kind.SERVER,
              where + ": unexpected HTTP " + status + " from " + shown(url));
        }
        return metadata(where, c, url, false);
      } catch (IOException e) {
        throw network(where, url, e);
      } finally {
        release(c);
      }
    }
  }

  /**
   * A GET of {@code url} from byte {@code from} on ({@code Range: bytes=from-} when positive),
   * following redirects. Returns the open connection when the status is 200, 206 or 416; the
   * caller reads and releases it.
   */
  HttpURLConnection download(Where where, URI url, long from) throws IOException, HubException {
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
      HttpURLConnection c = open("GET", url, downloadTimeoutMs);
      if (from > 0) {
        c.setRequestProperty("Range", "bytes=" + from + "-");
      }
      int status;
      try {
        status = c.getResponseCode();
      } catch (IOException e) {
        c.disconnect();
        throw e;
      }
      String location = c.getHeaderField("Location");
      if (status >= 300 && status < 400 && location != null) {
        release(c);
        url = redirectTarget(where, url, location);
        continue;
      }
      if (status == 200 || status == 206 || status == 416) {
        return c;
      }
      try {
        throw failure(where, c, status, url);
      } finally {
        release(c);
      }
    }
    throw new HubException(HubException.Kind.SERVER, where + ": too many redirects from " + shown(url));
  }

  private HttpURLConnection open(String method, URI url, int timeoutMs) throws IOException {
    String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      throw new IOException("not an http(s) URL: " + url);
    }
    HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
    c.setRequestMethod(method);
    c.setInstanceFollowRedirects(false);
    c.setConnectTimeout(timeoutMs);
    c.setReadTimeout(timeoutMs);
    c.setUseCaches(false);
    c.setRequestProperty("User-Agent", "cm4j; java/" + Runtime.version().feature());
    // the size in the headers must be the size on disk: no compression
    c.setRequestProperty("Accept-Encoding", "identity");
    if (token != null && sameAuthority(url, endpointUri)) { // endpointUri checked by head()
      c.setRequestProperty("Authorization", "Bearer " + token);
    }
    return c;
  }

  private static boolean sameAuthority(URI a, URI b) {
    return a.getScheme() != null && a.getScheme().equalsIgnoreCase(b.getScheme())
        && String.valueOf(a.getHost()).equalsIgnoreCase(String.valueOf(b.getHost()))
        && a.getPort() == b.getPort();
  }

  private static URI redirectTarget(Where where, URI from, String location) throws HubException {
    try {
      return from.resolve(new URI(location));
    } catch (URISyntaxException e) {
      throw new HubException(HubException.Kind.SERVER,
          where + ": malformed redirect location '" + location + "' from " + shown(from));
    }
  }

  private FileMetadata metadata(Where where, HttpURLConnection c, URI location,
      boolean redirected) throws HubException {
    String commit = c.getHeaderField("X-Repo-Commit");
    if (commit == null) {
      throw new HubException(HubException.Kind.SERVER, where + ": the reply of " + endpoint
          + " has no X-Repo-Commit header; is HF_ENDPOINT a Hugging Face Hub?");
    }
    if (!Names.isCommit(commit)) {
      throw new HubException(HubException.Kind.SERVER,
          where + ": malformed X-Repo-Commit '" + commit + "'");
    }
    String linkedEtag = c.getHeaderField("X-Linked-Etag");
    String etag = normalizeEtag(linkedEtag != null ? linkedEtag : c.getHeaderField("ETag"));
    if (!Names.isEtag(etag)) {
      throw new HubException(HubException.Kind.SERVER,
          where + ": missing or malformed ETag '" + etag + "' from " + endpoint);
    }
    // a redirect's Content-Length is that of the redirect body, not of the file
    String size = c.getHeaderField("X-Linked-Size");
    if (size == null && !redirected) {
      size = c.getHeaderField("Content-Length");
    }
    long bytes;
    try {
      bytes = size == null ? -1 : Long.parseLong(size.trim());
    } catch (NumberFormatException e) {
      bytes = -1;
    }
    if (bytes < 0) {
      throw new HubException(HubException.Kind.SERVER,
          where + ": missing or malformed file size '" + size + "' from " + endpoint);
    }
    return new FileMetadata(commit, etag, bytes, location);
  }

  /** huggingface_hub's _normalize_etag: no weak prefix, no quotes. */
  static String normalizeEtag(String etag) {
    if (etag == null) {
      return null;
    }
    String e = etag.trim();
    if (e.startsWith("W/")) {
      e = e.substring(2);
    }
    if (e.length() >= 2 && e.startsWith("\"") && e.endsWith("\"")) {
      e = e.substring(1, e.length() - 1);
    }
    return e;
  }

  /**
   * The error for a 4xx/5xx reply, classified like huggingface_hub's hf_raise_for_status (by
   * the Hub's X-Error-Code header), with what the user can do about it. A missing file is not
   * an error here: {@link #head} reports it as {@link EntryMissing}.
   */
  private HubException failure(Where where, HttpURLConnection c, int status, URI url) {
    String code = c.getHeaderField("X-Error-Code");
    String serverMessage = c.getHeaderField("X-Error-Message");
    String said = serverMessage == null ? "" : " (server: " + serverMessage + ")";
    String tokenAdvice = token == null
        ? "set HF_TOKEN to a token that can read it (https://huggingface.co/settings/tokens)"
        : "the token from " + tokenSource + " cannot read it";
    if ("GatedRepo".equals(code)) {
      return new HubException(HubException.Kind.ACCESS_DENIED, where + ": " + where.repoId()
          + " is a gated model: accept its conditions at " + endpoint + "/" + where.repoId()
          + ", then " + (token == null ? "set HF_TOKEN to a token of that account"
              : "make sure the token from " + tokenSource + " belongs to that account") + said);
    }
    if (status == 401 && serverMessage != null && serverMessage.contains("Invalid credentials")) {
      return new HubException(HubException.Kind.ACCESS_DENIED, where + ": the Hub rejected the token"
          + " from " + tokenSource + " as invalid; set HF_TOKEN to a valid token" + said);
    }
    if ("RevisionNotFound".equals(code)) {
      return new HubException(HubException.Kind.NOT_FOUND, where + ": " + where.repoId()
          + " has no revision '" + where.revision() + "'" + said);
    }
    if ("RepoNotFound".equals(code) || status == 401) {
      // the Hub answers 401 for a private repository and for one that does not exist alike
      return new HubException(status == 404 ? HubException.Kind.NOT_FOUND
          : HubException.Kind.ACCESS_DENIED, where + ": repository " + where.repoId()
          + " not found on " + endpoint + " (HTTP " + status + "); if it is private or gated, "
          + tokenAdvice + said);
    }
    if (status == 403) {
      return new HubException(HubException.Kind.ACCESS_DENIED, where + ": access denied (HTTP 403"
          + " from " + shown(url) + "); " + tokenAdvice + said);
    }
    if (status == 404) {
      return new HubException(HubException.Kind.NOT_FOUND,
          where + ": not found (HTTP 404 from " + shown(url) + ")" + said);
    }
    return new HubException(HubException.Kind.SERVER,
        where + ": HTTP " + status + " from " + shown(url) + said);
  }

  private static HubException network(Where where, URI url, IOException e) {
    return new HubException(HubException.Kind.NETWORK, where + ": cannot reach " + url.getHost()
        + (url.getPort() > 0 ? ":" + url.getPort() : "") + ": " + describe(e)
        + " (set HF_HUB_OFFLINE=1 to use the cache only)", e);
  }

  /** A URL for messages: without its query, which holds a CDN URL's signature. */
  static String shown(URI url) {
    String s = url.toString();
    int q = s.indexOf('?');
    return q < 0 ? s : s.substring(0, q);
  }

  static String describe(IOException e) {
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }

  /** Ends a request so its connection can be reused: the body is drained (it is small here). */
  static void release(HttpURLConnection c) {
    if (c == null) {
      return;
    }
    try {
      InputStream in = c.getResponseCode() >= 400 ? c.getErrorStream() : c.getInputStream();
      if (in != null) {
        in.skip(1 << 16);
        in.close();
      }
    } catch (IOException e) {
      c.disconnect();
    }
  }
}
