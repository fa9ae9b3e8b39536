package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

  @Test
  void parsesEveryValueKindKeepingKeyOrder() {
    Map<String, Object> m = Json.parseObject(
        " {\"b\": [1, -2.5, 3e2, true, false, null], \"a\": {\"s\": \"x\\u00e9\\n\\\"\"}} ");
    assertEquals(List.of("b", "a"), List.copyOf(m.keySet()));
    List<?> b = (List<?>) m.get("b");
    assertEquals(1L, b.get(0));
    assertEquals(-2.5, b.get(1));
    assertEquals(300.0, b.get(2));
    assertEquals(true, b.get(3));
    assertEquals(false, b.get(4));
    assertNull(b.get(5));
    assertEquals("x\u00e9\n\"", ((Map<?, ?>) m.get("a")).get("s"));
  }

  @Test
  void largeIntegersStayExact() {
    assertEquals(9007199254740993L, Json.parse("9007199254740993"));
    JsonException e = assertThrows(JsonException.class, () -> Json.parse("99999999999999999999"));
    assertTrue(e.reason().contains("64 bits"), e.getMessage());
  }

  @Test
  void rejectsDuplicateKeysWithTheirOffset() {
    JsonException e = assertThrows(JsonException.class, () -> Json.parse("{\"a\":1,\"a\":2}"));
    assertEquals(7, e.offset());
    assertTrue(e.getMessage().contains("duplicate key \"a\""), e.getMessage());
  }

  @Test
  void rejectsMalformedInputWithOffsetAndReason() {
    assertError("{\"a\":1,}", 7, "expected a string key");
    assertError("[1 2]", 3, "expected ',' or ']'");
    assertError("01", 1, "leading zero");
    assertError("1.", 2, "digit after '.'");
    assertError("\"abc", 4, "unterminated string");
    assertError("\"a\u0001\"", 2, "control character");
    assertError("\"\\x\"", 2, "invalid escape");
    assertError("tru", 0, "expected a value");
    assertError("{} x", 3, "after the JSON value");
    assertError("", 0, "unexpected end of input");
    assertError("NaN", 0, "expected a value");
    assertError("1e999", 0, "out of the double range");
  }

  @Test
  void rejectsNestingPastTheDepthLimit() {
    String deep = "[".repeat(Json.DEFAULT_MAX_DEPTH + 1) + "]".repeat(Json.DEFAULT_MAX_DEPTH + 1);
    JsonException e = assertThrows(JsonException.class, () -> Json.parse(deep));
    assertTrue(e.reason().contains("nesting deeper than 64"), e.getMessage());
    String ok = "[".repeat(Json.DEFAULT_MAX_DEPTH) + "]".repeat(Json.DEFAULT_MAX_DEPTH);
    assertTrue(Json.parse(ok) instanceof List);
  }

  @Test
  void parseObjectRejectsOtherRoots() {
    JsonException e = assertThrows(JsonException.class, () -> Json.parseObject("[1]"));
    assertTrue(e.getMessage().contains("expected an object, found an array"), e.getMessage());
  }

  @Test
  void writeRoundTrips() {
    Map<String, Object> m = Json.parseObject(
        "{\"k\":[1,2.5,\"q\\\"\\\\\\n\\u0001\"],\"n\":null,\"t\":true,\"o\":{}}");
    assertEquals(m, Json.parse(Json.write(m)));
    assertEquals("{\"a\":[1,2]}", Json.write(Map.of("a", List.of(1L, 2L))));
  }

  private static void assertError(String text, int offset, String reason) {
    JsonException e = assertThrows(JsonException.class, () -> Json.parse(text), text);
    assertEquals(offset, e.offset(), e.getMessage());
    assertTrue(e.reason().contains(reason), text + " -> " + e.getMessage());
  }
}
