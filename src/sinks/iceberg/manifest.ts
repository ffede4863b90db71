/**
 * Iceberg manifests and manifest lists (table spec, format version 2), as Avro object container
 * files with the spec's field ids: a manifest lists data or delete files with their partition
 * values and counts; a snapshot's manifest list names its manifests. Optional statistics (column
 * sizes, bounds) are written as null: readers then take no file as skippable.
 */
import { encodeContainer, parseSchema, readContainerFile, type AvroSchema } from '../../core/avro/index.ts';
import type { IcebergType, PartitionField, TableSchema } from './metadata.ts';

const opt = (type: unknown) => ['null', type];
const f = (id: number, name: string, type: unknown, optional = false) => ({ name, type: optional ? opt(type) : type, ...(optional ? { default: null } : {}), 'field-id': id });
const mapOf = (name: string, k: number, v: number, valueType: unknown) => ({ type: 'array', logicalType: 'map', items: { type: 'record', name, fields: [f(k, 'key', 'int'), f(v, 'value', valueType)] } });

/** The Avro type of a partition value of Iceberg type `t` (what a transform yields). */
function avroOf(t: IcebergType): unknown {
  if (typeof t !== 'string') return 'string';
  const d = /^decimal\((\d+),\s*(\d+)\)$/.exec(t);
  if (d) return { type: 'fixed', name: `decimal_${d[1]}_${d[2]}`, size: decimalBytes(Number(d[1])), logicalType: 'decimal', precision: Number(d[1]), scale: Number(d[2]) };
  switch (t) {
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
    case 'string':
      return t;
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false };
    case 'timestamptz':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true };
    case 'binary':
      return 'bytes';
    default:
      return 'string';
  }
}

/** Bytes of the smallest two's complement fixed holding `precision` decimal digits. */
export function decimalBytes(precision: number): number {
  let n = 1;
  while (Math.log10(2 ** (8 * n - 1)) < precision) n++;
  return n;
}

/** The manifest entry schema for a partition spec whose fields have Iceberg types `types`. */
function entrySchema(spec: PartitionField[], types: IcebergType[]): AvroSchema {
  const partition = { type: 'record', name: 'r102', fields: spec.map((p, i) => f(p['field-id'], p.name, avroOf(types[i]), true)) };
  return parseSchema({
    type: 'record',
    name: 'manifest_entry',
    fields: [
      f(0, 'status', 'int'),
      f(1, 'snapshot_id', 'long', true),
      f(3, 'sequence_number', 'long', true),
      f(4, 'file_sequence_number', 'long', true),
      f(2, 'data_file', {
        type: 'record',
        name: 'r2',
        fields: [
          f(134, 'content', 'int'),
          f(100, 'file_path', 'string'),
          f(101, 'file_format', 'string'),
          f(102, 'partition', partition),
          f(103, 'record_count', 'long'),
          f(104, 'file_size_in_bytes', 'long'),
          f(108, 'column_sizes', mapOf('k117_v118', 117, 118, 'long'), true),
          f(109, 'value_counts', mapOf('k119_v120', 119, 120, 'long'), true),
          f(110, 'null_value_counts', mapOf('k121_v122', 121, 122, 'long'), true),
          f(137, 'nan_value_counts', mapOf('k138_v139', 138, 139, 'long'), true),
          f(125, 'lower_bounds', mapOf('k126_v127', 126, 127, 'bytes'), true),
          f(128, 'upper_bounds', mapOf('k129_v130', 129, 130, 'bytes'), true),
          f(131, 'key_metadata', 'bytes', true),
          f(132, 'split_offsets', { type: 'array', items: 'long', 'element-id': 133 }, true),
          f(135, 'equality_ids', { type: 'array', items: 'int', 'element-id': 136 }, true),
          f(140, 'sort_order_id', 'int', true),
        ],
      }),
    ],
  });
}

const LIST_SCHEMA = parseSchema({
  type: 'record',
  name: 'manifest_file',
  fields: [
    f(500, 'manifest_path', 'string'),
    f(501, 'manifest_length', 'long'),
    f(502, 'partition_spec_id', 'int'),
    f(517, 'content', 'int'),
    f(515, 'sequence_number', 'long'),
    f(516, 'min_sequence_number', 'long'),
    f(503, 'added_snapshot_id', 'long'),
    f(504, 'added_files_count', 'int'),
    f(505, 'existing_files_count', 'int'),
    f(506, 'deleted_files_count', 'int'),
    f(512, 'added_rows_count', 'long'),
    f(513, 'existing_rows_count', 'long'),
    f(514, 'deleted_rows_count', 'long'),
    f(
      507,
      'partitions',
      {
        type: 'array',
        'element-id': 508,
        items: { type: 'record', name: 'r508', fields: [f(509, 'contains_null', 'boolean'), f(518, 'contains_nan', 'boolean', true), f(510, 'lower_bound', 'bytes', true), f(511, 'upper_bound', 'bytes', true)] },
      },
      true,
    ),
    f(519, 'key_metadata', 'bytes', true),
  ],
});

/** A data or delete file as a manifest holds it. */
export interface ContentFile {
  /** 0 data, 1 position deletes, 2 equality deletes. */
  content: 0 | 1 | 2;
  path: string;
  /** Partition values by partition field name (days, hours, … as numbers; identity values as the reader's Avro form). */
  partition: Record<string, unknown>;
  records: number;
  bytes: number;
  /** Equality deletes: the field ids compared. */
  equalityIds?: number[];
  /** A file carried into a merged manifest (status EXISTING): the snapshot that added it and its sequence numbers. */
  existing?: { snapshotId: number; sequence: number; fileSequence: number };
}

/** A manifest as a manifest list names it. */
export interface ManifestFile {
  manifest_path: string;
  manifest_length: number;
  partition_spec_id: number;
  content: 0 | 1;
  sequence_number: number;
  min_sequence_number: number;
  added_snapshot_id: number;
  added_files_count: number;
  existing_files_count: number;
  deleted_files_count: number;
  added_rows_count: number;
  existing_rows_count: number;
  deleted_rows_count: number;
  partitions: null;
  key_metadata: null;
}

/** A manifest of files a snapshot adds (all of one content kind, of one partition spec): its bytes and its entry in the manifest list. */
export function manifestOf(files: ContentFile[], o: { schema: TableSchema; specId: number; spec: PartitionField[]; partitionTypes: IcebergType[]; snapshotId: number; sequence: number; path: string }): { bytes: Buffer; entry: ManifestFile } {
  const deletes = files[0].content !== 0;
  const records = files.map((x) => ({
    status: x.existing ? 0 : 1,
    snapshot_id: x.existing?.snapshotId ?? o.snapshotId,
    // New files: null, inherited from the manifest list's entry (the snapshot's sequence number);
    // files carried into a merged manifest keep theirs.
    sequence_number: x.existing?.sequence ?? null,
    file_sequence_number: x.existing?.fileSequence ?? null,
    data_file: {
      content: x.content,
      file_path: x.path,
      file_format: 'PARQUET',
      partition: x.partition,
      record_count: x.records,
      file_size_in_bytes: x.bytes,
      column_sizes: null,
      value_counts: null,
      null_value_counts: null,
      nan_value_counts: null,
      lower_bounds: null,
      upper_bounds: null,
      key_metadata: null,
      split_offsets: null,
      equality_ids: x.equalityIds ?? null,
      sort_order_id: deletes ? null : 0,
    },
  }));
  const bytes = encodeContainer(entrySchema(o.spec, o.partitionTypes), records, {
    metadata: {
      schema: JSON.stringify(o.schema),
      'schema-id': String(o.schema['schema-id']),
      'partition-spec': JSON.stringify(o.spec),
      'partition-spec-id': String(o.specId),
      'format-version': '2',
      content: deletes ? 'deletes' : 'data',
    },
  });
  return {
    bytes,
    entry: {
      manifest_path: o.path,
      manifest_length: bytes.length,
      partition_spec_id: o.specId,
      content: deletes ? 1 : 0,
      sequence_number: o.sequence,
      min_sequence_number: Math.min(o.sequence, ...files.map((x) => x.existing?.sequence ?? o.sequence)),
      added_snapshot_id: o.snapshotId,
      added_files_count: files.filter((x) => !x.existing).length,
      existing_files_count: files.filter((x) => x.existing).length,
      deleted_files_count: 0,
      added_rows_count: files.reduce((n, x) => n + (x.existing ? 0 : x.records), 0),
      existing_rows_count: files.reduce((n, x) => n + (x.existing ? x.records : 0), 0),
      deleted_rows_count: 0,
      partitions: null,
      key_metadata: null,
    },
  };
}

/** A manifest list's bytes. */
export function manifestListOf(manifests: ManifestFile[], o: { snapshotId: number; parentId: number | null; sequence: number }): Buffer {
  return encodeContainer(LIST_SCHEMA, manifests, {
    metadata: { 'snapshot-id': String(o.snapshotId), 'parent-snapshot-id': o.parentId === null ? 'null' : String(o.parentId), 'sequence-number': String(o.sequence), 'format-version': '2' },
  });
}

/** The manifests a manifest list names (to carry them into the next snapshot). */
export async function readManifestList(path: string): Promise<ManifestFile[]> {
  const { records } = await readContainerFile(path);
  return (records as Record<string, unknown>[]).map((r) => ({
    manifest_path: String(r.manifest_path),
    manifest_length: Number(r.manifest_length),
    partition_spec_id: Number(r.partition_spec_id),
    content: Number(r.content) as 0 | 1,
    sequence_number: Number(r.sequence_number),
    min_sequence_number: Number(r.min_sequence_number),
    added_snapshot_id: Number(r.added_snapshot_id),
    added_files_count: Number(r.added_files_count),
    existing_files_count: Number(r.existing_files_count),
    deleted_files_count: Number(r.deleted_files_count),
    added_rows_count: Number(r.added_rows_count),
    existing_rows_count: Number(r.existing_rows_count),
    deleted_rows_count: Number(r.deleted_rows_count),
    partitions: null,
    key_metadata: null,
  }));
}

/** The live files a manifest lists, with their data sequence numbers (inherited ones resolved from its list entry) and what a merged manifest carries of them. */
export async function readManifest(m: ManifestFile): Promise<(ContentFile & { sequence: number; existing: NonNullable<ContentFile['existing']> })[]> {
  const { records } = await readContainerFile(m.manifest_path);
  return (records as Record<string, any>[])
    .filter((r) => Number(r.status) !== 2)
    .map((r) => {
      const sequence = r.sequence_number == null ? m.sequence_number : Number(r.sequence_number);
      return {
        content: Number(r.data_file.content) as 0 | 1 | 2,
        path: String(r.data_file.file_path),
        partition: r.data_file.partition ?? {},
        records: Number(r.data_file.record_count),
        bytes: Number(r.data_file.file_size_in_bytes),
        equalityIds: r.data_file.equality_ids ?? undefined,
        sequence,
        existing: { snapshotId: r.snapshot_id == null ? m.added_snapshot_id : Number(r.snapshot_id), sequence, fileSequence: r.file_sequence_number == null ? m.sequence_number : Number(r.file_sequence_number) },
      };
    });
}
