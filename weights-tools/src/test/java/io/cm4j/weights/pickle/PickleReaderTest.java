package io.cm4j.weights.pickle;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class PickleReaderTest {

  static Object load(byte[] b) throws Exception {
    return PickleReader.load(PickleSource.of(ByteBuffer.wrap(b)), PickleReader.NO_PERSISTENT_IDS);
  }

  static Object load(byte[] b, PickleLimits limits) throws Exception {
    return PickleReader.load(PickleSource.of(ByteBuffer.wrap(b)), PickleReader.NO_PERSISTENT_IDS,
        limits);
  }

  static String refusal(byte[] b) {
    return assertThrows(PickleException.class, () -> load(b)).getMessage();
  }

  @Test
  void readsScalarsAndContainers() throws Exception {
    // pickle.dumps({'a': (1, -2, 300, 70000, 2**70, 1.5, None, True, 'é', b'xy'), 'b': [1, 2]},
    //              protocol=2), written out by hand opcode by opcode
    byte[] b = PickleBytes.proto(2).emptyDict().mark()
        .str("a").mark().integer(1).integer(-2).integer(300).integer(70000)
        .op(0x8a, 9).raw(HexFormat.of().parseHex("000000000000000040"))
        .op('G').raw(HexFormat.of().parseHex("3ff8000000000000"))
        .op('N', 0x88).str("é").op('C', 2, 'x', 'y').tuple()
        .str("b").op(']', 'q', 0).mark().integer(1).integer(2).op('e')
        .setItems().stop().toBytes();
    PyDict d = assertInstanceOf(PyDict.class, load(b));
    PyTuple t = assertInstanceOf(PyTuple.class, d.get("a"));
    assertEquals(10, t.size());
    assertEquals(1L, t.get(0));
    assertEquals(-2L, t.get(1));
    assertEquals(300L, t.get(2));
    assertEquals(70000L, t.get(3));
    assertEquals(BigInteger.TWO.pow(70), t.get(4));
    assertEquals(1.5, t.get(5));
    assertNull(t.get(6));
    assertEquals(Boolean.TRUE, t.get(7));
    assertEquals("é", t.get(8));
    assertEquals(2, ((PyBytes) t.get(9)).length());
    PyList list = assertInstanceOf(PyList.class, d.get("b"));
    assertEquals(2, list.size());
    assertEquals(2L, list.get(1));
  }

  @Test
  void memoFrameAndStackGlobal() throws Exception {
    // protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, BINGET of a shared value
    PickleBytes p = PickleBytes.proto(4).op(0x95).u64(0).op(']', 0x94);
    p.stackGlobal("collections", "OrderedDict").op(0x94, ')', 'R', 0x94);
    p.op(0x86).stop();
    PyTuple t = assertInstanceOf(PyTuple.class, load(p.toBytes()));
    assertInstanceOf(PyList.class, t.get(0));
    assertInstanceOf(PyDict.class, t.get(1));
    // BINGET returns the very object stored
    byte[] b = PickleBytes.proto(2).op(']', 'q', 7, 'h', 7, 0x86).stop().toBytes();
    PyTuple two = (PyTuple) load(b);
    assertSame(two.get(0), two.get(1));
  }

  @Test
  void numpyArrayProtocol3AndProtocol2() throws Exception {
    byte[] data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
        .putFloat(1f).putFloat(-2f).putFloat(0.5f).array();
    for (boolean latin1 : new boolean[] {false, true}) {
      byte[] b = PickleBytes.proto(latin1 ? 2 : 3)
          .ndarray("f4", '<', new long[] {3}, false, data, latin1).stop().toBytes();
      NumpyArray a = assertInstanceOf(NumpyArray.class, load(b));
      assertArrayEquals(new long[] {3}, a.shape());
      assertEquals("f4", a.dtype().code());
      assertEquals('<', a.dtype().byteOrder());
      ByteBuffer got = a.data();
      byte[] bytes = new byte[got.remaining()];
      got.get(bytes);
      assertArrayEquals(data, bytes);
    }
  }

  @Test
  void numpyArrayWhoseDataDoesNotFitItsShapeIsRefused() {
    byte[] b = PickleBytes.proto(3)
        .ndarray("f4", '<', new long[] {4}, false, new byte[12], false).stop().toBytes();
    assertTrue(refusal(b).contains("needs 16 bytes, the data holds 12"), refusal(b));
  }

  @Test
  void refusesGlobalsOffTheListNamingThem() {
    String m = refusal(PickleBytes.proto(2).global("os", "system").stop().toBytes());
    assertTrue(m.contains("'os.system' is not allowed"), m);
    m = refusal(PickleBytes.proto(4).stackGlobal("builtins", "eval").stop().toBytes());
    assertTrue(m.contains("'builtins.eval' is not allowed"), m);
    m = refusal(PickleBytes.proto(2).global("torch", "load").stop().toBytes());
    assertTrue(m.contains("'torch.load'"), m);
  }

  @Test
  void callsOnlyAllowedCallablesAndBuildsOnlyAllowedTargets() {
    // REDUCE on a type name that is allowed as a value only
    String m = refusal(PickleBytes.proto(2).global("numpy", "ndarray").op(')', 'R').stop()
        .toBytes());
    assertTrue(m.contains("cannot be called"), m);
    // REDUCE on a non-global
    m = refusal(PickleBytes.proto(2).op(']', ')', 'R').stop().toBytes());
    assertTrue(m.contains("REDUCE needs an allowed callable"), m);
    // BUILD on a list
    m = refusal(PickleBytes.proto(2).op(']', '}', 'b').stop().toBytes());
    assertTrue(m.contains("BUILD on list"), m);
    // NEWOBJ with arguments
    m = refusal(PickleBytes.proto(2).global("collections", "OrderedDict").integer(1).op(0x85)
        .op(0x81).stop().toBytes());
    assertTrue(m.contains("NEWOBJ"), m);
    // bytes() is protocol 2's empty bytes; bytes(n) would allocate n bytes
    assertEquals(0, assertInstanceOf(PyBytes.class, assertDoesNotThrow(() -> load(
        PickleBytes.proto(2).global("__builtin__", "bytes").op(')', 'R').stop().toBytes())))
        .length());
    m = refusal(PickleBytes.proto(2).global("builtins", "bytes").integer(1 << 30).op(0x85, 'R')
        .stop().toBytes());
    assertTrue(m.contains("builtins.bytes: expected 0 arguments, found 1"), m);
    // _codecs.encode with another codec
    m = refusal(PickleBytes.proto(2).global("_codecs", "encode").mark().str("x").str("rot13")
        .tuple().reduce().stop().toBytes());
    assertTrue(m.contains("only (str, 'latin1')"), m);
  }

  @Test
  void refusesUnsupportedOpcodesByName() {
    String m = refusal(PickleBytes.proto(2).op('i').stop().toBytes());
    assertTrue(m.contains("(INST)"), m);
    m = refusal(PickleBytes.proto(2).op(0x82, 1).stop().toBytes());
    assertTrue(m.contains("(EXT1)"), m);
    m = refusal(PickleBytes.proto(2).op('Q').stop().toBytes());
    assertTrue(m.contains("stack underflow"), m);
    m = refusal(PickleBytes.proto(2).str("x").op('Q').stop().toBytes());
    assertTrue(m.contains("persistent id 'x' found, but this format has none"), m);
    m = refusal(PickleBytes.proto(9).stop().toBytes());
    assertTrue(m.contains("protocol 9"), m);
  }

  @Test
  void declaredLengthsAreCheckedBeforeAllocation() {
    long huge = 1L << 62;
    String m = refusal(PickleBytes.proto(4).op(0x8e).u64(huge).stop().toBytes());
    assertTrue(m.contains("BINBYTES8 declares 4611686018427387904 bytes"), m);
    m = refusal(PickleBytes.proto(4).op(0x8d).u64(huge).stop().toBytes());
    assertTrue(m.contains("BINUNICODE8 declares 4611686018427387904 bytes"), m);
    m = refusal(PickleBytes.proto(4).op(0x8d).u64(-1).stop().toBytes());
    assertTrue(m.contains("declares 18446744073709551615 bytes"), m);
    m = refusal(PickleBytes.proto(4).op(0x95).u64(huge).stop().toBytes());
    assertTrue(m.contains("FRAME declares"), m);
    m = refusal(PickleBytes.proto(2).op(0x8b).u32(Integer.MAX_VALUE).stop().toBytes());
    assertTrue(m.contains("integer of 2147483647 bytes exceeds the limit"), m);
  }

  @Test
  void truncatedStreamsAreRefused() {
    String m = refusal(PickleBytes.proto(2).op('X').u32(10).raw(new byte[3]).toBytes());
    assertTrue(m.contains("declares 10 bytes, but only 3 are left"), m);
    m = refusal(PickleBytes.proto(2).emptyDict().toBytes());
    assertTrue(m.contains("truncated"), m);
  }

  @Test
  void recursionBombsHitLimitsNotTheJvmStack() throws Exception {
    PickleBytes marks = PickleBytes.proto(2);
    for (int i = 0; i < 1_000_000; i++) {
      marks.mark();
    }
    String m = refusal(marks.stop().toBytes());
    assertTrue(m.contains("nesting deeper than 1000 marks"), m);

    PickleBytes lists = PickleBytes.proto(2);
    for (int i = 0; i < 1_000_000; i++) {
      lists.op(']');
    }
    m = refusal(lists.stop().toBytes());
    assertTrue(m.contains("more than 100000 values on the stack"), m);

    // A million-deep nest built with constant stack (BINGET, APPEND, POP) is just data: the
    // reader never recurses, so it returns it without overflowing anything.
    PickleBytes deep = PickleBytes.proto(2).op(']', 'r').u32(0);
    for (int i = 0; i < 1_000_000; i++) {
      deep.op('j').u32(i).op(']', 'r').u32(i + 1).op('a', '0');
    }
    Object root = load(deep.stop().toBytes(), new PickleLimits(1000, 100_000, 2_000_000,
        10_000_000, 64));
    PyList outer = assertInstanceOf(PyList.class, root);
    assertEquals("list[1]", outer.toString());
  }

  @Test
  void selfReferenceIsHarmless() throws Exception {
    // l = []; l.append(l)
    PyList l = (PyList) load(PickleBytes.proto(2).op(']', 'q', 0, 'h', 0, 'a').stop().toBytes());
    assertSame(l, l.get(0));
    assertEquals("list[1]", l.toString());
  }

  @Test
  void opcodeAndMemoLimits() {
    PickleBytes many = PickleBytes.proto(2);
    for (int i = 0; i < 200; i++) {
      many.op('N', '0');
    }
    PickleException e = assertThrows(PickleException.class,
        () -> load(many.op('N').stop().toBytes(), new PickleLimits(10, 10, 10, 100, 8)));
    assertTrue(e.getMessage().contains("more than 100 opcodes"), e.getMessage());
    PickleBytes memo = PickleBytes.proto(2).op('N');
    for (int i = 0; i < 20; i++) {
      memo.op('q', i);
    }
    e = assertThrows(PickleException.class,
        () -> load(memo.stop().toBytes(), new PickleLimits(10, 10, 10, 100, 8)));
    assertTrue(e.getMessage().contains("more than 10 memo entries"), e.getMessage());
  }

  @Test
  void dictKeysMustBeScalars() {
    String m = refusal(PickleBytes.proto(2).emptyDict().op(')', 'N', 's').stop().toBytes());
    assertTrue(m.contains("dict key of type tuple[0] is not supported"), m);
  }

  @Test
  void allowListIsSmall() {
    assertTrue(PickleReader.allowedGlobals().contains("torch._utils._rebuild_tensor_v2"));
    assertTrue(PickleReader.allowedGlobals().contains("numpy._core.multiarray._reconstruct"));
    assertTrue(PickleReader.allowedGlobals().size() < 30);
  }
}
