package io.cm4j.serve;

/** A request the HTTP server refuses with 400: the message says what is wrong and what is expected. */
final class BadRequestException extends Exception {
  private static final long serialVersionUID = 1L;

  BadRequestException(String message) {
    super(message);
  }
}
