package io.cm4j.edit;

/**
 * An edit's argument that cannot be used: {@link #argument()} names it as {@link EditRequest}
 * does ({@code "sigma"}, {@code "mask_keep"}, ...), and the message starts with that name
 * ({@code "sigma: expected a value in [...]"}), so that a front end can point at its own
 * option or field without reading the message.
 */
public final class EditArgumentException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String argument;

  public EditArgumentException(String argument, String detail) {
    this(argument, detail, null);
  }

  public EditArgumentException(String argument, String detail, Throwable cause) {
    super(argument + ": " + detail, cause);
    this.argument = argument;
  }

  /** The argument's name, as {@link EditRequest}'s components are named. */
  public String argument() {
    return argument;
  }
}
