package io.cm4j.cli;

import static io.cm4j.cli.CliRun.assertBadInput;
import static io.cm4j.cli.CliRun.runOffline;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.cm4j.Golden;
import io.cm4j.cli.CliRun.Result;
import io.cm4j.pipeline.CMStochasticIterativeScheduler;
import io.cm4j.pipeline.SchedulerConfig;
import io.cm4j.weights.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cm4j schedule}: the JSON agrees with the scheduler; bad input exits 2. */
class ScheduleCommandTest {
  @TempDir Path tmp;

  private Result schedule(String... args) {
    String[] all = new String[args.length + 1];
    all[0] = "schedule";
    System.arraycopy(args, 0, all, 1, args.length);
    return runOffline(tmp, all);
  }

  private static String tiny() {
    return Golden.file("tiny/pipeline").toString();
  }

  @Test
  @SuppressWarnings("unchecked")
  void customTimestepsAsJson() throws Exception {
    Result r = schedule("--model", tiny(), "--timesteps", "22,0");
    assertEquals(0, r.exit(), r.err());
    Map<String, Object> json = Json.parseObject(r.out());
    CMStochasticIterativeScheduler expected = new CMStochasticIterativeScheduler(
        SchedulerConfig.read(Golden.file("tiny/pipeline/scheduler/scheduler_config.json")));
    expected.setTimesteps(new int[] {22, 0});
    assertEquals(List.of(22L, 0L), json.get("custom_timesteps"));
    assertEquals(2L, json.get("num_inference_steps"));
    assertEquals(true, json.get("draws_noise"));
    assertFloats(expected.timesteps(), (List<Object>) json.get("timesteps"));
    assertFloats(expected.sigmas(), (List<Object>) json.get("sigmas"));
    List<Map<String, Object>> steps = (List<Map<String, Object>>) json.get("steps");
    assertEquals(2, steps.size());
    CMStochasticIterativeScheduler.BoundaryScalings b =
        expected.getScalingsForBoundaryCondition(expected.sigmas()[0]);
    assertEquals(b.cSkip(), ((Number) steps.get(0).get("c_skip")).floatValue());
    assertEquals(b.cOut(), ((Number) steps.get(0).get("c_out")).floatValue());
    // the last step's noise: sqrt(f32(0.002)^2 - 0.002^2) in float32, about 7e-7 (golden README)
    double last = ((Number) steps.get(1).get("noise_std")).doubleValue();
    assertEquals(7e-7, last, 1e-7);
  }

  @Test
  void oneStepFromAConfigFileDrawsNoNoise() throws Exception {
    Path config = Golden.file("tiny/pipeline/scheduler/scheduler_config.json");
    Result r = schedule("--scheduler-config", config.toString(), "--steps", "1");
    assertEquals(0, r.exit(), r.err());
    Map<String, Object> json = Json.parseObject(r.out());
    assertEquals(false, json.get("draws_noise"));
    assertNull(json.get("custom_timesteps"));
    assertEquals(config.toString(), json.get("scheduler_config_file"));
  }

  @Test
  void stepsOrTimestepsIsRequiredButNotBoth() {
    assertBadInput(schedule("--model", tiny()), "--steps", "--timesteps");
    assertBadInput(schedule("--model", tiny(), "--steps", "2", "--timesteps", "22,0"),
        "mutually exclusive");
  }

  @Test
  void modelOrConfigIsRequiredButNotBoth() {
    assertBadInput(schedule("--steps", "2"), "--model", "--scheduler-config");
    assertBadInput(schedule("--model", tiny(), "--scheduler-config", "x.json", "--steps", "2"),
        "mutually exclusive");
  }

  @Test
  void schedulerRefusals() throws Exception {
    assertBadInput(schedule("--model", tiny(), "--timesteps", "10,22"), "--timesteps 10,22",
        "descending");
    assertBadInput(schedule("--model", tiny(), "--timesteps", "40"), "--timesteps 40",
        "train_timesteps");
    assertBadInput(schedule("--model", tiny(), "--steps", "0"), "--steps 0");
  }

  @Test
  void unusableConfigs() throws Exception {
    assertBadInput(schedule("--scheduler-config", tmp.resolve("none.json").toString(),
        "--steps", "1"), "--scheduler-config", "no such file");
    Path bad = Files.writeString(tmp.resolve("bad.json"), "{\"rho\": \"seven\"}");
    assertBadInput(schedule("--scheduler-config", bad.toString(), "--steps", "1"),
        "--scheduler-config", "bad.json", "rho");
    assertBadInput(schedule("--model", tmp.resolve("nope").toString(), "--steps", "1"),
        "--model", "no such folder");
  }

  private static void assertFloats(float[] expected, List<Object> actual) {
    assertEquals(expected.length, actual.size());
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], ((Number) actual.get(i)).floatValue(), "index " + i);
    }
  }
}
