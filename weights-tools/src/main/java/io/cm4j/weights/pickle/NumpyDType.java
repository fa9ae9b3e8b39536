package io.cm4j.weights.pickle;

/**
 * A {@code numpy.dtype} as pickled: its type code ("f4", "f2", "u2", ...) from the constructor
 * call, and its byte order from the BUILD state ('<' little, '>' big, '|' not applicable,
 * '=' native, which numpy writes as '<' or '>' explicitly).
 */
public final class NumpyDType {
  private final String code;
  private char byteOrder = '=';

  NumpyDType(String code) {
    this.code = code;
  }

  /** The type code: a kind letter and an item size ("f4"). */
  public String code() {
    return code;
  }

  /** '<', '>', '|' or '='. */
  public char byteOrder() {
    return byteOrder;
  }

  void setByteOrder(char order) {
    this.byteOrder = order;
  }

  @Override
  public String toString() {
    return "dtype(" + byteOrder + code + ")";
  }
}
