package io.cm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class DeviceTest {

  @Test
  void parsesTheThreeForms() {
    assertEquals(Device.CPU, Device.parse("cpu"));
    assertEquals("cuda", Device.parse("cuda").toString());
    assertEquals(0, Device.parse("cuda").index());
    assertEquals(Device.cuda(0), Device.parse("cuda"));
    assertEquals("cuda:3", Device.parse("cuda:3").toString());
    assertEquals(Device.Kind.CUDA, Device.parse("cuda:3").kind());
    assertEquals(3, Device.parse("cuda:3").index());
    assertEquals(Device.cpu(2), Device.parse("cpu:2"));
    assertEquals("cpu:2", Device.parse("cpu:2").toString());
    assertEquals(2, Device.parse("cpu:2").threads());
    assertEquals(0, Device.CPU.threads());
    assertEquals(-1, Device.cpu(2).index());
  }

  @Test
  void rejectsOtherTextClearly() {
    assertEquals("invalid device 'gpu': expected cpu, cpu:THREADS, cuda or cuda:N",
        assertThrows(IllegalArgumentException.class, () -> Device.parse("gpu")).getMessage());
    assertEquals("invalid device 'cuda:x': expected a device number after 'cuda:', found 'x'",
        assertThrows(IllegalArgumentException.class, () -> Device.parse("cuda:x")).getMessage());
    assertThrows(IllegalArgumentException.class, () -> Device.parse("cuda:"));
    assertThrows(IllegalArgumentException.class, () -> Device.parse("cuda:-1"));
    assertEquals("invalid device 'cpu:0': expected a thread count between 1 and 1024, found 0",
        assertThrows(IllegalArgumentException.class, () -> Device.parse("cpu:0")).getMessage());
    assertEquals("invalid device 'cpu:two': expected a thread count after 'cpu:', found 'two'",
        assertThrows(IllegalArgumentException.class, () -> Device.parse("cpu:two")).getMessage());
    assertThrows(IllegalArgumentException.class, () -> Device.cpu(0));
  }

  @Test
  void parsesPrecisions() {
    assertEquals(Precision.FP32, Precision.parse("fp32"));
    assertEquals(Precision.BF16, Precision.parse("BF16"));
    assertEquals("fp16", Precision.FP16.toString());
    assertEquals("invalid dtype 'fp8': expected fp32, fp16 or bf16",
        assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp8")).getMessage());
  }
}
