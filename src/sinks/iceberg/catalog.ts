/**
 * Where the Iceberg sink finds and commits each table's current metadata:
 *
 * - `filesystem` (Hadoop tables): `metadata/v<N>.metadata.json` and `version-hint.text` in the
 *   table directory (metadata.ts), committed put-if-absent. Any engine reading a path finds it.
 * - `jdbc`: the layout Iceberg's JDBC catalog keeps in a PostgreSQL database, so engines with an
 *   Iceberg JDBC catalog (Spark, Trino, Flink, PyIceberg) find the tables by name: a row per table
 *   in `iceberg_tables` holding its current `metadata_location`, moved by compare-and-swap (the
 *   UPDATE matches the location the commit started from, or nothing changes), and a row per
 *   namespace in `iceberg_namespace_properties`. Metadata files are `<NNNNN>-<uuid>.metadata.json`.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { ConnectionConfig } from '../../config/fields.ts';
import { pgDeadlineOptions } from '../timeouts.ts';
import { makeDirs } from '../../core/dirs.ts';
import { icebergError } from './errors.ts';
import { commitMetadata, readCurrent, writeSynced, type TableMetadata } from './metadata.ts';

export interface Current {
  metadata: TableMetadata;
  /** The metadata file. */
  file: string;
  /** Its version (the number in its name). */
  version: number;
}

export interface Catalog {
  /** The table's current metadata (null: no table yet). */
  load(ns: string, table: string, dir: string): Promise<Current | null>;
  /** Commits `next` over `prev` (null: creating the table); ICEBERG_CONFLICT when another writer moved it first. */
  commit(ns: string, table: string, dir: string, prev: Current | null, next: TableMetadata): Promise<Current>;
  /** The tables under the warehouse `root` this catalog holds. */
  tables(root: string): Promise<{ ns: string; table: string; dir: string }[]>;
  close(): Promise<void>;
}

export class FilesystemCatalog implements Catalog {
  async load(_ns: string, _table: string, dir: string): Promise<Current | null> {
    return readCurrent(dir);
  }

  async commit(_ns: string, _table: string, dir: string, prev: Current | null, next: TableMetadata): Promise<Current> {
    const version = (prev?.version ?? 0) + 1;
    return { metadata: next, file: await commitMetadata(dir, version, next), version };
  }

  async tables(root: string): Promise<{ ns: string; table: string; dir: string }[]> {
    const out: { ns: string; table: string; dir: string }[] = [];
    for (const ns of await readdir(root, { withFileTypes: true })) {
      if (!ns.isDirectory()) continue;
      for (const t of await readdir(join(root, ns.name), { withFileTypes: true })) if (t.isDirectory()) out.push({ ns: ns.name, table: t.name, dir: join(root, ns.name, t.name) });
    }
    return out;
  }

  async close(): Promise<void> {}
}

const NAMED = /^(\d+)-[0-9a-f-]+\.metadata\.json$/;

export class JdbcCatalog implements Catalog {
  private client: pg.Client | null = null;

  constructor(
    private readonly conn: ConnectionConfig,
    private readonly name: string,
    private readonly sink: string,
  ) {}

  private async db(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = this.conn;
    const client = new pg.Client({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, application_name: `sluice sink ${this.sink}`, ...pgDeadlineOptions(c) });
    client.on('error', () => {});
    await client.connect();
    // Iceberg's own DDL for the catalog (its "V1" layout, with iceberg_type), made if missing.
    await client.query(`CREATE TABLE IF NOT EXISTS iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000), iceberg_type VARCHAR(5), PRIMARY KEY (catalog_name, table_namespace, table_name))`);
    await client.query(`CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL, property_key VARCHAR(255), property_value VARCHAR(1000), PRIMARY KEY (catalog_name, namespace, property_key))`);
    this.client = client;
    return client;
  }

  async load(ns: string, table: string): Promise<Current | null> {
    const r = await (await this.db()).query(`SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3`, [this.name, ns, table]);
    if (!r.rows.length) return null;
    const file = String(r.rows[0].metadata_location);
    let metadata: TableMetadata;
    try {
      metadata = JSON.parse(await readFile(file, 'utf8')) as TableMetadata;
    } catch (e) {
      throw icebergError('ICEBERG_METADATA_UNREADABLE', `the JDBC catalog ${this.name} names ${file} as the metadata of ${ns}.${table}, and it cannot be read (${(e as Error).message}): the table's files were moved or deleted`);
    }
    if (metadata['format-version'] !== 2) throw icebergError('ICEBERG_TABLE_FOREIGN', `${ns}.${table} in the JDBC catalog ${this.name} is an Iceberg table of format version ${metadata['format-version']}: this sink writes format version 2 tables only`);
    return { metadata, file, version: Number(NAMED.exec(file.split('/').pop()!)?.[1] ?? 0) };
  }

  async commit(ns: string, table: string, dir: string, prev: Current | null, next: TableMetadata): Promise<Current> {
    const db = await this.db();
    const version = (prev?.version ?? -1) + 1;
    await makeDirs(join(dir, 'metadata'));
    const file = join(dir, 'metadata', `${String(version).padStart(5, '0')}-${randomUUID()}.metadata.json`);
    await writeSynced(file, JSON.stringify(next));
    let moved: number;
    try {
      if (prev) {
        moved = (await db.query(`UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2 WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 AND metadata_location = $2`, [file, prev.file, this.name, ns, table])).rowCount ?? 0;
      } else {
        await db.query(`INSERT INTO iceberg_namespace_properties VALUES ($1, $2, 'exists', 'true') ON CONFLICT DO NOTHING`, [this.name, ns]);
        moved = (await db.query(`INSERT INTO iceberg_tables VALUES ($1, $2, $3, $4, NULL, 'TABLE') ON CONFLICT DO NOTHING`, [this.name, ns, table, file])).rowCount ?? 0;
      }
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
    if (moved !== 1) {
      await rm(file, { force: true });
      throw icebergError('ICEBERG_CONFLICT', `${ns}.${table} in the JDBC catalog ${this.name} was ${prev ? 'committed' : 'created'} by another writer meanwhile: this batch is not applied (the sink reads the table again and retries)`);
    }
    return { metadata: next, file, version };
  }

  async tables(root: string): Promise<{ ns: string; table: string; dir: string }[]> {
    const r = await (await this.db()).query(`SELECT table_namespace, table_name, metadata_location FROM iceberg_tables WHERE catalog_name = $1`, [this.name]);
    // The catalog may hold other writers' tables: this sink's are those under its warehouse.
    return r.rows.map((x) => ({ ns: String(x.table_namespace), table: String(x.table_name), dir: dirname(dirname(String(x.metadata_location))) })).filter((t) => t.dir.startsWith(root + '/'));
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
