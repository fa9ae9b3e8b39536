package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.weights.Checkpoint;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.CheckpointSummary;
import io.cm4j.weights.Checkpoints;
import io.cm4j.weights.DType;
import io.cm4j.weights.KeyCheck;
import io.cm4j.weights.WeightsConverter;
import io.cm4j.weights.openai.OpenAIConfigs;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code cm4j weights}: look into and convert UNet checkpoints of any supported format
 * (safetensors, torch {@code .bin}, Paddle {@code .pdparams}, original OpenAI {@code .pt}).
 */
@Command(
    name = "weights",
    mixinStandardHelpOptions = true,
    description = "Inspects or converts UNet checkpoints: safetensors, torch .bin/.pt, Paddle "
        + ".pdparams, original OpenAI .pt.",
    subcommands = {WeightsCommand.Inspect.class, WeightsCommand.Convert.class,
        CommandLine.HelpCommand.class})
final class WeightsCommand implements Runnable {
  @Spec CommandSpec spec;

  @Override
  public void run() {
    throw new ParameterException(spec.commandLine(), "missing a command: expected one of "
        + String.join(", ", spec.subcommands().keySet()));
  }

  /** The config a checkpoint is checked against: its JSON text and how to name it. */
  record ConfigChoice(String json, String source) {}

  /**
   * The given config file, else the checkpoint's own (shipped or beside it), if any. The given
   * file is read as generate reads --config: UTF-8, one JSON object and nothing after it.
   */
  static Optional<ConfigChoice> config(Checkpoint c, Path override)
      throws IOException, UsageException {
    if (override != null) {
      if (!Files.isRegularFile(override)) {
        throw new CheckpointException(override, "no such file");
      }
      try {
        return Optional.of(new ConfigChoice(UNet.readConfig(override), override.toString()));
      } catch (CheckpointException e) {
        throw new UsageException("--config " + e.getMessage(), e);
      }
    }
    Optional<String> json = c.matchingConfig();
    if (json.isEmpty()) {
      return Optional.empty();
    }
    if ("openai".equals(c.format())) {
      String name = OpenAIConfigs.forFileName(String.valueOf(c.path().getFileName()))
          .map(OpenAIConfigs.Known::checkpoint).orElse("?");
      return Optional.of(new ConfigChoice(json.get(), name + " (shipped with cm4j)"));
    }
    return Optional.of(new ConfigChoice(json.get(),
        c.path().toAbsolutePath().getParent().resolve("config.json").toString()));
  }

  /** The checkpoint's names against what the config's model expects. */
  static KeyCheck check(Checkpoint c, ConfigChoice config) throws IOException, Cm4jException {
    Map<String, long[]> expected = UNet.expectedParameters(config.json(), config.source());
    return c.check(expected);
  }

  @Command(
      name = "inspect",
      mixinStandardHelpOptions = true,
      sortOptions = false,
      description = {
          "Prints a checkpoint's format, tensor count, dtypes and size, the UNet config it goes "
              + "with, and any missing, unexpected or mis-shaped keys against that config.",
          "Exit code 0 when inspected (whatever the keys), 2 when the file cannot be read."})
  static final class Inspect implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "FILE|DIR",
        description = "A weights file or a diffusers pipeline/unet folder.")
    Path path;

    @Option(names = "--config", paramLabel = "config.json",
        description = "Check against this diffusers UNet config instead of the checkpoint's "
            + "own (needed for an OpenAI .pt file of another name).")
    Path config;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "20",
        description = "Names listed per kind of key problem (default: ${DEFAULT-VALUE}).")
    int limit;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      try (Checkpoint c = Checkpoints.open(path, config)) {
        CheckpointSummary s = c.inspect();
        Optional<ConfigChoice> choice = config(c, config); // a bad --config: before any output
        out.println(c.path());
        out.println("  format:     " + s.format());
        out.println("  tensors:    " + s.tensors());
        out.println("  dtypes:     " + s.dtypes().entrySet().stream()
            .map(e -> e.getKey() + " x" + e.getValue()).collect(Collectors.joining(", ")));
        out.println("  parameters: " + s.parameters());
        out.printf(Locale.ROOT, "  bytes:      %d (%.1f MiB)%n", s.bytes(),
            s.bytes() / (1024.0 * 1024.0));
        if (choice.isEmpty()) {
          out.println("  config:     none found (no config.json beside the file); --config "
              + "FILE checks the keys");
        } else {
          out.println("  config:     " + choice.get().source());
          KeyCheck k = check(c, choice.get());
          if (k.ok()) {
            out.println("  keys:       ok: no missing keys, no unexpected keys, no mis-shaped "
                + "keys");
          } else {
            out.println("  keys:       " + k.missing().size() + " missing, "
                + k.unexpected().size() + " unexpected, " + k.misShaped().size()
                + " mis-shaped");
            for (String line : k.describe(Math.max(limit, 0)).split("\n")) {
              out.println("    " + line);
            }
          }
        }
      }
      out.flush();
      return 0;
    }
  }

  @Command(
      name = "convert",
      mixinStandardHelpOptions = true,
      sortOptions = false,
      description = {
          "Converts a checkpoint of any supported format to a diffusers folder: "
              + "OUT/unet/{config.json,diffusion_pytorch_model.safetensors}, and "
              + "OUT/scheduler/scheduler_config.json + OUT/model_index.json when the scheduler "
              + "config is known. OUT appears complete or not at all.",
          "With --random-weights SEED --config FILE there is no IN: the model is filled with "
              + "synth-v1 weights."},
      customSynopsis = {
          "cm4j weights convert [--dtype fp32|fp16|bf16] [--config config.json] [--overwrite] "
              + "IN OUT",
          "cm4j weights convert --random-weights SEED --config config.json [--dtype ...] "
              + "[--overwrite] OUT"})
  static final class Convert implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(arity = "1..2", paramLabel = "IN OUT",
        description = "The checkpoint (file or folder) and the folder to write.")
    List<Path> paths;

    @Option(names = "--dtype", paramLabel = "fp32|fp16|bf16",
        converter = Converters.PrecisionConverter.class,
        description = "Convert every tensor to this type (default: keep each as stored).")
    Precision dtype;

    @Option(names = "--config", paramLabel = "config.json",
        description = "The diffusers UNet config to write (and to map an OpenAI .pt with), "
            + "instead of the checkpoint's; required with --random-weights.")
    Path config;

    @Option(names = "--random-weights", paramLabel = "SEED",
        description = "Write synth-v1 weights for this seed and --config instead of reading IN.")
    Long seed;

    @Option(names = "--overwrite", description = "Replace OUT if it exists and holds only a "
        + "model convert wrote.")
    boolean overwrite;

    @Override
    public Integer call() throws Exception {
      Path in;
      Path out;
      if (seed != null) {
        if (config == null) {
          throw new UsageException("--random-weights needs --config config.json");
        }
        if (paths.size() != 1) {
          throw new UsageException("with --random-weights expected only OUT, found "
              + paths.size() + " paths");
        }
        in = null;
        out = paths.get(0);
      } else {
        if (paths.size() != 2) {
          throw new UsageException("expected IN and OUT (or --random-weights SEED --config "
              + "FILE and OUT)");
        }
        in = paths.get(0);
        out = paths.get(1);
      }
      if (config != null && !Files.isRegularFile(config)) {
        throw new UsageException("--config " + config + ": no such file");
      }
      // OUT refused before IN is read: not the input, a writable place, nothing of the user's
      // replaced (the converter checks again before it writes)
      WeightsConverter.checkOutput(in != null ? in : config, out, overwrite);
      PrintWriter err = spec.commandLine().getErr();
      long start = System.nanoTime();
      WeightsConverter.Result r;
      try (Checkpoint c = in == null ? SynthCheckpoint.open(config, seed)
          : Checkpoints.open(in, config)) {
        warnIfUnfit(c, err);
        r = WeightsConverter.convert(c, out,
            new WeightsConverter.Options(dtype(), config, overwrite));
      }
      PrintWriter stdout = spec.commandLine().getOut();
      stdout.printf(Locale.ROOT, "wrote %s: %d tensors, %d bytes of weights%s (%.2f s)%n",
          r.directory(), r.tensors(), r.bytes(),
          r.schedulerWritten() ? ", with scheduler config" : "",
          (System.nanoTime() - start) / 1e9);
      stdout.flush();
      return 0;
    }

    private DType dtype() {
      if (dtype == null) {
        return null;
      }
      switch (dtype) {
        case FP16:
          return DType.F16;
        case BF16:
          return DType.BF16;
        default:
          return DType.F32;
      }
    }

    /** Says on stderr when the written model would not load: its keys or config do not fit. */
    private void warnIfUnfit(Checkpoint c, PrintWriter err) throws IOException, UsageException {
      Optional<ConfigChoice> choice = config(c, config);
      if (choice.isEmpty()) {
        return; // the converter refuses it, with its message
      }
      try {
        KeyCheck k = check(c, choice.get());
        if (!k.ok()) {
          err.println("weights convert: warning: the weights do not fit " + choice.get().source()
              + ": " + k.missing().size() + " missing, " + k.unexpected().size()
              + " unexpected, " + k.misShaped().size() + " mis-shaped keys (weights inspect "
              + "lists them)");
        }
      } catch (Cm4jException e) {
        err.println("weights convert: warning: cm4j cannot run this config: " + e.getMessage());
      }
      err.flush();
    }
  }
}
