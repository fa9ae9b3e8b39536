package io.cm4j.spark;

import io.cm4j.Device;
import io.cm4j.Precision;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * What every executor needs to open its engine: the model, the device and the dtype. Sent to
 * the executors with the tasks, so it holds only text.
 *
 * <p>The model is a folder or file every executor can read at the same path, or a Hugging Face
 * model ID, which each executor finds in its own Hugging Face cache (downloading it there once
 * if it is missing).
 *
 * <p>The device: {@code auto} (the default) runs on the GPU Spark assigned to the task
 * ({@code spark.executor.resource.gpu.amount}, {@code spark.task.resource.gpu.amount}), else
 * on the CPU; {@code cuda} on the assigned GPU too (else {@code cuda:0}); {@code cuda:N} and
 * {@code cpu:THREADS} exactly there. A CPU engine without a thread count gets
 * {@code spark.executor.cores} threads when that is set, else one per core.
 */
public final class GenerationOptions implements Serializable {
  private static final long serialVersionUID = 1L;
  /** The device option that follows Spark's GPU assignment. */
  public static final String AUTO = "auto";

  private final String model;
  private final String revision;
  private final String device;
  private final String dtype;

  /**
   * @param model a model folder or file (made absolute when it exists here), or a Hub ID
   * @param revision a Hub model's branch, tag or commit; null for main
   * @param device auto, cpu, cpu:THREADS, cuda or cuda:N
   * @param dtype fp32, bf16 or fp16
   * @throws IllegalArgumentException naming a device or dtype that does not parse
   */
  public GenerationOptions(String model, String revision, String device, String dtype) {
    this.model = absoluteIfLocal(Objects.requireNonNull(model, "model"));
    this.revision = revision;
    this.device = device == null ? AUTO : device.trim();
    this.dtype = Precision.parse(dtype == null ? "fp32" : dtype).toString();
    if (!this.device.equals(AUTO)) {
      Device.parse(this.device);
    }
  }

  /** On the CPU in float32 unless the task has a GPU. */
  public static GenerationOptions of(String model) {
    return new GenerationOptions(model, null, AUTO, "fp32");
  }

  public String model() {
    return model;
  }

  public String revision() {
    return revision;
  }

  public String device() {
    return device;
  }

  public Precision dtype() {
    return Precision.parse(dtype);
  }

  /** Where the current task runs, as the class comment says. */
  Device deviceForTask() {
    TaskContext task = TaskContext.get();
    Map<String, ResourceInformation> resources = task == null ? Map.of() : task.resourcesJMap();
    ResourceInformation gpu = resources.get("gpu");
    boolean assigned = gpu != null && gpu.addresses().length > 0;
    if ((device.equals(AUTO) || device.equals("cuda")) && assigned) {
      return Device.cuda(Integer.parseInt(gpu.addresses()[0].trim()));
    }
    if (!device.equals(AUTO) && !device.equals("cpu")) {
      return Device.parse(device);
    }
    SparkEnv env = SparkEnv.get();
    int cores = env == null ? 0 : env.conf().getInt("spark.executor.cores", 0);
    return cores > 0 ? Device.cpu(cores) : Device.CPU;
  }

  private static String absoluteIfLocal(String model) {
    try {
      Path p = Path.of(model);
      return Files.exists(p) ? p.toAbsolutePath().normalize().toString() : model;
    } catch (InvalidPathException e) {
      return model;
    }
  }

  @Override
  public String toString() {
    return model + (revision == null ? "" : "@" + revision) + " on " + device + " " + dtype;
  }
}
