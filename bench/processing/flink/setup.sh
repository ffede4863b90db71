#!/usr/bin/env bash
# Apache Flink peer of the processing benchmark (bench/processing/): fetches Flink's DataStream API
# with the local MiniCluster (flink-streaming-java, flink-clients), the file source
# (flink-connector-files) and Log4j 2 as the SLF4J 1.7 backend (log4j-slf4j-impl, as in Flink's
# own distribution), with all their dependencies, into a cache outside the repository
# (SLUICE_CACHE, default ~/.cache/sluice/flink-<version>/lib), and compiles WindowJob.java into
# <cache>/classes when the source is newer. Idempotent.
#   bench/processing/flink/setup.sh            prepare, then print the class path to run WindowJob with
#   bench/processing/flink/setup.sh classpath  the same, class path only (for scripts)
#   FLINK_VERSION=2.2.1 ...                     another Flink 2.x release
set -euo pipefail
VERSION=${FLINK_VERSION:-2.3.0}
LOG4J_VERSION=${LOG4J_VERSION:-2.24.3}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/flink-$VERSION
SRC=$(cd "$(dirname "$0")" && pwd)/WindowJob.java
log() { printf '[flink] %s\n' "$*" >&2; }

fetch() {
  local deps='' a pom
  for a in flink-streaming-java flink-clients flink-connector-files; do
    deps="$deps<dependency><groupId>org.apache.flink</groupId><artifactId>$a</artifactId><version>$VERSION</version></dependency>"
  done
  for a in log4j-slf4j-impl log4j-core log4j-api; do
    deps="$deps<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>$a</artifactId><version>$LOG4J_VERSION</version></dependency>"
  done
  pom=$(cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.bench</groupId>
  <artifactId>flink-peer-runtime</artifactId>
  <version>1</version>
  <dependencies>$deps</dependencies>
</project>
POM
)
  # Fetched already for this very pom: nothing to do.
  [ -f "$CACHE/lib/.complete" ] && [ "$(cat "$CACHE/pom.xml" 2>/dev/null)" = "$pom" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  rm -rf "$CACHE/lib" && mkdir -p "$CACHE/lib"
  printf '%s\n' "$pom" > "$CACHE/pom.xml"
  log "fetching Flink $VERSION (streaming-java, clients, connector-files) and its dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$CACHE/lib" >&2
  touch "$CACHE/lib/.complete"
}

compile() {
  command -v javac >/dev/null || { log "javac is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  mkdir -p "$CACHE/classes"
  if [ ! -f "$CACHE/classes/WindowJob.class" ] || [ "$SRC" -nt "$CACHE/classes/WindowJob.class" ]; then
    log "compiling $SRC"
    rm -f "$CACHE"/classes/WindowJob*.class
    javac -nowarn -d "$CACHE/classes" -cp "$CACHE/lib/*" "$SRC" >&2
  fi
}

fetch
compile
case "${1:-}" in
  classpath) ;;
  '') log "Flink $VERSION ready in $CACHE; class path:" ;;
  *) echo "usage: $0 [classpath]" >&2; exit 2 ;;
esac
printf '%s\n' "$CACHE/classes:$CACHE/lib/*"
