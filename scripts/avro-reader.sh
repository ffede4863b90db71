#!/usr/bin/env bash
# Apache Avro's Java library as the reference for Sluice's Avro codec (src/core/avro/): scripts/java/AvroRead.java,
# on org.apache.avro:avro, reads an object container file and prints its metadata and records as one JSON document,
# or writes one from values it generates from a schema (see the top of AvroRead.java for the shapes).
#   scripts/avro-reader.sh --fetch                           fetch the jars (once) and compile the reader (when changed)
#   scripts/avro-reader.sh read <file.avro>                  the file's metadata, schema and records as JSON on stdout
#   scripts/avro-reader.sh write <schema.json> <out.avro> [--codec null|deflate] [--records N] [--sync-interval B]
#                                [--meta key=value]…         writes a file with Java's DataFileWriter; prints its records
#   scripts/avro-reader.sh count <file.avro>                 reads every record; prints {"records", "ms"}
#   scripts/avro-reader.sh framed <schema.json> <records.hex>  decodes Confluent-framed records (hex, one per line)
#   scripts/avro-reader.sh --classpath                       fetch, then print the class path it runs with
#   scripts/avro-reader.sh --avro-version                    the Avro version it runs
# Errors go to stderr with exit status 1 (a wrong command line: 2).
# The jars are fetched with Maven into a cache outside the repository (SLUICE_CACHE, default
# ~/.cache/sluice/avro/<version>): lib/ the jars, classes/ the compiled reader. Idempotent, and quick when done;
# concurrent callers wait for one another (flock) rather than fetch twice.
# AVRO_VERSION (1.12.2), AVRO_READER_HEAP (-Xmx1g), JAVA_HOME override.
set -euo pipefail
# 1.12.2: the newest 1.12 release Maven Central serves here. It brings jackson-core/databind (the JSON output
# uses them), commons-compress and slf4j-api; slf4j-nop keeps SLF4J from warning on stderr about a missing binding.
VERSION=${AVRO_VERSION:-1.12.2}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/avro/$VERSION
SRC=$(cd "$(dirname "$0")" && pwd)/java/AvroRead.java
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
JAVAC=${JAVA_HOME:+$JAVA_HOME/bin/}javac
log() { printf '[avro-reader] %s\n' "$*" >&2; }

dep() { printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' "$1" "$2" "$3"; }

fetch() {
  local pom
  pom=$(cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>avro-reader-runtime</artifactId>
  <version>1</version>
  <dependencies>$(dep org.apache.avro avro "$VERSION")$(dep org.slf4j slf4j-nop 2.0.18)</dependencies>
</project>
POM
)
  # Fetched already for this very pom: nothing to do.
  [ -f "$CACHE/lib/.complete" ] && [ "$(cat "$CACHE/pom.xml" 2>/dev/null)" = "$pom" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  rm -rf "$CACHE/lib" "$CACHE/classes" && mkdir -p "$CACHE/lib"
  printf '%s\n' "$pom" > "$CACHE/pom.xml"
  log "fetching Apache Avro $VERSION and its dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CACHE/lib" > "$CACHE/mvn.log" 2>&1 || { tail -n 30 "$CACHE/mvn.log" >&2; log "Maven failed fetching Apache Avro $VERSION"; return 1; }
  touch "$CACHE/lib/.complete"
}

compile() {
  command -v "$JAVAC" >/dev/null || { log "javac is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  if [ ! -f "$CACHE/classes/AvroRead.class" ] || [ "$SRC" -nt "$CACHE/classes/AvroRead.class" ]; then
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
  compile
  exec 9>&-
}

run() {
  command -v "$JAVA" >/dev/null || { log "java is not installed (apt-get install openjdk-17-jdk-headless)"; exit 1; }
  prepare
  # The JVM's own warnings go to stdout unless told otherwise (-Xlog): to stderr, so stdout is the JSON alone.
  # shellcheck disable=SC2086
  exec "$JAVA" ${AVRO_READER_HEAP:--Xmx1g} -XX:+UseSerialGC -Xlog:disable -Xlog:all=warning:stderr -Djava.awt.headless=true \
    -cp "$CACHE/classes:$CACHE/lib/*" AvroRead "$@"
}

case "${1:-}" in
  --fetch) prepare; log "Apache Avro $VERSION reader ready in $CACHE" ;;
  --classpath) prepare; printf '%s\n' "$CACHE/classes:$CACHE/lib/*" ;;
  --avro-version) printf '%s\n' "$VERSION" ;;
  framed) [ $# -eq 3 ] || { echo "usage: $0 framed <schema.json> <records.hex>" >&2; exit 2; }; run "$@" ;;
  read|count) [ $# -eq 2 ] || { echo "usage: $0 $1 <file.avro>" >&2; exit 2; }; run "$@" ;;
  write) [ $# -ge 3 ] || { echo "usage: $0 write <schema.json> <out.avro> [--codec null|deflate] [--records N] [--sync-interval B] [--meta key=value]…" >&2; exit 2; }; run "$@" ;;
  *) echo "usage: $0 --fetch | read <file.avro> | write <schema.json> <out.avro> [options] | count <file.avro> | --classpath | --avro-version" >&2; exit 2 ;;
esac
