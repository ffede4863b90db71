#!/usr/bin/env bash
# Delta Lake's reference reader for the Delta Lake sink's tests: scripts/java/DeltaRead.java, on Delta Kernel
# (io.delta:delta-kernel-api and delta-kernel-defaults, the default engine; Hadoop's client and Parquet come
# with it), prints a table's snapshot as one JSON document (see the top of DeltaRead.java for its shape).
#   scripts/delta-reader.sh --fetch                        fetch the jars (once) and compile the reader (when changed)
#   scripts/delta-reader.sh <tablePath> [--version N]      the table's latest snapshot, or the one at version N
#                                                          (fetching first if needed); the JSON on stdout,
#                                                          errors on stderr with exit status 1
#   scripts/delta-reader.sh --classpath                    fetch, then print the class path it runs with
#   scripts/delta-reader.sh --kernel-version               the Delta Kernel version it runs
# The jars are fetched with Maven into a cache outside the repository (SLUICE_CACHE, default
# ~/.cache/sluice/delta-kernel/<version>): lib/ the jars, classes/ the compiled reader, log4j2.properties.
# Idempotent, and quick when done; concurrent callers wait for one another (flock) rather than fetch twice.
# DELTA_KERNEL_VERSION (4.4.0), DELTA_READER_HEAP (-Xmx512m), JAVA_HOME override.
set -euo pipefail
# 4.4.0: the newest release whose delta-kernel-defaults Maven Central serves here (delta-kernel-api 4.4.1 is
# served, its delta-kernel-defaults is not). Built for Java 11 (class files 55): runs on JDK 17. It brings
# hadoop-client-api and hadoop-client-runtime 3.4.2 and parquet-hadoop 1.16.0 itself.
VERSION=${DELTA_KERNEL_VERSION:-4.4.0}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/delta-kernel/$VERSION
SRC=$(cd "$(dirname "$0")" && pwd)/java/DeltaRead.java
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
JAVAC=${JAVA_HOME:+$JAVA_HOME/bin/}javac
log() { printf '[delta-reader] %s\n' "$*" >&2; }

dep() { printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' "$1" "$2" "$3"; }

fetch() {
  # Kernel logs through SLF4J and its delta-storage brings log4j 2's SLF4J 2 binding, but Maven picks
  # kernel-api's SLF4J 1.7 API, which finds no binding and says so on stderr: the SLF4J 2 API, so the log4j 2
  # binding is used, quieted by log4j2.properties below.
  local pom
  pom=$(cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>delta-reader-runtime</artifactId>
  <version>1</version>
  <dependencies>$(dep io.delta delta-kernel-api "$VERSION")$(dep io.delta delta-kernel-defaults "$VERSION")$(dep org.slf4j slf4j-api 2.0.17)</dependencies>
</project>
POM
)
  # Fetched already for this very pom: nothing to do.
  [ -f "$CACHE/lib/.complete" ] && [ "$(cat "$CACHE/pom.xml" 2>/dev/null)" = "$pom" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  rm -rf "$CACHE/lib" "$CACHE/classes" && mkdir -p "$CACHE/lib"
  printf '%s\n' "$pom" > "$CACHE/pom.xml"
  log "fetching Delta Kernel $VERSION (api, defaults) and its dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CACHE/lib" > "$CACHE/mvn.log" 2>&1 || { tail -n 30 "$CACHE/mvn.log" >&2; log "Maven failed fetching Delta Kernel $VERSION"; return 1; }
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
appender.err.layout.pattern = [delta-reader] %p %c{1}: %m%n
rootLogger.level = ERROR
rootLogger.appenderRef.err.ref = ERR
EOF
}

compile() {
  command -v "$JAVAC" >/dev/null || { log "javac is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  if [ ! -f "$CACHE/classes/DeltaRead.class" ] || [ "$SRC" -nt "$CACHE/classes/DeltaRead.class" ]; then
    log "compiling $SRC"
    rm -rf "$CACHE/classes.tmp" && mkdir -p "$CACHE/classes.tmp"
    "$JAVAC" -nowarn --release 17 -d "$CACHE/classes.tmp" -cp "$CACHE/lib/*" "$SRC" >&2
    rm -rf "$CACHE/classes" && mv "$CACHE/classes.tmp" "$CACHE/classes"
  fi
}

prepare() {
  mkdir -p "$CACHE"
  # One preparer at a time (tests may start several readers at once on a cold cache).
  exec 9> "$CACHE/.lock"
  flock 9
  fetch
  log_config
  compile
  exec 9>&-
}

run() {
  [ $# -ge 1 ] || { echo "usage: $0 <tablePath> [--version N]" >&2; exit 2; }
  command -v "$JAVA" >/dev/null || { log "java is not installed (apt-get install openjdk-17-jdk-headless)"; exit 1; }
  prepare
  # The JVM's own warnings go to stdout unless told otherwise (-Xlog): to stderr, so stdout is the JSON alone.
  # shellcheck disable=SC2086
  exec "$JAVA" ${DELTA_READER_HEAP:--Xmx512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xlog:disable -Xlog:all=warning:stderr -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CACHE/log4j2.properties" \
    -cp "$CACHE/classes:$CACHE/lib/*" DeltaRead "$@"
}

case "${1:-}" in
  --fetch) prepare; log "Delta Kernel $VERSION reader ready in $CACHE" ;;
  --classpath) prepare; printf '%s\n' "$CACHE/classes:$CACHE/lib/*" ;;
  --kernel-version) printf '%s\n' "$VERSION" ;;
  ''|-h|--help) echo "usage: $0 --fetch | <tablePath> [--version N] | --classpath | --kernel-version" >&2; exit 2 ;;
  *) run "$@" ;;
esac
