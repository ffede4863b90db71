#!/usr/bin/env bash
# Kafka Connect standalone (org.apache.kafka:connect-runtime, ConnectStandalone) with Debezium's JDBC
# sink connector and its PostgreSQL and MySQL source connectors as plugins, for the Debezium interop
# tests through Kafka (test/debezium/jdbc-sink.test.ts, connect-to-sinks.test.ts).
#   scripts/kafka-connect.sh prepare       fetch the jars (once) and write the log4j 2 configuration
#   scripts/kafka-connect.sh run <worker.properties> <connector.properties>…
#                                          a standalone worker in the foreground (exec: the caller's
#                                          child is the JVM itself); its plugin.path is set here
#   scripts/kafka-connect.sh classpath     prepare, then print the worker's class path
#   scripts/kafka-connect.sh plugin-path   prepare, then print the plugin.path to give the worker
#   scripts/kafka-connect.sh versions      the Kafka and Debezium versions it runs
# The jars are fetched with Maven into a cache outside the repository (SLUICE_CACHE, default
# ~/.cache/sluice/connect/<kafka version>-<debezium version>): lib/ holds the worker (connect-runtime,
# connect-json, log4j 2 behind the SLF4J 1.7 API that Maven resolves for it), plugins/<name>/ one directory per connector with its own dependencies (each
# plugin gets its own class loader, as in a Connect installation; connect-api and kafka-clients are
# "provided" by the worker and not copied). Idempotent: a complete fetch of the same poms is kept.
# CONNECT_KAFKA_VERSION (4.1.1; the worker), DEBEZIUM_VERSION (3.4.1.Final; the source connectors),
# DEBEZIUM_JDBC_VERSION (3.4.0.Final; the JDBC sink), CONNECT_HEAP (-Xmx512m), JAVA_HOME override.
set -euo pipefail
# The worker: Debezium 3.4's connectors are built on Kafka 4.1 and call org.apache.kafka.common.utils.Sanitizer,
# which kafka-clients 4.4 no longer has (NoClassDefFoundError in every source task): 4.1.1 runs them,
# against the 4.4.0 broker.
KAFKA_VERSION=${CONNECT_KAFKA_VERSION:-4.1.1}
DEBEZIUM_VERSION=${DEBEZIUM_VERSION:-3.4.1.Final}
# The JDBC sink: 3.4.0.Final is the 3.4 release whose dependencies Maven Central serves here (3.4.1.Final
# and 3.6.1.Final are not served; 3.4.3.Final and 3.6.0.Final lack a dependency: debezium-sink, hibernate-agroal).
DEBEZIUM_JDBC_VERSION=${DEBEZIUM_JDBC_VERSION:-3.4.0.Final}
CACHE=${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}/connect/$KAFKA_VERSION-$DEBEZIUM_VERSION-jdbc-$DEBEZIUM_JDBC_VERSION
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
log() { printf '[kafka-connect] %s\n' "$*" >&2; }

pom() { # artifactId, dependencies XML
  cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.test</groupId>
  <artifactId>$1</artifactId>
  <version>1</version>
  <dependencies>$2</dependencies>
</project>
POM
}

dep() { printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' "$1" "$2" "$3"; }

copy_deps() { # dir, pom text, what: Maven copies the runtime dependencies of the pom into dir/
  local dir=$1 text=$2 what=$3
  [ -f "$dir/.complete" ] && [ "$(cat "$dir/.pom.xml" 2>/dev/null)" = "$text" ] && return 0
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir"
  printf '%s\n' "$text" > "$dir/.pom.xml"
  log "fetching $what into $dir"
  mvn -q -B -Dstyle.color=never -f "$dir/.pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dir" > "$dir/.mvn.log" 2>&1 || { tail -n 30 "$dir/.mvn.log" >&2; log "Maven failed fetching $what"; return 1; }
  touch "$dir/.complete"
}

fetch() {
  local a
  # The worker: the runtime (Jetty, Jersey, the standalone herder), the JSON converter, and log4j 2
  # behind the SLF4J 1.7 API that Maven resolves for the runtime (a binding for SLF4J 2 stays silent).
  copy_deps "$CACHE/lib" "$(pom connect-worker-runtime \
    "$(dep org.apache.kafka connect-runtime "$KAFKA_VERSION")$(dep org.apache.kafka connect-json "$KAFKA_VERSION")$(dep org.apache.logging.log4j log4j-slf4j-impl 2.25.5)")" \
    "Kafka Connect $KAFKA_VERSION (connect-runtime, connect-json)"
  # The JDBC sink's Hibernate registers every Jackson module a ServiceLoader finds, the worker's
  # Blackbird module too, which is "not a subtype" of a Module from the plugin's own (older) Jackson:
  # the plugin gets no Jackson of its own and uses the worker's.
  copy_deps "$CACHE/plugins/debezium-connector-jdbc" "$(pom debezium-connector-jdbc-plugin \
    "$(dep io.debezium debezium-connector-jdbc "$DEBEZIUM_JDBC_VERSION" | sed 's|</version>|</version><exclusions><exclusion><groupId>com.fasterxml.jackson.core</groupId><artifactId>*</artifactId></exclusion></exclusions>|')")" \
    "io.debezium:debezium-connector-jdbc:$DEBEZIUM_JDBC_VERSION"
  for a in debezium-connector-postgres debezium-connector-mysql; do
    copy_deps "$CACHE/plugins/$a" "$(pom "$a-plugin" "$(dep io.debezium "$a" "$DEBEZIUM_VERSION")")" "io.debezium:$a:$DEBEZIUM_VERSION"
  done
}

log_config() {
  [ -f "$CACHE/log4j2.properties" ] && return 0
  # WARN and above to stderr; the connectors' own task errors are ERRORs and show.
  cat > "$CACHE/log4j2.properties" <<'EOF'
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

prepare() { need_java; fetch; log_config; }

run() {
  [ $# -ge 2 ] || { echo "usage: $0 run <worker.properties> <connector.properties>…" >&2; exit 2; }
  local f
  for f in "$@"; do [ -f "$f" ] || { log "no such file: $f"; exit 2; }; done
  prepare
  # plugin.path comes from here (appended to a copy of the worker file: the last one wins), so callers
  # need not know the cache. The copy is named by this shell's pid, which exec hands to the JVM;
  # copies of workers no longer running are removed.
  mkdir -p "$CACHE/run"
  for f in "$CACHE"/run/worker-*.properties; do
    [ -e "$f" ] || continue
    f=${f##*/worker-}; kill -0 "${f%.properties}" 2>/dev/null || rm -f "$CACHE/run/worker-$f"
  done
  { cat "$1"; printf '\nplugin.path=%s\n' "$CACHE/plugins"; } > "$CACHE/run/worker-$$.properties"
  # shellcheck disable=SC2086
  exec "$JAVA" ${CONNECT_HEAP:--Xmx512m} -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CACHE/log4j2.properties" \
    -cp "$CACHE/lib/*" org.apache.kafka.connect.cli.ConnectStandalone \
    "$CACHE/run/worker-$$.properties" "${@:2}"
}

case "${1:-}" in
  prepare) prepare; log "Kafka Connect $KAFKA_VERSION with Debezium $DEBEZIUM_VERSION (postgres, mysql) and its JDBC sink $DEBEZIUM_JDBC_VERSION ready in $CACHE" ;;
  run) shift; run "$@" ;;
  classpath) prepare; printf '%s\n' "$CACHE/lib/*" ;;
  plugin-path) prepare; printf '%s\n' "$CACHE/plugins" ;;
  versions) printf 'kafka %s debezium %s jdbc-sink %s\n' "$KAFKA_VERSION" "$DEBEZIUM_VERSION" "$DEBEZIUM_JDBC_VERSION" ;;
  *) echo "usage: $0 prepare|run <worker.properties> <connector.properties>…|classpath|plugin-path|versions" >&2; exit 2 ;;
esac
