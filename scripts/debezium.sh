#!/usr/bin/env bash
# Debezium's own connectors (PostgreSQL and MySQL, run by debezium-embedded with Kafka Connect's
# JsonConverter) as a peer for the Debezium-fidelity test (test/debezium/): the program is
# scripts/java/DebeziumPeer.java.
#   scripts/debezium.sh prepare      fetch the jars (once) and compile the program (when changed)
#   scripts/debezium.sh classpath    prepare, then print the class path to run DebeziumPeer with
#   scripts/debezium.sh version      the Debezium version it runs
# The jars are fetched with Maven into a cache outside the repository (SLUICE_CACHE, default
# ~/.cache/sluice/debezium/<version>), where the compiled class lives too. Idempotent.
set -euo pipefail
VERSION=${DEBEZIUM_VERSION:-3.4.1.Final}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/debezium/$VERSION
SRC=$(cd "$(dirname "$0")" && pwd)/java/DebeziumPeer.java
log() { printf '[debezium] %s\n' "$*" >&2; }

fetch() {
  local deps='' a pom
  for a in debezium-embedded debezium-connector-postgres debezium-connector-mysql; do
    deps="$deps<dependency><groupId>io.debezium</groupId><artifactId>$a</artifactId><version>$VERSION</version></dependency>"
  done
  # The connectors log through SLF4J 1.7: to java.util.logging (stderr), warnings and errors only (DebeziumPeer).
  deps="$deps<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-jdk14</artifactId><version>1.7.36</version></dependency>"
  pom=$(cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>debezium-peer-runtime</artifactId>
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
  log "fetching Debezium $VERSION (embedded, postgres, mysql) and its dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$CACHE/lib" >&2
  touch "$CACHE/lib/.complete"
}

compile() {
  command -v javac >/dev/null || { log "javac is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  mkdir -p "$CACHE/classes"
  if [ ! -f "$CACHE/classes/DebeziumPeer.class" ] || [ "$SRC" -nt "$CACHE/classes/DebeziumPeer.class" ]; then
    javac -nowarn -d "$CACHE/classes" -cp "$CACHE/lib/*" "$SRC" >&2
  fi
}

case "${1:-}" in
  prepare) fetch; compile; log "Debezium $VERSION ready in $CACHE" ;;
  classpath) fetch; compile; printf '%s\n' "$CACHE/classes:$CACHE/lib/*" ;;
  version) printf '%s\n' "$VERSION" ;;
  *) echo "usage: $0 prepare|classpath|version" >&2; exit 2 ;;
esac
