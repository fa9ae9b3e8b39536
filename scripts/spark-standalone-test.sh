#!/usr/bin/env bash
# cm4j-spark on a Spark standalone cluster of separate processes on 127.0.0.1: a master and two
# workers of one core each (so two executors of one core), then scripts/spark-generate.sh
# against spark://127.0.0.1:PORT. Checks that the images and both manifests are byte for byte
# those of a local[2] run of the same requests, and reports images/s of the cluster run, of the
# local run and of one `cm4j generate` process on 2 CPU threads (the same total cores).
# Stops every process it started, whatever happens.
#   scripts/spark-standalone-test.sh [REQUESTS]     (default 400, on the tiny test model)
#   CM4J_GOLDEN  golden data folder (default: ../shared/golden beside the project)
#   CM4J_KEEP    set: keep the work folder (logs, outputs) instead of removing it
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-400}"
model="${CM4J_GOLDEN:-$root/../shared/golden}/tiny/pipeline"
work="$(mktemp -d)"
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "${CM4J_KEEP:-}" ]]; then
    echo "spark-standalone-test: logs and outputs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

fail() {
  echo "spark-standalone-test: FAILED: $*" >&2
  exit 1
}

# wait_for FILE PATTERN COUNT: until COUNT log lines match (90 s at most)
wait_for() {
  local i
  for i in $(seq 900); do
    (( $(grep -c "$2" "$1" 2>/dev/null || true) >= $3 )) && return 0
    sleep 0.1
  done
  fail "timed out waiting for '$2' in $1: $(tail -5 "$1")"
}

"$root/scripts/spark-generate.sh" --version > /dev/null # builds when needed

# A Spark home that is only a jars folder: a worker starts executors on SPARK_HOME/jars/*.
mkdir -p "$work/spark-home/jars"
tr ':' '\n' < "$root/spark/target/spark-classpath.txt" | while read -r jar; do
  ln -s "$jar" "$work/spark-home/jars/"
done
export SPARK_HOME="$work/spark-home" SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_IP=127.0.0.1
cat > "$work/log4j2.properties" <<'LOG'
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.deploy.name = org.apache.spark.deploy
logger.deploy.level = info
LOG
# the driver: also the time of each job (the images are made in the SparkHadoopWriter job)
sed 's/^logger.deploy.name = .*/logger.dag.name = org.apache.spark.scheduler.DAGScheduler/;
  s/^logger.deploy.level/logger.dag.level/' "$work/log4j2.properties" > "$work/driver-log4j2.properties"
echo 'logger.cm4j.name = io.cm4j
logger.cm4j.level = info' >> "$work/driver-log4j2.properties"
daemon=(java -Xmx512m "-Dlog4j2.configurationFile=$work/log4j2.properties" -cp "$SPARK_HOME/jars/*")

"${daemon[@]}" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port 0 --webui-port 0 \
  > "$work/master.log" 2>&1 &
pids+=($!)
wait_for "$work/master.log" "Starting Spark master at spark://" 1
url="$(grep -o 'spark://127\.0\.0\.1:[0-9]*' "$work/master.log" | head -1)"
for w in 1 2; do
  mkdir -p "$work/worker$w"
  "${daemon[@]}" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --port 0 --webui-port 0 \
    --cores 1 --memory 2g --work-dir "$work/worker$w" "$url" > "$work/worker$w.log" 2>&1 &
  pids+=($!)
done
wait_for "$work/master.log" "Registering worker" 2
echo "spark-standalone-test: master $url with 2 workers of 1 core (pids ${pids[*]})"

# one-step requests over many classes and seeds, as the generate run below makes them (the
# Maven tests cover the other schedules)
for ((i = 0; i < n; i++)); do
  echo "{\"id\": \"r$i\", \"class\": $(((37 * i + 11) % 1000)), \"seed\": $((7919 * i))}"
done > "$work/requests.jsonl"

run() { # run NAME MASTER [spark-generate options]: the summary line, then the output folder
  local name="$1" master="$2"
  shift 2
  CM4J_SPARK_OPTS="-Dspark.driver.host=127.0.0.1 -Dspark.executor.cores=1 -Dspark.cores.max=2 \
-Dspark.executor.memory=1g -Dlog4j2.configurationFile=$work/driver-log4j2.properties \
${CM4J_SPARK_OPTS:-}" \
    "$root/scripts/spark-generate.sh" --master "$master" --model "$model" \
    --requests "$work/requests.jsonl" --output "$work/$name" "$@" > "$work/$name.out" \
    2> "$work/$name.err" || fail "$name run: $(tail -5 "$work/$name.err")"
  grep 'spark-generate: .* images' "$work/$name.err" | sed "s/^/$name: /"
  (grep -o 'SparkHadoopWriter.scala:[0-9]*, took [0-9.]* s' "$work/$name.err" || true) \
    | awk -v n="$n" -v name="$name" \
      '{ printf "%s: the job that makes the images: %.1f s (%.2f images/s)\n", name, $3, n / $3 }'
}

run standalone "$url" --device cpu:1
run local 'local[2]' --device cpu:2
ok=$(ls "$work/standalone/images" | wc -l)
[[ "$ok" == "$n" ]] || fail "expected $n images from the cluster, found $ok"
diff -r "$work/local/images" "$work/standalone/images" > /dev/null \
  || fail "the cluster's images differ from local mode's"
cmp "$work/local/manifest.jsonl" "$work/standalone/manifest.jsonl" \
  || fail "the cluster's manifest.jsonl differs from local mode's"
executors=$(find "$work/worker1" "$work/worker2" -name stderr -path '*app-*' | wc -l)
[[ "$executors" -ge 2 ]] || fail "expected an executor on each worker, found $executors"
grep -h 'cm4j: opened' "$work"/worker*/app-*/*/stderr | sed 's/^/executor: /'
echo "spark-standalone-test: $n images identical to local mode, $executors executors"

# one generate process with the same 2 cores, the same count of images in one batch
start=$(date +%s.%N)
"$root/cm4j" generate --model "$model" --device cpu:2 --batch "$n" --class 145 --seed 0 \
  --out "$work/generate" > /dev/null 2> "$work/generate.err" \
  || fail "generate: $(tail -3 "$work/generate.err")"
end=$(date +%s.%N)
awk -v n="$n" -v s="$start" -v e="$end" \
  'BEGIN { printf "generate: %d images in %.1f s (%.2f images/s), one process, cpu:2, 1 step\n", n, e - s, n / (e - s) }'
