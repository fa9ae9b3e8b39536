package io.cm4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cm4j.edit.EditTask;
import io.cm4j.pipeline.ConsistencyModelPipeline;
import io.cm4j.pipeline.GenerationRequest;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.Rectangle;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.interactions.Actions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.logging.LoggingPreferences;

/**
 * The page in a real browser (Debian's headless chromium and chromedriver) against the server
 * on the tiny model: it loads without console errors, the class search finds "goldfish", a
 * generate click shows the image the Java pipeline makes for the same class and seed, pixel
 * for pixel, the service panel updates, and the edit tab inpaints the gallery's image under a
 * mask painted with the brush, as the Java editor does alone; the search box sits above the
 * class list at its width. Each step leaves a screenshot in {@code target/browser/}. Skipped
 * where chromium or chromedriver is not installed.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class) // the first counts the service's requests
class BrowserTest {
  private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
  private static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
  private static final Path SHOTS = Path.of("target", "browser");

  private static GenerationService service;
  private static GenerationServer server;
  private static ChromeDriver browser;

  @BeforeAll
  static void start() throws Exception {
    assumeTrue(Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER),
        "chromium and chromium-driver are not installed");
    service = GenerationService.open(Tiny.model(), ServiceOptions.DEFAULT);
    server = GenerationServer.builder(service).address(new InetSocketAddress("127.0.0.1", 0))
        .start();
    ChromeOptions options = new ChromeOptions();
    options.setBinary(CHROMIUM.toFile());
    options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
        "--disable-gpu", "--window-size=1200,800", "--no-first-run");
    LoggingPreferences logs = new LoggingPreferences();
    logs.enable(LogType.BROWSER, Level.ALL);
    options.setCapability("goog:loggingPrefs", logs);
    ChromeDriverService driver = new ChromeDriverService.Builder()
        .usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort().build();
    browser = new ChromeDriver(driver, options);
    Files.createDirectories(SHOTS);
  }

  @AfterAll
  static void stop() {
    if (browser != null) {
      browser.quit();
    }
    if (server != null) {
      server.close();
    }
    if (service != null) {
      service.close();
    }
  }

  private static void screenshot(String name) throws Exception {
    Files.write(SHOTS.resolve(name + ".png"), browser.getScreenshotAs(OutputType.BYTES));
  }

  /** Polls {@code condition} until it gives a value other than null or false (30 s). */
  private static <T> T until(Function<ChromeDriver, T> condition) throws InterruptedException {
    long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (true) {
      T value = condition.apply(browser);
      if (value != null && !Boolean.FALSE.equals(value)) {
        return value;
      }
      if (System.nanoTime() - end > 0) {
        throw new AssertionError("the page did not get there within 30 s");
      }
      Thread.sleep(50);
    }
  }

  @Test
  @Order(1)
  void theGenerateTabMakesThePipelinesImageAndTheServicePanelFollows() throws Exception {
    browser.get(server.uri().toString() + "/");
    until(d -> d.findElements(By.cssSelector("#class-select option")).size() == 1000);
    until(d -> !d.findElement(By.id("m-completed")).getText().equals("-"));
    screenshot("1-loaded");
    assertEquals(List.of(), severe(), "console errors on load");

    browser.findElement(By.id("class-search")).sendKeys("goldfish");
    List<WebElement> found = browser.findElements(By.cssSelector("#class-select option"));
    assertEquals(List.of("1: goldfish"), found.stream().map(WebElement::getText).toList());
    assertEquals("1", browser.findElement(By.id("class-select")).getAttribute("value"));
    screenshot("2-class-search");

    WebElement seed = browser.findElement(By.id("seed"));
    seed.clear();
    seed.sendKeys("12");
    browser.findElement(By.id("generate-button")).click();
    WebElement img = until(d -> d.findElements(By.cssSelector("#gallery .card img"))
        .stream().filter(i -> (Boolean) d.executeScript(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", i))
        .findFirst().orElse(null));
    String caption = browser.findElement(By.cssSelector("#gallery .card div")).getText();
    assertTrue(caption.startsWith("1: goldfish, seed 12"), caption);
    screenshot("3-generated");

    BufferedImage shown = ImageIO.read(new ByteArrayInputStream(blob(img)));
    byte[] expected;
    try (ConsistencyModelPipeline pipeline = ConsistencyModelPipeline.open(Tiny.model())) {
      expected = pipeline.generate(GenerationRequest.builder().classLabels(1).seed(12)
          .numInferenceSteps(1).build()).toUint8(); // [1, H, W, 3]
    }
    int size = service.imageSize();
    assertEquals(size, shown.getWidth());
    int[] rgb = shown.getRaster().getPixels(0, 0, size, size, (int[]) null);
    assertEquals(expected.length, rgb.length);
    for (int k = 0; k < rgb.length; k++) {
      assertEquals(expected[k] & 0xff, rgb[k], "pixel value " + k);
    }

    until(d -> d.findElement(By.id("m-completed")).getText().equals("1"));
    String rate = browser.findElement(By.id("m-rate")).getText();
    assertTrue(rate.matches("[0-9.]+"), "images/s shown: " + rate);
    assertTrue(browser.findElement(By.id("m-p50")).getText().endsWith(" ms"));
    screenshot("4-service-panel");
    Map<?, ?> status = (Map<?, ?>) browser.executeScript(
        "return {text: document.getElementById('status').textContent,"
            + " cls: document.getElementById('status').className}");
    assertEquals("", status.get("cls"), "status: " + status.get("text"));

    // The edit tab: the gallery's image, a mask painted with the brush, inpainted.
    browser.findElement(By.cssSelector("#gallery .card .edit-this")).click();
    assertTrue(browser.findElement(By.id("edit")).isDisplayed());
    WebElement canvas = browser.findElement(By.id("paint"));
    new Actions(browser).moveToElement(canvas, -60, -80).clickAndHold().moveByOffset(40, 60)
        .moveByOffset(40, 60).release().perform();
    WebElement steps = browser.findElement(By.id("edit-steps"));
    steps.sendKeys("2");
    browser.findElement(By.id("edit-button")).click();
    until(d -> d.findElement(By.id("edit-status")).getText().startsWith("inpaint done"));
    screenshot("5-edit-inpaint");
    Map<?, ?> sent = (Map<?, ?>) browser.executeScript("return window.lastEdit.body");
    byte[] image = dataUrl((String) sent.get("image"));
    byte[] mask = dataUrl((String) sent.get("mask"));
    int[] painted = EditServerTest.pixels(mask);
    assertTrue(java.util.Arrays.stream(painted).anyMatch(v -> v == 255)
        && java.util.Arrays.stream(painted).anyMatch(v -> v == 0), "a mask was painted");
    int[] shownEdit = EditServerTest.pixels(blob(browser.findElement(By.id("edit-result"))));
    int[] aloneEdit;
    try (ConsistencyModelPipeline pipeline = ConsistencyModelPipeline.open(Tiny.model())) {
      aloneEdit = EditServerTest.alone(pipeline, EditTask.INPAINT, image, mask, 0, 2, 1);
    }
    assertEquals(aloneEdit.length, shownEdit.length);
    for (int k = 0; k < aloneEdit.length; k++) {
      assertEquals(aloneEdit[k], shownEdit[k], "edited pixel value " + k);
    }
    assertEquals(List.of(), severe(), "console errors after editing");
  }

  /**
   * A file the browser cannot decode is reported in the edit status line (not an unhandled
   * rejection), and a new result frees the previous result's blob: URL.
   */
  @Test
  @Order(2)
  void editErrorsShowInTheStatusLineAndOldResultsAreFreed() throws Exception {
    browser.get(server.uri().toString() + "/");
    until(d -> d.findElements(By.cssSelector("#class-select option")).size() == 1000);
    browser.manage().logs().get(LogType.BROWSER); // drop what loading logged
    browser.findElement(By.id("tab-edit")).click();
    Path notAnImage = Files.writeString(Files.createTempFile("cm4j-not-an-image", ".png"),
        "not an image");
    Path png = Files.createTempFile("cm4j-image", ".png");
    try {
      browser.findElement(By.id("edit-file")).sendKeys(notAnImage.toString());
      WebElement status = browser.findElement(By.id("edit-status"));
      until(d -> status.getText().startsWith("failed: cannot read "));
      assertEquals("error", status.getAttribute("class"));
      screenshot("6-edit-unreadable-file");
      assertEquals(List.of(), severe(), "console errors after an unreadable file");

      try (ConsistencyModelPipeline pipeline = ConsistencyModelPipeline.open(Tiny.model())) {
        ImageIO.write(pipeline.generate(GenerationRequest.builder().classLabels(1).seed(3)
            .build()).toBufferedImages().get(0), "png", png.toFile());
      }
      browser.findElement(By.id("edit-file")).sendKeys(png.toString());
      until(d -> status.getText().startsWith("uploaded "));
      browser.executeScript("document.getElementById('edit-task').value = 'colorize'");
      List<String> results = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        browser.findElement(By.id("edit-button")).click();
        until(d -> status.getText().startsWith("colorize done")
            && !results.contains(d.findElement(By.id("edit-result")).getAttribute("src")));
        results.add(browser.findElement(By.id("edit-result")).getAttribute("src"));
      }
      assertEquals(List.of(), severe(), "console errors after editing");
      Object first = browser.executeAsyncScript("const done = arguments[1];"
          + "fetch(arguments[0]).then(() => done('readable'), () => done('revoked'));",
          results.get(0));
      assertEquals("revoked", first, "the first result's URL once the second is shown");
    } finally {
      browser.manage().logs().get(LogType.BROWSER); // that fetch's error is this test's
      Files.delete(notAnImage);
      Files.delete(png);
    }
  }

  /**
   * The class search box stands above the class list it filters, on the list's left edge and at
   * its width, so the two read as one control (a review found the box beside the list instead).
   */
  @Test
  @Order(3)
  void theClassSearchBoxSitsAboveTheClassListAtItsWidth() throws Exception {
    browser.get(server.uri().toString() + "/");
    until(d -> d.findElements(By.cssSelector("#class-select option")).size() == 1000);
    screenshot("7-class-search-layout");
    Rectangle search = browser.findElement(By.id("class-search")).getRect();
    Rectangle list = browser.findElement(By.id("class-select")).getRect();
    String rects = "search box " + describe(search) + ", class list " + describe(list);
    assertTrue(Math.abs(search.getX() - list.getX()) <= 1, "left edges differ: " + rects);
    assertTrue(Math.abs(search.getWidth() - list.getWidth()) <= 1, "widths differ: " + rects);
    assertTrue(search.getY() + search.getHeight() <= list.getY(), "not above the list: " + rects);
  }

  private static String describe(Rectangle r) {
    return "x " + r.getX() + " y " + r.getY() + " " + r.getWidth() + "x" + r.getHeight();
  }

  private static byte[] dataUrl(String url) {
    return Base64.getDecoder().decode(url.substring(url.indexOf(',') + 1));
  }

  /** The bytes of an img element's blob: URL, as the browser holds them. */
  private static byte[] blob(WebElement img) {
    String base64 = (String) browser.executeAsyncScript("const done = arguments[1];"
        + "fetch(arguments[0].src).then(r => r.arrayBuffer()).then(b => {"
        + "  let s = ''; new Uint8Array(b).forEach(x => s += String.fromCharCode(x));"
        + "  done(btoa(s)); });", img);
    return Base64.getDecoder().decode(base64);
  }

  private static List<String> severe() {
    List<String> errors = new ArrayList<>();
    for (LogEntry e : browser.manage().logs().get(LogType.BROWSER)) {
      if (e.getLevel().intValue() >= Level.WARNING.intValue()) {
        errors.add(e.getMessage());
      }
    }
    return errors;
  }
}
