package io.cm4j.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.cm4j.weights.pickle.PickleBytes;
import io.cm4j.weights.torch.TorchZipCheckpoint;
import io.cm4j.weights.torch.TorchZips;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Fuzzing of the checkpoint readers (issue 7): random and mutated files of every format, each
 * opened with {@link Checkpoints#open} and read completely (every tensor's info and data, every
 * byte touched). The only acceptable failure is a {@link CheckpointException} naming the file and
 * the problem; any other exception or error (NPE, IndexOutOfBounds, NegativeArraySize,
 * OutOfMemoryError, StackOverflowError, ClassCastException, ...), a case running past its time
 * limit, a tensor whose data does not match its shape, or one bigger than the whole file fails
 * the test.
 *
 * <p>Seeds: the stored tiny weights in all four formats (safetensors, torch zip, Paddle pickle,
 * OpenAI torch zip with the tiny config) plus small hand-built files (strided torch views,
 * deflated zips, split, Fortran-ordered and big-endian Paddle arrays). Mutations, from a seeded
 * {@link Random}, stacked one to three deep: bit flips, overwrites with boundary values (0x00,
 * 0xFF, 0x7F, 2^31-1, 2^32-1, 2^62, ...), truncation, removal, duplication and insertion of
 * chunks, aimed mostly at the structure (safetensors header, zip headers and central directory,
 * pickle opcodes) rather than at tensor bytes; for pickles, insertion, removal, duplication and
 * replacement of whole opcodes; for safetensors, JSON values swapped for boundary values; for
 * zips, entries dropped, cut, renamed or deflated. Plus random byte strings behind each format's
 * magic prefix and randomly generated pickles and headers.
 *
 * <p>Bounded: {@code -Dcm4j.fuzz.iterations=N} mutants per format (default 300), each with a
 * {@code cm4j.fuzz.timeoutSeconds} limit (default 5). The run is deterministic for a given
 * {@code -Dcm4j.fuzz.seed}; a failure prints each failing case's seed, and
 * {@code -Dcm4j.fuzz.case=SEED} reruns just that case ({@code -Dcm4j.fuzz.keep=DIR} keeps
 * failing mutants).
 */
class CheckpointFuzzTest {
  private static final int ITERATIONS = Integer.getInteger("cm4j.fuzz.iterations", 300);
  private static final long BASE_SEED = Long.getLong("cm4j.fuzz.seed", 20240607L);
  private static final Long ONLY_CASE = Long.getLong("cm4j.fuzz.case");
  private static final boolean VERBOSE = Boolean.getBoolean("cm4j.fuzz.verbose");
  private static final Duration CASE_TIMEOUT =
      Duration.ofSeconds(Long.getLong("cm4j.fuzz.timeoutSeconds", 5));
  /** More new direct memory than this in one case means a declared size was believed. */
  private static final long MAX_DIRECT_GROWTH = 256L << 20;

  private static final Path TINY = TestData.golden().resolve("tiny");
  private static final Path UNET = TINY.resolve("pipeline/unet");
  private static final Path TINY_CONFIG = UNET.resolve("config.json");

  enum Format { SAFETENSORS, TORCH, PADDLE, OPENAI }

  /** How a seed is mutated: raw bytes, a pickle, or a zip whose entries are known. */
  private enum Kind { SAFETENSORS, PICKLE, ZIP }

  /** One zip entry of a seed archive. */
  private record Entry(String name, byte[] data) {}

  /**
   * A file to mutate: its bytes, the byte ranges worth hitting ({start, end} pairs), and for
   * zips its entries (data.pkl's index among them).
   */
  private record Seed(String label, Kind kind, byte[] bytes, List<int[]> hot, List<Entry> entries,
      int pklIndex, ZipFields fields) {}

  /**
   * The integer fields of a zip archive, {offset, width}, in three groups: end records (EOCD,
   * ZIP64 locator and end record), central directory entries, local headers; and where the ZIP64
   * fields are, when there are any.
   */
  private record ZipFields(List<List<int[]>> groups, int eocd, int zip64) {}

  /** What happened to one case. */
  private enum Outcome { OPENED, REFUSED }

  /** The last refusal's message (cases run on a thread of their own), for the histogram. */
  private static final AtomicReference<String> LAST_REFUSAL = new AtomicReference<>("");

  @TempDir
  Path dir;

  @ParameterizedTest
  @EnumSource(Format.class)
  void mutantsAreReadOrRefusedCleanly(Format format) throws Exception {
    List<Seed> seeds = seeds(format);
    Path file = dir.resolve("mutant-" + format.name().toLowerCase()
        + (format == Format.SAFETENSORS ? ".safetensors"
        : format == Format.PADDLE ? ".pdparams" : format == Format.OPENAI ? ".pt" : ".bin"));
    Path config = format == Format.OPENAI ? TINY_CONFIG : null;
    Map<String, int[]> counts = new TreeMap<>(); // origin -> {cases, opened, refused}
    Map<String, Integer> refusals = new TreeMap<>(); // with -Dcm4j.fuzz.verbose
    List<String> failures = new ArrayList<>();
    long start = System.nanoTime();
    int ran = 0;
    for (int i = 0; i < ITERATIONS; i++) {
      long caseSeed = caseSeed(format, i);
      if (ONLY_CASE != null && ONLY_CASE != caseSeed) {
        continue;
      }
      ran++;
      Random r = new Random(caseSeed);
      String[] origin = new String[1];
      byte[] mutant;
      try {
        mutant = mutant(format, seeds, r, origin);
      } catch (IOException e) {
        throw new AssertionError("building case " + caseSeed + " failed", e);
      }
      Files.write(file, mutant);
      int[] c = counts.computeIfAbsent(origin[0], k -> new int[3]);
      c[0]++;
      try {
        Outcome o = assertTimeoutPreemptively(CASE_TIMEOUT, () -> exercise(file, config),
            () -> format + " case " + caseSeed + " (" + origin[0] + ") ran past " + CASE_TIMEOUT);
        c[o == Outcome.OPENED ? 1 : 2]++;
        if (VERBOSE) {
          String m = o == Outcome.OPENED ? "opened" : LAST_REFUSAL.get()
              .substring(file.toString().length()).replaceAll("[0-9]+", "N")
              .replaceAll("'[^']*'", "'S'");
          refusals.merge(origin[0] + ": " + m.substring(0, Math.min(m.length(), 110)), 1,
              Integer::sum);
        }
      } catch (Throwable t) {
        failures.add(format + " case seed " + caseSeed + " (" + origin[0] + ", " + mutant.length
            + " bytes): " + stackTop(t));
        keep(file, format, caseSeed);
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    StringBuilder summary = new StringBuilder(String.format(
        "fuzz %s: %d cases in %.1f s (seed %d)", format, ran, seconds, BASE_SEED));
    counts.forEach((k, v) -> summary.append(String.format("%n  %-28s %4d cases: %4d opened, "
        + "%4d refused", k, v[0], v[1], v[2])));
    System.out.println(summary);
    refusals.forEach((m, n) -> System.out.printf("  %5d %s%n", n, m));
    if (!failures.isEmpty()) {
      fail(failures.size() + " of " + ran + " " + format + " cases failed (rerun one with "
          + "-Dcm4j.fuzz.seed=" + BASE_SEED + " -Dcm4j.fuzz.case=SEED):\n"
          + String.join("\n", failures.subList(0, Math.min(20, failures.size()))));
    }
  }

  private static long caseSeed(Format format, int i) {
    long z = BASE_SEED * 0x9E3779B97F4A7C15L + format.ordinal() * 0xBF58476D1CE4E5B9L + i;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return (z ^ (z >>> 31)) & Long.MAX_VALUE;
  }

  // ---- running one case ----

  /**
   * Opens a file and reads everything in it. A {@link CheckpointException} naming the file is a
   * clean refusal; anything else escapes (and fails the case), as does a broken invariant.
   */
  static Outcome exercise(Path file, Path config) {
    try {
      readAll(file, config);
      return Outcome.OPENED;
    } catch (CheckpointException e) {
      String m = e.getMessage();
      LAST_REFUSAL.set(m);
      check(m != null && m.startsWith(file + ": ") && m.length() > (file + ": ").length(),
          "CheckpointException without a proper message: " + m);
      return Outcome.REFUSED;
    }
  }

  /**
   * {@link Checkpoints#open} and every tensor's info and data read, with the invariants
   * checked: data matching shape and dtype, no tensor bigger than the file, no more direct
   * memory taken than {@link #MAX_DIRECT_GROWTH}, refused or not.
   */
  static void readAll(Path file, Path config) throws CheckpointException {
    BufferPoolMXBean direct = directPool();
    long directBefore = direct == null ? 0 : direct.getTotalCapacity();
    long fileSize;
    try {
      fileSize = Files.size(file);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
    try (Checkpoint c = Checkpoints.open(file, config)) {
      long sum = 0;
      for (String name : c.names()) {
        TensorInfo info = c.info(name);
        TensorEntry t = c.get(name);
        check(info.name().equals(name) && t.name().equals(name), "names differ: " + name);
        check(info.dtype() == t.dtype(), name + ": info dtype " + info.dtype() + ", data "
            + t.dtype());
        check(Arrays.equals(info.shape(), t.shape()), name + ": info shape "
            + Arrays.toString(info.shape()) + ", data " + Arrays.toString(t.shape()));
        check(t.dtype() == DType.F32 || t.dtype() == DType.F16 || t.dtype() == DType.BF16,
            name + ": dtype " + t.dtype());
        ByteBuffer data = t.data();
        long nbytes = exactBytes(info);
        check(data.remaining() == nbytes, name + " " + info + ": " + data.remaining()
            + " data bytes, shape needs " + nbytes);
        check(nbytes <= fileSize, name + " " + info + ": " + nbytes
            + " bytes handed out from a " + fileSize + "-byte file");
        sum += touch(data);
      }
      c.inspect();
      check(sum != Long.MIN_VALUE + 1, "unreachable"); // keeps the reads
    } catch (CheckpointException e) {
      checkDirect(direct, directBefore, fileSize, e.getMessage());
      throw e;
    }
    checkDirect(direct, directBefore, fileSize, "read");
  }

  /** Bytes of a tensor, computed exactly: 0 with any dimension 0, else no overflow allowed. */
  private static long exactBytes(TensorInfo info) {
    long[] shape = info.shape();
    long nbytes = info.dtype().size();
    for (long d : shape) {
      check(d >= 0, "negative dimension in " + info);
      if (d == 0) {
        return 0;
      }
    }
    try {
      for (long d : shape) {
        nbytes = Math.multiplyExact(nbytes, d);
      }
    } catch (ArithmeticException e) {
      throw new AssertionError("the size of " + info + " overflows 64 bits");
    }
    return nbytes;
  }

  private static void checkDirect(BufferPoolMXBean direct, long before, long fileSize,
      String outcome) {
    if (direct != null) {
      long grown = direct.getTotalCapacity() - before;
      check(grown < MAX_DIRECT_GROWTH, grown + " bytes of direct memory allocated for a "
          + fileSize + "-byte file (" + outcome + ")");
    }
  }

  private static void check(boolean ok, String problem) {
    if (!ok) {
      throw new AssertionError(problem);
    }
  }

  /** Reads every byte (as longs where it can), so lazily mapped or gathered data is touched. */
  private static long touch(ByteBuffer b) {
    ByteBuffer d = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long sum = 0;
    int i = d.position();
    int end = d.limit();
    for (; i + 8 <= end; i += 8) {
      sum += d.getLong(i);
    }
    for (; i < end; i++) {
      sum += d.get(i);
    }
    return sum;
  }

  private static BufferPoolMXBean directPool() {
    for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (b.getName().equals("direct")) {
        return b;
      }
    }
    return null;
  }

  private static String stackTop(Throwable t) {
    StringWriter w = new StringWriter();
    t.printStackTrace(new PrintWriter(w));
    String[] lines = w.toString().split("\n");
    return String.join("\n    ", Arrays.copyOf(lines, Math.min(lines.length, 8)));
  }

  private static void keep(Path file, Format format, long caseSeed) {
    String keep = System.getProperty("cm4j.fuzz.keep");
    if (keep == null) {
      return;
    }
    try {
      Path d = Files.createDirectories(Path.of(keep));
      Files.copy(file, d.resolve(format.name().toLowerCase() + "-" + caseSeed),
          StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      System.err.println("cannot keep " + file + ": " + e);
    }
  }

  // ---- seeds ----

  private List<Seed> seeds(Format format) throws IOException {
    List<Seed> out = new ArrayList<>();
    switch (format) {
      case SAFETENSORS:
        out.add(safetensorsSeed("golden safetensors",
            Files.readAllBytes(UNET.resolve("diffusion_pytorch_model.safetensors"))));
        out.add(safetensorsSeed("small safetensors", smallSafetensors()));
        break;
      case TORCH:
        out.add(zipSeed("golden bin", UNET.resolve("diffusion_pytorch_model.bin")));
        out.add(zipSeed("small torch zip", new TorchZips("archive", stridedPickle())
            .record("0", floatBytes(12)).record("1", new byte[] {1, 2, 3, 4, 5, 6})
            .write(dir.resolve("small.bin"))));
        out.add(zipSeed("small deflated zip", new TorchZips("d", stridedPickle())
            .record("0", floatBytes(12)).record("1", new byte[] {1, 2, 3, 4, 5, 6}).deflated()
            .write(dir.resolve("deflated.bin"))));
        break;
      case PADDLE:
        out.add(pickleSeed("golden pdparams",
            Files.readAllBytes(UNET.resolve("model_state.pdparams"))));
        out.add(pickleSeed("small split pdparams", splitPaddlePickle()));
        out.add(pickleSeed("small fortran pdparams", miscPaddlePickle()));
        break;
      case OPENAI:
        out.add(zipSeed("golden openai pt", TINY.resolve("openai/tiny_cd_test.pt")));
        break;
      default:
        throw new AssertionError(format);
    }
    return out;
  }

  private static Seed safetensorsSeed(String label, byte[] b) {
    long headerLen = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    List<int[]> hot = new ArrayList<>();
    hot.add(new int[] {0, (int) (8 + headerLen)});
    return new Seed(label, Kind.SAFETENSORS, b, hot, null, -1, null);
  }

  private static Seed pickleSeed(String label, byte[] b) {
    List<int[]> hot = new ArrayList<>();
    for (int[] op : opcodes(b)) {
      hot.add(new int[] {op[0], op[1]});
    }
    return new Seed(label, Kind.PICKLE, b, hot, null, -1, null);
  }

  private static Seed zipSeed(String label, Path file) throws IOException {
    byte[] b = Files.readAllBytes(file);
    List<Entry> entries = new ArrayList<>();
    int pkl = -1;
    try (ZipFile z = new ZipFile(file.toFile())) {
      for (Enumeration<? extends ZipEntry> en = z.entries(); en.hasMoreElements(); ) {
        ZipEntry e = en.nextElement();
        if (e.getName().endsWith("data.pkl")) {
          pkl = entries.size();
        }
        entries.add(new Entry(e.getName(), z.getInputStream(e).readAllBytes()));
      }
    }
    List<int[]> hot = new ArrayList<>();
    ZipFields fields = zipStructure(b, hot);
    return new Seed(label, Kind.ZIP, b, hot, entries, pkl, fields);
  }

  /**
   * Zip structure: adds to {@code hot} the local headers, data.pkl and everything from the
   * central directory on; returns the integer fields.
   */
  private static ZipFields zipStructure(byte[] b, List<int[]> hot) {
    ByteBuffer z = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    int eocd = b.length - 22;
    while (eocd > 0 && z.getInt(eocd) != 0x06054b50) {
      eocd--;
    }
    List<int[]> ends = new ArrayList<>();
    List<int[]> central = new ArrayList<>();
    List<int[]> locals = new ArrayList<>();
    for (int[] f : new int[][] {{4, 2}, {6, 2}, {8, 2}, {10, 2}, {12, 4}, {16, 4}, {20, 2}}) {
      ends.add(new int[] {eocd + f[0], f[1]});
    }
    long cd = z.getInt(eocd + 16) & 0xffffffffL;
    int count = z.getShort(eocd + 10) & 0xffff;
    int zip64 = -1;
    if (eocd >= 20 && z.getInt(eocd - 20) == 0x07064b50) {
      ends.add(new int[] {eocd - 20 + 8, 8});
      ends.add(new int[] {eocd - 20 + 16, 4});
      zip64 = (int) z.getLong(eocd - 20 + 8);
      for (int[] f : new int[][] {{16, 4}, {20, 4}, {24, 8}, {32, 8}, {40, 8}, {48, 8}}) {
        ends.add(new int[] {zip64 + f[0], f[1]});
      }
      if (cd == 0xffffffffL || count == 0xffff) {
        cd = z.getLong(zip64 + 48);
        count = (int) z.getLong(zip64 + 32);
      }
    }
    hot.add(new int[] {(int) cd, b.length});
    int p = (int) cd;
    for (int i = 0; i < count; i++) {
      for (int[] f : new int[][] {{8, 2}, {10, 2}, {20, 4}, {24, 4}, {28, 2}, {30, 2}, {42, 4}}) {
        central.add(new int[] {p + f[0], f[1]});
      }
      int nameLen = z.getShort(p + 28) & 0xffff;
      int extraLen = z.getShort(p + 30) & 0xffff;
      int commentLen = z.getShort(p + 32) & 0xffff;
      long local = z.getInt(p + 42) & 0xffffffffL;
      String name = new String(b, p + 46, nameLen, StandardCharsets.UTF_8);
      long csize = z.getInt(p + 20) & 0xffffffffL;
      if (local < b.length - 30) {
        int l = (int) local;
        for (int[] f : new int[][] {{6, 2}, {8, 2}, {18, 4}, {22, 4}, {26, 2}, {28, 2}}) {
          locals.add(new int[] {l + f[0], f[1]});
        }
        int head = 30 + (z.getShort(l + 26) & 0xffff) + (z.getShort(l + 28) & 0xffff);
        hot.add(new int[] {l, l + head});
        if (name.endsWith("data.pkl")) {
          hot.add(new int[] {l + head, (int) Math.min(b.length, l + head + csize)});
        }
      }
      p += 46 + nameLen + extraLen + commentLen;
    }
    return new ZipFields(List.of(ends, central, locals), eocd, zip64);
  }

  /**
   * A boundary value in one integer field of the archive; sometimes the EOCD count saturated
   * first, so that the ZIP64 end record is what gets read.
   */
  static byte[] mutateZipField(byte[] in, ZipFields fields, Random r) {
    byte[] b = in.clone();
    ByteBuffer z = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    List<int[]> group = fields.groups().get(r.nextInt(fields.groups().size()));
    if (fields.zip64() >= 0 && r.nextInt(4) == 0) {
      z.putShort(fields.eocd() + 10, (short) 0xffff);
      group = fields.groups().get(0);
    }
    if (group.isEmpty()) {
      return b;
    }
    int[] f = group.get(r.nextInt(group.size()));
    long v = interesting(r);
    if (r.nextInt(4) == 0) { // near the present value
      long now = f[1] == 2 ? z.getShort(f[0]) & 0xffff : f[1] == 4 ? z.getInt(f[0]) & 0xffffffffL
          : z.getLong(f[0]);
      v = now + r.nextInt(17) - 8;
    }
    for (int i = 0; i < f[1]; i++) {
      b[f[0] + i] = (byte) (v >>> (8 * i));
    }
    return b;
  }

  private static byte[] floatBytes(int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = i;
    }
    return TestData.floats(ByteOrder.LITTLE_ENDIAN, v);
  }

  /** Contiguous, transposed, offset, strided, scalar, empty and half tensors over two storages. */
  static byte[] stridedPickle() {
    return PickleBytes.proto(2).global("collections", "OrderedDict").op(')').reduce().mark()
        .str("a").tensor("FloatStorage", "0", 12, 0, l(3, 4), l(4, 1))
        .str("t").tensor("FloatStorage", "0", 12, 0, l(4, 3), l(1, 4))
        .str("o").tensor("FloatStorage", "0", 12, 2, l(2), l(1))
        .str("s").tensor("FloatStorage", "0", 12, 1, l(2, 2), l(6, 2))
        .str("scalar").tensor("FloatStorage", "0", 12, 5, l(), l())
        .str("empty").tensor("FloatStorage", "0", 12, 40, l(0, 3), l(3, 1))
        .str("h").tensor("HalfStorage", "1", 3, 0, l(3), l(1))
        .str("b").tensor("BFloat16Storage", "1", 3, 1, l(2), l(1))
        .str("step").integer(1000)
        .setItems().stop().toBytes();
  }

  /** Protocol 2, latin1 array data, a split Linear weight and a split conv weight. */
  static byte[] splitPaddlePickle() {
    String q = "mid_block.attentions.0.to_q.weight";
    PickleBytes p = PickleBytes.proto(2).emptyDict().mark();
    p.str(q + "@@.0").ndarray("f4", '<', l(4), false, TestData.floats(ByteOrder.LITTLE_ENDIAN,
        0, 1, 2, 3), true);
    p.str(q + "@@.1").ndarray("f4", '<', l(2), false, TestData.floats(ByteOrder.LITTLE_ENDIAN,
        4, 5), true);
    p.str("conv.weight@@.0").ndarray("f4", '<', l(2), false,
        TestData.floats(ByteOrder.LITTLE_ENDIAN, 9, 8), true);
    p.str("conv.weight@@.1").ndarray("f4", '<', l(2), false,
        TestData.floats(ByteOrder.LITTLE_ENDIAN, 7, 6), true);
    p.str("conv.bias").ndarray("f4", '<', l(1), false, TestData.floats(ByteOrder.LITTLE_ENDIAN,
        42), true);
    p.str("UnpackBigParamInfor@@").emptyDict().mark();
    p.str(q).emptyDict().mark().str("OriginShape").ints(2, 3).str("slices").op(']').mark()
        .str(q + "@@.0").str(q + "@@.1").op('e').setItems();
    p.str("conv.weight").emptyDict().mark().str("OriginShape").ints(1, 4).str("slices")
        .op(']').mark().str("conv.weight@@.0").str("conv.weight@@.1").op('e').setItems();
    p.setItems();
    p.str("StructuredToParameterName@@").emptyDict().str("a").str("b").op('s');
    return p.setItems().stop().toBytes();
  }

  /** Protocol 3: Fortran order, big-endian, bfloat16 and a transposed Linear weight. */
  static byte[] miscPaddlePickle() {
    PickleBytes p = PickleBytes.proto(3).emptyDict().mark();
    p.str("f").ndarray("f4", '<', l(2, 3), true,
        TestData.floats(ByteOrder.LITTLE_ENDIAN, 1, 4, 2, 5, 3, 6), false);
    p.str("be").ndarray("f4", '>', l(2), false, TestData.floats(ByteOrder.BIG_ENDIAN, 1.5f, -2),
        false);
    p.str("bf").ndarray("u2", '<', l(2), false, new byte[] {(byte) 0x80, 0x3f, 0, 0x40}, false);
    p.str("h").ndarray("f2", '<', l(1, 2), false, new byte[] {0, 0x3c, 0, 0x40}, false);
    p.str("time_embedding.linear_1.weight").ndarray("f4", '<', l(2, 3), false,
        floatBytes(6), false);
    return p.setItems().stop().toBytes();
  }

  static byte[] smallSafetensors() {
    String header = "{\"__metadata__\":{\"format\":\"pt\"},"
        + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        + "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
        + "\"b\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[32,34]},"
        + "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[34,34]}}";
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + 34).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    for (int i = 0; i < 34; i++) {
      b.put((byte) (i * 7));
    }
    return b.array();
  }

  static long[] l(long... v) {
    return v;
  }

  // ---- making one mutant ----

  private static byte[] mutant(Format format, List<Seed> seeds, Random r, String[] origin)
      throws IOException {
    if (r.nextInt(100) < 15) {
      origin[0] = "random " + format.name().toLowerCase();
      return randomFile(format, r);
    }
    // Small seeds reach deeper paths per case; the golden one is what users really open.
    Seed seed = seeds.size() == 1 || r.nextInt(100) < 45 ? seeds.get(0)
        : seeds.get(1 + r.nextInt(seeds.size() - 1));
    origin[0] = seed.label;
    byte[] b;
    int depth = 1 + (r.nextInt(3) == 0 ? 1 + r.nextInt(2) : 0);
    switch (seed.kind) {
      case SAFETENSORS:
        b = seed.bytes;
        if (r.nextInt(3) == 0) {
          b = mutateSafetensorsHeader(b, r);
          depth--;
        }
        break;
      case PICKLE:
        b = seed.bytes;
        if (r.nextBoolean()) {
          b = mutatePickle(b, r);
          depth--;
        }
        break;
      case ZIP:
        if (r.nextBoolean()) {
          b = mutateZipEntries(seed, r);
          depth--;
        } else {
          b = seed.bytes;
        }
        break;
      default:
        throw new AssertionError();
    }
    if (b == seed.bytes && depth == 0) {
      depth = 1;
    }
    for (int i = 0; i < depth; i++) {
      boolean inPlace = b == seed.bytes || b.length == seed.bytes.length;
      if (seed.fields != null && inPlace && r.nextBoolean()) {
        b = mutateZipField(b, seed.fields, r);
      } else {
        b = mutateBytes(b, inPlace ? seed.hot : null, r);
      }
    }
    return b;
  }

  // Boundary values, written little-endian (sometimes big-endian) over 1, 2, 4 or 8 bytes.
  private static final long[] INTERESTING = {0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100,
      0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffffL, 0x80000000L, 0xffffffffL, 1L << 32,
      1L << 62, Long.MAX_VALUE, Long.MIN_VALUE, -1, -2, 1_000_000_000L};

  private static long interesting(Random r) {
    return INTERESTING[r.nextInt(INTERESTING.length)];
  }

  private static int position(Random r, int length, List<int[]> hot) {
    if (length == 0) {
      return 0;
    }
    if (hot != null && !hot.isEmpty() && r.nextInt(100) < 85) {
      int[] h = hot.get(r.nextInt(hot.size()));
      int span = Math.max(1, h[1] - h[0]);
      int p = h[0] + (span <= 64 || r.nextInt(4) > 0 ? r.nextInt(span) : r.nextInt(64));
      return Math.min(Math.max(p, 0), length - 1);
    }
    return r.nextInt(length);
  }

  /** One byte-level mutation. */
  static byte[] mutateBytes(byte[] in, List<int[]> hot, Random r) {
    int n = in.length;
    if (n == 0) {
      return new byte[] {(byte) r.nextInt(256)};
    }
    int p = position(r, n, hot);
    switch (r.nextInt(8)) {
      case 0:
      case 1: { // flip 1 to 4 bits around p
        byte[] b = in.clone();
        int k = 1 + r.nextInt(4);
        for (int i = 0; i < k; i++) {
          int q = Math.min(n - 1, p + r.nextInt(4));
          b[q] ^= (byte) (1 << r.nextInt(8));
        }
        return b;
      }
      case 2:
      case 3: { // overwrite with a boundary value
        byte[] b = in.clone();
        int[] widths = {1, 1, 2, 4, 4, 8, 8};
        int w = widths[r.nextInt(widths.length)];
        long v = r.nextInt(4) == 0 ? interestingByte(r) : interesting(r);
        boolean big = r.nextInt(5) == 0;
        for (int i = 0; i < w && p + i < n; i++) {
          int shift = 8 * (big ? w - 1 - i : i);
          b[p + i] = (byte) (v >>> shift);
        }
        return b;
      }
      case 4: // truncate
        return Arrays.copyOf(in, r.nextInt(4) == 0 ? r.nextInt(n) : p);
      case 5: { // remove a chunk
        int len = 1 + r.nextInt(Math.min(n - p, r.nextBoolean() ? 8 : 4096));
        byte[] b = new byte[n - len];
        System.arraycopy(in, 0, b, 0, p);
        System.arraycopy(in, p + len, b, p, n - p - len);
        return b;
      }
      case 6: { // duplicate a chunk at another place
        int len = 1 + r.nextInt(Math.min(n - p, r.nextBoolean() ? 8 : 4096));
        int to = position(r, n, hot);
        return insert(in, to, Arrays.copyOfRange(in, p, p + len));
      }
      default: { // insert random bytes
        byte[] junk = new byte[1 + r.nextInt(16)];
        r.nextBytes(junk);
        return insert(in, p, junk);
      }
    }
  }

  private static long interestingByte(Random r) {
    int[] v = {0x00, 0xff, 0x7f, 0x80, 0x01};
    return v[r.nextInt(v.length)];
  }

  private static byte[] insert(byte[] in, int at, byte[] what) {
    byte[] b = new byte[in.length + what.length];
    System.arraycopy(in, 0, b, 0, at);
    System.arraycopy(what, 0, b, at, what.length);
    System.arraycopy(in, at, b, at + what.length, in.length - at);
    return b;
  }

  private static byte[] cut(byte[] in, int from, int to) {
    byte[] b = new byte[in.length - (to - from)];
    System.arraycopy(in, 0, b, 0, from);
    System.arraycopy(in, to, b, from, in.length - to);
    return b;
  }

  // ---- safetensors: JSON-level mutations, header length kept right ----

  private static final Pattern JSON_TOKEN =
      Pattern.compile("-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|\"(?:[^\"\\\\]|\\\\.)*\"");
  private static final String[] JSON_VALUES = {"0", "1", "-1", "2", "3", "4", "7", "1.5", "1e308",
      "255", "65535", "2147483647", "2147483648", "4294967295", "4294967296",
      "4611686018427387904", "9223372036854775807", "9223372036854775808",
      "18446744073709551615", "[]", "{}", "null", "true", "\"\"", "[0]", "[0,0]",
      "[4294967296,4294967296]", "[9223372036854775807]", "[2147483647,2147483647]",
      "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"BOOL\"", "\"U8\"", "\"f32\"",
      "\"__metadata__\"", "\"shape\"", "\"dtype\"", "\"data_offsets\"", "\"\\u0000\"",
      "\"\\ud800\""};

  static byte[] mutateSafetensorsHeader(byte[] file, Random r) {
    ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    int headerLen = (int) b.getLong(0);
    String header = new String(file, 8, headerLen, StandardCharsets.UTF_8);
    List<int[]> tokens = new ArrayList<>();
    Matcher m = JSON_TOKEN.matcher(header);
    while (m.find()) {
      tokens.add(new int[] {m.start(), m.end()});
    }
    int[] t = tokens.get(r.nextInt(tokens.size()));
    String mutated;
    switch (r.nextInt(4)) {
      case 0: { // swap two tokens
        int[] u = tokens.get(r.nextInt(tokens.size()));
        int[] first = t[0] < u[0] ? t : u;
        int[] second = t[0] < u[0] ? u : t;
        if (first == second) {
          mutated = header;
          break;
        }
        mutated = header.substring(0, first[0]) + header.substring(second[0], second[1])
            + header.substring(first[1], second[0]) + header.substring(first[0], first[1])
            + header.substring(second[1]);
        break;
      }
      case 1: { // a number nudged by one
        String tok = header.substring(t[0], t[1]);
        if (tok.matches("[0-9]{1,17}")) {
          long v = Long.parseLong(tok) + (r.nextBoolean() ? 1 : -1);
          mutated = header.substring(0, t[0]) + v + header.substring(t[1]);
          break;
        }
      }
      // fall through
      default:
        mutated = header.substring(0, t[0]) + JSON_VALUES[r.nextInt(JSON_VALUES.length)]
            + header.substring(t[1]);
    }
    byte[] h = mutated.getBytes(StandardCharsets.UTF_8);
    ByteBuffer out = ByteBuffer.allocate(8 + h.length + file.length - 8 - headerLen)
        .order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(h.length).put(h).put(file, 8 + headerLen, file.length - 8 - headerLen);
    return out.array();
  }

  // ---- pickles: opcode-level mutations ----

  /**
   * The opcodes of a pickle as {start, end of the opcode and its length field, end}; stops at
   * STOP or at the first byte it does not understand.
   */
  static List<int[]> opcodes(byte[] p) {
    List<int[]> out = new ArrayList<>();
    ByteBuffer b = ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN);
    int i = 0;
    while (i < p.length) {
      int op = p[i] & 0xff;
      int head;
      long payload = 0;
      switch (op) {
        case '(': case '.': case '0': case '1': case '2': case 'N': case 0x88: case 0x89:
        case ']': case 'l': case 'a': case 'e': case ')': case 't': case 0x85: case 0x86:
        case 0x87: case '}': case 'd': case 's': case 'u': case 0x93: case 'R': case 0x81:
        case 0x92: case 'b': case 0x94: case 'Q':
          head = 1;
          break;
        case 0x80: case 'K': case 'q': case 'h':
          head = 2;
          break;
        case 'M':
          head = 3;
          break;
        case 'J': case 'r': case 'j':
          head = 5;
          break;
        case 'G': case 0x95:
          head = 9;
          break;
        case 0x8a: case 0x8c: case 'U': case 'C':
          head = 2;
          payload = i + 1 < p.length ? p[i + 1] & 0xff : 0;
          break;
        case 'X': case 'T': case 'B': case 0x8b:
          head = 5;
          payload = i + 5 <= p.length ? b.getInt(i + 1) & 0xffffffffL : 0;
          break;
        case 0x8d: case 0x8e: case 0x96:
          head = 9;
          payload = i + 9 <= p.length ? b.getLong(i + 1) : 0;
          break;
        case 'c': {
          int nl = 0;
          int j = i + 1;
          while (j < p.length && nl < 2) {
            if (p[j++] == '\n') {
              nl++;
            }
          }
          head = j - i;
          break;
        }
        default:
          return out;
      }
      long end = i + head + payload;
      if (end > p.length || payload < 0) {
        return out;
      }
      out.add(new int[] {i, i + head, (int) end});
      if (op == '.') {
        return out;
      }
      i = (int) end;
    }
    return out;
  }

  // Every opcode the reader knows, then some it refuses.
  private static final int[] OPS = {0x80, 0x95, '.', '(', '0', '1', '2', 'N', 0x88, 0x89, 'J',
      'K', 'M', 0x8a, 0x8b, 'G', 'X', 0x8c, 0x8d, 'T', 'U', 'B', 'C', 0x8e, 0x96, ']', 'l', 'a',
      'e', ')', 't', 0x85, 0x86, 0x87, '}', 'd', 's', 'u', 'c', 0x93, 'R', 0x81, 0x92, 'b', 'q',
      'r', 0x94, 'h', 'j', 'Q', 'i', 'o', 'P', 'I', 'L', 'F', 'S', 'V', 'p', 'g', 0x82, 0x83,
      0x84, 0x8f, 0x90, 0x91, 0x97, 0x98, 0x00, 0xff};
  private static final String[] STRINGS = {"storage", "torch", "FloatStorage", "HalfStorage",
      "BFloat16Storage", "LongStorage", "collections", "OrderedDict", "torch._utils",
      "_rebuild_tensor_v2", "_rebuild_parameter", "numpy", "ndarray", "dtype",
      "numpy.core.multiarray", "_reconstruct", "numpy.core.numeric", "_frombuffer", "_codecs",
      "encode", "builtins", "bytes", "f4", "f2", "u2", "f8", "<f4", "<", ">", "|", "C", "F",
      "latin1", "cpu", "0", "1", "2", "a", "b", "UnpackBigParamInfor@@", "slices",
      "OriginShape", "a@@.0", "a@@.0@@.1", "conv.weight@@.0", "input_blocks.0.0.weight",
      "out.2.weight", "input_blocks.1.1.qkv.weight", "mid_block.attentions.0.to_q.weight",
      "os", "system", "\u00ff\u0100", ""};
  private static final String[][] GLOBALS = {{"collections", "OrderedDict"},
      {"torch._utils", "_rebuild_tensor_v2"}, {"torch._utils", "_rebuild_parameter"},
      {"torch", "FloatStorage"}, {"torch", "HalfStorage"}, {"torch", "LongStorage"},
      {"numpy", "ndarray"}, {"numpy", "dtype"}, {"numpy.core.multiarray", "_reconstruct"},
      {"numpy._core.numeric", "_frombuffer"}, {"_codecs", "encode"}, {"builtins", "bytes"},
      {"__builtin__", "bytes"}, {"os", "system"}, {"builtins", "eval"}};

  /** A random opcode with plausible or hostile arguments. */
  static byte[] randomOpcode(Random r) {
    int op = OPS[r.nextInt(OPS.length)];
    ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    b.put((byte) op);
    switch (op) {
      case 0x80:
        b.put((byte) r.nextInt(7));
        break;
      case 'K': case 'q': case 'h':
        b.put((byte) (r.nextBoolean() ? r.nextInt(8) : r.nextInt(256)));
        break;
      case 'M':
        b.putShort((short) (r.nextBoolean() ? r.nextInt(8) : interesting(r)));
        break;
      case 'J': case 'r': case 'j':
        b.putInt((int) (r.nextBoolean() ? r.nextInt(8) : interesting(r)));
        break;
      case 'G':
        b.order(ByteOrder.BIG_ENDIAN).putDouble(r.nextBoolean() ? r.nextDouble()
            : Double.longBitsToDouble(interesting(r))).order(ByteOrder.LITTLE_ENDIAN);
        break;
      case 0x95:
        b.putLong(r.nextBoolean() ? r.nextInt(64) : interesting(r));
        break;
      case 0x8a: {
        int n = r.nextInt(4) == 0 ? 255 : r.nextInt(10);
        b.put((byte) n);
        for (int i = 0; i < Math.min(n, 9); i++) {
          b.put((byte) r.nextInt(256));
        }
        break;
      }
      case 0x8b:
        b.putInt((int) (r.nextBoolean() ? r.nextInt(9) : interesting(r)));
        for (int i = 0; i < 8 && r.nextBoolean(); i++) {
          b.put((byte) r.nextInt(256));
        }
        break;
      case 'X': case 'T': case 'B': case 0x8c: case 'U': case 'C': case 0x8d: case 0x8e:
      case 0x96: {
        byte[] s = STRINGS[r.nextInt(STRINGS.length)].getBytes(
            op == 'T' || op == 'U' ? StandardCharsets.ISO_8859_1 : StandardCharsets.UTF_8);
        s = Arrays.copyOf(s, Math.min(s.length, 40));
        boolean lie = r.nextInt(4) == 0;
        long len = lie ? interesting(r) : s.length;
        if (op == 0x8c || op == 'U' || op == 'C') {
          b.put((byte) len);
        } else if (op == 'X' || op == 'T' || op == 'B') {
          b.putInt((int) len);
        } else {
          b.putLong(len);
        }
        b.put(s);
        break;
      }
      case 'c': {
        String[] g = GLOBALS[r.nextInt(GLOBALS.length)];
        String text = r.nextInt(8) == 0 ? g[0] + "\n" : g[0] + "\n" + g[1] + "\n";
        b.put(text.getBytes(StandardCharsets.US_ASCII), 0, Math.min(text.length(), 60));
        break;
      }
      default:
        break;
    }
    return Arrays.copyOf(b.array(), b.position());
  }

  /** One opcode-level mutation of a pickle (falls back to bytes when none is found). */
  static byte[] mutatePickle(byte[] p, Random r) {
    List<int[]> ops = opcodes(p);
    if (ops.size() < 2) {
      return insert(p, r.nextInt(p.length + 1), randomOpcode(r));
    }
    int k = r.nextInt(ops.size() - 1); // never the final STOP alone
    int[] op = ops.get(k);
    if (r.nextInt(3) == 0) { // an integer (a size, stride, offset, numel) made a boundary value
      List<int[]> ints = new ArrayList<>();
      for (int[] o : ops) {
        int c = p[o[0]] & 0xff;
        if (c == 'K' || c == 'M' || c == 'J' || c == 0x8a) {
          ints.add(o);
        }
      }
      if (!ints.isEmpty()) {
        int[] o = ints.get(r.nextInt(ints.size()));
        long v = r.nextBoolean() ? interesting(r) : r.nextInt(4);
        byte[] enc = PickleBytes.proto(2).integer(v).toBytes();
        return insert(cut(p, o[0], o[2]), o[0], Arrays.copyOfRange(enc, 2, enc.length));
      }
    }
    switch (r.nextInt(6)) {
      case 0: { // insert 1 to 3 random opcodes before op k
        byte[] b = p;
        for (int i = r.nextInt(3); i >= 0; i--) {
          b = insert(b, op[0], randomOpcode(r));
        }
        return b;
      }
      case 1: { // remove 1 to 4 opcodes
        int to = ops.get(Math.min(ops.size() - 1, k + 1 + r.nextInt(4)))[0];
        return cut(p, op[0], Math.max(to, op[2]));
      }
      case 2: { // duplicate 1 to 8 opcodes somewhere else
        int to = ops.get(Math.min(ops.size() - 1, k + 1 + r.nextInt(8)))[0];
        byte[] chunk = Arrays.copyOfRange(p, op[0], Math.max(to, op[2]));
        return insert(p, ops.get(r.nextInt(ops.size()))[0], chunk);
      }
      case 3: { // replace the opcode byte
        byte[] b = p.clone();
        b[op[0]] = (byte) OPS[r.nextInt(OPS.length)];
        return b;
      }
      case 4: { // boundary value in the opcode's argument or length field
        byte[] b = p.clone();
        long v = interesting(r);
        for (int i = op[0] + 1, s = 0; i < op[1]; i++, s += 8) {
          b[i] = (byte) (s < 64 ? v >>> s : 0);
        }
        return b;
      }
      default: { // swap two adjacent opcodes
        int[] next = ops.get(k + 1);
        byte[] b = p.clone();
        byte[] a = Arrays.copyOfRange(p, op[0], op[2]);
        byte[] c = Arrays.copyOfRange(p, next[0], next[2]);
        System.arraycopy(c, 0, b, op[0], c.length);
        System.arraycopy(a, 0, b, op[0] + c.length, a.length);
        return b;
      }
    }
  }

  // ---- zips: entry-level mutations, archive rebuilt ----

  static byte[] mutateZipEntries(Seed seed, Random r) throws IOException {
    List<Entry> entries = new ArrayList<>(seed.entries);
    boolean[] deflate = new boolean[entries.size() + 1];
    int pkl = seed.pklIndex;
    switch (r.nextInt(8)) {
      case 0:
      case 1:
      case 2: { // the pickle, mutated at opcode level (and maybe bytes)
        byte[] p = mutatePickle(entries.get(pkl).data, r);
        if (r.nextInt(3) == 0) {
          p = mutateBytes(p, null, r);
        }
        entries.set(pkl, new Entry(entries.get(pkl).name, p));
        break;
      }
      case 3: { // a record cut short, emptied or grown
        int i = r.nextInt(entries.size());
        byte[] d = entries.get(i).data;
        int len = r.nextInt(3) == 0 ? 0 : r.nextBoolean() ? r.nextInt(d.length + 1)
            : d.length + 1 + r.nextInt(64);
        entries.set(i, new Entry(entries.get(i).name, Arrays.copyOf(d, len)));
        break;
      }
      case 4: // an entry dropped
        entries.remove(r.nextInt(entries.size()));
        break;
      case 5: { // an entry renamed
        int i = r.nextInt(entries.size());
        String name = entries.get(i).name;
        String[] names = {name + "x", name.replace("data/", "data/9"), "other/data.pkl",
            name.replace("/", "//"), "data.pkl", name.substring(0, name.indexOf('/') + 1)
            + "byteorder", ""};
        String to = names[r.nextInt(names.length)];
        Set<String> taken = new HashSet<>();
        entries.forEach(e -> taken.add(e.name));
        while (taken.contains(to)) {
          to = to + "_";
        }
        entries.set(i, new Entry(to, entries.get(i).data));
        break;
      }
      case 6: { // byteorder entry
        String prefix = entries.get(pkl).name.substring(0, entries.get(pkl).name.length() - 8);
        String[] values = {"little", "big", "little\n", "", "middle-endian-junk"};
        entries.add(new Entry(prefix + "byteorder",
            values[r.nextInt(values.length)].getBytes(StandardCharsets.US_ASCII)));
        break;
      }
      default: // some entries deflated (data.pkl always when the archive is small)
        for (int i = 0; i < entries.size(); i++) {
          deflate[i] = r.nextInt(8) == 0 || i == pkl;
        }
        break;
    }
    return zip(entries, deflate);
  }

  private static byte[] zip(List<Entry> entries, boolean[] deflate) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      for (int i = 0; i < entries.size(); i++) {
        Entry e = entries.get(i);
        ZipEntry z = new ZipEntry(e.name);
        if (!deflate[i]) {
          CRC32 crc = new CRC32();
          crc.update(e.data);
          z.setMethod(ZipEntry.STORED);
          z.setSize(e.data.length);
          z.setCompressedSize(e.data.length);
          z.setCrc(crc.getValue());
        }
        zip.putNextEntry(z);
        zip.write(e.data);
        zip.closeEntry();
      }
    }
    return bytes.toByteArray();
  }

  // ---- random files behind each format's magic ----

  static byte[] randomFile(Format format, Random r) throws IOException {
    switch (format) {
      case SAFETENSORS: {
        if (r.nextBoolean()) {
          byte[] junk = new byte[r.nextInt(512)];
          r.nextBytes(junk);
          long len = r.nextBoolean() ? r.nextInt(junk.length + 2) : interesting(r);
          return ByteBuffer.allocate(9 + junk.length).order(ByteOrder.LITTLE_ENDIAN)
              .putLong(len).put((byte) '{').put(junk).array();
        }
        return randomSafetensors(r);
      }
      case PADDLE: {
        if (r.nextInt(3) > 0) {
          return randomPaddlePickle(r);
        }
        PickleBytes p = PickleBytes.proto(2 + r.nextInt(4));
        if (r.nextBoolean()) {
          p.emptyDict();
        }
        for (int i = r.nextInt(60); i >= 0; i--) {
          p.raw(randomOpcode(r));
        }
        if (r.nextInt(4) > 0) {
          p.stop();
        }
        return p.toBytes();
      }
      case TORCH:
      case OPENAI: {
        if (r.nextInt(4) == 0) {
          byte[] junk = new byte[r.nextInt(512)];
          r.nextBytes(junk);
          return insert(junk, 0, new byte[] {'P', 'K', 3, 4});
        }
        byte[] pkl = format == Format.OPENAI ? randomOpenAIPickle(r) : randomTorchPickle(r);
        List<Entry> entries = new ArrayList<>();
        entries.add(new Entry("archive/data.pkl", pkl));
        for (int i = 0; i < 3; i++) {
          byte[] rec = new byte[r.nextInt(4) == 0 ? r.nextInt(16) : 4096];
          r.nextBytes(rec);
          entries.add(new Entry("archive/data/" + i, rec));
        }
        return zip(entries, new boolean[entries.size()]);
      }
      default:
        throw new AssertionError(format);
    }
  }

  /** A header of random tensors with random (often inconsistent) dtypes, shapes and offsets. */
  private static byte[] randomSafetensors(Random r) {
    String[] dtypes = {"F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "X"};
    StringBuilder h = new StringBuilder("{");
    long offset = 0;
    int n = r.nextInt(5);
    for (int i = 0; i < n; i++) {
      String dtype = dtypes[r.nextInt(r.nextBoolean() ? 3 : dtypes.length)];
      int size = dtype.equals("F32") ? 4 : dtype.startsWith("F") || dtype.startsWith("B") ? 2 : 1;
      int dims = r.nextInt(4);
      long numel = 1;
      StringBuilder shape = new StringBuilder("[");
      for (int d = 0; d < dims; d++) {
        long v = r.nextInt(5) == 0 ? interesting(r) & Long.MAX_VALUE : r.nextInt(5);
        numel *= v;
        shape.append(d == 0 ? "" : ",").append(v);
      }
      shape.append(']');
      long bytes = r.nextInt(4) == 0 ? r.nextInt(64) : numel * size;
      long begin = r.nextInt(4) == 0 ? r.nextInt(64) : offset;
      h.append(i == 0 ? "" : ",").append("\"t").append(i).append("\":{\"dtype\":\"")
          .append(dtype).append("\",\"shape\":").append(shape).append(",\"data_offsets\":[")
          .append(begin).append(',').append(begin + bytes).append("]}");
      offset = begin + bytes;
    }
    h.append('}');
    byte[] hb = h.toString().getBytes(StandardCharsets.UTF_8);
    int data = (int) Math.max(0, Math.min(4096, offset + (r.nextInt(4) == 0 ? r.nextInt(9) - 4
        : 0)));
    return ByteBuffer.allocate(8 + hb.length + data).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(hb.length).put(hb).array();
  }

  /**
   * A Paddle state dict of random arrays (mostly well-formed, now and then not), split or not,
   * with names that play on the split-slice naming.
   */
  private static byte[] randomPaddlePickle(Random r) {
    String[] names = {"w", "a", "a@@.0", "a@@.1", "a@@.0@@.1", "5@@.0", "null@@.0",
        "time_embedding.linear_1.weight", "x.to_q.weight"};
    String[] codes = {"f4", "f4", "f4", "f4", "f2", "u2", "f8", "f0", "i4"};
    boolean latin1 = r.nextBoolean();
    PickleBytes p = PickleBytes.proto(latin1 ? 2 : 3).emptyDict().mark();
    List<String> arrays = new ArrayList<>();
    for (int i = r.nextInt(4); i >= 0; i--) {
      String name = names[r.nextInt(names.length)];
      String code = codes[r.nextInt(codes.length)];
      int size = Integer.parseInt(code.substring(1));
      int dims = r.nextInt(3);
      long[] shape = new long[dims];
      long numel = 1;
      for (int d = 0; d < dims; d++) {
        shape[d] = r.nextInt(8) == 0 ? interesting(r) & Long.MAX_VALUE : r.nextInt(4);
        numel *= shape[d];
      }
      int bytes = (int) Math.max(0, Math.min(256, r.nextInt(8) == 0 ? r.nextInt(32)
          : numel * size));
      char order = r.nextInt(4) == 0 ? '>' : r.nextInt(8) == 0 ? '|' : '<';
      p.str(name).ndarray(code, order, shape, r.nextInt(4) == 0, new byte[bytes], latin1);
      arrays.add(name);
    }
    if (r.nextBoolean()) {
      Object[] keys = {"a", "w", "a@@.0", 5L, null, "x"};
      p.str("UnpackBigParamInfor@@").emptyDict().mark();
      for (int i = r.nextInt(3); i >= 0; i--) {
        Object key = keys[r.nextInt(keys.length)];
        if (key instanceof Long) {
          p.integer((Long) key);
        } else if (key == null) {
          p.op('N');
        } else {
          p.str((String) key);
        }
        p.emptyDict().mark();
        if (r.nextInt(4) > 0) {
          p.str("OriginShape");
          long[] shape = new long[r.nextInt(3)];
          for (int d = 0; d < shape.length; d++) {
            shape[d] = r.nextInt(8) == 0 ? interesting(r) & Long.MAX_VALUE : r.nextInt(4);
          }
          if (r.nextBoolean()) {
            p.ints(shape);
          } else {
            p.op(']').mark();
            for (long v : shape) {
              p.integer(v);
            }
            p.op('e');
          }
        }
        p.str("slices").op(']').mark();
        List<String> own = new ArrayList<>(); // the arrays that can be slices of this key
        for (String a : arrays) {
          if (a.startsWith(key + "@@.")) {
            own.add(a);
          }
        }
        for (int j = r.nextInt(3); j >= 0; j--) {
          p.str(r.nextInt(6) > 0 && !own.isEmpty() ? own.get(r.nextInt(own.size()))
              : names[r.nextInt(names.length)]);
        }
        p.op('e').setItems();
      }
      p.setItems();
    }
    return p.setItems().stop().toBytes();
  }

  /** A state dict of random torch tensor views over three storages. */
  private static byte[] randomTorchPickle(Random r) {
    String[] types = {"FloatStorage", "HalfStorage", "BFloat16Storage", "LongStorage"};
    PickleBytes p = PickleBytes.proto(2).emptyDict().mark();
    for (int i = r.nextInt(3) == 0 ? r.nextInt(3) : 0; i >= 0; i--) {
      String type = types[r.nextInt(4) > 0 ? 0 : r.nextInt(types.length)];
      int dims = r.nextInt(4);
      long[] size = new long[dims];
      long[] stride = new long[dims];
      long contiguous = 1;
      for (int d = dims - 1; d >= 0; d--) { // contiguous, then perhaps not
        size[d] = 1 + r.nextInt(5);
        stride[d] = contiguous;
        contiguous *= size[d];
      }
      for (int d = 0; d < dims; d++) {
        if (r.nextInt(4) == 0) {
          size[d] = r.nextBoolean() ? interesting(r) & Long.MAX_VALUE : r.nextInt(6);
        }
        if (r.nextInt(4) == 0) {
          stride[d] = r.nextBoolean() ? interesting(r) & Long.MAX_VALUE : r.nextInt(8);
        }
        if (r.nextInt(8) == 0) { // expanded: torch writes stride 0, any size
          stride[d] = 0;
          size[d] = r.nextBoolean() ? interesting(r) & Long.MAX_VALUE : 1 + r.nextInt(1 << 20);
        }
      }
      long offset = r.nextInt(3) > 0 ? 0 : r.nextBoolean() ? interesting(r) & Long.MAX_VALUE
          : r.nextInt(8);
      long need = offset + 1; // elements the view reaches, as a storage numel that fits it
      for (int d = 0; d < dims; d++) {
        need += Math.max(0, size[d] - 1) * stride[d];
      }
      long numel = r.nextInt(4) == 0 ? interesting(r) & Long.MAX_VALUE
          : r.nextInt(4) == 0 || need <= 0 || need > 1024 ? r.nextInt(1025) : need;
      String key = String.valueOf(r.nextInt(8) == 0 ? 3 : r.nextInt(3));
      p.str("t" + i).tensor(type, key, numel, offset, size, stride);
    }
    return p.setItems().stop().toBytes();
  }

  /**
   * An OpenAI-named state dict (it always has the two names that identify one) of tensors with
   * random names from the tiny model's structure and random, mostly wrong, shapes.
   */
  private static byte[] randomOpenAIPickle(Random r) {
    String[] names = {"input_blocks.0.0.weight", "out.2.weight", "out.2.bias",
        "input_blocks.1.1.qkv.weight", "input_blocks.1.1.qkv.bias", "input_blocks.1.1.norm.weight",
        "input_blocks.1.1.proj_out.weight", "input_blocks.1.0.in_layers.2.weight",
        "middle_block.1.qkv.weight", "output_blocks.2.1.conv.weight", "input_blocks.3.0.op.weight",
        "time_embed.0.weight", "label_emb.weight", "input_blocks.9.9.weight", "qkv", "x.qkv.y"};
    PickleBytes p = PickleBytes.proto(2).emptyDict().mark();
    for (int i = 0; i < 2 + r.nextInt(6); i++) {
      String name = names[i < 2 ? i : r.nextInt(names.length)];
      int dims = r.nextInt(5);
      long[] size = new long[dims];
      long[] stride = new long[dims];
      long numel = 1;
      for (int d = dims - 1; d >= 0; d--) {
        size[d] = r.nextInt(3) == 0 ? 1 : 1 + r.nextInt(6);
        stride[d] = numel;
        numel *= size[d];
      }
      p.str(name).tensor("FloatStorage", String.valueOf(r.nextInt(3)), numel, 0, size, stride);
    }
    return p.setItems().stop().toBytes();
  }

  // ---- regressions: mutants that once failed with something else than CheckpointException ----

  /** Opens a file as users do, expecting a refusal naming the file and containing all parts. */
  private static void assertRefused(Path file, String... parts) {
    CheckpointException e = assertThrows(CheckpointException.class, () -> readAll(file, null));
    String m = e.getMessage();
    assertTrue(m.startsWith(file + ": "), m);
    for (String part : parts) {
      assertTrue(m.contains(part), m);
    }
  }

  /**
   * Checkpoints.open(file) then reading everything: refused, never anything else. Used where
   * the refusal comes from get() rather than from open().
   */
  private static void assertRefusedOnOpen(Path file, String... parts) {
    CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoints.open(file).close());
    String m = e.getMessage();
    assertTrue(m.startsWith(file + ": "), m);
    for (String part : parts) {
      assertTrue(m.contains(part), m);
    }
  }

  /**
   * Fuzz case 4624509854602267872 (golden .pt with the EOCD entry count saturated, so the ZIP64
   * end record is read, and its central directory size 2^64 - 2): IllegalArgumentException
   * "capacity < 0" from ZipIndex.read; a negative offset gave "Negative position", a negative
   * count an empty archive.
   */
  @Test
  void zip64EndRecordWithNegativeSizeOrOffsetIsRefused() throws IOException {
    byte[] bin = Files.readAllBytes(UNET.resolve("diffusion_pytorch_model.bin"));
    ByteBuffer z = ByteBuffer.wrap(bin).order(ByteOrder.LITTLE_ENDIAN);
    int eocd = bin.length - 22;
    int zip64 = (int) z.getLong(eocd - 20 + 8);
    for (int field : new int[] {32, 40, 48}) { // entry count, central directory size, offset
      for (long v : new long[] {-2, -5, Long.MIN_VALUE}) {
        byte[] b = bin.clone();
        ByteBuffer m = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        m.putShort(eocd + 10, (short) 0xffff);
        m.putLong(zip64 + field, v);
        assertRefused(Files.write(dir.resolve("zip64-" + field + "-" + v + ".bin"), b),
            "ZIP64 end record");
      }
    }
  }

  /**
   * Fuzz case 3540761836905518355 (random torch): a scalar at storage offset 2^63 - 1, whose
   * last element index + 1 wrapped negative and passed the storage check; get() then failed
   * with IllegalArgumentException "newPosition < 0".
   */
  @Test
  void aTensorAtAnOffsetOf2To63Minus1IsRefused() throws IOException {
    byte[] pkl = PickleBytes.proto(2).emptyDict().str("t0")
        .tensor("FloatStorage", "2", 139, Long.MAX_VALUE, l(), l()).op('s').stop().toBytes();
    Path f = new TorchZips("archive", pkl).record("2", new byte[4096])
        .write(dir.resolve("offset.bin"));
    assertRefused(f, "tensor 't0'", "overflows 64 bits");
  }

  /**
   * Fuzz cases 7129222213424347373, 2807458334030246171 and others (random torch): expanded
   * views (stride 0) with more elements than their storage, materialised by get() into a new
   * buffer of any declared size: F32[493604, 3] (5.9 MB) from a 13 kB file; [2^28] from a
   * 4-byte storage allocated 1 GiB; [2^40] threw IllegalArgumentException ("exceeds 2 GiB");
   * [2^62] (case 1367880603685139265) wrapped to a tensor of 0 bytes.
   */
  @Test
  void viewsWithMoreElementsThanTheirStorageAreRefused() throws IOException {
    for (long n : new long[] {1L << 28, 1L << 40, 1L << 62, 5}) {
      byte[] pkl = PickleBytes.proto(2).emptyDict().str("w")
          .tensor("FloatStorage", "0", 4, 0, l(n), l(0)).op('s').stop().toBytes();
      Path f = new TorchZips("a", pkl).record("0", new byte[16])
          .write(dir.resolve("expanded" + n + ".bin"));
      assertRefused(f, "tensor 'w'", n + " elements", "storage of 4");
    }
    // as many elements as the storage, repeated: still a bounded copy, and read as before
    byte[] pkl = PickleBytes.proto(2).emptyDict().str("w")
        .tensor("FloatStorage", "0", 4, 0, l(2, 2), l(0, 1)).op('s').stop().toBytes();
    Path f = new TorchZips("a", pkl).record("0", floatBytes(4)).write(dir.resolve("rows.bin"));
    try (Checkpoint c = Checkpoints.open(f)) {
      assertArrayEquals(new float[] {0, 1, 0, 1}, TestData.floatsOf(c.get("w")));
    }
  }

  /**
   * A deflated entry whose declared size is far beyond what deflate can make of its compressed
   * bytes: data.pkl declaring 2^30 - 1 bytes made the reader allocate 1 GiB of direct memory
   * before finding out, a storage record declaring 2^31 - 2 bytes 2 GiB at get() (an
   * OutOfMemoryError with a smaller heap). Found reviewing ZipIndex for the zip-field
   * mutations; the fuzz invariant on direct memory flags it.
   */
  @Test
  void deflatedEntriesDeclaringMoreThanDeflateCanMakeAreRefused() throws IOException {
    byte[] pkl = PickleBytes.proto(2).emptyDict().str("w")
        .tensor("FloatStorage", "0", 1, 0, l(1), l(1)).op('s').stop().toBytes();
    byte[] zip = Files.readAllBytes(new TorchZips("a", pkl).record("0", new byte[4]).deflated()
        .write(dir.resolve("deflated.bin")));
    ByteBuffer z = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
    int p = z.getInt(zip.length - 22 + 16);
    for (int i = 0; i < 3; i++) { // the central entries: data.pkl, version, data/0
      int nameLen = z.getShort(p + 28);
      String name = new String(zip, p + 46, nameLen, StandardCharsets.UTF_8);
      if (!name.equals("a/version")) {
        byte[] b = zip.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(p + 24,
            name.equals("a/data.pkl") ? (1 << 30) - 1 : Integer.MAX_VALUE - 1);
        assertRefusedOnOpen(Files.write(dir.resolve("declared.bin"), b), "'" + name + "'",
            "more than deflate");
      }
      p += 46 + nameLen + z.getShort(p + 30) + z.getShort(p + 32);
    }
  }

  /**
   * Fuzz case 4423573526057281506 (random paddle): an UnpackBigParamInfor@@ entry under the key
   * None, with slices "null@@.0" (the same with an integer key: 5 and "5@@.0"):
   * NullPointerException in PaddleCheckpoint.originShape. And a slice named under a key that is
   * not its owner ("a@@.0@@.1" under "a"): NullPointerException in PaddleCheckpoint.open.
   */
  @Test
  void splitInfoUnderANonStringKeyOrAForeignSliceIsRefused() throws IOException {
    PickleBytes p = PickleBytes.proto(3).emptyDict().mark();
    p.str("5@@.0").ndarray("f4", '<', l(1), false, new byte[4], false);
    p.str("UnpackBigParamInfor@@").emptyDict().integer(5).emptyDict().mark().str("OriginShape")
        .ints(1).str("slices").op(']').str("5@@.0").op('a').setItems().op('s');
    assertRefused(Files.write(dir.resolve("intkey.pdparams"), p.setItems().stop().toBytes()),
        "UnpackBigParamInfor@@", "key 5");
    p = PickleBytes.proto(3).emptyDict().mark();
    p.str("a@@.0@@.1").ndarray("f4", '<', l(1), false, new byte[4], false);
    p.str("UnpackBigParamInfor@@").emptyDict().str("a").emptyDict().mark().str("OriginShape")
        .ints(1).str("slices").op(']').str("a@@.0@@.1").op('a').setItems().op('s');
    assertRefused(Files.write(dir.resolve("foreign.pdparams"), p.setItems().stop().toBytes()),
        "UnpackBigParamInfor@@ entry 'a'", "slice 'a@@.0@@.1'");
  }

  // ---- the fuzz harness itself must see the golden files as valid ----

  @ParameterizedTest
  @EnumSource(Format.class)
  void seedsOpen(Format format) throws Exception {
    for (Seed s : seeds(format)) {
      Path f = Files.write(dir.resolve("seed"), s.bytes);
      Outcome o = exercise(f, format == Format.OPENAI ? TINY_CONFIG : null);
      assertTrue(o == Outcome.OPENED, s.label + " does not open");
      if (s.kind == Kind.ZIP) {
        boolean[] stored = new boolean[s.entries.size()];
        Files.write(f, zip(s.entries, stored));
        assertTrue(exercise(f, format == Format.OPENAI ? TINY_CONFIG : null) == Outcome.OPENED,
            s.label + " rebuilt does not open");
      }
      if (s.kind == Kind.PICKLE) {
        List<int[]> ops = opcodes(s.bytes);
        assertTrue(ops.get(ops.size() - 1)[2] == s.bytes.length, s.label + ": opcodes");
      }
    }
    if (format == Format.OPENAI) { // the harness sees the OpenAI names
      try (TorchZipCheckpoint c = TorchZipCheckpoint.open(TINY.resolve("openai/tiny_cd_test.pt"))) {
        assertTrue(c.contains("input_blocks.0.0.weight"));
      }
    }
  }
}
