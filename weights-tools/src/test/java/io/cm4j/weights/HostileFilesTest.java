package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.weights.pickle.PickleBytes;
import io.cm4j.weights.torch.TorchZips;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile checkpoints, each opened the way users open files ({@link Checkpoints#open}): each is
 * refused with a {@link CheckpointException} naming the file and the problem, without running
 * anything, exhausting memory or overflowing the stack.
 */
class HostileFilesTest {
  @TempDir
  Path dir;

  private String refusal(Path file) {
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> Checkpoints.open(file).close());
    assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
    return e.getMessage();
  }

  private Path write(String name, byte[] bytes) throws IOException {
    return Files.write(dir.resolve(name), bytes);
  }

  private static byte[] torchZip(byte[] pkl, Path at) throws IOException {
    return Files.readAllBytes(new TorchZips("archive", pkl).write(at));
  }

  @Test
  void osSystemIsRefusedAndNothingRuns() throws IOException {
    Path marker = dir.resolve("marker-os-system");
    // pickle.dumps of an object whose __reduce__ is (os.system, ("touch <marker>",)), protocol 2
    byte[] pkl = PickleBytes.proto(2).global("os", "system").mark()
        .str("touch " + marker).tuple().reduce().stop().toBytes();
    String m = refusal(write("evil.pdparams", pkl));
    assertTrue(m.contains("global 'os.system' is not allowed"), m);
    // the same inside a torch zip, where torch.load would meet it
    m = refusal(write("evil.bin", torchZip(pkl, dir.resolve("tmp.zip"))));
    assertTrue(m.contains("archive/data.pkl: pickle byte 2: global 'os.system' is not allowed"),
        m);
    assertFalse(Files.exists(marker));
  }

  @Test
  void builtinsEvalIsRefusedAndNothingRuns() throws IOException {
    Path marker = dir.resolve("marker-eval");
    String code = "open(" + "'" + marker + "'" + ", 'w').write('pwned')";
    byte[] pkl = PickleBytes.proto(4).stackGlobal("builtins", "eval").mark().str(code).tuple()
        .reduce().stop().toBytes();
    String m = refusal(write("eval.pdparams", pkl));
    assertTrue(m.contains("global 'builtins.eval' is not allowed"), m);
    byte[] proto2 = PickleBytes.proto(2).global("__builtin__", "eval").mark().str(code).tuple()
        .reduce().stop().toBytes();
    m = refusal(write("eval2.pdparams", proto2));
    assertTrue(m.contains("global '__builtin__.eval' is not allowed"), m);
    assertFalse(Files.exists(marker));
  }

  @Test
  void truncatedZipsAreRefused() throws IOException {
    byte[] bin = Files.readAllBytes(CheckpointsTest.BIN);
    for (int keep : new int[] {bin.length - 10, bin.length / 2, 100, 4}) {
      String m = refusal(write("cut" + keep + ".bin", Arrays.copyOf(bin, keep)));
      assertTrue(m.contains("truncated"), m);
    }
    // A central directory that claims more than the file holds
    byte[] bad = bin.clone();
    int eocd = bad.length - 22;
    ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putInt(eocd + 16, bad.length);
    String m = refusal(write("cd.bin", bad));
    assertTrue(m.contains("central directory"), m);
  }

  @Test
  void aStorageRecordShorterThanItsTensorIsRefused() throws IOException {
    // conv weight [32, 3, 3, 3] of float32 needs 3456 bytes; the record holds 1000
    byte[] pkl = PickleBytes.proto(2).emptyDict().str("conv_in.weight")
        .tensor("FloatStorage", "0", 864, 0, new long[] {32, 3, 3, 3}, new long[] {27, 9, 3, 1})
        .op('s').stop().toBytes();
    Path f = new TorchZips("archive", pkl).record("0", new byte[1000])
        .write(dir.resolve("short.bin"));
    String m = refusal(f);
    assertTrue(m.contains("tensor 'conv_in.weight'"), m);
    assertTrue(m.contains("needs 3456 bytes of storage record 'archive/data/0', which holds 1000"),
        m);
  }

  @Test
  void aDeclaredLengthOf2To62IsRefusedBeforeAllocation() throws IOException {
    long huge = 1L << 62;
    byte[] bytes8 = PickleBytes.proto(4).emptyDict().str("w").op(0x8e).u64(huge).stop()
        .toBytes();
    String m = refusal(write("bytes8.pdparams", bytes8));
    assertTrue(m.contains("BINBYTES8 declares 4611686018427387904 bytes, but only"), m);
    byte[] unicode8 = PickleBytes.proto(4).emptyDict().op(0x8d).u64(huge).stop().toBytes();
    m = refusal(write("unicode8.bin", torchZip(unicode8, dir.resolve("u.zip"))));
    assertTrue(m.contains("BINUNICODE8 declares 4611686018427387904 bytes"), m);
  }

  @Test
  void recursionBombsAreRefused() throws IOException {
    PickleBytes marks = PickleBytes.proto(2);
    PickleBytes lists = PickleBytes.proto(2);
    PickleBytes tuples = PickleBytes.proto(2).op(')');
    for (int i = 0; i < 1_000_000; i++) {
      marks.mark();
      lists.op(']');
    }
    for (int i = 0; i < 900_000; i++) {
      tuples.op(0x85); // ((((),),),) ... 900,000 deep, stack depth 1
    }
    String m = refusal(write("marks.pdparams", marks.stop().toBytes()));
    assertTrue(m.contains("nesting deeper than 1000 marks"), m);
    m = refusal(write("lists.bin", torchZip(lists.stop().toBytes(), dir.resolve("l.zip"))));
    assertTrue(m.contains("more than 100000 values on the stack"), m);
    // A 900,000-deep tuple is built without recursion and refused for what it is.
    m = refusal(write("tuples.pdparams", tuples.stop().toBytes()));
    assertTrue(m.contains("the pickle holds tuple[1], expected a state dict"), m);
  }

  @Test
  void aFloodOfSmallObjectsIsCapped() throws IOException {
    // [[], [], [], ...]: every opcode pair keeps one more list alive
    PickleBytes flood = PickleBytes.proto(2).op(']');
    for (int i = 0; i < 600_000; i++) {
      flood.op(']', 'a');
    }
    String m = refusal(write("flood.pdparams", flood.stop().toBytes()));
    assertTrue(m.contains("more than 1000000 opcodes"), m);
  }

  @Test
  void hostileSafetensorsAreRefused() throws IOException {
    String overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    String m = refusal(write("overlap.safetensors", safetensors(overlap, 12)));
    assertTrue(m.contains("overlaps tensor 'a'"), m);
    String hole = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    m = refusal(write("hole.safetensors", safetensors(hole, 12)));
    assertTrue(m.contains("gap in the data buffer"), m);
    ByteBuffer big = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    big.putLong(200_000_000L).put("{}      ".getBytes(StandardCharsets.US_ASCII));
    m = refusal(write("header.safetensors", big.array()));
    assertTrue(m.contains("header length 200000000 exceeds the limit of 100000000 bytes"), m);
  }

  private static byte[] safetensors(String header, int dataBytes) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(h.length).put(h).array();
  }
}
