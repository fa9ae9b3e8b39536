package io.cm4j.weights.pickle;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Set;

/**
 * A restricted unpickler for weight files (pickle protocols 2 to 5).
 *
 * <p>It builds only plain values: None, bool, int, float, str, bytes, tuple, list, dict and
 * {@code collections.OrderedDict}, plus the tensor and array descriptions of
 * {@link #allowedGlobals()} ({@link TorchTensorRef}, {@link NumpyArray}). Any other global is
 * refused with a {@link PickleException} naming it, at the opcode that names it; REDUCE and
 * NEWOBJ apply only to the allowed callables and BUILD only to arrays, dtypes, dicts and tensors.
 * Nothing is ever looked up by reflection or executed.
 *
 * <p>The machine is iterative (no Java recursion, so nesting cannot overflow the JVM stack), and
 * every length an opcode declares is checked against the bytes left before anything is
 * allocated; {@link PickleLimits} bound marks, stack, memo and opcode count. Byte strings are
 * views of the source, not copies. Protocol 0/1 text opcodes, extension codes and out-of-band
 * buffers are refused: torch, numpy and Paddle do not use them for weights.
 */
public final class PickleReader {
  /** Resolves a persistent id (BINPERSID): torch's storages. */
  @FunctionalInterface
  public interface PersistentLoader {
    Object load(Object pid) throws PickleException;
  }

  /** For streams that must not contain persistent ids. */
  public static final PersistentLoader NO_PERSISTENT_IDS = pid -> {
    throw new PickleException("persistent id " + Allowed.describe(pid)
        + " found, but this format has none");
  };

  private static final int WINDOW_BYTES = 64 << 20;
  private static final int MAX_LINE = 256;

  private final PickleSource source;
  private final PersistentLoader loader;
  private final PickleLimits limits;
  private final ArrayList<Object> stack = new ArrayList<>();
  private int[] marks = new int[16];
  private int markCount;
  private final HashMap<Long, Object> memo = new HashMap<>();

  private ByteBuffer window = ByteBuffer.allocate(0);
  private long windowStart;
  private long pos;
  private long opStart;

  private PickleReader(PickleSource source, PersistentLoader loader, PickleLimits limits) {
    this.source = source;
    this.loader = loader;
    this.limits = limits;
  }

  /** Reads one pickled value with the default limits. */
  public static Object load(PickleSource source, PersistentLoader loader)
      throws PickleException, IOException {
    return load(source, loader, PickleLimits.DEFAULT);
  }

  /** Reads one pickled value (up to STOP; bytes after it are ignored, as Python does). */
  public static Object load(PickleSource source, PersistentLoader loader, PickleLimits limits)
      throws PickleException, IOException {
    return new PickleReader(source, loader, limits).run();
  }

  /** The globals a stream may name ("module.name"), sorted. */
  public static Set<String> allowedGlobals() {
    return Allowed.names();
  }

  private Object run() throws PickleException, IOException {
    long ops = 0;
    while (true) {
      opStart = pos;
      int op = u8();
      if (++ops > limits.maxOps()) {
        throw error("more than " + limits.maxOps() + " opcodes");
      }
      switch (op) {
        case 0x80: { // PROTO
          int proto = u8();
          if (proto < 2 || proto > 5) {
            throw error("pickle protocol " + proto + " is not supported (2 to 5 are)");
          }
          break;
        }
        case 0x95: { // FRAME: a length hint; opcodes simply continue
          long len = u64();
          checkLength(len, "FRAME");
          break;
        }
        case '.': // STOP
          if (markCount != 0) {
            throw error("STOP inside an unclosed MARK");
          }
          return pop();
        case '(': // MARK
          if (markCount == limits.maxMarks()) {
            throw error("nesting deeper than " + limits.maxMarks() + " marks");
          }
          if (markCount == marks.length) {
            marks = Arrays.copyOf(marks, marks.length * 2);
          }
          marks[markCount++] = stack.size();
          break;
        case '0': // POP: the top value, or the top mark when nothing is above it
          if (stack.size() > base()) {
            stack.remove(stack.size() - 1);
          } else {
            popMark();
          }
          break;
        case '1': // POP_MARK
          popMark();
          break;
        case '2': // DUP
          push(peek());
          break;
        case 'N':
          push(null);
          break;
        case 0x88:
          push(Boolean.TRUE);
          break;
        case 0x89:
          push(Boolean.FALSE);
          break;
        case 'J': // BININT
          push((long) take(4).getInt());
          break;
        case 'K': // BININT1
          push((long) u8());
          break;
        case 'M': // BININT2
          push((long) (take(2).getShort() & 0xffff));
          break;
        case 0x8a: // LONG1
          push(bigInt(u8()));
          break;
        case 0x8b: { // LONG4
          int n = take(4).getInt();
          if (n < 0) {
            throw error("LONG4 with negative length " + n);
          }
          push(bigInt(n));
          break;
        }
        case 'G': // BINFLOAT, big-endian
          push(take(8).order(ByteOrder.BIG_ENDIAN).getDouble());
          break;
        case 'X': // BINUNICODE
          push(utf8(u32(), "BINUNICODE"));
          break;
        case 0x8c: // SHORT_BINUNICODE
          push(utf8(u8(), "SHORT_BINUNICODE"));
          break;
        case 0x8d: // BINUNICODE8
          push(utf8(u64(), "BINUNICODE8"));
          break;
        case 'T': { // BINSTRING (Python 2 str), read as latin-1 like torch.load does
          int n = take(4).getInt();
          if (n < 0) {
            throw error("BINSTRING with negative length " + n);
          }
          push(latin1(n, "BINSTRING"));
          break;
        }
        case 'U': // SHORT_BINSTRING
          push(latin1(u8(), "SHORT_BINSTRING"));
          break;
        case 'B': // BINBYTES
          push(bytes(u32(), "BINBYTES"));
          break;
        case 'C': // SHORT_BINBYTES
          push(bytes(u8(), "SHORT_BINBYTES"));
          break;
        case 0x8e: // BINBYTES8
          push(bytes(u64(), "BINBYTES8"));
          break;
        case 0x96: // BYTEARRAY8: a bytearray, read-only here like everything else
          push(bytes(u64(), "BYTEARRAY8"));
          break;
        case ']': // EMPTY_LIST
          push(new PyList());
          break;
        case 'l': { // LIST
          PyList list = new PyList();
          list.items.addAll(Arrays.asList(popMark()));
          push(list);
          break;
        }
        case 'a': { // APPEND
          Object v = pop();
          listAt(peek(), "APPEND").items.add(v);
          break;
        }
        case 'e': { // APPENDS
          Object[] items = popMark();
          listAt(peek(), "APPENDS").items.addAll(Arrays.asList(items));
          break;
        }
        case ')': // EMPTY_TUPLE
          push(new PyTuple(new Object[0]));
          break;
        case 't': // TUPLE
          push(new PyTuple(popMark()));
          break;
        case 0x85: // TUPLE1
          push(new PyTuple(new Object[] {pop()}));
          break;
        case 0x86: { // TUPLE2
          Object b = pop();
          Object a = pop();
          push(new PyTuple(new Object[] {a, b}));
          break;
        }
        case 0x87: { // TUPLE3
          Object c = pop();
          Object b = pop();
          Object a = pop();
          push(new PyTuple(new Object[] {a, b, c}));
          break;
        }
        case '}': // EMPTY_DICT
          push(new PyDict());
          break;
        case 'd': { // DICT
          PyDict d = new PyDict();
          putAll(d, popMark());
          push(d);
          break;
        }
        case 's': { // SETITEM
          Object v = pop();
          Object k = pop();
          dictAt(peek(), "SETITEM").map.put(key(k), v);
          break;
        }
        case 'u': { // SETITEMS
          Object[] items = popMark();
          putAll(dictAt(peek(), "SETITEMS"), items);
          break;
        }
        case 'c': { // GLOBAL "module\nname\n"
          String module = line();
          String name = line();
          push(resolve(module, name));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          Object name = pop();
          Object module = pop();
          if (!(module instanceof String) || !(name instanceof String)) {
            throw error("STACK_GLOBAL needs two strings, found " + Allowed.describe(module)
                + " and " + Allowed.describe(name));
          }
          push(resolve((String) module, (String) name));
          break;
        }
        case 'R': { // REDUCE
          Object args = pop();
          Object fn = pop();
          if (!(fn instanceof PyGlobal) || !(args instanceof PyTuple)) {
            throw error("REDUCE needs an allowed callable and a tuple, found "
                + Allowed.describe(fn) + " and " + Allowed.describe(args));
          }
          push(wrap(() -> Allowed.call((PyGlobal) fn, (PyTuple) args)));
          break;
        }
        case 0x81: { // NEWOBJ
          Object args = pop();
          Object cls = pop();
          if (!(cls instanceof PyGlobal) || !(args instanceof PyTuple)) {
            throw error("NEWOBJ needs an allowed class and a tuple, found "
                + Allowed.describe(cls) + " and " + Allowed.describe(args));
          }
          push(wrap(() -> Allowed.newObject((PyGlobal) cls, (PyTuple) args)));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          Object kwargs = pop();
          Object args = pop();
          Object cls = pop();
          if (!(cls instanceof PyGlobal) || !(args instanceof PyTuple)
              || !(kwargs instanceof PyDict) || ((PyDict) kwargs).size() != 0) {
            throw error("NEWOBJ_EX needs an allowed class, a tuple and no keywords, found "
                + Allowed.describe(cls));
          }
          push(wrap(() -> Allowed.newObject((PyGlobal) cls, (PyTuple) args)));
          break;
        }
        case 'b': { // BUILD
          Object state = pop();
          Object target = peek();
          wrap(() -> {
            Allowed.build(target, state);
            return null;
          });
          break;
        }
        case 'q': // BINPUT
          put(u8());
          break;
        case 'r': // LONG_BINPUT
          put(u32());
          break;
        case 0x94: // MEMOIZE
          put(memo.size());
          break;
        case 'h': // BINGET
          push(get(u8()));
          break;
        case 'j': // LONG_BINGET
          push(get(u32()));
          break;
        case 'Q': { // BINPERSID
          Object pid = pop();
          push(wrap(() -> loader.load(pid)));
          break;
        }
        default:
          throw error("opcode " + opName(op) + " is not supported in weight files");
      }
    }
  }

  // ---- stack, marks, memo ----

  /** Stack index below which the innermost open MARK forbids popping. */
  private int base() {
    return markCount == 0 ? 0 : marks[markCount - 1];
  }

  private void push(Object v) throws PickleException {
    if (stack.size() >= limits.maxStack()) {
      throw error("more than " + limits.maxStack() + " values on the stack");
    }
    stack.add(v);
  }

  private Object pop() throws PickleException {
    if (stack.size() <= base()) {
      throw error("stack underflow");
    }
    return stack.remove(stack.size() - 1);
  }

  private Object peek() throws PickleException {
    if (stack.size() <= base()) {
      throw error("stack underflow");
    }
    return stack.get(stack.size() - 1);
  }

  private Object[] popMark() throws PickleException {
    if (markCount == 0) {
      throw error("no MARK to pop to");
    }
    int from = marks[--markCount];
    Object[] items = stack.subList(from, stack.size()).toArray();
    stack.subList(from, stack.size()).clear();
    return items;
  }

  private void put(long index) throws PickleException {
    Object v = peek();
    if (!memo.containsKey(index) && memo.size() >= limits.maxMemo()) {
      throw error("more than " + limits.maxMemo() + " memo entries");
    }
    memo.put(index, v);
  }

  private Object get(long index) throws PickleException {
    Object v = memo.get(index);
    if (v == null && !memo.containsKey(index)) {
      throw error("memo entry " + index + " was never stored");
    }
    return v;
  }

  private PyList listAt(Object o, String op) throws PickleException {
    if (!(o instanceof PyList)) {
      throw error(op + " to " + Allowed.describe(o) + ", expected a list");
    }
    return (PyList) o;
  }

  private PyDict dictAt(Object o, String op) throws PickleException {
    if (!(o instanceof PyDict)) {
      throw error(op + " on " + Allowed.describe(o) + ", expected a dict");
    }
    return (PyDict) o;
  }

  private void putAll(PyDict d, Object[] items) throws PickleException {
    if (items.length % 2 != 0) {
      throw error("odd number of items (" + items.length + ") for a dict");
    }
    for (int i = 0; i < items.length; i += 2) {
      d.map.put(key(items[i]), items[i + 1]);
    }
  }

  private Object key(Object k) throws PickleException {
    return wrap(() -> Allowed.checkKey(k));
  }

  private PyGlobal resolve(String module, String name) throws PickleException {
    return (PyGlobal) wrap(() -> Allowed.resolve(module, name));
  }

  @FunctionalInterface
  private interface Step {
    Object run() throws PickleException;
  }

  /** Runs an allow-list step, adding the opcode's offset to its message. */
  private Object wrap(Step step) throws PickleException {
    try {
      return step.run();
    } catch (PickleException e) {
      throw error(e.getMessage());
    }
  }

  // ---- reading the stream ----

  /** A little-endian view of the next n bytes (n small), advancing past them. */
  private ByteBuffer take(int n) throws PickleException, IOException {
    if (n > source.size() - pos) {
      throw error("truncated: needs " + n + " bytes, " + (source.size() - pos) + " left");
    }
    long end = windowStart + window.limit();
    if (pos < windowStart || pos + n > end) {
      windowStart = pos;
      window = source.map(pos, (int) Math.min(WINDOW_BYTES, source.size() - pos));
    }
    int at = (int) (pos - windowStart);
    pos += n;
    return window.duplicate().position(at).limit(at + n).slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  private int u8() throws PickleException, IOException {
    return take(1).get() & 0xff;
  }

  private long u32() throws PickleException, IOException {
    return take(4).getInt() & 0xffffffffL;
  }

  private long u64() throws PickleException, IOException {
    long v = take(8).getLong();
    return v; // may be negative (>= 2^63): checkLength refuses it
  }

  /** Refuses a declared length before anything of that size exists. */
  private int checkLength(long len, String op) throws PickleException {
    long left = source.size() - pos;
    if (len < 0 || len > left) {
      throw error(op + " declares " + Long.toUnsignedString(len) + " bytes, but only " + left
          + " are left in the stream");
    }
    if (len > Integer.MAX_VALUE - 8) {
      throw error(op + " declares " + len + " bytes; values over 2 GiB are not supported");
    }
    return (int) len;
  }

  /** n bytes as a view: from the window when they lie in it, else mapped on their own. */
  private ByteBuffer blob(long declared, String op) throws PickleException, IOException {
    int n = checkLength(declared, op);
    if (pos >= windowStart && pos + n <= windowStart + window.limit() || n <= WINDOW_BYTES) {
      return take(n);
    }
    ByteBuffer b = source.map(pos, n);
    pos += n;
    return b;
  }

  private PyBytes bytes(long declared, String op) throws PickleException, IOException {
    return new PyBytes(blob(declared, op));
  }

  private String utf8(long declared, String op) throws PickleException, IOException {
    ByteBuffer b = blob(declared, op);
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(b).toString();
    } catch (CharacterCodingException e) {
      throw error(op + " holds invalid UTF-8");
    }
  }

  private String latin1(long declared, String op) throws PickleException, IOException {
    return StandardCharsets.ISO_8859_1.decode(blob(declared, op)).toString();
  }

  /** A little-endian two's-complement integer of n bytes (LONG1/LONG4). */
  private Object bigInt(int n) throws PickleException, IOException {
    if (n > limits.maxIntBytes()) {
      throw error("integer of " + n + " bytes exceeds the limit of " + limits.maxIntBytes());
    }
    ByteBuffer b = take(n);
    byte[] be = new byte[n];
    for (int i = 0; i < n; i++) {
      be[n - 1 - i] = b.get(i);
    }
    if (n == 0) {
      return 0L;
    }
    BigInteger v = new BigInteger(be);
    return v.bitLength() < 64 ? (Object) v.longValue() : v;
  }

  /** A text line of GLOBAL ("module\n"), at most MAX_LINE bytes, ASCII. */
  private String line() throws PickleException, IOException {
    StringBuilder sb = new StringBuilder();
    while (true) {
      int c = u8();
      if (c == '\n') {
        return sb.toString();
      }
      if (c < 0x20 || c > 0x7e || sb.length() >= MAX_LINE) {
        throw error("GLOBAL name is not a short printable ASCII line");
      }
      sb.append((char) c);
    }
  }

  private PickleException error(String problem) {
    return new PickleException("pickle byte " + opStart + ": " + problem);
  }

  private static String opName(int op) {
    String name;
    switch (op) {
      case 'i': name = "INST"; break;
      case 'o': name = "OBJ"; break;
      case 'P': name = "PERSID"; break;
      case 'I': name = "INT"; break;
      case 'L': name = "LONG"; break;
      case 'F': name = "FLOAT"; break;
      case 'S': name = "STRING"; break;
      case 'V': name = "UNICODE"; break;
      case 'p': name = "PUT"; break;
      case 'g': name = "GET"; break;
      case 0x82: name = "EXT1"; break;
      case 0x83: name = "EXT2"; break;
      case 0x84: name = "EXT4"; break;
      case 0x8f: name = "EMPTY_SET"; break;
      case 0x90: name = "ADDITEMS"; break;
      case 0x91: name = "FROZENSET"; break;
      case 0x97: name = "NEXT_BUFFER"; break;
      case 0x98: name = "READONLY_BUFFER"; break;
      default: name = "unknown";
    }
    return String.format("0x%02x (%s)", op, name);
  }
}
