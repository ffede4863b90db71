#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, no ZooKeeper) for the kafka log backend's tests: the broker's
# own jars (org.apache.kafka:kafka_2.13, kafka-tools) fetched once with Maven into a cache outside
# the repository (SLUICE_CACHE, default ~/.cache/sluice/kafka/<version>), where the data dirs,
# pid files and logs live too (run/).
#   scripts/kafka-server.sh start|stop|status     one node, broker+controller, 127.0.0.1:9092
#                                                 (controller 9093); RF 1 everywhere
#   scripts/kafka-server.sh cluster start|stop|status
#                                                 3 nodes, each broker+controller: brokers
#                                                 127.0.0.1:19092-19094, controllers 19192-19194;
#                                                 RF 3 defaults, min.insync.replicas 2
#   scripts/kafka-server.sh cluster pid <n>       node n's (1-3) pid, e.g. for kill -9
#   scripts/kafka-server.sh cluster start-node <n>|stop-node <n>
#   scripts/kafka-server.sh fetch                 only fetch the jars
#   scripts/kafka-server.sh tools <MainClass> args…
#                                                 a Kafka tool class on the cached class path, e.g.
#                                                 org.apache.kafka.tools.consumer.ConsoleConsumer
#   scripts/kafka-server.sh clean [cluster]       stop, then delete the data dirs
# Idempotent: `start` on a running broker does nothing. Data survives stop/start (the storage is
# formatted once, with a fixed cluster id); `clean` empties it. Topics are never auto-created.
# KAFKA_VERSION, KAFKA_HEAP (-Xmx512m single, -Xmx384m per cluster node), JAVA_HOME override.
set -euo pipefail
VERSION=${KAFKA_VERSION:-4.4.0}
HOST=127.0.0.1
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/kafka/$VERSION
LIB=$CACHE/lib
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
SINGLE_CLUSTER_ID=c2x1aWNlLXNpbmdsZTAwMQ   # base64url of 16 bytes, as kafka-storage wants
MULTI_CLUSTER_ID=c2x1aWNlLWNsdXN0ZXIwMQ
log() { printf '[kafka-server] %s\n' "$*" >&2; }

fetch() {
  [ -f "$LIB/.complete" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  mkdir -p "$LIB"
  # kafka_2.13 brings the broker (kafka-server, raft, metadata, storage, coordinators, log4j-core);
  # kafka-tools the console/admin tools (without Connect's runtime, which only one tool needs);
  # log4j-slf4j-impl binds the SLF4J 1.7 API that Kafka logs through to log4j 2.
  cat > "$CACHE/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.25.5</version>
    </dependency>
  </dependencies>
</project>
POM
  log "fetching Kafka $VERSION and its dependencies into $LIB"
  mvn -q -B -Dstyle.color=never -f "$CACHE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$LIB" > "$CACHE/mvn.log" 2>&1 || { tail -n 30 "$CACHE/mvn.log" >&2; log "Maven failed"; return 1; }
  touch "$LIB/.complete"
}

# log4j 2 configurations: the broker logs INFO to stdout (its log file), the tools WARN to stderr.
log_configs() {
  [ -f "$CACHE/log4j2-server.properties" ] && [ -f "$CACHE/log4j2-tools.properties" ] && return 0
  cat > "$CACHE/log4j2-server.properties" <<'EOF'
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
EOF
  cat > "$CACHE/log4j2-tools.properties" <<'EOF'
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
}

need_java() {
  command -v "$JAVA" >/dev/null || { log "java is not installed (apt-get install openjdk-17-jdk-headless)"; return 1; }
}

# Node layout. Node "single" is the one-node broker; nodes 1-3 are the cluster's.
node_dir() { if [ "$1" = single ]; then echo "$CACHE/run/single"; else echo "$CACHE/run/cluster/node$1"; fi; }
node_port() { if [ "$1" = single ]; then echo 9092; else echo $((19091 + $1)); fi; }
node_pidfile() { echo "$(node_dir "$1")/server.pid"; }
node_log() { echo "$(node_dir "$1")/server.log"; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
node_pid() { local f; f=$(node_pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }

write_config() { # node
  local n=$1 dir id voters props
  dir=$(node_dir "$n")
  mkdir -p "$dir/data"
  if [ "$n" = single ]; then
    id=1; voters="1@$HOST:9093"
    props="listeners=PLAINTEXT://$HOST:9092,CONTROLLER://$HOST:9093
advertised.listeners=PLAINTEXT://$HOST:9092
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1"
  else
    id=$n; voters="1@$HOST:19192,2@$HOST:19193,3@$HOST:19194"
    props="listeners=PLAINTEXT://$HOST:$((19091 + n)),CONTROLLER://$HOST:$((19191 + n))
advertised.listeners=PLAINTEXT://$HOST:$((19091 + n))
default.replication.factor=3
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
min.insync.replicas=2"
  fi
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
$props
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
num.network.threads=2
num.io.threads=4
EOF
}

format_storage() { # node
  local n=$1 dir cid
  dir=$(node_dir "$n")
  [ -f "$dir/data/meta.properties" ] && return 0
  if [ "$n" = single ]; then cid=$SINGLE_CLUSTER_ID; else cid=$MULTI_CLUSTER_ID; fi
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$CACHE/log4j2-tools.properties" \
    -cp "$LIB/*" kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" >> "$(node_log "$n")" 2>&1 \
    || { log "formatting $dir/data failed; see $(node_log "$n")"; tail -n 20 "$(node_log "$n")" >&2; return 1; }
}

launch() { # node: start the JVM (no wait); 0 if already running
  local n=$1 heap port dir
  port=$(node_port "$n"); dir=$(node_dir "$n")
  if node_pid "$n" >/dev/null; then return 0; fi
  if port_open "$port"; then log "something else already listens on $HOST:$port"; return 1; fi
  if [ "$n" = single ]; then heap=${KAFKA_HEAP:--Xmx512m}; else heap=${KAFKA_HEAP:--Xmx384m}; fi
  write_config "$n"
  : > "$(node_log "$n")"
  format_storage "$n"
  # shellcheck disable=SC2086
  nohup "$JAVA" $heap -Xss512k -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CACHE/log4j2-server.properties" -Dkafka.logs.dir="$dir" \
    -cp "$LIB/*" kafka.Kafka "$dir/server.properties" >> "$(node_log "$n")" 2>&1 < /dev/null &
  echo $! > "$(node_pidfile "$n")"
}

wait_up() { # node...: until each logs that it started and its broker port answers
  local n pid left deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-180}))
  for n in "$@"; do
    while :; do
      pid=$(cat "$(node_pidfile "$n")")
      if grep -q 'Kafka Server started' "$(node_log "$n")" && port_open "$(node_port "$n")"; then
        log "node $n running (pid $pid) on $HOST:$(node_port "$n")"; break
      fi
      left=$((deadline - SECONDS))
      if ! kill -0 "$pid" 2>/dev/null || [ $left -le 0 ]; then
        log "node $n did not come up on $HOST:$(node_port "$n"); its log is $(node_log "$n"):"
        tail -n 30 "$(node_log "$n")" >&2 || true
        return 1
      fi
      sleep 0.25
    done
  done
}

halt() { # node...: SIGTERM (controlled shutdown) all of them, then SIGKILL what is left after 30 s
  local n pid pids=()
  for n in "$@"; do
    if pid=$(node_pid "$n"); then kill "$pid"; pids+=("$n:$pid"); else log "node $n not running"; fi
  done
  for _ in $(seq 1 120); do
    local alive=0
    for p in ${pids[@]+"${pids[@]}"}; do kill -0 "${p#*:}" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.25
  done
  for p in ${pids[@]+"${pids[@]}"}; do
    n=${p%%:*}; pid=${p#*:}
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; log "node $n killed (pid $pid) after 30 s"; } || log "node $n stopped (pid $pid)"
    rm -f "$(node_pidfile "$n")"
  done
}

node_status() { # node...
  local n pid rc=0
  for n in "$@"; do
    if pid=$(node_pid "$n") && port_open "$(node_port "$n")"; then
      log "node $n running (pid $pid) on $HOST:$(node_port "$n")"
    else
      log "node $n not running on $HOST:$(node_port "$n")"; rc=3
    fi
  done
  return $rc
}

prepare() { need_java; fetch; log_configs; }

tools() {
  [ $# -ge 1 ] || { echo "usage: $0 tools <MainClass> args…" >&2; exit 2; }
  prepare
  # shellcheck disable=SC2086
  exec "$JAVA" ${KAFKA_TOOLS_OPTS:--Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC} \
    -Dlog4j2.configurationFile="$CACHE/log4j2-tools.properties" -cp "$LIB/*" "$@"
}

node_arg() {
  case "${1:-}" in 1|2|3) echo "$1" ;; *) echo "usage: $0 cluster $2 1|2|3" >&2; exit 2 ;; esac
}

cluster() {
  case "${1:-}" in
    start) # the nodes are formatted and started side by side: each needs the others' votes to start
      prepare
      local pids=() p rc=0
      for n in 1 2 3; do launch "$n" & pids+=($!); done
      for p in "${pids[@]}"; do wait "$p" || rc=1; done
      [ $rc = 0 ] && wait_up 1 2 3 ;;
    stop) halt 1 2 3 ;;
    status) node_status 1 2 3 ;;
    pid) n=$(node_arg "${2:-}" pid); node_pid "$n" || { log "node $n not running"; exit 3; } ;;
    start-node) n=$(node_arg "${2:-}" start-node); prepare; launch "$n"; wait_up "$n" ;;
    stop-node) n=$(node_arg "${2:-}" stop-node); halt "$n" ;;
    *) echo "usage: $0 cluster start|stop|status|pid <n>|start-node <n>|stop-node <n>" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  start) prepare; launch single; wait_up single ;;
  stop) halt single ;;
  status) node_status single ;;
  fetch) fetch ;;
  tools) shift; tools "$@" ;;
  cluster) shift; cluster "$@" ;;
  clean)
    if [ "${2:-}" = cluster ]; then halt 1 2 3; rm -rf "$CACHE/run/cluster"; else halt single; rm -rf "$CACHE/run/single"; fi ;;
  *) echo "usage: $0 start|stop|status|fetch|clean [cluster]|tools <MainClass> args…|cluster …" >&2; exit 2 ;;
esac
