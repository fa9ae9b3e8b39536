package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.pipeline.GenerationRequest;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Values of /metrics: exact numbers, and batch sizes at their bucket bounds. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class PrometheusTextTest {
  @Test
  void fullBatchesOf64And128CountAtTheirBound() throws Exception {
    try (GenerationService service = GenerationService.open(Tiny.model(),
        ServiceOptions.builder().maxBatch(128).build())) {
      for (int images : new int[] {64, 128}) { // one after the other: one pass each
        service.submit(GenerationRequest.builder().batchSize(images)
            .seed(images).build()).get(60, TimeUnit.SECONDS);
      }
      String text = PrometheusText.render(service, Map.of(), 0);
      for (String line : new String[] {"cm4j_batch_images_bucket{le=\"32\"} 0",
          "cm4j_batch_images_bucket{le=\"64\"} 1", "cm4j_batch_images_bucket{le=\"128\"} 2",
          "cm4j_batch_images_sum 192", "cm4j_batch_images_count 2"}) {
        assertTrue(text.contains("\n" + line + "\n"), line + " in\n" + text);
      }
    }
  }

  @Test
  void valuesArePrintedExactly() {
    assertEquals("1234567.891", PrometheusText.number(1234567.891));
    assertEquals("123456789", PrometheusText.number(123456789));
    assertEquals("0.0025", PrometheusText.number(0.0025));
    assertEquals(1.0 / 3, Double.parseDouble(PrometheusText.number(1.0 / 3)));
  }
}
