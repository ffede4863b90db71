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
