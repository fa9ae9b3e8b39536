package io.cm4j.spark;

import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** Tests on a local-mode Spark session of their own, with the tiny model's references. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class LocalSpark {
  @TempDir Path tmp;
  SparkSession spark;
  TinyModel tiny;

  /** local[THREADS] or local[THREADS,MAX_FAILURES]. */
  abstract String master();

  @BeforeAll
  void start() throws Exception {
    spark = SparkSession.builder().master(master()).appName("cm4j-spark-test")
        .config("spark.ui.enabled", false).config("spark.sql.shuffle.partitions", 2)
        .getOrCreate();
    tiny = new TinyModel();
  }

  /** Stops Spark and closes the engines its tasks opened in this JVM. */
  @AfterAll
  void stop() {
    spark.stop();
    tiny.close();
    ExecutorEngines.closeAll();
  }
}
