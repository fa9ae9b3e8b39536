package io.cm4j.serve;

import io.cm4j.pipeline.GenerationRequest;
import io.cm4j.weights.Json;
import io.cm4j.weights.JsonException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The JSON body of {@code POST /generate}: one image, as {@code cm4j generate} makes it.
 *
 * <pre>
 * {"class": 145, "seed": 12, "steps": 2}        class: label in [0, num_class_embeds),
 *                                                 drawn from the seed when left out
 * {"class": 145, "seed": 12, "timesteps": [22, 0]}   custom timesteps instead of steps
 * </pre>
 * {@code seed} defaults to 0 and {@code steps} to 1. Everything is checked here, before the
 * request reaches the service, so a bad body is a {@link BadRequestException} whose message
 * names the field and what it accepts; any other failure here is a bug.
 */
final class GenerateJson {
  private static final Set<String> FIELDS = Set.of("class", "seed", "steps", "timesteps");
  /** An object holding an array is depth 2; anything deeper is refused early. */
  private static final int MAX_DEPTH = 4;

  private GenerateJson() {}

  /**
   * @param numClassEmbeds the model's classes, 0 for an unconditional model
   * @param numTrainTimesteps custom timesteps must lie in [0, this)
   * @param maxSteps most steps (or custom timesteps) one request may ask for
   */
  static GenerationRequest parse(byte[] body, int numClassEmbeds, int numTrainTimesteps,
      int maxSteps) throws BadRequestException {
    Map<?, ?> map = object(body, FIELDS, "{\"class\": 145, \"seed\": 12, \"steps\": 1}");
    GenerationRequest.Builder b = GenerationRequest.builder();
    Object seed = map.get("seed");
    if (seed != null) {
      b.seed(integer("seed", seed));
    }
    Long label = classLabel(map, numClassEmbeds);
    if (label != null) {
      b.classLabels(label);
    }
    Object schedule = schedule(map, numTrainTimesteps, maxSteps);
    if (schedule instanceof Integer steps) {
      b.numInferenceSteps(steps);
    } else if (schedule instanceof int[] timesteps) {
      b.timesteps(timesteps);
    }
    return b.build();
  }

  /** The "class" field checked against the model; null when left out. */
  static Long classLabel(Map<?, ?> map, int numClassEmbeds) throws BadRequestException {
    Object label = map.get("class");
    if (label == null) {
      return null;
    }
    if (numClassEmbeds == 0) {
      throw new BadRequestException("class: the model is unconditional; leave it out");
    }
    long c = integer("class", label);
    if (c < 0 || c >= numClassEmbeds) {
      throw new BadRequestException("class: expected a label in [0, " + numClassEmbeds
          + "), found " + c);
    }
    return c;
  }

  /** The "steps" (an Integer) or "timesteps" (an int[]) field; null when both are left out. */
  static Object schedule(Map<?, ?> map, int numTrainTimesteps, int maxSteps)
      throws BadRequestException {
    Object steps = map.get("steps");
    Object timesteps = map.get("timesteps");
    if (steps != null && timesteps != null) {
      throw new BadRequestException("steps and timesteps: give one or the other, not both");
    }
    int stepLimit = Math.min(maxSteps, numTrainTimesteps);
    if (steps != null) {
      long n = integer("steps", steps);
      if (n < 1 || n > stepLimit) {
        throw new BadRequestException("steps: expected 1 to " + stepLimit + ", found " + n);
      }
      return (int) n;
    }
    return timesteps == null ? null : timesteps(timesteps, numTrainTimesteps, stepLimit);
  }

  /**
   * The body as a JSON object whose keys are all in {@code fields}.
   *
   * @param example a valid body, for the message when it is not an object
   */
  static Map<?, ?> object(byte[] body, Set<String> fields, String example)
      throws BadRequestException {
    String text;
    try {
      text = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(body)).toString();
    } catch (CharacterCodingException e) {
      throw new BadRequestException("request body is not valid UTF-8");
    }
    Object parsed;
    try {
      parsed = Json.parse(text, MAX_DEPTH);
    } catch (JsonException e) {
      throw new BadRequestException(e.getMessage());
    }
    if (!(parsed instanceof Map<?, ?> map)) {
      throw new BadRequestException("expected a JSON object such as " + example + ", found "
          + Json.typeName(parsed));
    }
    for (Object key : map.keySet()) {
      if (!fields.contains(key)) {
        throw new BadRequestException("unknown field " + quoted((String) key) + ": expected "
            + String.join(", ", new java.util.TreeSet<>(fields)));
      }
    }
    return map;
  }

  static int[] timesteps(Object value, int numTrainTimesteps, int stepLimit)
      throws BadRequestException {
    if (!(value instanceof List<?> list)) {
      throw new BadRequestException("timesteps: expected an array of integers, found "
          + Json.typeName(value));
    }
    if (list.isEmpty() || list.size() > stepLimit) {
      throw new BadRequestException("timesteps: expected 1 to " + stepLimit + " values, found "
          + list.size());
    }
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      long t = integer("timesteps[" + i + "]", list.get(i));
      if (t < 0 || t >= numTrainTimesteps) {
        throw new BadRequestException("timesteps[" + i + "]: expected a value in [0, "
            + numTrainTimesteps + "), found " + t);
      }
      if (i > 0 && t >= out[i - 1]) {
        throw new BadRequestException("timesteps: expected strictly descending values, found "
            + out[i - 1] + " then " + t);
      }
      out[i] = (int) t;
    }
    return out;
  }

  static long integer(String field, Object value) throws BadRequestException {
    if (value instanceof Long l) {
      return l;
    }
    throw new BadRequestException(field + ": expected an integer, found "
        + (value instanceof Double d ? "the number " + d : Json.typeName(value)));
  }

  /** A field name for a message: JSON-quoted, at most 40 characters of it. */
  private static String quoted(String key) {
    String s = key.length() > 40 ? key.substring(0, 40) + "..." : key;
    return Json.write(s);
  }
}
