package io.cm4j.cli;

import io.cm4j.pipeline.CMStochasticIterativeScheduler;
import io.cm4j.pipeline.CMStochasticIterativeScheduler.BoundaryScalings;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.Json;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code cm4j schedule}: the sampling schedule {@code generate} would run, as JSON on stdout.
 *
 * <p>Shape (floats are the float32 values the scheduler uses, in their shortest form):
 * <pre>
 * {
 *   "scheduler_config": {"num_train_timesteps": 40, "sigma_min": 0.002, ...},
 *   "scheduler_config_file": "/path/scheduler_config.json",   null: diffusers' defaults
 *   "num_inference_steps": 2,
 *   "custom_timesteps": [22, 0],                 null for --steps
 *   "init_noise_sigma": 80.0,                    the latents' scale
 *   "draws_noise": true,                         false for a one-step schedule
 *   "timesteps": [t0, t1],                       the UNet's timestep input, 250 ln(sigma)
 *   "sigmas": [s0, s1, sigma_min],               one per step, then sigma_min
 *   "steps": [                                   one object per step:
 *     {"step": 0, "timestep": t0, "sigma": s0, "sigma_next": s1,
 *      "c_in": 1/sqrt(s0^2 + sigma_data^2),       scale_model_input's factor
 *      "c_skip": ..., "c_out": ...,             denoised = c_skip * sample + c_out * model_output
 *      "noise_std": s_noise * sqrt(sigma_hat^2 - sigma_min^2)}, ...   0 without noise
 *   ]
 * }
 * </pre>
 */
@Command(
    name = "schedule",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Prints the sampling schedule generate would run, as JSON.",
        "The CMStochasticIterativeScheduler schedule: scheduler_config, "
            + "num_inference_steps, custom_timesteps, init_noise_sigma, draws_noise, timesteps "
            + "(the UNet's input), sigmas (then sigma_min), and per step: timestep, sigma, "
            + "sigma_next, c_in, c_skip, c_out, noise_std."})
final class ScheduleCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  /** --model DIR | --scheduler-config FILE, exactly one. */
  static final class Source {
    @Option(names = "--model", required = true, paramLabel = "DIR",
        description = "A diffusers pipeline folder (its scheduler/scheduler_config.json).")
    Path model;

    @Option(names = "--scheduler-config", required = true, paramLabel = "FILE",
        description = "A scheduler_config.json.")
    Path configFile;
  }

  @ArgGroup(exclusive = true, multiplicity = "1")
  Source source;

  @ArgGroup(exclusive = true, multiplicity = "1")
  StepOptions steps;

  @Override
  public Integer call() throws Exception {
    Optional<Path> file;
    if (source.model != null) {
      if (!Files.isDirectory(source.model)) {
        throw new UsageException("--model " + source.model + ": no such folder");
      }
      file = ConsistencyModelPipeline.findSchedulerConfig(source.model);
    } else {
      file = Optional.of(source.configFile);
    }
    SchedulerConfig config = readConfig(file);
    CMStochasticIterativeScheduler scheduler = new CMStochasticIterativeScheduler(config);
    StepOptions.apply(steps, scheduler);

    PrintWriter out = spec.commandLine().getOut();
    out.println(toJson(config, file.map(Path::toString).orElse(null), scheduler));
    out.flush();
    return 0;
  }

  private SchedulerConfig readConfig(Optional<Path> file) throws UsageException {
    String option = source.model != null ? "--model" : "--scheduler-config";
    try {
      if (source.model != null) {
        return ConsistencyModelPipeline.readSchedulerConfig(source.model);
      }
      if (!Files.isRegularFile(file.get())) {
        throw new UsageException(option + " " + file.get() + ": no such file");
      }
      return SchedulerConfig.read(file.get());
    } catch (CheckpointException e) {
      throw new UsageException(option + " " + e.getMessage(), e);
    } catch (IllegalArgumentException e) { // names the file
      throw new UsageException(option + " " + e.getMessage(), e);
    } catch (IOException e) {
      throw new UsageException(
          option + " " + file.get() + ": cannot read: " + CheckpointException.reason(e), e);
    }
  }

  /** The schedule, one top-level key per line and one step per line, for people and tools. */
  private String toJson(SchedulerConfig c, String file, CMStochasticIterativeScheduler s) {
    float[] timesteps = s.timesteps();
    float[] sigmas = s.sigmas();
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("num_train_timesteps", c.numTrainTimesteps());
    config.put("sigma_min", c.sigmaMin());
    config.put("sigma_max", c.sigmaMax());
    config.put("sigma_data", c.sigmaData());
    config.put("s_noise", c.sNoise());
    config.put("rho", c.rho());
    config.put("clip_denoised", c.clipDenoised());

    Map<String, Object> top = new LinkedHashMap<>();
    top.put("scheduler_config", config);
    top.put("scheduler_config_file", file);
    top.put("num_inference_steps", timesteps.length);
    top.put("custom_timesteps", steps.timesteps == null ? null : toList(steps.timesteps));
    top.put("init_noise_sigma", s.initNoiseSigma());
    top.put("draws_noise", s.drawsNoise());
    top.put("timesteps", floats(timesteps));
    top.put("sigmas", floats(sigmas));

    float sigmaMin = (float) c.sigmaMin();
    float sigmaData2 = (float) (c.sigmaData() * c.sigmaData());
    List<String> stepLines = new ArrayList<>();
    for (int i = 0; i < timesteps.length; i++) {
      float sigma = sigmas[i];
      BoundaryScalings b = s.getScalingsForBoundaryCondition(sigma);
      // as CMStochasticIterativeScheduler.step: the next sigma clamped to [min, max]
      float sigmaHat = Math.min(Math.max(sigmas[i + 1], sigmaMin), (float) c.sigmaMax());
      float noiseStd = s.drawsNoise() ? (float) c.sNoise() * (float) Math.sqrt(
          sigmaHat * sigmaHat - (float) (c.sigmaMin() * c.sigmaMin())) : 0f;
      Map<String, Object> step = new LinkedHashMap<>();
      step.put("step", i);
      step.put("timestep", shortest(timesteps[i]));
      step.put("sigma", shortest(sigma));
      step.put("sigma_next", shortest(sigmas[i + 1]));
      step.put("c_in", shortest((float) (1 / Math.sqrt(sigma * sigma + sigmaData2))));
      step.put("c_skip", shortest(b.cSkip()));
      step.put("c_out", shortest(b.cOut()));
      step.put("noise_std", shortest(noiseStd));
      stepLines.add("    " + Json.write(step));
    }

    StringBuilder json = new StringBuilder("{\n");
    for (Map.Entry<String, Object> e : top.entrySet()) {
      json.append("  ").append(Json.write(e.getKey())).append(": ")
          .append(Json.write(e.getValue())).append(",\n");
    }
    json.append("  \"steps\": [\n").append(String.join(",\n", stepLines)).append("\n  ]\n}");
    return json.toString();
  }

  private static List<Integer> toList(int[] values) {
    List<Integer> list = new ArrayList<>();
    for (int v : values) {
      list.add(v);
    }
    return list;
  }

  private static List<Double> floats(float[] values) {
    List<Double> list = new ArrayList<>();
    for (float v : values) {
      list.add(shortest(v));
    }
    return list;
  }

  /** A float32 as the double of its shortest decimal form: JSON shows 0.002, not 0.00200000009. */
  private static double shortest(float v) {
    return Double.parseDouble(Float.toString(v));
  }
}
