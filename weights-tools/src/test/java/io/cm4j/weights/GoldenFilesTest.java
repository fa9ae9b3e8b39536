package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The reader on every safetensors file the Python reference wrote (../shared/golden). */
class GoldenFilesTest {

  static Path golden() {
    Path p = Path.of(System.getProperty("cm4j.golden", "../../shared/golden"));
    assertTrue(Files.isDirectory(p), "golden data not found at " + p.toAbsolutePath());
    return p;
  }

  @Test
  void everyGoldenFileValidatesAndReads() throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.walk(golden())) {
      files = s.filter(p -> p.toString().endsWith(".safetensors")).sorted()
          .collect(Collectors.toList());
    }
    assertTrue(files.size() >= 8, "found only " + files);
    for (Path p : files) {
      try (SafetensorsFile f = SafetensorsFile.open(p)) {
        assertFalse(f.names().isEmpty(), p.toString());
        for (String name : f.names()) {
          TensorEntry t = f.get(name);
          assertEquals(t.numel() * t.dtype().size(), t.data().remaining(), p + " " + name);
        }
      }
    }
  }

  @Test
  void tinyInputsHaveTheDocumentedShapes() throws IOException {
    try (SafetensorsFile f =
        SafetensorsFile.open(golden().resolve("tiny/unet_case.inputs.safetensors"))) {
      assertEquals(DType.F32, f.get("sample").dtype());
      long[] shape = f.get("sample").shape();
      assertEquals(4, shape.length);
      assertArrayEquals(new long[] {shape[0]}, f.get("timestep").shape());
      assertEquals(DType.I64, f.get("class_labels").dtype());
      long[] labels = f.longs("class_labels");
      assertEquals(shape[0], labels.length);
      for (long l : labels) {
        assertTrue(l >= 0 && l < 1000, "label " + l);
      }
    }
  }

  @Test
  void pipelineCasesCarryCallMetadata() throws IOException {
    try (Stream<Path> s = Files.list(golden().resolve("tiny/pipeline_cases"))) {
      Path first = s.filter(p -> p.toString().endsWith(".safetensors")).sorted().findFirst()
          .orElseThrow();
      try (SafetensorsFile f = SafetensorsFile.open(first)) {
        Map<String, Object> call = Json.parseObject(f.metadata().get("call"));
        assertFalse(call.isEmpty(), first.toString());
      }
    }
  }
}
