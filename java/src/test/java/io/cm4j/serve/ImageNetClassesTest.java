package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The class names resource and how a name or number becomes a label. */
class ImageNetClassesTest {
  @Test
  void theResourceHoldsTorchvisionsThousandNamesInLabelOrder() {
    assertEquals(1000, ImageNetClasses.names().size());
    assertEquals("tench", ImageNetClasses.name(0));
    assertEquals("goldfish", ImageNetClasses.name(1));
    assertEquals("king penguin", ImageNetClasses.name(145));
    assertEquals("golden retriever", ImageNetClasses.name(207));
    assertEquals("toilet tissue", ImageNetClasses.name(999));
    assertTrue(ImageNetClasses.names().stream().noneMatch(String::isBlank));
  }

  @Test
  void crlfLineEndsGiveTheSameNames() {
    assertEquals(List.of("tench", "goldfish", "great white shark"),
        ImageNetClasses.lines("tench\r\ngoldfish\r\ngreat white shark\r\n"));
    assertEquals(List.of("tench", "goldfish"), ImageNetClasses.lines("tench\ngoldfish\n"));
  }

  @Test
  void namesAndNumbersParseToLabels() {
    assertEquals(1, ImageNetClasses.parse("goldfish"));
    assertEquals(1, ImageNetClasses.parse(" GoldFish "));
    assertEquals(207, ImageNetClasses.parse("Golden Retriever"));
    assertEquals(145, ImageNetClasses.parse("145"));
    assertEquals(264, ImageNetClasses.parse("Cardigan"));
    assertEquals(474, ImageNetClasses.parse("cardigan"));
  }

  @Test
  void unknownAndAmbiguousNamesSayWhy() {
    String unknown = assertThrows(IllegalArgumentException.class,
        () -> ImageNetClasses.parse("gold")).getMessage();
    assertTrue(unknown.contains("not an ImageNet class name") && unknown.contains("goldfish (1)"),
        unknown);
    String ambiguous = assertThrows(IllegalArgumentException.class,
        () -> ImageNetClasses.parse("CARDIGAN")).getMessage();
    assertTrue(ambiguous.contains("\"Cardigan\" (264) and \"cardigan\" (474)"), ambiguous);
    assertThrows(IllegalArgumentException.class, () -> ImageNetClasses.parse("1000"));
    assertThrows(IllegalArgumentException.class, () -> ImageNetClasses.parse(""));
    assertThrows(IllegalArgumentException.class, () -> ImageNetClasses.name(-1));
  }
}
