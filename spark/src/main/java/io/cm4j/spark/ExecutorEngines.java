package io.cm4j.spark;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.Precision;
import io.cm4j.hub.HubClient;
import io.cm4j.hub.HubException;
import io.cm4j.hub.ModelLocator;
import io.cm4j.hub.Progress;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engines of this JVM: one pipeline per model, device and dtype, opened by the first task
 * that needs it and shared by every later task of every job (a pipeline is safe to call from
 * many threads), closed when the JVM exits. Loading a model once per executor rather than once
 * per task is what makes short tasks affordable. A pipeline whose pass failed in the engine
 * ({@link #discard}) is closed and forgotten, so the task's retry opens a fresh one rather than
 * failing again on the broken one.
 */
final class ExecutorEngines {
  private static final Logger LOG = LoggerFactory.getLogger(ExecutorEngines.class);

  private record Key(String model, String revision, Device device, Precision dtype) {}

  private static final Map<Key, ConsistencyModelPipeline> OPEN = new LinkedHashMap<>();
  private static boolean closeOnExit;
  private static int opened;

  private ExecutorEngines() {}

  /** The pipeline for the current task, opened on first use. */
  static synchronized ConsistencyModelPipeline forTask(GenerationOptions options)
      throws IOException, Cm4jException, HubException {
    Key key = new Key(options.model(), options.revision(), options.deviceForTask(),
        options.dtype());
    ConsistencyModelPipeline pipeline = OPEN.get(key);
    if (pipeline != null) {
      return pipeline;
    }
    Path model = ModelLocator.resolve(key.model(), key.revision(), HubClient.fromEnvironment(),
        Progress.none());
    long start = System.nanoTime();
    pipeline = ConsistencyModelPipeline.open(model, key.device(), key.dtype());
    OPEN.put(key, pipeline);
    opened++;
    if (!closeOnExit) {
      Runtime.getRuntime().addShutdownHook(new Thread(ExecutorEngines::closeAll,
          "cm4j-engines-close"));
      closeOnExit = true;
    }
    LOG.info("cm4j: opened {} on {} {} in {} ms", model, key.device(), key.dtype(),
        (System.nanoTime() - start) / 1_000_000);
    return pipeline;
  }

  /**
   * Forgets {@code pipeline} (one {@link #forTask} gave) after an engine failure and closes it
   * once its passes in flight are done; a later task opens another. Tasks still running on it
   * fail too, and are run again likewise.
   */
  static void discard(ConsistencyModelPipeline pipeline, Exception failure) {
    synchronized (ExecutorEngines.class) {
      OPEN.values().remove(pipeline); // once: every task that saw it fail comes here
    }
    LOG.warn("cm4j: closing the engine on {} after a failure: {}", pipeline.unet().device(),
        failure.getMessage());
    pipeline.close(); // outside the lock: it waits for passes in flight
  }

  /** How many engines this JVM has opened so far. */
  static synchronized int openedCount() {
    return opened;
  }

  /** Closes every engine; later tasks open them again. */
  static synchronized void closeAll() {
    OPEN.values().forEach(ConsistencyModelPipeline::close);
    OPEN.clear();
  }
}
