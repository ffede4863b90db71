#!/usr/bin/env bash
# One Apache Cassandra node for the Cassandra sink's tests, started from the cassandra-all jar on
# Maven Central (org.apache.cassandra), with no tarball and no installer.
#   scripts/cassandra-server.sh start|stop|status      (native port: CASSANDRA_PORT, default 19042)
# The jars are fetched once with Maven into a cache outside the repository
# (SLUICE_CACHE, default ~/.cache/sluice): <cache>/cassandra/<version>/lib. The node's
# cassandra.yaml, logback.xml, data, commit log, cdc_raw, pid file and log live beside them under
# run-<port>/. Data survives a stop/start; CASSANDRA_FRESH=1 on start wipes it first.
# The node is single, on 127.0.0.1, with a small heap (CASSANDRA_HEAP, default 1g), CDC enabled
# (cdc_raw is written for tables created WITH cdc = true) and JMX off. Java 17 (the default java)
# runs it with the module exports/opens Cassandra's own conf/jvm17-server.options lists.
# Idempotent: `start` on a running node does nothing; `stop` on a stopped one does nothing.
set -euo pipefail
VERSION=${CASSANDRA_VERSION:-5.0.8}
PORT=${CASSANDRA_PORT:-19042}
STORAGE_PORT=${CASSANDRA_STORAGE_PORT:-$((PORT - 2000))}
HOST=127.0.0.1
HEAP=${CASSANDRA_HEAP:-1g}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/cassandra/$VERSION
RUN=$CACHE/run-$PORT
PIDFILE=$RUN/cassandra.pid
LOGFILE=$RUN/cassandra.log
JAVA=${CASSANDRA_JAVA:-java}
log() { printf '[cassandra-server] %s\n' "$*"; }

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
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  log "fetching cassandra-all $VERSION and its dependencies into $CACHE/lib"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$CACHE/lib"
  touch "$CACHE/lib/.complete"
}

configure() {
  mkdir -p "$RUN/conf" "$RUN/data" "$RUN/commitlog" "$RUN/saved_caches" "$RUN/hints" "$RUN/cdc_raw"
  cat > "$RUN/conf/cassandra.yaml" <<YAML
# Written by scripts/cassandra-server.sh: one node for tests.
cluster_name: sluice-test
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
storage_compatibility_mode: NONE
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
listen_address: $HOST
rpc_address: $HOST
storage_port: $STORAGE_PORT
start_native_transport: true
native_transport_port: $PORT
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$HOST:$STORAGE_PORT"
endpoint_snitch: SimpleSnitch
data_file_directories:
  - $RUN/data
commitlog_directory: $RUN/commitlog
saved_caches_directory: $RUN/saved_caches
hints_directory: $RUN/hints
cdc_enabled: true
cdc_raw_directory: $RUN/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
cdc_total_space: 256MiB
disk_failure_policy: stop
commit_failure_policy: stop
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
key_cache_size: 8MiB
auto_snapshot: false
snapshot_on_duplicate_row_detection: false
dynamic_snitch: false
YAML
  cat > "$RUN/conf/logback.xml" <<XML
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT" /></root>
  <logger name="org.apache.cassandra" level="INFO" />
</configuration>
XML
}

# Cassandra's conf/jvm17-server.options (module access, netty) plus a small heap.
jvm_opts() {
  local o=(
    "-Xms$HEAP" "-Xmx$HEAP" -Xss256k -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
    -XX:ActiveProcessorCount=2 -XX:+ExitOnOutOfMemoryError
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true
    -Dio.netty.allocator.maxOrder=11
    -Dcassandra-foreground=yes
    "-Dcassandra.config=file://$RUN/conf/cassandra.yaml"
    "-Dlogback.configurationFile=$RUN/conf/logback.xml"
    "-Dcassandra.logdir=$RUN"
    "-Dcassandra.storagedir=$RUN"
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.ring_delay_ms=1000
    -Dcassandra.superuser_setup_delay_ms=0
    -Dcassandra.consistent.rangemovement=false
  )
  printf '%s\n' "${o[@]}"
}

start() {
  if pid=$(our_pid); then
    port_open && { log "running (pid $pid) on $HOST:$PORT"; return 0; }
  fi
  if port_open; then
    log "something else already listens on $HOST:$PORT; stop it or set CASSANDRA_PORT"; return 1
  fi
  command -v "$JAVA" >/dev/null || { log "java is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
  fetch
  [ "${CASSANDRA_FRESH:-}" = 1 ] && rm -rf "$RUN"
  configure
  : > "$LOGFILE"
  local t0 opts
  t0=$(date +%s%N)
  mapfile -t opts < <(jvm_opts)
  nohup "$JAVA" "${opts[@]}" -cp "$RUN/conf:$CACHE/lib/*" org.apache.cassandra.service.CassandraDaemon >> "$LOGFILE" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  local limit=${CASSANDRA_START_TIMEOUT:-180}
  for _ in $(seq 1 $((limit * 4))); do
    if port_open && grep -q 'Startup complete\|Starting listening for CQL clients' "$LOGFILE"; then
      log "started (pid $(cat "$PIDFILE")) on $HOST:$PORT in $(( ($(date +%s%N) - t0) / 1000000 )) ms"; return 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.25
  done
  log "did not come up on $HOST:$PORT within ${limit}s; its output ($LOGFILE):"
  grep -E 'ERROR|Exception|Caused by' "$LOGFILE" | head -n 20 >&2 || true
  tail -n 30 "$LOGFILE" >&2 || true
  if pid=$(our_pid); then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$PIDFILE"
  return 1
}

stop() {
  if pid=$(our_pid); then
    # SIGTERM runs Cassandra's shutdown hook: it drains the native transport and flushes.
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
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
