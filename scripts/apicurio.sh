#!/usr/bin/env bash
# Apicurio Registry (io.apicurio:apicurio-registry-app, Maven Central) as the external schema registry peer of
# Sluice's built-in one (src/schema-registry/): it serves the Confluent-compatible API under /apis/ccompat/v7.
#   scripts/apicurio.sh --fetch            fetch the app and build its runnable quarkus-app layout (once)
#   scripts/apicurio.sh start [--port P]   start it (in-memory storage) on 127.0.0.1:P (default 18081) in the
#                                          background, wait until /apis/ccompat/v7/subjects answers; prints its pid
#   scripts/apicurio.sh run [--port P]     the same in the foreground
# Maven Central serves the app module's plain jar (not runnable: a Quarkus app needs its build's augmentation) and,
# as classifier `all` (tar.gz), the built quarkus-app layout (quarkus-run.jar, lib/, app/, quarkus/): --fetch gets
# that one with `mvn dependency:copy` and unpacks it. Apicurio 3 needs Java 21+: the JDK 25 in /usr/lib/jvm is used
# when present.
# Cache: SLUICE_CACHE (default ~/.cache/sluice)/apicurio/<version>. APICURIO_VERSION (3.3.3), JAVA_HOME override.
set -euo pipefail
VERSION=${APICURIO_VERSION:-3.3.3}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/apicurio/$VERSION
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64; fi
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
log() { printf '[apicurio] %s\n' "$*" >&2; }

fetch() {
  [ -f "$CACHE/app/quarkus-run.jar" ] && [ -f "$CACHE/app/.complete" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  rm -rf "$CACHE/app" "$CACHE/dist" && mkdir -p "$CACHE/dist" "$CACHE/app"
  # Apicurio's poms name more repositories than Maven Central (repo.eclipse.org, packages.confluent.io); an
  # unreachable one fails the fetch, and the artifact is on Central: one mirror for every repository.
  printf '%s\n' '<settings><mirrors><mirror><id>central-only</id><mirrorOf>*</mirrorOf><url>https://repo.maven.apache.org/maven2</url></mirror></mirrors></settings>' > "$CACHE/settings.xml"
  log "fetching Apicurio Registry $VERSION (io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all, ~160 MB) into $CACHE"
  mvn -q -B -s "$CACHE/settings.xml" -Dstyle.color=never dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all" \
    -DoutputDirectory="$CACHE/dist" > "$CACHE/mvn.log" 2>&1 || { tail -n 30 "$CACHE/mvn.log" >&2; log "Maven failed fetching Apicurio Registry $VERSION"; return 1; }
  tar xzf "$CACHE/dist/apicurio-registry-app-$VERSION-all.tar.gz" -C "$CACHE/app"
  [ -f "$CACHE/app/quarkus-run.jar" ] || { log "the distribution holds no quarkus-run.jar"; return 1; }
  rm -rf "$CACHE/dist"
  touch "$CACHE/app/.complete"
}

prepare() {
  mkdir -p "$CACHE"
  exec 9> "$CACHE/.lock"
  flock 9
  fetch
  exec 9>&-
}

port_arg() {
  PORT=18081
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) PORT=$2; shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
}

java_cmd() {
  command -v "$JAVA" >/dev/null || { log "java is not installed"; exit 1; }
  # In-memory storage (the default "sql" storage on an H2 in-memory database), no auth, the ccompat API on.
  CMD=("$JAVA" -Xmx512m -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" -Dapicurio.storage.kind=sql
    -Dapicurio.storage.sql.kind=h2 -Dapicurio.datasource.url='jdbc:h2:mem:registry_db'
    -Dquarkus.log.level=WARN -jar "$CACHE/app/quarkus-run.jar")
}

wait_up() {
  local i
  for i in $(seq 1 240); do
    if curl -fsS "http://127.0.0.1:$PORT/apis/ccompat/v7/subjects" >/dev/null 2>&1; then return 0; fi
    if [ -n "${1:-}" ] && ! kill -0 "$1" 2>/dev/null; then log "Apicurio exited while starting (log: $CACHE/server-$PORT.log)"; tail -n 30 "$CACHE/server-$PORT.log" >&2; return 1; fi
    sleep 0.5
  done
  log "Apicurio did not answer on port $PORT within 120 s (log: $CACHE/server-$PORT.log)"
  return 1
}

case "${1:-}" in
  --fetch) prepare; log "Apicurio Registry $VERSION ready in $CACHE/app" ;;
  start) shift; port_arg "$@"; prepare; java_cmd
    nohup "${CMD[@]}" > "$CACHE/server-$PORT.log" 2>&1 &
    pid=$!
    wait_up "$pid" || { kill "$pid" 2>/dev/null; exit 1; }
    echo "$pid" ;;
  run) shift; port_arg "$@"; prepare; java_cmd; exec "${CMD[@]}" ;;
  *) echo "usage: $0 --fetch | start [--port P] | run [--port P]" >&2; exit 2 ;;
esac
