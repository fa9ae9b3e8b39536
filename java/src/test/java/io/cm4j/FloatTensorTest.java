package io.cm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.DType;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.TensorEntry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class FloatTensorTest {

  @Test
  void holdsValuesInDirectMemory() {
    FloatTensor t = FloatTensor.of(new long[] {2, 2}, new float[] {1, 2, 3, 4});
    assertArrayEquals(new long[] {2, 2}, t.shape());
    assertEquals(4, t.numel());
    assertTrue(t.buffer().isDirect());
    assertEquals(3f, t.get(2));
    t.buffer().put(2, 7f);
    assertArrayEquals(new float[] {1, 2, 7, 4}, t.toArray());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> FloatTensor.of(new long[] {3}, new float[2]));
    assertEquals("shape [3] needs 3 values, found 2", e.getMessage());
  }

  @Test
  void viewsMappedF32WithoutCopying() throws Exception {
    try (SafetensorsFile f =
        SafetensorsFile.open(Golden.file("tiny/unet_case.inputs.safetensors"))) {
      TensorEntry entry = f.get("sample");
      FloatTensor t = FloatTensor.of(entry);
      assertArrayEquals(entry.shape(), t.shape());
      assertArrayEquals(f.floats("sample"), t.toArray());
      assertTrue(t.buffer().isReadOnly(), "expected a view of the read-only mapping");
    }
  }

  @Test
  void widensHalfPrecisionEntries() {
    ByteBuffer bf16 = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
        .putShort((short) 0x3f80).putShort((short) 0xc040).flip();
    FloatTensor t = FloatTensor.of(new TensorEntry("x", DType.BF16, new long[] {2}, bf16));
    assertArrayEquals(new float[] {1f, -3f}, t.toArray());
    assertThrows(IllegalArgumentException.class, () -> FloatTensor.of(
        new TensorEntry("y", DType.I64, new long[] {1}, ByteBuffer.allocate(8))));
  }

  @Test
  void refusesEntriesWhoseDataIsNotTheShapesSize() {
    // A direct, aligned F32 buffer is viewed in place: with 4 bytes under a [2, 3, 8, 8] shape,
    // native code would read 1532 bytes past it.
    ByteBuffer four = ByteBuffer.allocateDirect(4).order(ByteOrder.LITTLE_ENDIAN);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> FloatTensor.of(new TensorEntry("x", DType.F32, new long[] {2, 3, 8, 8}, four)));
    assertEquals("x: shape [2, 3, 8, 8] in F32 needs 1536 bytes, found 4", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> FloatTensor.of(
        new TensorEntry("h", DType.F16, new long[] {3}, ByteBuffer.allocate(8))));
  }

  @Test
  void readsFromTheDataPositionOn() {
    // An entry whose buffer starts past position 0 (a slice of a larger file) reads from there.
    ByteBuffer bytes = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN)
        .putShort((short) 0x7777).putShort((short) 0x3f80).putShort((short) 0xc040);
    bytes.position(2);
    FloatTensor t = FloatTensor.of(new TensorEntry("x", DType.BF16, new long[] {2}, bytes));
    assertArrayEquals(new float[] {1f, -3f}, t.toArray());
  }
}
