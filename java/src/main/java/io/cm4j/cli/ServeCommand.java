package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.UNet;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.serve.EnginePool;
import io.cm4j.serve.GenerationServer;
import io.cm4j.serve.GenerationService;
import io.cm4j.serve.ServiceOptions;
import io.cm4j.weights.CheckpointException;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code cm4j serve}: the HTTP demo server ({@link GenerationServer}) over a batching
 * {@link GenerationService}. Runs until interrupted (Ctrl-C finishes the requests in flight,
 * then frees the model), or for {@code --stop-after} seconds.
 */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Serves images over HTTP: GET / is a page to generate from a browser; "
            + "POST /generate with a JSON body such as "
            + "{\"class\": 145, \"seed\": 12, \"steps\": 2} (or \"timesteps\": [22, 0]) answers "
            + "with a PNG; GET /health answers with counters as JSON, GET /metrics in the "
            + "Prometheus text format.",
        "Concurrent requests share UNet passes (up to --max-batch images, waiting up to "
            + "--max-wait-ms for company); each still gets the image `cm4j generate` gives for "
            + "the same arguments. Bad requests get 400 with a JSON error."})
final class ServeCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @ParentCommand Main main;

  @Mixin HubModelOptions model;

  @Option(names = "--random-weights", paramLabel = "SEED",
      description = "Serve a UNet with synth-v1 weights for this seed (with --config): the "
          + "real-size model with no download, for load tests; the images are noise.")
  Long randomWeights;

  @Option(names = "--config", paramLabel = "config.json",
      description = "The diffusers UNet2DModel config for --random-weights.")
  Path config;

  @Option(names = "--host", paramLabel = "ADDR", defaultValue = "127.0.0.1",
      description = "Address to listen on (default: ${DEFAULT-VALUE}, this machine only).")
  String host;

  @Option(names = "--port", paramLabel = "P", defaultValue = "8080",
      description = "Port to listen on; 0 picks a free one (default: ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--max-batch", paramLabel = "N", defaultValue = "16",
      description = "Most images in one UNet pass; 1 turns batching off (default: "
          + "${DEFAULT-VALUE}).")
  int maxBatch;

  @Option(names = "--max-wait-ms", paramLabel = "M", defaultValue = "2",
      description = "Longest a pass waits for more requests (default: ${DEFAULT-VALUE}).")
  double maxWaitMs;

  @Option(names = "--queue", paramLabel = "N", defaultValue = "256",
      description = "Most requests waiting; more get 503 (default: ${DEFAULT-VALUE}).")
  int queue;

  @Option(names = "--timeout-ms", paramLabel = "T", defaultValue = "30000",
      description = "Deadline of each request; later ones get 503 (default: ${DEFAULT-VALUE}).")
  long timeoutMs;

  @Option(names = "--max-steps", paramLabel = "N", defaultValue = "40",
      description = "Most steps one request may ask for (default: ${DEFAULT-VALUE}).")
  int maxSteps;

  @Option(names = "--max-connections", paramLabel = "N", defaultValue = "256",
      description = "Most open connections; more get 503 (default: ${DEFAULT-VALUE}).")
  int maxConnections;

  @Option(names = "--request-timeout-ms", paramLabel = "T", defaultValue = "10000",
      description = "Longest a client may take to send a request, from its first byte; slower "
          + "ones get 408 (default: ${DEFAULT-VALUE}).")
  long requestTimeoutMs;

  @Option(names = "--device", paramLabel = "DEVICES", defaultValue = "cpu",
      description = "Where to run: cpu[:threads], cuda[:i], a list (cuda:0,cuda:1), a range "
          + "(cuda:0-3; cpu:0-1: two CPU engines sharing the cores) or all (every CUDA "
          + "device, else the CPU). One engine per device, each batch on the least-loaded one; "
          + "one that fails leaves the pool while the others serve (default: ${DEFAULT-VALUE}).")
  String devices;
  @Mixin DtypeOption dtype;

  @Option(names = "--stop-after", paramLabel = "S",
      description = "Stop after S seconds, finishing the requests in flight (for scripts and "
          + "tests; default: run until interrupted).")
  Double stopAfter;

  @Override
  public Integer call() throws Exception {
    ServiceOptions options = options();
    if (port < 0 || port > 65535) {
      throw new UsageException("--port " + port + ": expected 0 to 65535");
    }
    UsageException.checkAtLeastOne("--max-steps", maxSteps);
    UsageException.checkAtLeastOne("--max-connections", maxConnections);
    UsageException.checkAtLeastOne("--request-timeout-ms", requestTimeoutMs);
    if (stopAfter != null && !(stopAfter > 0)) {
      throw new UsageException("--stop-after " + stopAfter + ": expected a positive number");
    }
    PrintWriter err = spec.commandLine().getErr();
    Object modelPath;
    Path path = null; // null: synth-v1 weights on --config
    if (randomWeights != null || config != null) {
      modelPath = config + " with synth-v1 weights (seed " + randomWeights + ")";
    } else {
      path = model.resolve(main);
      modelPath = path;
    }
    GenerationService service = new GenerationService(openEngines(path), options);
    GenerationServer server;
    try {
      server = startServer(service);
    } catch (IOException | UsageException | RuntimeException e) {
      service.close();
      throw e;
    }
    CountDownLatch stop = new CountDownLatch(1);
    AtomicBoolean stopped = new AtomicBoolean();
    Runnable stopServing = () -> {
      if (stopped.compareAndSet(false, true)) {
        service.close(); // finishes what was accepted (later requests get 503), frees the model
        server.close(Duration.ofSeconds(1)); // time to send the last answers
        err.println("serve: stopped; " + service.stats());
        service.engineStats().forEach(e -> err.println("serve: engine " + e));
        err.flush();
      }
      stop.countDown();
    };
    try {
      err.printf("serve: %s on %s, %s%n", modelPath, devices, options);
      err.printf("serve: listening on %s (the page at /; POST /generate, GET /health, "
          + "GET /metrics)%n", server.uri());
      err.flush();
      // SIGTERM or Ctrl-C: the JVM halts once this hook returns
      Thread hook = new Thread(stopServing, "cm4j-serve-shutdown");
      Runtime.getRuntime().addShutdownHook(hook);
      if (stopAfter == null) {
        stop.await();
      } else {
        stop.await(Math.round(stopAfter * 1000), TimeUnit.MILLISECONDS);
      }
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // the JVM is shutting down: the hook is stopping the server
      }
    } finally {
      stopServing.run();
    }
    return 0;
  }

  private ServiceOptions options() throws UsageException {
    UsageException.checkAtLeastOne("--max-batch", maxBatch);
    if (!(maxWaitMs >= 0 && maxWaitMs <= 60_000)) {
      throw new UsageException("--max-wait-ms " + maxWaitMs + ": expected 0 to 60000");
    }
    UsageException.checkAtLeastOne("--queue", queue);
    UsageException.checkAtLeastOne("--timeout-ms", timeoutMs);
    return ServiceOptions.builder().maxBatch(maxBatch)
        .maxWait(Duration.ofNanos(Math.round(maxWaitMs * 1e6))).queueCapacity(queue)
        .defaultDeadline(Duration.ofMillis(timeoutMs)).build();
  }

  /**
   * One engine per --device entry, of the model at {@code modelPath} or synth-v1 weights;
   * closes what it opened when one fails.
   */
  private EnginePool openEngines(Path modelPath)
      throws IOException, Cm4jException, UsageException {
    List<Device> list;
    try {
      list = EnginePool.parseDevices(devices, devices.strip().equals("all")
          ? UNet.cudaDeviceCount() : 0, Runtime.getRuntime().availableProcessors());
    } catch (IllegalArgumentException e) {
      throw new UsageException("--device " + e.getMessage(), e);
    }
    List<ConsistencyModelPipeline> opened = new ArrayList<>();
    try {
      for (Device device : list) {
        opened.add(modelPath == null ? synthPipeline(device) : ModelOpening.open(
            () -> ConsistencyModelPipeline.open(modelPath, device, dtype.value), "--model",
            device, dtype.value));
      }
      return new EnginePool(opened);
    } catch (CheckpointException e) {
      opened.forEach(ConsistencyModelPipeline::close);
      throw new UsageException("--model " + e.getMessage(), e);
    } catch (IOException | Cm4jException | UsageException | RuntimeException e) {
      opened.forEach(ConsistencyModelPipeline::close);
      throw e;
    }
  }

  /** --config with --random-weights, the scheduler at diffusers' defaults. */
  private ConsistencyModelPipeline synthPipeline(Device device)
      throws IOException, Cm4jException, UsageException {
    if (randomWeights == null || config == null) {
      throw new UsageException(randomWeights == null
          ? "--config needs --random-weights SEED (a model's own config comes with --model)"
          : "--random-weights needs --config config.json");
    }
    if (spec.commandLine().getParseResult().hasMatchedOption("--model")) {
      throw new UsageException("--model cannot be combined with --random-weights");
    }
    try {
      return ModelOpening.openSynthPipeline(config, randomWeights, device, dtype.value);
    } catch (CheckpointException e) {
      throw new UsageException("--config " + e.getMessage(), e);
    }
  }

  private GenerationServer startServer(GenerationService service)
      throws IOException, UsageException {
    try {
      return GenerationServer.builder(service).address(new InetSocketAddress(host, port))
          .timeout(Duration.ofMillis(timeoutMs)).maxSteps(maxSteps)
          .maxConnections(maxConnections).requestTimeout(Duration.ofMillis(requestTimeoutMs))
          .start();
    } catch (BindException e) {
      throw new UsageException("--host " + host + " --port " + port + ": cannot listen: "
          + e.getMessage(), e);
    }
  }
}
