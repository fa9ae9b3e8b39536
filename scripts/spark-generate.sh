#!/usr/bin/env bash
# spark-generate: one image per request row on Apache Spark (io.cm4j.spark.SparkGenerate).
#   scripts/spark-generate.sh [--master local[2]|spark://HOST:PORT] --model ID|DIR
#       --requests FILE.jsonl|FILE.parquet --output DIR [--device ...] [--dtype ...]
# Builds the spark module (and what it needs) on first use or when sources changed, then runs
# the driver here with Spark's class path; the executors of a spark:// master get the cm4j jars
# from the driver (spark.jars). --help lists the options.
#   CM4J_SPARK_OPTS  extra JVM options for the driver, e.g. -Dspark.executor.cores=1
#   CM4J_MVN_ARGS    extra Maven arguments for the build (e.g. -Dcm4j.cuda=OFF)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jar="$root/spark/target/cm4j-spark.jar"
spark_cp="$root/spark/target/spark-classpath.txt"

stale() {
  [[ -f "$jar" && -f "$spark_cp" && -f "$root/java/target/cm4j.jar" ]] || return 0
  local newer
  newer="$(find "$root/pom.xml" "$root/spark/pom.xml" "$root/spark/src/main" "$root/java/pom.xml" \
    "$root/java/src/main" "$root/weights-tools/src/main" "$root/native/src" "$root/native/include" \
    -newer "$jar" -type f -print -quit 2>/dev/null || true)"
  [[ -n "$newer" ]]
}

if stale; then
  echo "spark-generate: building (first use or sources changed)..." >&2
  # shellcheck disable=SC2086
  if ! (cd "$root" && mvn -q -DskipTests ${CM4J_MVN_ARGS:-} package -pl spark -am) >&2; then
    echo "spark-generate: build failed (command: cd $root && mvn -DskipTests package -pl spark -am)" >&2
    exit 1
  fi
  touch "$jar"
fi

# cm4j's jars: on the driver's class path, and shipped to the executors
app_jars=("$jar" "$root/java/target/cm4j.jar" "$root/java/target/lib/"*.jar)
app_cp="$(IFS=:; echo "${app_jars[*]}")"
ship="$(IFS=,; echo "${app_jars[*]}")"

# the module opens Spark needs on JDK 17 (what spark-submit adds)
opens=(-XX:+IgnoreUnrecognizedVMOptions -Djdk.reflect.useDirectMethodHandle=false)
for p in java.lang java.lang.invoke java.lang.reflect java.io java.net java.nio java.util \
    java.util.concurrent java.util.concurrent.atomic jdk.internal.ref sun.nio.ch sun.nio.cs \
    sun.security.action sun.util.calendar; do
  opens+=("--add-opens=java.base/$p=ALL-UNNAMED")
done

# shellcheck disable=SC2086
exec java "${opens[@]}" -Dlog4j2.configurationFile="$root/scripts/spark-log4j2.properties" \
  -Dspark.jars="$ship" ${CM4J_SPARK_OPTS:-} -cp "$app_cp:$(cat "$spark_cp")" \
  io.cm4j.spark.SparkGenerate "$@"
