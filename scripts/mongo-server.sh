#!/usr/bin/env bash
# A MongoDB-wire-compatible server for the document sink's tests: mongo-java-server (Maven
# Central, de.bwaldvogel) with its in-memory backend, started from scripts/java/MongoServer.java.
#   scripts/mongo-server.sh start|stop|status        (port: MONGO_PORT, default 27017)
# MONGO_OPLOG=1 starts it with an oplog, so it answers change streams (the MongoDB source's tests
# use one on port 27018; the sink's bulk tests keep theirs without, which costs no oplog memory).
# The jars are fetched once with Maven into a cache outside the repository
# (SLUICE_CACHE, default ~/.cache/sluice), where the class, pid file and server log live too.
# Idempotent: `start` on a running server does nothing. Data lives in memory: a restart empties it.
set -euo pipefail
VERSION=${MONGO_JAVA_SERVER_VERSION:-1.47.0}
PORT=${MONGO_PORT:-27017}
HOST=${MONGO_HOST:-127.0.0.1}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/mongo-java-server/$VERSION
SRC=$(cd "$(dirname "$0")" && pwd)/java/MongoServer.java
PIDFILE=$CACHE/run/server-$PORT.pid
LOGFILE=$CACHE/run/server-$PORT.log
log() { printf '[mongo-server] %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }
our_pid() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"; }

fetch() {
  [ -f "$CACHE/lib/.complete" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  mkdir -p "$CACHE/lib"
  cat > "$CACHE/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>mongo-java-server-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>de.bwaldvogel</groupId>
      <artifactId>mongo-java-server</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  log "fetching mongo-java-server $VERSION and its dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$CACHE/lib"
  touch "$CACHE/lib/.complete"
}

compile() {
  mkdir -p "$CACHE/classes"
  if [ ! -f "$CACHE/classes/MongoServer.class" ] || [ "$SRC" -nt "$CACHE/classes/MongoServer.class" ]; then
    javac -d "$CACHE/classes" -cp "$CACHE/lib/*" "$SRC"
  fi
}

start() {
  if pid=$(our_pid); then
    port_open && { log "running (pid $pid) on $HOST:$PORT"; return 0; }
  fi
  if port_open; then
    log "something else already listens on $HOST:$PORT; stop it or set MONGO_PORT"; return 1
  fi
  command -v java >/dev/null || { log "java is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  fetch
  compile
  mkdir -p "$CACHE/run"
  : > "$LOGFILE"
  nohup java -Xmx1g -cp "$CACHE/classes:$CACHE/lib/*" MongoServer "$PORT" "$HOST" ${MONGO_OPLOG:+oplog} >> "$LOGFILE" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 120); do
    if grep -q 'mongo-java-server ready' "$LOGFILE" && port_open; then
      log "started (pid $(cat "$PIDFILE")) on $HOST:$PORT"; return 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.25
  done
  log "did not come up on $HOST:$PORT; its output ($LOGFILE):"; tail -n 30 "$LOGFILE" >&2 || true
  return 1
}

stop() {
  if pid=$(our_pid); then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$PIDFILE"
}

status() {
  if pid=$(our_pid) && port_open; then log "running (pid $pid) on $HOST:$PORT"; return 0; fi
  log "not running on $HOST:$PORT"; return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
