#!/usr/bin/env bash
# Delta Lake's second reference reader for the Delta Lake sink's tests: scripts/java/DeltaSparkRead.java, on Delta
# Spark (io.delta:delta-spark_2.13) in Spark local mode (org.apache.spark:spark-sql_2.13, one JVM per call, no
# Hive, no UI). It reads what Delta Kernel cannot: a table's Change Data Feed. Prints one JSON document on stdout
# (see the top of DeltaSparkRead.java for the shapes; values are rendered as scripts/java/DeltaRead.java renders
# them, so the two readers' output can be compared).
#   scripts/delta-spark.sh --fetch                          fetch the jars (once) and compile the reader (when changed)
#   scripts/delta-spark.sh cdf <tablePath> --from N [--to M]
#                                                           the change data feed of versions N..M (M: the latest);
#                                                           {"schema":[…], "rows":[…]}, each row with _change_type,
#                                                           _commit_version and _commit_timestamp
#   scripts/delta-spark.sh snapshot <tablePath> [--version N]
#                                                           the rows at version N (or the latest), in DeltaRead's shape
#   scripts/delta-spark.sh sql <warehouseDir> <statement>…   runs Spark SQL statements in order in one session (for
#                                                           tests that need Spark to write a table: CREATE, INSERT,
#                                                           UPDATE, DELETE, MERGE…); each table directory already in
#                                                           warehouseDir (one with a _delta_log) is registered first
#                                                           under its name, so `INSERT INTO t …` works across calls;
#                                                           prints {"results":[{"statement", "schema", "rows"}…]}
#   scripts/delta-spark.sh --classpath                      fetch, then print the class path it runs with
#   scripts/delta-spark.sh --versions                       {"spark": "…", "delta": "…"}
# Errors: the message on stderr, exit status 1 (a wrong command line: exit status 2).
# The jars are fetched with Maven into a cache outside the repository (SLUICE_CACHE, default
# ~/.cache/sluice/delta-spark/<delta version>-spark<spark version>): lib/ the jars, reader.jar the compiled reader,
# log4j2.properties, cds-<jvm>.jsa a class-data sharing archive of the classes a call loads (made once, at the
# first call or --fetch, by a training call that takes 30-60 s; see archive() below). Idempotent, and quick when
# done; concurrent callers wait for one another (flock) rather than fetch twice. A call takes 5-10 s (one JVM,
# Spark's session ~2 s of it). DELTA_SPARK_VERSION, SPARK_VERSION, DELTA_SPARK_HEAP (-Xmx1g), DELTA_SPARK_CDS=0
# (no archive), JAVA_HOME override.
set -euo pipefail
# delta-spark 4.2.0 is built against Spark 4.1.0 (its POM's provided spark-sql/spark-core); Spark 4.1 runs on Java 17+. Spark
# itself is a provided dependency of delta-spark, so it is named here, at exactly the version Delta built against.
DELTA=${DELTA_SPARK_VERSION:-4.2.0}
SPARK=${SPARK_VERSION:-4.1.0}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/delta-spark/$DELTA-spark$SPARK
SRC=$(cd "$(dirname "$0")" && pwd)/java/DeltaSparkRead.java
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
JAVAC=${JAVA_HOME:+$JAVA_HOME/bin/}javac
JAR=${JAVA_HOME:+$JAVA_HOME/bin/}jar
log() { printf '[delta-spark] %s\n' "$*" >&2; }

dep() { printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' "$1" "$2" "$3"; }

fetch() {
  local pom
  pom=$(cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>delta-spark-runtime</artifactId>
  <version>1</version>
  <dependencies>$(dep org.apache.spark spark-sql_2.13 "$SPARK")$(dep io.delta delta-spark_2.13 "$DELTA")</dependencies>
</project>
POM
)
  # Fetched already for this very pom: nothing to do.
  [ -f "$CACHE/lib/.complete" ] && [ "$(cat "$CACHE/pom.xml" 2>/dev/null)" = "$pom" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  rm -rf "$CACHE/lib" "$CACHE/classes" "$CACHE/reader.jar" "$CACHE"/cds-* && mkdir -p "$CACHE/lib"
  printf '%s\n' "$pom" > "$CACHE/pom.xml"
  log "fetching Spark $SPARK (spark-sql) and Delta Spark $DELTA with their dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CACHE/lib" > "$CACHE/mvn.log" 2>&1 || { tail -n 30 "$CACHE/mvn.log" >&2; log "Maven failed fetching Spark $SPARK / Delta Spark $DELTA"; return 1; }
  touch "$CACHE/lib/.complete"
}

log_config() {
  [ -f "$CACHE/log4j2.properties" ] && return 0
  # Errors only, to stderr (the reader's own error message is what a test shows; stdout is the JSON).
  cat > "$CACHE/log4j2.properties" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [delta-spark] %p %c{1}: %m%n
rootLogger.level = ERROR
rootLogger.appenderRef.err.ref = ERR
EOF
}

compile() {
  command -v "$JAVAC" >/dev/null || { log "javac is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  if [ ! -f "$CACHE/reader.jar" ] || [ "$SRC" -nt "$CACHE/reader.jar" ]; then
    log "compiling $SRC"
    rm -rf "$CACHE/classes" && mkdir -p "$CACHE/classes"
    "$JAVAC" -nowarn --release 17 -d "$CACHE/classes" -cp "$CACHE/lib/*" "$SRC" >&2
    # A jar, not a directory: the class-data sharing archive below takes only jars on the class path.
    "$JAR" cf "$CACHE/reader.jar.tmp" -C "$CACHE/classes" . && mv "$CACHE/reader.jar.tmp" "$CACHE/reader.jar"
  fi
}

# Starting Spark loads some 15,000 classes: a class-data sharing archive of them (JDK 13+ dynamic AppCDS), made
# once by a training call that writes, then reads back, a small Change Data Feed table, halves a call's CPU time.
# One archive per JVM (an archive is only good for the JVM that wrote it) and per reader.jar; when it cannot be
# made the reader runs without it. DELTA_SPARK_CDS=0: none.
archive() {
  [ "${DELTA_SPARK_CDS:-1}" = 0 ] && return 0
  local jdk tmp
  jdk=$("$JAVA" -version 2>&1 | cksum | cut -d' ' -f1)
  CDS=$CACHE/cds-$jdk.jsa
  [ -f "$CDS" ] && [ "$CDS" -nt "$CACHE/reader.jar" ] && return 0
  # Tried for this JVM and this reader.jar, and failed: not again at every call.
  [ -f "$CDS.failed" ] && [ "$CDS.failed" -nt "$CACHE/reader.jar" ] && return 0
  rm -f "$CACHE"/cds-*
  log "making a class-data sharing archive of Spark's classes for quicker starts (once; 30-60 s)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/delta-spark-train.XXXXXX")
  if jvm -XX:ArchiveClassesAtExit="$CDS.tmp" -DDeltaSparkRead.exit=true -Djava.io.tmpdir="$tmp" DeltaSparkRead sql "$tmp/warehouse" \
      "CREATE TABLE t (id BIGINT NOT NULL, name STRING, amount DECIMAL(10,2), at TIMESTAMP, day DATE, tags ARRAY<INT>, attrs MAP<STRING,BIGINT>) USING delta TBLPROPERTIES (delta.enableChangeDataFeed = true)" \
      "INSERT INTO t VALUES (1, 'a', 1.50, TIMESTAMP'2026-01-01 00:00:00', DATE'2026-01-01', array(1), map('k', 1)), (2, 'b', NULL, NULL, NULL, NULL, NULL)" \
      "UPDATE t SET name = 'c' WHERE id = 2" "DELETE FROM t WHERE id = 1" \
      "SELECT * FROM table_changes('t', 0) ORDER BY _commit_version" "SELECT * FROM t VERSION AS OF 1" > "$CACHE/cds.log" 2>&1 \
      && [ -s "$CDS.tmp" ]; then
    mv "$CDS.tmp" "$CDS"
  else
    rm -f "$CDS.tmp"
    log "no class-data sharing archive (see $CACHE/cds.log); running without one"
    touch "$CDS.failed"
  fi
  rm -rf "$tmp"
}

prepare() {
  mkdir -p "$CACHE"
  # One preparer at a time (tests may start several readers at once on a cold cache).
  exec 9> "$CACHE/.lock"
  flock 9
  fetch
  log_config
  compile
  archive
  exec 9>&-
}

# What Spark's own launcher adds on Java 17+ (its JavaModuleOptions): Spark and its libraries reach into
# java.base (direct buffers, Unsafe, reflection on collections).
OPENS=(
  -XX:+IgnoreUnrecognizedVMOptions
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true
)

# The JVM with Spark's flags, the reader on its class path. Its own warnings go to stdout unless told otherwise
# (-Xlog): to stderr, so stdout is the JSON alone. C1 only and the serial collector: a call is short.
jvm() {
  # shellcheck disable=SC2086
  "$JAVA" ${DELTA_SPARK_HEAP:--Xmx1g} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xlog:disable -Xlog:all=warning:stderr \
    -Djava.awt.headless=true "${OPENS[@]}" -Dlog4j2.configurationFile="$CACHE/log4j2.properties" \
    -cp "$CACHE/reader.jar:$CACHE/lib/*" "$@"
}

run() {
  command -v "$JAVA" >/dev/null || { log "java is not installed (apt-get install openjdk-17-jdk-headless)"; exit 1; }
  prepare
  # Spark writes scratch files under java.io.tmpdir (and spark.local.dir, set to it by the reader): a private
  # temporary directory, removed when the call ends.
  local tmp status=0 share=()
  [ -n "${CDS:-}" ] && [ -f "$CDS" ] && share=(-Xshare:auto -XX:SharedArchiveFile="$CDS")
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/delta-spark.XXXXXX")
  jvm "${share[@]}" -Djava.io.tmpdir="$tmp" DeltaSparkRead "$@" || status=$?
  rm -rf "$tmp"
  exit "$status"
}

usage() {
  echo "usage: $0 --fetch | cdf <tablePath> --from N [--to M] | snapshot <tablePath> [--version N] | sql <warehouseDir> <statement>… | --classpath | --versions" >&2
  exit 2
}

case "${1:-}" in
  --fetch) prepare; log "Spark $SPARK + Delta Spark $DELTA reader ready in $CACHE" ;;
  --classpath) prepare; printf '%s\n' "$CACHE/reader.jar:$CACHE/lib/*" ;;
  --versions) printf '{"spark":"%s","delta":"%s"}\n' "$SPARK" "$DELTA" ;;
  cdf|snapshot|sql) run "$@" ;;
  *) usage ;;
esac
