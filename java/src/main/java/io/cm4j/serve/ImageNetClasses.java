package io.cm4j.serve;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The 1000 ImageNet class names, label i at index i, as torchvision lists them
 * ({@code _IMAGENET_CATEGORIES} in {@code torchvision/models/_meta.py}), from the resource
 * {@code imagenet-classes.txt}, one name a line.
 */
public final class ImageNetClasses {
  /** Number of classes. */
  public static final int COUNT = 1000;
  static final String RESOURCE = "imagenet-classes.txt";
  private static final List<String> NAMES = load();

  private ImageNetClasses() {}

  private static List<String> load() {
    try (InputStream in = ImageNetClasses.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException("resource " + RESOURCE + " missing from the jar");
      }
      List<String> names = lines(new String(in.readAllBytes(), StandardCharsets.UTF_8));
      if (names.size() != COUNT) {
        throw new IllegalStateException("resource " + RESOURCE + ": expected " + COUNT
            + " names, found " + names.size());
      }
      return names;
    } catch (IOException e) {
      throw new UncheckedIOException("reading resource " + RESOURCE, e);
    }
  }

  /** One name a line; a file with CRLF line ends (a Windows checkout) gives the same names. */
  static List<String> lines(String text) {
    return List.of(text.split("\r?\n"));
  }

  /** All names, label i at index i. */
  public static List<String> names() {
    return NAMES;
  }

  /** The name of {@code label} ({@code goldfish} for 1). */
  public static String name(long label) {
    if (label < 0 || label >= COUNT) {
      throw new IllegalArgumentException("expected a label in [0, " + COUNT + "), found "
          + label);
    }
    return NAMES.get((int) label);
  }

  /**
   * The label a text names: a number in [0, 1000), or a class name in any case ("goldfish",
   * "Golden Retriever"). A name two classes share in different case ("Cardigan", the corgi,
   * and "cardigan") must be written exactly.
   *
   * @throws IllegalArgumentException naming the text and, for an unknown name, the closest
   *     names that contain it
   */
  public static long parse(String text) {
    String s = text.trim();
    if (!s.isEmpty() && s.chars().allMatch(Character::isDigit)) {
      long label = s.length() > 6 ? COUNT : Long.parseLong(s);
      if (label >= COUNT) {
        throw new IllegalArgumentException("\"" + text + "\": expected a label in [0, " + COUNT
            + ") or an ImageNet class name");
      }
      return label;
    }
    int exact = NAMES.indexOf(s);
    if (exact >= 0) {
      return exact;
    }
    String lower = s.toLowerCase(Locale.ROOT);
    List<Integer> same = new ArrayList<>();
    List<String> containing = new ArrayList<>();
    for (int i = 0; i < COUNT; i++) {
      String name = NAMES.get(i).toLowerCase(Locale.ROOT);
      if (name.equals(lower)) {
        same.add(i);
      } else if (!lower.isEmpty() && name.contains(lower) && containing.size() < 5) {
        containing.add(NAMES.get(i) + " (" + i + ")");
      }
    }
    if (same.size() == 1) {
      return same.get(0);
    }
    if (same.size() > 1) {
      List<String> which = new ArrayList<>();
      for (int i : same) {
        which.add("\"" + NAMES.get(i) + "\" (" + i + ")");
      }
      throw new IllegalArgumentException("\"" + text + "\": names " + String.join(" and ",
          which) + ": write the name exactly or give the label");
    }
    throw new IllegalArgumentException("\"" + text + "\": not an ImageNet class name or a "
        + "label in [0, " + COUNT + ")" + (containing.isEmpty() ? ""
            : "; names containing it: " + String.join(", ", containing)));
  }
}
