/**
 * Test helpers for the machine's real PostgreSQL (127.0.0.1:5432, trust auth, logical replication
 * enabled by scripts/setup.sh). A missing or misconfigured server fails the test with a message
 * that says how to fix it; nothing skips.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';

export const PG_HOST = process.env.PGHOST_TEST ?? '127.0.0.1';
export const PG_PORT = Number(process.env.PGPORT_TEST ?? 5432);
export const PG_USER = process.env.PGUSER_TEST ?? 'postgres';

export async function adminClient(database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database });
  try {
    await c.connect();
  } catch (e) {
    throw new Error(`PostgreSQL is not reachable at ${PG_HOST}:${PG_PORT} (${(e as Error).message}). Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; then run: bash scripts/setup.sh`, { cause: e });
  }
  return c;
}

/** Creates a fresh database for one test file; drop() removes it and any replication slots in it. */
export async function freshDatabase(prefix = 'sluice_t'): Promise<{ name: string; client: pg.Client; drop: () => Promise<void> }> {
  // The creation time in the name lets a cleanup tell a leftover from a database a concurrent run
  // (another checkout's tests on the same server) is using right now.
  const name = `${prefix}_${stampNow()}_${randomBytes(3).toString('hex')}`;
  const admin = await adminClient();
  const wal = (await admin.query('show wal_level')).rows[0].wal_level;
  if (wal !== 'logical') {
    await admin.end();
    throw new Error(`PostgreSQL wal_level is ${wal}, tests need logical: run bash scripts/setup.sh`);
  }
  // Leftovers of an interrupted earlier run (its after() hooks never ran), over two hours old: their
  // idle slots, then the databases.
  const stale = (await admin.query(`SELECT datname FROM pg_database d WHERE datname LIKE 'sluice\\_t\\_%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)`)).rows
    .map((r) => r.datname as string)
    .filter(isStale);
  for (const db of stale) {
    await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [db]).catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
  }
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const client = await adminClient(name);
  return {
    name,
    client,
    drop: async () => {
      await client.end().catch(() => {});
      const a = await adminClient();
      try {
        // Terminate walsenders still attached to slots of this database, then drop its slots.
        await a.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [name]);
        for (let i = 0; i < 50; i++) {
          const r = await a.query(`SELECT slot_name, active FROM pg_replication_slots WHERE database = $1`, [name]);
          if (r.rows.every((x) => !x.active)) break;
          await new Promise((res) => setTimeout(res, 100));
        }
        await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [name]);
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** Seconds since the epoch in base 36: a sortable creation stamp for test object names. */
export function stampNow(): string {
  return Math.floor(Date.now() / 1000).toString(36);
}

/** A test object named `<prefix>_<stamp>_<random>` created over two hours ago (or with no stamp: an older layout). */
export function isStale(name: string): boolean {
  const m = /_([0-9a-z]{6,7})_[0-9a-f]+$/.exec(name);
  if (!m) return true;
  return Date.now() / 1000 - parseInt(m[1], 36) > 7200;
}
