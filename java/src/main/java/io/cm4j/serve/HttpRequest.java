package io.cm4j.serve;

import java.util.Map;

/**
 * One HTTP request as {@link HttpConnector} read it, whole: the body is in memory.
 *
 * @param method the method token, e.g. {@code POST}
 * @param path the target's path, before any {@code ?}
 * @param query the target's query after {@code ?}; empty when none
 * @param headers header names in lower case; a repeated header keeps its last value
 * @param body the body; empty when none
 * @param arrivalNanos {@code System.nanoTime()} when its first byte arrived
 */
record HttpRequest(String method, String path, String query, Map<String, String> headers,
    byte[] body, long arrivalNanos) {}
