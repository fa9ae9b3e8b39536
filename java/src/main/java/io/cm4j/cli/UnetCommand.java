package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.ErrorCode;
import io.cm4j.FloatTensor;
import io.cm4j.UNet;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.DType;
import io.cm4j.weights.SafetensorsFile;
import io.cm4j.weights.SafetensorsWriter;
import io.cm4j.weights.TensorEntry;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code cm4j unet}: one UNet forward pass from tensors in a file to tensors in a file. */
@Command(
    name = "unet",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Runs one UNet forward pass.",
        "Inputs: sample [B,C,H,W] f32, timestep [B] f32, class_labels [B] i64 (class-conditional"
            + " models only). Output: sample [B,C,H,W] f32, and with --taps every tap.*."})
final class UnetCommand implements Callable<Integer> {
  private static final Set<String> INPUT_NAMES = Set.of("sample", "timestep", "class_labels");

  @Spec CommandSpec spec;

  @Mixin UNetOptions unet;

  @Option(names = "--inputs", required = true, paramLabel = "IN.safetensors",
      description = "The input tensors.")
  Path inputs;

  @Option(names = "--output", required = true, paramLabel = "OUT.safetensors",
      description = "Where to write the output (atomically).")
  Path output;

  @Mixin DeviceOption device;
  @Mixin DtypeOption dtype;

  @Option(names = "--taps", description = "Also write the intermediate outputs (tap.*).")
  boolean taps;

  @Override
  public Integer call() throws Exception {
    unet.check();
    OutputFiles.checkWritableFile("--output", output);
    long start = System.nanoTime();
    FloatTensor out;
    Map<String, FloatTensor> tapValues = Map.of();
    try (SafetensorsFile in = openInputs()) {
      // the sample's rank and sizes are checked against the model by UNet.forward
      FloatTensor sample = FloatTensor.of(input(in, "sample", DType.F32));
      float[] timestep = in.floats(perItem(input(in, "timestep", DType.F32)));
      long[] labels = in.contains("class_labels")
          ? in.longs(perItem(input(in, "class_labels", DType.I64))) : null;
      try (UNet model = unet.open(device.value, dtype.value)) {
        model.setCaptureTaps(taps);
        try {
          out = model.forward(sample, timestep, labels);
        } catch (Cm4jException e) {
          if (e.code() == ErrorCode.INVALID_ARGUMENT) {
            throw new UsageException("--inputs " + inputs + ": " + e.getMessage(), e);
          }
          throw e;
        }
        if (taps) {
          tapValues = model.taps();
        }
      }
    } catch (CheckpointException e) { // the model's are usage errors already
      throw new UsageException("--inputs " + e.getMessage(), e);
    }
    SafetensorsWriter writer = new SafetensorsWriter()
        .metadata("cm4j.device", device.value.toString())
        .metadata("cm4j.dtype", dtype.value.toString())
        .addFloats("sample", out.shape(), out.buffer());
    for (Map.Entry<String, FloatTensor> t : tapValues.entrySet()) {
      writer.addFloats(t.getKey(), t.getValue().shape(), t.getValue().buffer());
    }
    OutputFiles.writeTensors(writer, output, "--output " + output);
    spec.commandLine().getOut().printf("wrote %s: sample %s%s (%s %s, %.2f s)%n", output,
        Arrays.toString(out.shape()), taps ? " + " + tapValues.size() + " taps" : "",
        device.value, dtype.value, (System.nanoTime() - start) / 1e9);
    spec.commandLine().getOut().flush();
    return 0;
  }

  private SafetensorsFile openInputs() throws UsageException, CheckpointException {
    SafetensorsFile in = SafetensorsFile.open(inputs);
    for (String name : in.names()) {
      if (!INPUT_NAMES.contains(name)) {
        in.close();
        throw new UsageException("--inputs " + inputs + ": unexpected tensor '" + name
            + "', expected sample, timestep and (class-conditional models) class_labels");
      }
    }
    return in;
  }

  /** The named input, checked for presence and dtype. */
  private TensorEntry input(SafetensorsFile in, String name, DType dtype)
      throws UsageException, CheckpointException {
    if (!in.contains(name)) {
      throw new UsageException("--inputs " + inputs + ": missing tensor '" + name + "'");
    }
    TensorEntry t = in.get(name);
    if (t.dtype() != dtype) {
      throw new UsageException("--inputs " + inputs + ": " + name + ": expected dtype " + dtype
          + ", found " + t.dtype());
    }
    return t;
  }

  /** Checks a one-value-per-batch-item input is rank 1; returns its name. */
  private String perItem(TensorEntry t) throws UsageException {
    if (t.shape().length != 1) {
      throw new UsageException("--inputs " + inputs + ": " + t.name() + ": expected rank 1 "
          + "[batch], found rank " + t.shape().length + " " + Arrays.toString(t.shape()));
    }
    return t.name();
  }
}
