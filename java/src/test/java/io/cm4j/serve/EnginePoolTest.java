package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cm4j.Cm4jException;
import io.cm4j.Device;
import io.cm4j.ErrorCode;
import io.cm4j.Precision;
import io.cm4j.UNet;
import io.cm4j.serve.EnginePool.EngineStats;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A service over two CPU engines: the images of one engine, and an engine that fails. */
class EnginePoolTest {
  private static final int CLIENTS = 16;
  private static Tiny tiny;

  @BeforeAll
  static void references() throws Exception {
    tiny = new Tiny();
    for (int i = 0; i < Tiny.COMBOS; i++) {
      tiny.alone(i); // on one engine, alone
    }
  }

  @AfterAll
  static void close() {
    tiny.close();
  }

  /** Two engines of one thread each: the 2 cores of the test machine. */
  private static GenerationService twoCpuEngines() throws Exception {
    return GenerationService.open(Tiny.model(), List.of(Device.cpu(1), Device.cpu(1)),
        Precision.FP32, ServiceOptions.builder().maxBatch(4).maxWait(Duration.ofMillis(2))
            .queueCapacity(256).build());
  }

  /** 16 clients at once, {@code each} requests apiece, every result checked bit for bit. */
  private static void serveSixteenClients(GenerationService service, int each, int first)
      throws Exception {
    ExecutorService clients = Executors.newFixedThreadPool(CLIENTS);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int c = 0; c < CLIENTS; c++) {
        int client = c;
        done.add(clients.submit(() -> {
          for (int k = 0; k < each; k++) {
            int i = first + client * each + k;
            tiny.assertSameAsAlone(i, service.submit(Tiny.request(i)).get(60, TimeUnit.SECONDS));
          }
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get(120, TimeUnit.SECONDS);
      }
    } finally {
      clients.shutdownNow();
    }
  }

  @Test
  void twoCpuEnginesServeSixteenClientsTheImagesOfOne() throws Exception {
    try (GenerationService service = twoCpuEngines()) {
      serveSixteenClients(service, 3, 0);
      List<EngineStats> engines = service.engineStats();
      assertEquals(2, engines.size());
      for (EngineStats e : engines) {
        assertTrue(e.serving() && e.passes() > 0 && e.imagesInFlight() == 0,
            "both engines ran passes: " + engines);
      }
      assertEquals(service.stats().unetPasses(), engines.get(0).passes() + engines.get(1).passes());
      assertEquals(CLIENTS * 3, service.stats().completed());
    }
  }

  @Test
  void aFailedEngineLeavesThePoolWhileTheOtherKeepsServing() throws Exception {
    try (GenerationService service = twoCpuEngines()) {
      serveSixteenClients(service, 1, 0);
      EnginePool pool = poolOf(service);
      pool.pipeline(0).close(); // the device fails: every pass on it throws from now on
      serveSixteenClients(service, 2, 100);
      List<EngineStats> engines = service.engineStats();
      assertFalse(engines.get(0).serving(), engines.toString());
      assertEquals("UNet is closed", engines.get(0).failure());
      assertTrue(engines.get(1).serving(), engines.toString());
      assertEquals(0, service.stats().failed(), "no request saw the failure");

      // the last engine stays in the pool: its failure fails the pass's requests
      pool.pipeline(1).close();
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> service.submit(Tiny.request(0)).get(60, TimeUnit.SECONDS));
      assertInstanceOf(IllegalStateException.class, e.getCause());
      assertTrue(service.engineStats().get(1).serving());
    }
  }

  /** A pass the engine refuses, or has no memory for, fails alone: the engine stays. */
  @Test
  void aPassOutOfMemoryDoesNotTakeTheEngineOut() {
    assertFalse(EnginePool.isEngineFailure(new Cm4jException(ErrorCode.OUT_OF_MEMORY, "arena")));
    assertFalse(EnginePool.isEngineFailure(new Cm4jException(ErrorCode.INVALID_ARGUMENT, "x")));
    assertTrue(EnginePool.isEngineFailure(new Cm4jException(ErrorCode.DEVICE, "device lost")));
    assertTrue(EnginePool.isEngineFailure(new IllegalStateException("UNet is closed")));
  }

  @Test
  void nativeMemoryCountsEveryEngineAndNoneOnceClosed() throws Exception {
    GenerationService service = twoCpuEngines();
    try {
      serveSixteenClients(service, 1, 0);
      EnginePool pool = poolOf(service);
      long expected = 0;
      for (int i = 0; i < pool.size(); i++) {
        UNet unet = pool.pipeline(i).unet();
        assertTrue(unet.weightBytes() > 0);
        expected += unet.weightBytes() + unet.arenaBytes();
      }
      assertEquals(expected, service.nativeBytes());
    } finally {
      service.close();
    }
    assertEquals(0, service.nativeBytes());
    assertTrue(PrometheusText.render(service, Map.of(), 0)
        .contains("\ncm4j_native_memory_bytes 0\n"), "metrics of a closed service");
  }

  private static EnginePool poolOf(GenerationService service) throws Exception {
    var field = GenerationService.class.getDeclaredField("engines");
    field.setAccessible(true);
    return (EnginePool) field.get(service);
  }

  @Test
  void devicesParseAsListsRangesAndAll() {
    assertEquals(List.of(Device.CPU), EnginePool.parseDevices("cpu", 0, 2));
    assertEquals(List.of(Device.cpu(1), Device.cpu(1)), EnginePool.parseDevices("cpu:0-1", 0, 2));
    assertEquals(List.of(Device.cpu(4), Device.cpu(4)), EnginePool.parseDevices("cpu:0-1", 0, 8));
    assertEquals(List.of(Device.cuda(0), Device.cuda(1)),
        EnginePool.parseDevices("cuda:0,cuda:1", 0, 2));
    assertEquals(List.of(Device.cuda(2), Device.cuda(3), Device.cpu(2)),
        EnginePool.parseDevices("cuda:2-3, cpu:2", 0, 2));
    assertEquals(List.of(Device.cuda(0), Device.cuda(1)), EnginePool.parseDevices("all", 2, 2));
    assertEquals(List.of(Device.CPU), EnginePool.parseDevices("all", 0, 2));
    for (String bad : List.of("cpu:1-0", "gpu:0-1", "cpu:a-1", "cuda:0,", "tpu")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> EnginePool.parseDevices(bad, 0, 2), bad);
      assertTrue(e.getMessage().startsWith("invalid device"), e.getMessage());
    }
  }
}
