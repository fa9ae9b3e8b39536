package io.cm4j.weights;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON (RFC 8259) parser and writer, so that checkpoint headers and configs need
 * no third-party dependency.
 *
 * <p>Parsed values are {@code LinkedHashMap<String, Object>} (key order kept; duplicate keys
 * rejected), {@code ArrayList<Object>}, {@link String}, {@link Long} (integers without fraction
 * or exponent), {@link Double} (every other number), {@link Boolean}, and {@code null}. Nesting
 * deeper than {@link #DEFAULT_MAX_DEPTH} is rejected, so hostile input cannot exhaust the stack.
 * Every error is a {@link JsonException} with the offset and the reason.
 */
public final class Json {
  /** Deepest nesting of arrays and objects {@link #parse(String)} accepts. */
  public static final int DEFAULT_MAX_DEPTH = 64;

  private final String text;
  private final int maxDepth;
  private int pos;

  private Json(String text, int maxDepth) {
    this.text = text;
    this.maxDepth = maxDepth;
  }

  /** Parses one JSON value that makes up the whole text (surrounding whitespace allowed). */
  public static Object parse(String text) {
    return parse(text, DEFAULT_MAX_DEPTH);
  }

  /** As {@link #parse(String)}, with a nesting limit. */
  public static Object parse(String text, int maxDepth) {
    Json p = new Json(text, maxDepth);
    p.skipWhitespace();
    Object value = p.value(0);
    p.skipWhitespace();
    if (p.pos != text.length()) {
      throw p.error("unexpected " + p.describe(p.pos) + " after the JSON value");
    }
    return value;
  }

  /** Parses text that must be a JSON object. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> parseObject(String text) {
    Object value = parse(text);
    if (!(value instanceof Map)) {
      throw new JsonException(0, "expected an object, found " + typeName(value));
    }
    return (Map<String, Object>) value;
  }

  /** The JSON type name of a parsed value, for error messages. */
  public static String typeName(Object value) {
    if (value == null) {
      return "null";
    } else if (value instanceof Map) {
      return "an object";
    } else if (value instanceof List) {
      return "an array";
    } else if (value instanceof String) {
      return "a string";
    } else if (value instanceof Boolean) {
      return "a boolean";
    } else {
      return "a number";
    }
  }

  private Object value(int depth) {
    if (pos >= text.length()) {
      throw error("unexpected end of input, expected a value");
    }
    char c = text.charAt(pos);
    switch (c) {
      case '{':
        return object(depth + 1);
      case '[':
        return array(depth + 1);
      case '"':
        return string();
      case 't':
        return literal("true", Boolean.TRUE);
      case 'f':
        return literal("false", Boolean.FALSE);
      case 'n':
        return literal("null", null);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          return number();
        }
        throw error("unexpected " + describe(pos) + ", expected a value");
    }
  }

  private Map<String, Object> object(int depth) {
    checkDepth(depth);
    pos++; // '{'
    Map<String, Object> map = new LinkedHashMap<>();
    skipWhitespace();
    if (peek() == '}') {
      pos++;
      return map;
    }
    while (true) {
      skipWhitespace();
      if (peek() != '"') {
        throw error("unexpected " + describe(pos) + ", expected a string key");
      }
      int keyOffset = pos;
      String key = string();
      if (map.containsKey(key)) {
        throw new JsonException(keyOffset, "duplicate key \"" + key + "\"");
      }
      skipWhitespace();
      expect(':');
      skipWhitespace();
      map.put(key, value(depth));
      skipWhitespace();
      char c = peek();
      pos++;
      if (c == '}') {
        return map;
      } else if (c != ',') {
        pos--;
        throw error("unexpected " + describe(pos) + ", expected ',' or '}'");
      }
    }
  }

  private List<Object> array(int depth) {
    checkDepth(depth);
    pos++; // '['
    List<Object> list = new ArrayList<>();
    skipWhitespace();
    if (peek() == ']') {
      pos++;
      return list;
    }
    while (true) {
      skipWhitespace();
      list.add(value(depth));
      skipWhitespace();
      char c = peek();
      pos++;
      if (c == ']') {
        return list;
      } else if (c != ',') {
        pos--;
        throw error("unexpected " + describe(pos) + ", expected ',' or ']'");
      }
    }
  }

  private String string() {
    pos++; // opening quote
    StringBuilder sb = new StringBuilder();
    while (true) {
      if (pos >= text.length()) {
        throw error("unterminated string");
      }
      char c = text.charAt(pos);
      if (c == '"') {
        pos++;
        return sb.toString();
      } else if (c == '\\') {
        pos++;
        if (pos >= text.length()) {
          throw error("unterminated string");
        }
        char e = text.charAt(pos);
        switch (e) {
          case '"': sb.append('"'); break;
          case '\\': sb.append('\\'); break;
          case '/': sb.append('/'); break;
          case 'b': sb.append('\b'); break;
          case 'f': sb.append('\f'); break;
          case 'n': sb.append('\n'); break;
          case 'r': sb.append('\r'); break;
          case 't': sb.append('\t'); break;
          case 'u':
            sb.append(hex4());
            continue;
          default:
            throw error("invalid escape '\\" + e + "'");
        }
        pos++;
      } else if (c < 0x20) {
        throw error("control character U+" + String.format("%04X", (int) c) + " in a string");
      } else {
        sb.append(c);
        pos++;
      }
    }
  }

  private char hex4() {
    // pos is at 'u'
    if (pos + 4 >= text.length()) {
      throw error("truncated \\u escape");
    }
    int v = 0;
    for (int i = 1; i <= 4; i++) {
      int d = Character.digit(text.charAt(pos + i), 16);
      if (d < 0) {
        throw new JsonException(pos + i, "invalid hex digit in \\u escape");
      }
      v = v * 16 + d;
    }
    pos += 5;
    return (char) v;
  }

  private Object number() {
    int start = pos;
    if (peek() == '-') {
      pos++;
    }
    if (peek() == '0') {
      pos++;
      if (isDigit(peek())) {
        throw error("leading zero in a number");
      }
    } else if (isDigit(peek())) {
      while (isDigit(peek())) {
        pos++;
      }
    } else {
      throw error("expected a digit, found " + describe(pos));
    }
    boolean integral = true;
    if (peek() == '.') {
      integral = false;
      pos++;
      if (!isDigit(peek())) {
        throw error("expected a digit after '.', found " + describe(pos));
      }
      while (isDigit(peek())) {
        pos++;
      }
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      pos++;
      if (peek() == '+' || peek() == '-') {
        pos++;
      }
      if (!isDigit(peek())) {
        throw error("expected a digit in the exponent, found " + describe(pos));
      }
      while (isDigit(peek())) {
        pos++;
      }
    }
    String s = text.substring(start, pos);
    if (integral) {
      try {
        return Long.parseLong(s);
      } catch (NumberFormatException e) {
        throw new JsonException(start, "integer " + s + " does not fit in 64 bits");
      }
    }
    double d = Double.parseDouble(s);
    if (Double.isInfinite(d)) {
      throw new JsonException(start, "number " + s + " is out of the double range");
    }
    return d;
  }

  private Object literal(String word, Object value) {
    if (!text.startsWith(word, pos)) {
      throw error("unexpected " + describe(pos) + ", expected a value");
    }
    pos += word.length();
    return value;
  }

  private void checkDepth(int depth) {
    if (depth > maxDepth) {
      throw error("nesting deeper than " + maxDepth + " levels");
    }
  }

  private void expect(char c) {
    if (peek() != c) {
      throw error("unexpected " + describe(pos) + ", expected '" + c + "'");
    }
    pos++;
  }

  private char peek() {
    return pos < text.length() ? text.charAt(pos) : '\0';
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  private void skipWhitespace() {
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
        return;
      }
      pos++;
    }
  }

  private String describe(int at) {
    if (at >= text.length()) {
      return "end of input";
    }
    char c = text.charAt(at);
    return c >= 0x20 && c < 0x7f ? "'" + c + "'" : String.format("character U+%04X", (int) c);
  }

  private JsonException error(String reason) {
    return new JsonException(pos, reason);
  }

  /**
   * Writes a value made of maps with string keys, lists, strings, numbers, booleans and nulls
   * as compact JSON.
   */
  public static String write(Object value) {
    StringBuilder sb = new StringBuilder();
    write(value, sb);
    return sb.toString();
  }

  private static void write(Object value, StringBuilder sb) {
    if (value == null) {
      sb.append("null");
    } else if (value instanceof String) {
      quote((String) value, sb);
    } else if (value instanceof Map) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : ((Map<?, ?>) value).entrySet()) {
        if (!first) {
          sb.append(',');
        }
        first = false;
        if (!(e.getKey() instanceof String)) {
          throw new IllegalArgumentException("JSON object keys must be strings: " + e.getKey());
        }
        quote((String) e.getKey(), sb);
        sb.append(':');
        write(e.getValue(), sb);
      }
      sb.append('}');
    } else if (value instanceof Iterable) {
      sb.append('[');
      boolean first = true;
      for (Object o : (Iterable<?>) value) {
        if (!first) {
          sb.append(',');
        }
        first = false;
        write(o, sb);
      }
      sb.append(']');
    } else if (value instanceof Double || value instanceof Float) {
      double d = ((Number) value).doubleValue();
      if (Double.isNaN(d) || Double.isInfinite(d)) {
        throw new IllegalArgumentException("JSON cannot hold " + d);
      }
      sb.append(d);
    } else if (value instanceof Number || value instanceof Boolean) {
      sb.append(value);
    } else {
      throw new IllegalArgumentException("cannot write " + value.getClass().getName() + " as JSON");
    }
  }

  private static void quote(String s, StringBuilder sb) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"': sb.append("\\\""); break;
        case '\\': sb.append("\\\\"); break;
        case '\n': sb.append("\\n"); break;
        case '\r': sb.append("\\r"); break;
        case '\t': sb.append("\\t"); break;
        default:
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
      }
    }
    sb.append('"');
  }
}
