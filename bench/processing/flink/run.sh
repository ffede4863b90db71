#!/usr/bin/env bash
# Runs the Flink peer of the processing benchmark (WindowJob.java) on a local MiniCluster:
#   bench/processing/flink/run.sh <input.jsonl> <output.jsonl> [--parallelism 2] [--size-ms 60000] [--delay-ms 5000]
# Fetches and compiles first when needed (setup.sh), quietly. stdout: the job's FLINK_RESULT line.
# Environment: JAVA (default: $JAVA_HOME/bin/java, else java), FLINK_HEAP (default 1g),
# FLINK_JAVA_OPTS (more JVM flags), FLINK_VERSION and SLUICE_CACHE (as setup.sh).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <input.jsonl> <output.jsonl> [--parallelism N] [--size-ms MS] [--delay-ms MS]" >&2; exit 2; }
DIR=$(cd "$(dirname "$0")" && pwd)
INPUT=$1 OUTPUT=$2
shift 2
CP=$("$DIR/setup.sh" classpath 2>/dev/null) || { "$DIR/setup.sh" classpath >/dev/null; exit 1; }
if [ -n "${JAVA:-}" ]; then :; elif [ -n "${JAVA_HOME:-}" ]; then JAVA=$JAVA_HOME/bin/java; else JAVA=java; fi
# Flink's own JVM options for Java 17+ (env.java.opts.all in its distribution's config), for Kryo
# and the closure cleaner reaching into JDK classes. This job (Tuple3 and POJO types, no Kryo) ran
# without them on JDK 17 too; they are kept so that the peer runs as a stock Flink would.
OPENS=(
  --add-exports=java.base/sun.net.util=ALL-UNNAMED
  --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.text=ALL-UNNAMED
  --add-opens=java.base/java.time=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)
# shellcheck disable=SC2086
exec "$JAVA" -Xmx"${FLINK_HEAP:-1g}" "${OPENS[@]}" \
  -Dlog4j.configurationFile="$DIR/log4j2.properties" ${FLINK_JAVA_OPTS:-} \
  -cp "$CP" WindowJob --input "$INPUT" --output "$OUTPUT" "$@"
