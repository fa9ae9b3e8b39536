package io.cm4j;

import io.cm4j.internal.Cm4jNative;
import io.cm4j.internal.NativeLibrary;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Json;
import io.cm4j.weights.JsonException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A diffusers {@code UNet2DModel} on a native engine: built from a {@code config.json} and its
 * weights, it runs forward passes on float32 NCHW tensors.
 *
 * <p><b>Memory.</b> Weights and activations live in native memory, owned by this object until
 * {@link #close()} frees them, deterministically; nothing waits for the garbage collector.
 * Closing twice is harmless; any other call after closing throws
 * {@link IllegalStateException}.
 *
 * <p><b>Threads.</b> A UNet is safe to use from many threads: {@link #forward} may be called
 * concurrently (the engine runs passes one at a time, so concurrent calls queue), and
 * {@link #close()} waits for passes in flight. {@link #taps()} returns the intermediate outputs
 * of the most recent pass of any thread, so capture taps from one thread at a time.
 *
 * <p>Inputs are validated in Java before any native call; problems are reported as
 * {@link Cm4jException} with {@link ErrorCode#INVALID_ARGUMENT} and an "expected X, found Y"
 * message.
 */
public final class UNet implements AutoCloseable {
  private static final String WEIGHTS_FILE = "diffusion_pytorch_model.safetensors";
  /** Taps carry the golden files' names; the engine may report them without the prefix. */
  private static final String TAP_PREFIX = "tap.";

  private final ReadWriteLock lock = new ReentrantReadWriteLock();
  private Cm4jNative.cm4j_unet handle; // null once closed; guarded by lock
  private final Device device;
  private final Precision precision;
  private final int inChannels;
  private final int outChannels;
  private final int sampleSize;
  private final int numClassEmbeds;

  private UNet(Cm4jNative.cm4j_unet handle, Device device, Precision precision) {
    this.handle = handle;
    this.device = device;
    this.precision = precision;
    this.inChannels = Cm4jNative.cm4j_unet_in_channels(handle);
    this.outChannels = Cm4jNative.cm4j_unet_out_channels(handle);
    this.sampleSize = Cm4jNative.cm4j_unet_sample_size(handle);
    this.numClassEmbeds = Cm4jNative.cm4j_unet_num_class_embeds(handle);
  }

  /** {@link #open(Path, Device, Precision)} on the CPU in float32. */
  public static UNet open(Path model) throws IOException, Cm4jException {
    return open(model, Device.CPU, Precision.FP32);
  }

  /**
   * A UNet from a diffusers model on disk: a pipeline folder holding {@code unet/}, a UNet
   * folder holding {@code config.json} and {@code diffusion_pytorch_model.safetensors}, or
   * such a safetensors file with its {@code config.json} beside it.
   *
   * @throws CheckpointException when a file is missing or malformed (the message names it)
   * @throws Cm4jException when the engine refuses the config, the weights or the device
   */
  public static UNet open(Path model, Device device, Precision precision)
      throws IOException, Cm4jException {
    Path dir;
    Path weights;
    if (Files.isDirectory(model)) {
      dir = Files.isRegularFile(model.resolve("unet").resolve("config.json"))
          ? model.resolve("unet") : model;
      weights = dir.resolve(WEIGHTS_FILE);
      if (!Files.isRegularFile(dir.resolve("config.json"))) {
        throw new CheckpointException(model, "not a diffusers model folder: found neither "
            + "unet/config.json nor config.json");
      }
      if (!Files.isRegularFile(weights)) {
        throw new CheckpointException(dir, "no " + WEIGHTS_FILE + " in the model folder");
      }
    } else if (Files.isRegularFile(model)) {
      if (!model.getFileName().toString().endsWith(".safetensors")) {
        throw new CheckpointException(model, "unsupported weights file: expected a "
            + ".safetensors file");
      }
      weights = model;
      dir = model.toAbsolutePath().getParent();
      if (!Files.isRegularFile(dir.resolve("config.json"))) {
        throw new CheckpointException(model, "no config.json beside the weights file");
      }
    } else {
      throw new CheckpointException(model, "no such file or folder");
    }
    return create(dir.resolve("config.json"), WeightSource.safetensors(weights), device,
        precision);
  }

  /**
   * A UNet from a {@code config.json} (diffusers {@code UNet2DModel}) and its weights.
   *
   * @throws CheckpointException when a file is missing or malformed (the message names it)
   * @throws Cm4jException when the engine refuses the config, the weights or the device
   */
  public static UNet create(Path config, WeightSource weights, Device device, Precision precision)
      throws IOException, Cm4jException {
    Objects.requireNonNull(weights, "weights");
    Objects.requireNonNull(device, "device");
    Objects.requireNonNull(precision, "precision");
    String json = readConfig(config);
    NativeLibrary.load();
    checkDevice(device, precision);
    byte[] utf8 = json.getBytes(StandardCharsets.UTF_8);
    ByteBuffer cText = ByteBuffer.allocateDirect(utf8.length + 1).put(utf8).put((byte) 0).flip();
    Cm4jNative.cm4j_unet handle = new Cm4jNative.cm4j_unet();
    NativeCalls.check(Cm4jNative.cm4j_unet_create(cText, device.toString(), precision.code(),
        handle), "cm4j_unet_create", config.toString());
    boolean ok = false;
    try {
      weights.bindTo(handle);
      NativeCalls.check(Cm4jNative.cm4j_unet_finalize(handle), "cm4j_unet_finalize",
          weights.toString());
      UNet unet = new UNet(handle, device, precision);
      ok = true;
      return unet;
    } finally {
      if (!ok) {
        Cm4jNative.cm4j_unet_destroy(handle);
      }
    }
  }

  private static String readConfig(Path config) throws CheckpointException {
    Objects.requireNonNull(config, "config");
    String json;
    try {
      json = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(Files.readAllBytes(config)))
          .toString();
    } catch (NoSuchFileException e) {
      throw new CheckpointException(config, "file not found");
    } catch (CharacterCodingException e) {
      throw new CheckpointException(config, "not valid UTF-8");
    } catch (IOException e) {
      throw new CheckpointException(config, "cannot read: " + e.getMessage(), e);
    }
    try {
      Json.parseObject(json);
    } catch (JsonException e) {
      throw new CheckpointException(config, e.getMessage());
    }
    return json;
  }

  private static void checkDevice(Device device, Precision precision) throws Cm4jException {
    if (device.kind() == Device.Kind.CPU) {
      if (precision != Precision.FP32) {
        throw new Cm4jException(ErrorCode.UNSUPPORTED, "dtype " + precision
            + " is not supported on the cpu device: expected fp32");
      }
      return;
    }
    int count = Cm4jNative.cm4j_cuda_device_count();
    if (count <= 0) {
      String why = Cm4jNative.cm4j_last_error();
      throw new Cm4jException(ErrorCode.DEVICE, why != null && why.startsWith("CUDA unavailable")
          ? why : "CUDA unavailable: " + why);
    }
    if (device.index() >= count) {
      throw new Cm4jException(ErrorCode.DEVICE, "device " + device + " does not exist: expected "
          + "an index below " + count + ", found " + device.index());
    }
  }

  /**
   * One forward pass.
   *
   * @param sample [batch, in_channels, sample_size, sample_size], already scaled
   * @param timestep one value per batch item
   * @param classLabels one label in [0, num_class_embeds) per batch item for class-conditional
   *     models; null for unconditional ones
   * @return [batch, out_channels, sample_size, sample_size]
   */
  public FloatTensor forward(FloatTensor sample, float[] timestep, long[] classLabels)
      throws Cm4jException {
    Objects.requireNonNull(sample, "sample");
    Objects.requireNonNull(timestep, "timestep");
    int batch = validate(sample, timestep, classLabels);
    FloatTensor out = FloatTensor.zeros(batch, outChannels, sampleSize, sampleSize);
    lock.readLock().lock();
    try {
      NativeCalls.check(Cm4jNative.cm4j_unet_forward(open(), batch, sample.buffer(), timestep,
          classLabels, out.buffer()), "cm4j_unet_forward", null);
    } finally {
      lock.readLock().unlock();
    }
    return out;
  }

  private int validate(FloatTensor sample, float[] timestep, long[] classLabels)
      throws Cm4jException {
    long[] s = sample.shape();
    if (s.length != 4) {
      throw invalid("sample: expected rank 4 [batch, channels, height, width], found rank "
          + s.length + " " + Arrays.toString(s));
    }
    if (s[0] < 1) {
      throw invalid("sample: expected a batch of at least 1, found " + s[0]);
    }
    if (s[1] != inChannels) {
      throw invalid("sample: expected " + inChannels + " channels, found " + s[1]);
    }
    if (s[2] != sampleSize || s[3] != sampleSize) {
      throw invalid("sample: expected " + sampleSize + "x" + sampleSize + " (sample_size), found "
          + s[2] + "x" + s[3]);
    }
    int batch = (int) s[0];
    if (timestep.length != batch) {
      throw invalid("timestep: expected " + batch + " values (one per batch item), found "
          + timestep.length);
    }
    for (int i = 0; i < batch; i++) {
      if (!Float.isFinite(timestep[i])) {
        throw invalid("timestep[" + i + "]: expected a finite value, found " + timestep[i]);
      }
    }
    if (numClassEmbeds > 0) {
      if (classLabels == null) {
        throw invalid("class_labels: expected " + batch + " labels (the model is "
            + "class-conditional), found none");
      }
      if (classLabels.length != batch) {
        throw invalid("class_labels: expected " + batch + " labels (one per batch item), found "
            + classLabels.length);
      }
      for (int i = 0; i < batch; i++) {
        if (classLabels[i] < 0 || classLabels[i] >= numClassEmbeds) {
          throw invalid("class_labels[" + i + "]: expected a label in [0, " + numClassEmbeds
              + "), found " + classLabels[i]);
        }
      }
    } else if (classLabels != null) {
      throw invalid("class_labels: expected none (the model is unconditional), found "
          + classLabels.length);
    }
    return batch;
  }

  private static Cm4jException invalid(String message) {
    return new Cm4jException(ErrorCode.INVALID_ARGUMENT, message);
  }

  /**
   * Whether the following passes keep their intermediate outputs for {@link #taps()} (costs
   * memory and a copy per tap; off by default).
   */
  public void setCaptureTaps(boolean capture) throws Cm4jException {
    lock.writeLock().lock();
    try {
      NativeCalls.check(Cm4jNative.cm4j_unet_set_capture_taps(open(), capture ? 1 : 0),
          "cm4j_unet_set_capture_taps", null);
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * The intermediate outputs of the last pass run with taps captured, by golden-file name
   * ({@code tap.time_embedding}, {@code tap.conv_in}, {@code tap.down_blocks.0}, ...), in the
   * engine's order; empty when none were captured.
   */
  public Map<String, FloatTensor> taps() throws Cm4jException {
    lock.writeLock().lock();
    try {
      Cm4jNative.cm4j_unet h = open();
      int count = Cm4jNative.cm4j_unet_tap_count(h);
      if (count < 0) {
        NativeCalls.check(count, "cm4j_unet_tap_count", null);
      }
      Map<String, FloatTensor> taps = new LinkedHashMap<>();
      for (int i = 0; i < count; i++) {
        long[] shape = new long[4];
        int ndim = Cm4jNative.cm4j_unet_tap_shape(h, i, shape);
        if (ndim < 0) {
          NativeCalls.check(ErrorCode.INTERNAL.status(), "cm4j_unet_tap_shape", null);
        } else if (ndim > 4) {
          throw new Cm4jException(ErrorCode.INTERNAL, "tap " + i + ": expected rank <= 4, found "
              + ndim);
        }
        FloatTensor t = FloatTensor.zeros(Arrays.copyOf(shape, ndim));
        NativeCalls.check(Cm4jNative.cm4j_unet_tap_copy(h, i, t.buffer(), t.numel()),
            "cm4j_unet_tap_copy", null);
        String name = Cm4jNative.cm4j_unet_tap_name(h, i);
        taps.put(name.startsWith(TAP_PREFIX) ? name : TAP_PREFIX + name, t);
      }
      return Collections.unmodifiableMap(taps);
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Bytes of the packed weights the engine holds. */
  public long weightBytes() {
    lock.readLock().lock();
    try {
      return Cm4jNative.cm4j_unet_weight_bytes(open());
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Bytes of the activation arena, sized for the batch of the last pass (0 before any). */
  public long arenaBytes() {
    lock.readLock().lock();
    try {
      return Cm4jNative.cm4j_unet_arena_bytes(open());
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Version of the native library, e.g. "0.1.0". */
  public static String nativeVersion() throws Cm4jException {
    NativeLibrary.load();
    return Cm4jNative.cm4j_version();
  }

  /**
   * How many CUDA devices this library can use: 0 when none is (no driver or device, or a
   * library built without CUDA; creating a UNet on {@code cuda} then says why).
   */
  public static int cudaDeviceCount() throws Cm4jException {
    NativeLibrary.load();
    return Math.max(0, Cm4jNative.cm4j_cuda_device_count());
  }

  public Device device() {
    return device;
  }

  public Precision precision() {
    return precision;
  }

  /** Channels of the input sample ({@code in_channels}). */
  public int inChannels() {
    return inChannels;
  }

  /** Channels of the output ({@code out_channels}). */
  public int outChannels() {
    return outChannels;
  }

  /** Height and width of samples ({@code sample_size}). */
  public int sampleSize() {
    return sampleSize;
  }

  /** Number of classes ({@code num_class_embeds}); 0 for unconditional models. */
  public int numClassEmbeds() {
    return numClassEmbeds;
  }

  /** Whether forward passes need class labels. */
  public boolean isClassConditional() {
    return numClassEmbeds > 0;
  }

  private Cm4jNative.cm4j_unet open() {
    if (handle == null) {
      throw new IllegalStateException("UNet is closed");
    }
    return handle;
  }

  /** Frees the engine's native memory; waits for passes in flight. A second call does nothing. */
  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (handle != null) {
        Cm4jNative.cm4j_unet_destroy(handle);
        handle = null;
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  @Override
  public String toString() {
    return "UNet[" + device + ", " + precision + ", in " + inChannels + ", out " + outChannels
        + ", " + sampleSize + "x" + sampleSize
        + (numClassEmbeds > 0 ? ", " + numClassEmbeds + " classes" : "") + "]";
  }
}
