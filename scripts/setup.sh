#!/usr/bin/env bash
# Prepares this machine's services for Sluice's tests, benchmarks and demo. Idempotent: run it as
# often as you like. Needs root (it edits server configuration and restarts servers).
#   PostgreSQL: wal_level=logical, enough replication slots and senders, replication connections
#   from localhost allowed (trust, as the rest of this machine's test setup).
set -euo pipefail
log() { printf '[setup] %s\n' "$*"; }

PGVER=$(ls /etc/postgresql | sort -V | tail -n1)
PGCONF_DIR=/etc/postgresql/$PGVER/main
pg() { psql -X -q -h 127.0.0.1 -U postgres -d postgres -tAc "$1"; }

start_pg() {
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" main start 2>/dev/null || true
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 && return 0; sleep 0.5; done
  log "PostgreSQL did not come up; see /var/log/postgresql/"; return 1
}

start_pg
need_restart=0
want() { # want <setting> <value>
  local cur; cur=$(pg "select setting from pg_settings where name = '$1'")
  if [ "$cur" != "$2" ]; then log "postgres: $1 $cur -> $2"; pg "ALTER SYSTEM SET $1 = '$2'"; need_restart=1; fi
}
want wal_level logical
want max_replication_slots 64
want max_wal_senders 64
want max_slot_wal_keep_size 4096
HBA=$PGCONF_DIR/pg_hba.conf
if ! grep -qE '^host\s+replication\s+all\s+127\.0\.0\.1/32' "$HBA"; then
  log "postgres: allowing replication connections from localhost"
  { echo 'local   replication all                trust'
    echo 'host    replication all 127.0.0.1/32   trust'
    echo 'host    replication all ::1/128        trust'; } >> "$HBA"
  need_restart=1
fi
if [ $need_restart = 1 ]; then
  log "restarting PostgreSQL $PGVER"
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" main restart
  start_pg
fi
[ "$(pg 'show wal_level')" = logical ] || { log "wal_level is not logical after restart"; exit 1; }
log "PostgreSQL $PGVER ready for logical replication"

# MariaDB: the MySQL sink's tests and benchmark write to it (root, no password, 127.0.0.1:3306).
mariadb_up() { mariadb -uroot -h127.0.0.1 -e 'select 1' >/dev/null 2>&1; }
if ! mariadb_up; then
  log "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
fi
mariadb_up || { log "MariaDB is not reachable at 127.0.0.1:3306 as root; see /var/log/mysql/"; exit 1; }
log "MariaDB $(mariadb -uroot -h127.0.0.1 -N -e 'select version()') ready"

# MariaDB as a CDC source: row-based binary log with full row images and full table-map metadata
# (column names, signedness, ENUM/SET labels, primary key), GTIDs, and a server id. Written to
# its own section at the end of my.cnf (this machine's my.cnf includes no conf.d directory).
MYCNF=/etc/mysql/my.cnf
MARK='# sluice: binlog for CDC'
mysql_var() { mariadb -uroot -h127.0.0.1 -N -e "select @@$1" 2>/dev/null; }
if [ "$(mysql_var log_bin)" != 1 ] || [ "$(mysql_var binlog_format)" != ROW ] || [ "$(mysql_var binlog_row_metadata)" != FULL ] || [ "$(mysql_var binlog_row_image)" != FULL ]; then
  if ! grep -qF "$MARK" "$MYCNF"; then
    log "mariadb: enabling the row-based binary log in $MYCNF"
    cat >> "$MYCNF" <<'CNF'

# sluice: binlog for CDC
[mariadbd]
server_id = 1
log_bin = mariadb-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
expire_logs_days = 2
max_binlog_size = 256M
CNF
  fi
  log "restarting MariaDB"
  mariadb-admin -uroot -h127.0.0.1 shutdown 2>/dev/null || true
  for _ in $(seq 1 60); do pgrep -x mariadbd >/dev/null || break; sleep 0.5; done
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
  mariadb_up || { log "MariaDB did not come back after enabling the binlog; see /var/log/mysql/error.log"; exit 1; }
  [ "$(mysql_var binlog_format)" = ROW ] && [ "$(mysql_var log_bin)" = 1 ] || { log "MariaDB runs without the row-based binlog after restart; see $MYCNF"; exit 1; }
fi
log "MariaDB binlog: $(mariadb -uroot -h127.0.0.1 -N -e 'show master status' | cut -f1,2) (ROW, full metadata)"

# The MySQL sink loads upserts with LOAD DATA LOCAL INFILE (without it, it falls back to slower
# INSERT statements and warns). MariaDB allows it by default; a distribution's config may not.
# The variable is dynamic: set now, and in my.cnf for the next start.
LOCAL_MARK='# sluice: LOAD DATA LOCAL for the MySQL sink'
if [ "$(mysql_var local_infile)" != 1 ]; then
  log "mariadb: allowing LOAD DATA LOCAL INFILE (local_infile = ON)"
  grep -qF "$LOCAL_MARK" "$MYCNF" || printf '\n%s\n[mariadbd]\nlocal_infile = ON\n' "$LOCAL_MARK" >> "$MYCNF"
  mariadb -uroot -h127.0.0.1 -e 'SET GLOBAL local_infile = 1'
  [ "$(mysql_var local_infile)" = 1 ] || { log "MariaDB refuses local_infile = ON; see $MYCNF"; exit 1; }
fi

# MongoDB wire protocol: mongo-java-server (in memory) for the document sink's tests, on 127.0.0.1:27017.
bash "$(dirname "$0")/mongo-server.sh" start || { log "the MongoDB-compatible test server did not start; see the output above"; exit 1; }
# The same with an oplog, for the MongoDB source's change streams, on 127.0.0.1:27018.
MONGO_PORT=27018 MONGO_OPLOG=1 bash "$(dirname "$0")/mongo-server.sh" start || { log "the MongoDB-compatible test server with an oplog did not start; see the output above"; exit 1; }

# Debezium's own connectors (jars cached with Maven, the peer program compiled) for test/debezium/.
bash "$(dirname "$0")/debezium.sh" prepare || { log "Debezium's connectors for the fidelity test could not be fetched; see the output above"; exit 1; }
bash "$(dirname "$0")/kafka-connect.sh" prepare || { log "Kafka Connect and Debezium's connectors for the interop tests could not be fetched; see the output above"; exit 1; }
# Delta Kernel (jars cached with Maven, scripts/java/DeltaRead.java compiled): the reference reader of the Delta Lake sink's tables.
bash "$(dirname "$0")/delta-reader.sh" --fetch || { log "Delta Kernel's reference reader for the Delta Lake sink's tests could not be fetched; see the output above"; exit 1; }
log "Delta Kernel reader $(bash "$(dirname "$0")/delta-reader.sh" --kernel-version) ready"
# Iceberg Java (iceberg-core/data/parquet), the reference reader of the Iceberg sink's tables.
bash "$(dirname "$0")/iceberg-reader.sh" --fetch || { log "Iceberg's reference reader for the Iceberg sink's tests could not be fetched; see the output above"; exit 1; }
log "Iceberg reader $(bash "$(dirname "$0")/iceberg-reader.sh" --iceberg-version) ready"
# Java's Avro library, the other side of test/core/avro-java.test.ts.
bash "$(dirname "$0")/avro-reader.sh" --fetch || { log "Java's Avro library for the Avro codec's interop test could not be fetched; see the output above"; exit 1; }

# Apache Kafka (KRaft, one node, 127.0.0.1:9092; jars from Maven Central, cached) for the kafka log
# backend's tests.
bash "$(dirname "$0")/kafka-server.sh" start || { log "Kafka did not start; see the output above"; exit 1; }

# NATS with JetStream (127.0.0.1:4222) for the nats log backend's tests: this machine's service,
# started the way its image starts it when it is not running. Checked through JetStream's API (a
# $JS.API.INFO request, answered only when JetStream is on), not just the port, and with bash alone
# (this runs before npm ci).
nats_js_up() {
  timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222 || exit 1
    printf "CONNECT {\"verbose\":false}\r\nSUB _INBOX.sluice_setup 1\r\nPUB \$JS.API.INFO _INBOX.sluice_setup 0\r\n\r\n" >&3
    while IFS= read -r -t 3 line <&3; do
      case "$line" in *account_info_response*) case "$line" in *\"error\"*) exit 1 ;; *) exit 0 ;; esac ;; esac
    done
    exit 1' 2>/dev/null
}
if ! nats_js_up; then
  log "starting nats-server with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  for _ in $(seq 1 40); do nats_js_up && break; sleep 0.5; done
fi
nats_js_up || { log "NATS with JetStream is not answering on 127.0.0.1:4222; see /var/log/nats-server.log"; exit 1; }
log "NATS $(/usr/sbin/nats-server --version | awk '{print $2}') with JetStream ready on 127.0.0.1:4222"

# Redis (127.0.0.1:6379) for the redis sink's tests and examples/fraud: this machine's service,
# started as the machine starts it when it is not answering (it keeps nothing on disk).
redis_up() {
  exec 3<>/dev/tcp/127.0.0.1/6379 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  local reply
  read -r -t 2 reply <&3 || reply=''
  exec 3>&-
  [[ "$reply" == +PONG* ]]
}
if ! redis_up; then
  log "starting redis-server"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 40); do redis_up && break; sleep 0.25; done
fi
redis_up || { log "Redis is not answering on 127.0.0.1:6379; see /var/log/redis/ci.log"; exit 1; }
log "Redis ready on 127.0.0.1:6379"

# Chromium (Debian's package) for the operations console's browser test (test/server/console.test.ts,
# driven by playwright-core; no browser download).
if ! command -v chromium >/dev/null; then
  log "installing chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
log "$(chromium --version 2>/dev/null || echo 'chromium missing')"
