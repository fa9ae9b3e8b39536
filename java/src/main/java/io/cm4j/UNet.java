package io.cm4j;

import io.cm4j.internal.Cm4jNative;
import io.cm4j.internal.NativeLibrary;
import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Checkpoints;
import io.cm4j.weights.Json;
import io.cm4j.weights.JsonException;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.openai.OpenAIConfigs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A diffusers {@code UNet2DModel} on a native engine: built from a {@code config.json} and its
 * weights, it runs forward passes on float32 NCHW tensors.
 *
 * <p><b>Memory.</b> Weights and activations live in native memory, owned by this object until
 * {@link #close()} frees them, deterministically. Closing twice is harmless; any other call
 * after closing throws {@link IllegalStateException}. A UNet that is never closed is freed once
 * the garbage collector finds it unreachable, with a warning: a safety net, not a way to
 * manage it (its native memory is invisible to the Java heap, so that may be much later).
 *
 * <p><b>Threads.</b> A UNet is safe to use from many threads: {@link #forward} and
 * {@link #sample} may be called concurrently (the engine runs them one at a time, so
 * concurrent calls queue), and {@link #close()} waits for passes in flight. {@link #taps()}
 * returns the intermediate outputs of the most recent pass of any thread, so capture taps from
 * one thread at a time.
 *
 * <p>Inputs are validated in Java before any native call; problems are reported as
 * {@link Cm4jException} with {@link ErrorCode#INVALID_ARGUMENT} and an "expected X, found Y"
 * message.
 */
public final class UNet implements AutoCloseable {
  /** Taps carry the golden files' names; the engine may report them without the prefix. */
  private static final String TAP_PREFIX = "tap.";

  private final NativeEngine engine;
  private final Device device;
  private final Precision precision;
  private final int inChannels;
  private final int outChannels;
  private final int sampleSize;
  private final int numClassEmbeds;
  private final int maxBatch;

  private UNet(Cm4jNative.cm4j_unet handle, Device device, Precision precision) {
    this.engine = new NativeEngine(this, handle, "UNet[" + device + ", " + precision + "]");
    this.device = device;
    this.precision = precision;
    this.inChannels = Cm4jNative.cm4j_unet_in_channels(handle);
    this.outChannels = Cm4jNative.cm4j_unet_out_channels(handle);
    this.sampleSize = Cm4jNative.cm4j_unet_sample_size(handle);
    this.numClassEmbeds = Cm4jNative.cm4j_unet_num_class_embeds(handle);
    this.maxBatch = Cm4jNative.cm4j_unet_max_batch(handle);
  }

  /** {@link #open(Path, Device, Precision)} on the CPU in float32. */
  public static UNet open(Path model) throws IOException, Cm4jException {
    return open(model, Device.CPU, Precision.FP32);
  }

  /** {@link #open(Path, Path, Device, Precision)} with the model's own config. */
  public static UNet open(Path model, Device device, Precision precision)
      throws IOException, Cm4jException {
    return open(model, null, device, precision);
  }

  /**
   * A UNet from a model on disk, in any format {@link Checkpoints#open} reads: a diffusers
   * pipeline or UNet folder (weights as {@code diffusion_pytorch_model.safetensors}, a torch
   * {@code diffusion_pytorch_model.bin} or Paddle's {@code model_state.pdparams}), one such
   * weights file with its {@code config.json} beside it, or an original OpenAI {@code .pt}
   * checkpoint (its config shipped for its published file name).
   *
   * @param config a diffusers UNet config to use instead of the model's, or null; needed for
   *     an OpenAI checkpoint of another file name, or a weights file with no config beside it
   * @throws CheckpointException when a file is missing or malformed (the message names it)
   * @throws Cm4jException when the engine refuses the config, the weights or the device
   */
  public static UNet open(Path model, Path config, Device device, Precision precision)
      throws IOException, Cm4jException {
    Objects.requireNonNull(model, "model");
    if (!Files.exists(model)) {
      throw new CheckpointException(model, "no such file or folder");
    }
    if (Files.isDirectory(model) && config == null
        && !Files.isRegularFile(model.resolve("unet").resolve("config.json"))
        && !Files.isRegularFile(model.resolve("config.json"))) {
      throw new CheckpointException(model, "not a diffusers model folder: found neither "
          + "unet/config.json nor config.json");
    }
    try (Checkpoint weights = openCheckpoint(model, config)) {
      return open(weights, config, device, precision);
    }
  }

  /** {@link Checkpoints#open}, with the safetensors reader's own message for a bad .safetensors. */
  private static Checkpoint openCheckpoint(Path model, Path config) throws CheckpointException {
    try {
      return Checkpoints.open(model, config);
    } catch (CheckpointException e) {
      Path file = e.file();
      if (file != null && file.getFileName() != null
          && file.getFileName().toString().endsWith(".safetensors") && Files.isRegularFile(file)) {
        // its content was not recognised: the safetensors reader says what is wrong with it
        SafetensorsFile.open(file).close();
      }
      throw e;
    }
  }

  /**
   * A UNet from an open checkpoint, which stays the caller's to close (the engine copies the
   * weights, so it may be closed as soon as this returns).
   *
   * @param config a diffusers UNet config file, or null for the checkpoint's
   *     ({@link Checkpoint#matchingConfig})
   */
  public static UNet open(Checkpoint weights, Path config, Device device, Precision precision)
      throws IOException, Cm4jException {
    Objects.requireNonNull(weights, "weights");
    if (config != null) {
      return create(config, WeightSource.of(weights), device, precision);
    }
    String json = weights.matchingConfig().orElseThrow(() -> new CheckpointException(
        weights.path(), "no UNet config for these weights: no config.json beside the file "
        + "(give a config)"));
    return create(json, configSource(weights), WeightSource.of(weights), device, precision);
  }

  /**
   * The parameters a config's model expects, by state-dict name, with their shapes, in the
   * engine's order; the engine's plan is built and dropped, no weights are bound.
   */
  public static Map<String, long[]> expectedParameters(Path config)
      throws IOException, Cm4jException {
    return expectedParameters(readConfig(config), config.toString());
  }

  /**
   * {@link #expectedParameters(Path)} for config JSON text; {@code source} names it in
   * messages (a file, or "config shipped for cd_imagenet64_l2").
   */
  public static Map<String, long[]> expectedParameters(String configJson, String source)
      throws Cm4jException {
    NativeLibrary.load();
    Cm4jNative.cm4j_unet handle = createHandle(configJson, source, Device.CPU, Precision.FP32);
    try {
      int count = Cm4jNative.cm4j_unet_param_count(handle);
      Map<String, long[]> params = new LinkedHashMap<>();
      for (int i = 0; i < count; i++) {
        long[] shape = new long[4];
        int ndim = Cm4jNative.cm4j_unet_param_shape(handle, i, shape);
        if (ndim < 0) {
          NativeCalls.check(ndim, "cm4j_unet_param_shape", source);
        }
        params.put(Cm4jNative.cm4j_unet_param_name(handle, i), Arrays.copyOf(shape, ndim));
      }
      return Collections.unmodifiableMap(params);
    } finally {
      Cm4jNative.cm4j_unet_destroy(handle);
    }
  }

  /**
   * How messages name the config of a checkpoint: the {@code config.json} beside it, or the
   * shipped config of an OpenAI checkpoint.
   */
  static String configSource(Checkpoint weights) {
    if ("openai".equals(weights.format())) {
      return weights.path() + " (config shipped for " + OpenAIConfigs.forFileName(
          String.valueOf(weights.path().getFileName())).map(OpenAIConfigs.Known::checkpoint)
          .orElse("it") + ")";
    }
    Path parent = weights.path().toAbsolutePath().getParent();
    return parent == null ? weights.path().toString() : parent.resolve("config.json").toString();
  }

  /**
   * A UNet from a {@code config.json} (diffusers {@code UNet2DModel}) and its weights.
   *
   * @throws CheckpointException when a file is missing or malformed (the message names it)
   * @throws Cm4jException when the engine refuses the config, the weights or the device
   */
  public static UNet create(Path config, WeightSource weights, Device device, Precision precision)
      throws IOException, Cm4jException {
    return create(readConfig(config), config.toString(), weights, device, precision);
  }

  /** {@code source} names the config JSON in messages. */
  private static UNet create(String json, String source, WeightSource weights, Device device,
      Precision precision) throws IOException, Cm4jException {
    Objects.requireNonNull(weights, "weights");
    Objects.requireNonNull(device, "device");
    Objects.requireNonNull(precision, "precision");
    NativeLibrary.load();
    checkDevice(device, precision);
    Cm4jNative.cm4j_unet handle = createHandle(json, source, device, precision);
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

  private static Cm4jNative.cm4j_unet createHandle(String json, String source, Device device,
      Precision precision) throws Cm4jException {
    byte[] utf8 = json.getBytes(StandardCharsets.UTF_8);
    ByteBuffer cText = ByteBuffer.allocateDirect(utf8.length + 1).put(utf8).put((byte) 0).flip();
    Cm4jNative.cm4j_unet handle = new Cm4jNative.cm4j_unet();
    NativeCalls.check(Cm4jNative.cm4j_unet_create(cText, device.toString(), precision.code(),
        handle), "cm4j_unet_create", source);
    return handle;
  }

  /**
   * The text of a diffusers UNet config file, checked to be UTF-8 holding one JSON object and
   * nothing after it (the engine's parser stops at the end of the first object, so this is what
   * refuses trailing bytes).
   *
   * @throws CheckpointException naming the file and what is wrong with it
   */
  public static String readConfig(Path config) throws CheckpointException {
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
      throw new CheckpointException(config, "cannot read: " + CheckpointException.reason(e), e);
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
      // bf16 runs on AMX / AVX-512-BF16 where present (a slow portable kernel elsewhere).
      if (precision == Precision.FP16) {
        throw new Cm4jException(ErrorCode.UNSUPPORTED, "dtype " + precision
            + " is not supported on the cpu device: expected fp32 or bf16");
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
    engine.lock.readLock().lock();
    try {
      NativeCalls.check(Cm4jNative.cm4j_unet_forward(open(), batch, sample.buffer(), timestep,
          classLabels, out.buffer()), "cm4j_unet_forward", null);
    } finally {
      engine.lock.readLock().unlock();
    }
    return out;
  }

  /**
   * A whole consistency-model sampling loop on this UNet's device ({@link SamplingSteps} gives
   * the arithmetic): the sample is copied to the device once, every step runs there, and the
   * final sample is copied back once. The result is bit for bit that of the same loop around
   * {@link #forward} with the scheduler's float arithmetic done in Java.
   *
   * @param sample [batch, in_channels, sample_size, sample_size], the initial (noised) sample
   * @param steps the per-step values, for the same batch
   * @param noise [steps, batch, channels, sample_size, sample_size], each step's noise draw in
   *     order, or null for zeros (a one-step schedule draws none)
   * @param classLabels as for {@link #forward}
   * @return the sample after the last step, shaped like {@code sample}
   * @throws Cm4jException INVALID_ARGUMENT for inputs that do not fit (the message says
   *     which), UNSUPPORTED when the UNet's output is not shaped like its input
   */
  public FloatTensor sample(FloatTensor sample, SamplingSteps steps, FloatTensor noise,
      long[] classLabels) throws Cm4jException {
    return loop(sample, steps, noise, classLabels, null);
  }

  /**
   * The zero-shot editing loop ({@code io.cm4j.edit}) on this UNet's device, copied there and
   * back once like {@link #sample}. Step s: {@code d = clamp(cOut * unet(x / inputScale) +
   * cSkip * x, -1, 1)}, then {@code x = R(y, d) + noise[s] * noiseScale} (without noise,
   * {@code R(y, d)}), R the replacement ({@link EditReplacement}; {@code steps.sNoise()} and
   * {@code steps.clip()} are not used). Bit for bit the same loop around {@link #forward}
   * with the arithmetic in Java ({@code io.cm4j.edit.Editing}). The final clamp is the
   * caller's.
   *
   * @throws Cm4jException INVALID_ARGUMENT for inputs that do not fit (the message says which)
   */
  public FloatTensor edit(FloatTensor sample, SamplingSteps steps, FloatTensor noise,
      long[] classLabels, EditReplacement replacement) throws Cm4jException {
    Objects.requireNonNull(replacement, "replacement");
    return loop(sample, steps, noise, classLabels, replacement);
  }

  /** {@link #sample}, or {@link #edit} when replacement is set. */
  private FloatTensor loop(FloatTensor sample, SamplingSteps steps, FloatTensor noise,
      long[] classLabels, EditReplacement replacement) throws Cm4jException {
    Objects.requireNonNull(sample, "sample");
    Objects.requireNonNull(steps, "steps");
    if (outChannels != inChannels) {
      throw new Cm4jException(ErrorCode.UNSUPPORTED, "sample: the UNet outputs " + outChannels
          + " channels but takes " + inChannels + "; the scheduler's step needs them equal");
    }
    long[] shape = sample.shape();
    if (shape.length == 4 && steps.batch() != shape[0]) {
      throw invalid("steps: expected values for a batch of " + shape[0] + ", found a batch of "
          + steps.batch());
    }
    int count = steps.count();
    if (count < 1 || steps.timesteps().length != count * steps.batch()) {
      throw invalid("steps.timesteps: expected a positive multiple of the batch (" + steps.batch()
          + ") values, found " + steps.timesteps().length);
    }
    int batch = validate(sample, Arrays.copyOf(steps.timesteps(), steps.batch()), classLabels);
    float[][] tables = {steps.inputScale(), steps.cSkip(), steps.cOut(), steps.noiseScale()};
    String[] names = {"inputScale", "cSkip", "cOut", "noiseScale"};
    for (int i = 0; i < tables.length; i++) {
      if (tables[i].length != count * batch) {
        throw invalid("steps." + names[i] + ": expected " + count * batch + " values (" + count
            + " steps of " + batch + " images), found " + tables[i].length);
      }
    }
    for (int i = 0; i < count * batch; i++) {
      if (!Float.isFinite(steps.timesteps()[i])) {
        throw invalid("steps.timesteps[" + i + "] (step " + (i / batch + 1) + ", image "
            + (i % batch) + "): expected a finite value, found " + steps.timesteps()[i]);
      }
    }
    if (noise != null) {
      long[] expected = {count, shape[0], shape[1], shape[2], shape[3]};
      if (!Arrays.equals(noise.shape(), expected)) {
        throw invalid("noise: expected " + Arrays.toString(expected) + " (one draw per step), "
            + "found " + Arrays.toString(noise.shape()));
      }
    }
    if (replacement != null) {
      checkReplacement(replacement, shape);
    }
    FloatTensor out = FloatTensor.zeros(shape);
    engine.lock.readLock().lock();
    try {
      if (replacement == null) {
        NativeCalls.check(Cm4jNative.cm4j_unet_sample(open(), batch, count, sample.buffer(),
            steps.timesteps(), steps.inputScale(), steps.cSkip(), steps.cOut(),
            steps.noiseScale(), steps.sNoise(), noise == null ? null : noise.buffer(),
            classLabels, steps.clip() ? 1 : 0, out.buffer()), "cm4j_unet_sample", null);
      } else {
        NativeCalls.check(Cm4jNative.cm4j_unet_edit(open(), batch, count, sample.buffer(),
            steps.timesteps(), steps.inputScale(), steps.cSkip(), steps.cOut(),
            steps.noiseScale(), noise == null ? null : noise.buffer(), classLabels,
            replacement.kind().ordinal(), replacement.patch(),
            replacement.reference() == null ? null : replacement.reference().buffer(),
            replacement.maskKeep() == null ? null : replacement.maskKeep().buffer(),
            out.buffer()), "cm4j_unet_edit", null);
      }
    } finally {
      engine.lock.readLock().unlock();
    }
    return out;
  }

  private static void checkReplacement(EditReplacement r, long[] shape) throws Cm4jException {
    if (r.reference() != null && !Arrays.equals(r.reference().shape(), shape)) {
      throw invalid("reference: expected " + Arrays.toString(shape) + " like the sample, found "
          + Arrays.toString(r.reference().shape()));
    }
    long[] mask = {shape[0], 1, shape[2], shape[3]};
    if (r.maskKeep() != null && !Arrays.equals(r.maskKeep().shape(), mask)) {
      throw invalid("maskKeep: expected " + Arrays.toString(mask) + ", found "
          + Arrays.toString(r.maskKeep().shape()));
    }
    if (r.kind() == EditReplacement.Kind.COLORIZE && shape[1] != 3) {
      throw new Cm4jException(ErrorCode.UNSUPPORTED, "colorize needs 3 channels, found "
          + shape[1]);
    }
    if (r.kind() == EditReplacement.Kind.SUPERRES
        && (r.patch() < 1 || shape[2] % r.patch() != 0)) {
      throw invalid("patch: expected a size that divides " + shape[2] + ", found " + r.patch());
    }
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
    engine.lock.writeLock().lock();
    try {
      NativeCalls.check(Cm4jNative.cm4j_unet_set_capture_taps(open(), capture ? 1 : 0),
          "cm4j_unet_set_capture_taps", null);
    } finally {
      engine.lock.writeLock().unlock();
    }
  }

  /**
   * The intermediate outputs of the last pass run with taps captured, by golden-file name
   * ({@code tap.time_embedding}, {@code tap.conv_in}, {@code tap.down_blocks.0}, ...), in the
   * engine's order; empty when none were captured.
   */
  public Map<String, FloatTensor> taps() throws Cm4jException {
    engine.lock.writeLock().lock();
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
      engine.lock.writeLock().unlock();
    }
  }

  /**
   * Whether the following passes record an op profile for {@link #opProfile()}: each op is
   * waited for before the next starts and timed, so a profiled pass is slower than a plain
   * one (its output is the same). Off by default; switching clears the profile.
   */
  public void setProfileOps(boolean profile) throws Cm4jException {
    engine.lock.writeLock().lock();
    try {
      NativeCalls.check(Cm4jNative.cm4j_unet_set_profile_ops(open(), profile ? 1 : 0),
          "cm4j_unet_set_profile_ops", null);
    } finally {
      engine.lock.writeLock().unlock();
    }
  }

  /**
   * The op profile of the last pass (of any thread) run while profiling: every op of the
   * plan in run order, with the milliseconds it took; empty before one.
   */
  public List<OpTime> opProfile() throws Cm4jException {
    engine.lock.writeLock().lock();
    try {
      Cm4jNative.cm4j_unet h = open();
      int count = Cm4jNative.cm4j_unet_op_count(h);
      List<OpTime> ops = new ArrayList<>(count);
      for (int i = 0; i < count; i++) {
        ops.add(new OpTime(Cm4jNative.cm4j_unet_op_name(h, i), Cm4jNative.cm4j_unet_op_ms(h, i)));
      }
      return List.copyOf(ops);
    } finally {
      engine.lock.writeLock().unlock();
    }
  }

  /** Bytes of the packed weights the engine holds. */
  public long weightBytes() {
    engine.lock.readLock().lock();
    try {
      return Cm4jNative.cm4j_unet_weight_bytes(open());
    } finally {
      engine.lock.readLock().unlock();
    }
  }

  /** Bytes of the activation arena, sized for the batch of the last pass (0 before any). */
  public long arenaBytes() {
    engine.lock.readLock().lock();
    try {
      return Cm4jNative.cm4j_unet_arena_bytes(open());
    } finally {
      engine.lock.readLock().unlock();
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

  /**
   * Most images one call takes (forward, sample, edit): every activation of the batch stays
   * under 2^31 elements; 910 for imagenet64, 85 for LSUN-256.
   */
  public int maxBatch() {
    return maxBatch;
  }

  /**
   * Refuses {@code images} over {@link #maxBatch()}, for callers that would allocate for them
   * before the engine says so.
   *
   * @throws IllegalArgumentException "ARGUMENT: N images, at most M in one call of this model"
   */
  public void checkBatch(String argument, long images) {
    if (images > maxBatch) {
      throw new IllegalArgumentException(argument + ": " + images + " images, at most "
          + maxBatch + " in one call of this model");
    }
  }

  /** Whether forward passes need class labels. */
  public boolean isClassConditional() {
    return numClassEmbeds > 0;
  }

  private Cm4jNative.cm4j_unet open() {
    return engine.handle();
  }

  /** The native engine (for tests of its freeing). */
  NativeEngine engine() {
    return engine;
  }

  /** Frees the engine's native memory; waits for passes in flight. A second call does nothing. */
  @Override
  public void close() {
    engine.close();
  }

  @Override
  public String toString() {
    return "UNet[" + device + ", " + precision + ", in " + inChannels + ", out " + outChannels
        + ", " + sampleSize + "x" + sampleSize
        + (numClassEmbeds > 0 ? ", " + numClassEmbeds + " classes" : "") + "]";
  }
}
