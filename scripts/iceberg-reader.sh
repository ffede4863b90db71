#!/usr/bin/env bash
# Apache Iceberg's reference reader for the Iceberg sink's tests: scripts/java/IcebergRead.java, on the Iceberg
# Java library (org.apache.iceberg:iceberg-core, iceberg-data, iceberg-parquet; Hadoop's shaded client for
# HadoopTables/HadoopFileIO and Parquet; the PostgreSQL JDBC driver for Iceberg's JDBC catalog), prints what it
# read as one JSON document (see the top of IcebergRead.java for the shapes and value forms).
#   scripts/iceberg-reader.sh --fetch                  fetch the jars (once) and compile the reader (when changed)
#   scripts/iceberg-reader.sh <mode> <table> [opts]    read; the JSON on stdout, errors on stderr with exit status 1
#     <mode>:  snapshots | scan [--snapshot ID] | incremental --from ID [--to ID] | files [--snapshot ID]
#     <table>: --table <table dir | metadata.json>     a file-system table: HadoopTables when metadata/ has
#                                                      version-hint.text, else the newest *.metadata.json
#            | --jdbc <jdbc:postgresql://127.0.0.1:5432/db> --id <namespace.table> [--catalog NAME] [--warehouse DIR]
#                                                      Iceberg's JdbcCatalog (catalog name default sluice; user
#                                                      postgres unless the URI names one); read only
#   scripts/iceberg-reader.sh sample-write --dir DIR [--jdbc URI [--catalog NAME] [--id ns.table]]
#                                                      for the self-test only: writes a small table with Iceberg
#                                                      Java itself (scripts/java/IcebergWriteSample.java)
#   scripts/iceberg-reader.sh --classpath              fetch, then print the class path it runs with
#   scripts/iceberg-reader.sh --iceberg-version        the Iceberg version it runs
# The jars are fetched with Maven into a cache outside the repository (SLUICE_CACHE, default
# ~/.cache/sluice/iceberg/<version>): lib/ the jars, classes/ and reader.jar the compiled reader, classpath,
# app.jsa a class-data-sharing archive recorded once per build (it about halves each call's start-up).
# Idempotent, and quick when done; concurrent callers wait for one another (flock) rather than fetch twice.
# ICEBERG_VERSION (1.12.0), ICEBERG_READER_HEAP (-Xmx512m), JAVA_HOME override.
set -euo pipefail
# 1.12.0: the newest iceberg-core Maven Central serves here; built for Java 17 (class files 61). iceberg-core
# declares Hadoop only as compile-only: Hadoop's shaded client (hadoop-client-api + hadoop-client-runtime 3.4.2,
# the same the Delta reader uses) brings Configuration, the local FileSystem and what parquet-hadoop needs.
VERSION=${ICEBERG_VERSION:-1.12.0}
HADOOP_VERSION=3.4.2
PGJDBC_VERSION=42.7.14
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/iceberg/$VERSION
DIR=$(cd "$(dirname "$0")" && pwd)/java
SOURCES=("$DIR/IcebergRead.java" "$DIR/IcebergWriteSample.java")
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
JAVAC=${JAVA_HOME:+$JAVA_HOME/bin/}javac
log() { printf '[iceberg-reader] %s\n' "$*" >&2; }

dep() { printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' "$1" "$2" "$3"; }

fetch() {
  # Iceberg, Hadoop and Parquet log through SLF4J 2: slf4j-simple, set to errors only on stderr (run() below).
  local pom
  pom=$(cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>iceberg-reader-runtime</artifactId>
  <version>1</version>
  <dependencies>$(dep org.apache.iceberg iceberg-core "$VERSION")$(dep org.apache.iceberg iceberg-data "$VERSION")$(dep org.apache.iceberg iceberg-parquet "$VERSION")$(dep org.apache.hadoop hadoop-client-api "$HADOOP_VERSION")$(dep org.apache.hadoop hadoop-client-runtime "$HADOOP_VERSION")$(dep org.postgresql postgresql "$PGJDBC_VERSION")$(dep org.slf4j slf4j-simple 2.0.17)</dependencies>
</project>
POM
)
  # Fetched already for this very pom: nothing to do.
  [ -f "$CACHE/lib/.complete" ] && [ "$(cat "$CACHE/pom.xml" 2>/dev/null)" = "$pom" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  rm -rf "$CACHE/lib" "$CACHE/classes" "$CACHE/reader.jar" "$CACHE/classpath" "$CACHE"/app.jsa* && mkdir -p "$CACHE/lib"
  printf '%s\n' "$pom" > "$CACHE/pom.xml"
  log "fetching Iceberg $VERSION (core, data, parquet), Hadoop client $HADOOP_VERSION, PostgreSQL JDBC $PGJDBC_VERSION and their dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CACHE/lib" > "$CACHE/mvn.log" 2>&1 || { tail -n 30 "$CACHE/mvn.log" >&2; log "Maven failed fetching Iceberg $VERSION"; return 1; }
  touch "$CACHE/lib/.complete"
}

compile() {
  command -v "$JAVAC" >/dev/null || { log "javac is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  local stale=0 src
  [ -f "$CACHE/reader.jar" ] || stale=1
  for src in "${SOURCES[@]}"; do [ "$src" -nt "$CACHE/reader.jar" ] && stale=1; done
  if [ "$stale" = 1 ]; then
    log "compiling ${SOURCES[*]}"
    rm -rf "$CACHE/classes.tmp" "$CACHE/app.jsa" && mkdir -p "$CACHE/classes.tmp"
    "$JAVAC" -nowarn --release 17 -encoding UTF-8 -d "$CACHE/classes.tmp" -cp "$CACHE/lib/*" "${SOURCES[@]}" >&2
    rm -rf "$CACHE/classes" && mv "$CACHE/classes.tmp" "$CACHE/classes"
    # A jar, and the class path as an explicit sorted list: class-data sharing takes neither directories
    # nor wildcards, and checks at each run that the class path is the one the archive was made with.
    "${JAVA_HOME:+$JAVA_HOME/bin/}jar" cf "$CACHE/reader.jar.tmp" -C "$CACHE/classes" . && mv "$CACHE/reader.jar.tmp" "$CACHE/reader.jar"
    { printf '%s' "$CACHE/reader.jar"; find "$CACHE/lib" -name '*.jar' | LC_ALL=C sort | sed 's/^/:/' | tr -d '\n'; } > "$CACHE/classpath"
  fi
}

# The JVM options of every run; the heap, GC and JIT kept small: each call reads a small table once.
jvm_opts() {
  # shellcheck disable=SC2086
  printf '%s\n' ${ICEBERG_READER_HEAP:--Xmx512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
    -Xlog:disable -Xlog:all=warning:stderr -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=error -Dorg.slf4j.simpleLogger.logFile=System.err \
    -Dorg.slf4j.simpleLogger.showThreadName=false -Dorg.slf4j.simpleLogger.showShortLogName=true
}

# Once per build of the reader: a class-data-sharing archive of the classes a write and every read mode load
# (Iceberg, Hadoop, Parquet, Avro, Jackson…), made by one training run on a throwaway table. It about halves
# each call's start-up CPU. Optional: if it cannot be made, calls run without it.
train() {
  local tmp opts java_bin
  # Made by this very JVM (a JDK update makes a new archive rather than a warning at every call).
  java_bin=$(readlink -f "$(command -v "$JAVA")")
  [ -f "$CACHE/app.jsa" ] && [ ! "$java_bin" -nt "$CACHE/app.jsa" ] && return 0
  rm -f "$CACHE/app.jsa"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/iceberg-reader-train.XXXXXX")
  mapfile -t opts < <(jvm_opts)
  log "recording a class-data-sharing archive (once)"
  if "$JAVA" "${opts[@]}" -XX:ArchiveClassesAtExit="$CACHE/app.jsa.tmp" -cp "$(cat "$CACHE/classpath")" \
      IcebergWriteSample --dir "$tmp" --train > /dev/null 2> "$CACHE/train.log" && [ -s "$CACHE/app.jsa.tmp" ]; then
    mv "$CACHE/app.jsa.tmp" "$CACHE/app.jsa"
  else
    log "no class-data-sharing archive (see $CACHE/train.log); calls start slower"
    rm -f "$CACHE/app.jsa.tmp"
    : > "$CACHE/app.jsa.none"
  fi
  rm -rf "$tmp"
}

prepare() {
  mkdir -p "$CACHE"
  # One preparer at a time (tests may start several readers at once on a cold cache).
  exec 9> "$CACHE/.lock"
  flock 9
  fetch
  compile
  [ -f "$CACHE/app.jsa.none" ] && [ "$CACHE/app.jsa.none" -nt "$CACHE/reader.jar" ] || train
  exec 9>&-
}

run() {
  local main=$1 opts share=()
  shift
  command -v "$JAVA" >/dev/null || { log "java is not installed (apt-get install openjdk-17-jdk-headless)"; exit 1; }
  prepare
  mapfile -t opts < <(jvm_opts)
  [ -f "$CACHE/app.jsa" ] && share=(-XX:SharedArchiveFile="$CACHE/app.jsa" -Xshare:auto)
  # The JVM's own warnings go to stdout unless told otherwise (-Xlog): to stderr, so stdout is the JSON alone.
  exec "$JAVA" "${opts[@]}" "${share[@]}" -cp "$(cat "$CACHE/classpath")" "$main" "$@"
}

USAGE="usage: $0 --fetch | (snapshots | scan [--snapshot ID] | incremental --from ID [--to ID] | files [--snapshot ID]) (--table PATH | --jdbc URI --id NS.TABLE [--catalog NAME] [--warehouse DIR]) | sample-write --dir DIR [--jdbc URI] | --classpath | --iceberg-version"
case "${1:-}" in
  --fetch) prepare; log "Iceberg $VERSION reader ready in $CACHE" ;;
  --classpath) prepare; cat "$CACHE/classpath"; echo ;;
  --iceberg-version) printf '%s\n' "$VERSION" ;;
  sample-write) shift; run IcebergWriteSample "$@" ;;
  ''|-h|--help) echo "$USAGE" >&2; exit 2 ;;
  *) run IcebergRead "$@" ;;
esac
