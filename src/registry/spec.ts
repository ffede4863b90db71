/**
 * What a component (a source, a sink, a log backend, a processor) declares about itself: one spec
 * per component, registered in src/components.ts. Everything the rest of Sluice knows about a
 * component type comes from its spec — its config keys with their defaults and docs, how to create
 * it, its error codes, how its status reads, and for sources the shape of Debezium's `source`
 * block — so nothing outside the component's folder switches on its type.
 *
 * A spec module must stay light: it imports its implementation lazily inside `create`/`open`, so
 * that loading the registry (for `sluice validate`, `sluice schema`, the docs) loads no drivers.
 */
import type { Field, ResolveContext } from '../config/fields.ts';
import type { ErrorArea } from '../core/errors.ts';
import type { DebeziumSourceInfo } from '../core/serde/debezium.ts';
import type { Logger } from '../core/logger.ts';
import type { SchemaRecord } from '../core/schemas.ts';
import type { ComponentMetrics, Registry } from '../core/metrics.ts';
import type { Source } from '../core/source.ts';
import type { Log } from '../log/types.ts';
import type { Sink } from '../sinks/types.ts';

/** Helpers a spec's extra checks get: where a config path is, and how to report a problem there. */
export interface CheckContext {
  fileName: string;
  /** Line and column of the node at a config path. */
  pos(path: string[]): { line: number; col: number };
  fail(path: string[], message: string): void;
}

interface SpecBase<T extends string, C> {
  type: T;
  /** Human name, e.g. `PostgreSQL source`. */
  title: string;
  /** The user docs page, relative to docs/ (e.g. `connectors/postgres.md`). */
  docs?: string;
  /** The component's config keys (besides `type`), with defaults and descriptions. */
  config: Field<C, any>;
  /** The component's error codes (docs/errors.md is generated from these). */
  errors?: ErrorArea<any>[];
  /** Checks beyond the schema (e.g. templates), called with the raw, schema-valid config at `path`. */
  check?(raw: any, path: string[], ctx: CheckContext): void;
  /** One line for `sluice validate`, without secrets. */
  describe(cfg: C): string;
}

// ---------- sources ----------

/** What the engine gives a source besides its own config. */
export interface SourceContext {
  pipeline: string;
  logger: Logger;
  metrics: ComponentMetrics;
  /** A directory of the pipeline's own (not the log's) for files the source keeps, e.g. spill files. */
  stateDir: string;
  /** The log commit bounds: sources wait at most `maxDelayMs` before committing pending events. */
  batch: { maxRecords: number; maxBytes: number; maxDelayMs: number };
  /** Bound on bytes received but not yet decoded. */
  maxQueueBytes: number;
  /** How a user starts this pipeline over from scratch (for messages), e.g. `move the log directory … away`. */
  resetHint: string;
}

export interface SourceSpec<T extends string = string, C = any> extends SpecBase<T, C> {
  kind: 'source';
  debezium: DebeziumSourceInfo;
  /** Topics are `<topicPrefix>.<schema>.<table>`. */
  topicPrefix(cfg: C): string;
  create(cfg: C, ctx: SourceContext): Promise<Source>;
  /** The source's status (as `status()` returned it) as one line for `sluice status`. */
  statusLine(status: Record<string, any>): string;
  /**
   * What the source database says about this pipeline (slot, binlog) for `sluice status --config`.
   * `last` is the status the pipeline last wrote. Never throws: unreachable servers are reported.
   */
  serverStatus?(cfg: C, last: Record<string, any> | null): Promise<{ key: string; value: Record<string, unknown>; line: string }>;
  /**
   * Writes a row into the source's signal table (`source.signalTable`, Debezium's id/type/data
   * columns) for `sluice snapshot`; returns the table written. Sources without signals leave it out.
   */
  signal?(cfg: C, row: { id: string; type: string; data: string }): Promise<string>;
}

// ---------- sinks ----------

/** Config keys every sink has, read by the engine. */
export interface SinkBaseConfig {
  name: string;
  /** Topics (or `*` patterns) the sink applies; empty: the source's change topics. */
  topics: string[];
  /** `schema.table` patterns of source tables to apply; empty: all. */
  tables: string[];
  offsetsTable: string;
  batch: { maxRecords: number; maxBytes: number; maxDelayMs: number };
  /** What a change the target refuses for good does (engine/sink-policy.ts). */
  onError: 'stop' | 'skip_table' | 'dlq';
}

export interface SinkContext {
  pipeline: string;
  logger: Logger;
  /** The sink's identity in its target's offsets table: `<pipeline>/<sink name>`. */
  id: string;
}

export interface SinkSpec<T extends string = string, C extends SinkBaseConfig = any> extends SpecBase<T, C> {
  kind: 'sink';
  /** The records it applies (default: change events). */
  input?: RecordFormat;
  create(cfg: C, ctx: SinkContext): Promise<Sink>;
  /** A file or database the sink writes, to refuse two sinks on one (e.g. a DuckDB path). */
  exclusiveTarget?(cfg: C): string | null;
}

// ---------- log backends ----------

export interface LogOpenOptions {
  /** A read-only handle (sluice tail/status while a pipeline runs). */
  readOnly?: boolean;
  /** Partitions of topics created without a count. */
  defaultPartitions?: number;
}

export interface LogSpec<T extends string = string, C = any> extends SpecBase<T, C> {
  kind: 'log';
  open(cfg: C, opts: LogOpenOptions): Promise<Log>;
  /** How a user starts the pipeline over with an empty log (for messages). */
  resetHint(cfg: C): string;
  /** Topic settings the pipeline applies to topics it creates. */
  topicDefaults(cfg: C): { partitions: number; retentionMs?: number; retentionBytes?: number };
}

// ---------- processors ----------

/**
 * What a processor's records look like, so the engine can check what consumes them: `envelope`
 * (Debezium change events with their schema header: what table sinks apply), `flat` (rows without
 * the envelope), `event` (any other JSON value, e.g. an outbox event's payload).
 */
export type RecordFormat = 'envelope' | 'flat' | 'event';

export interface ProcessorBaseConfig {
  name: string;
  /** Topics or `*` patterns read. */
  inputs: string[];
  /** The output topic; `{topic}`, `{schema}`, `{table}` are replaced per input record. */
  output: string;
  /** A record the transform throws on: dead-lettered (`dlq`) or the end of the processor (`stop`). */
  onError: 'dlq' | 'stop';
  /** A change of a source table's columns: reported and passed (`continue`) or the end of the processor (`stop`). */
  onSchemaChange: 'continue' | 'stop';
  /** Settings of the output topics it creates. */
  outputTopic?: { partitions?: number; retention?: number; compaction: boolean };
}

/** A record as a transform sees it. */
export interface TransformInput {
  topic: string;
  partition?: number;
  offset?: number;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers?: Record<string, string>;
}

/** A record a transform writes. `timestamp` defaults to the input record's. */
export interface TransformOutput {
  topic: string;
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, string>;
  timestamp?: number;
  /** A change event's schema (its id in `headers.s`): the task writes it to the schema topic once, in the same commit. */
  schema?: SchemaRecord;
}

/**
 * A transform of one record at a time. `apply` may throw: the record then goes to the pipeline's
 * dead-letter topic with the error (or stops the processor, per its `onError`), and the processor
 * goes on with the next one. A stateful transform must not change its state before it knows the
 * record is good (a thrown record leaves no trace). An error with `halt: true` is the processor's,
 * not the record's (an external service refused or is down): it stops the processor (or is retried
 * when retriable), whatever `onError` says. An error with `deadLetter: true` is a verdict on the
 * record (an expectation it failed): it is dead-lettered whatever `onError` says.
 */
export interface RecordTransform {
  /** Returns the records to write for one input record (none to drop it), or a promise of them. */
  apply(rec: TransformInput): TransformOutput[] | Promise<TransformOutput[]>;
  /**
   * Stateful transforms (specs with `stateful: true`): called at the start of every run attempt
   * with the keyed state as last committed, before any `apply`. Everything the transform keeps
   * beyond one batch must live in it (or be rebuilt from it here).
   */
  open?(state: KeyedState): void;
  /**
   * Called after each batch (and about every 200 ms while inputs are idle) with the wall-clock
   * time: what it returns (closed windows, updates) commits with the batch.
   */
  tick?(now: number): TransformOutput[];
  /** Whether the last `tick` left due work for the next one (it emits a bounded amount per call): the task then ticks again without waiting for input. */
  behind?(): boolean;
  /**
   * Parallel processing (`parallelism` > 1, src/engine/shards.ts). The task's own copy of the
   * transform (never opened on state) reads every record with `shard`, in order: the record's
   * shard key (records with equal keys share state, so one shard owns them all; null: shard 0).
   * What can throw for a record, throws here. Its `clock` after each record (a window's largest
   * event time) goes with the record to its shard, whose copy takes it in with `advance` before
   * `apply`: what every shard must know of the records it does not own.
   */
  shard?(rec: TransformInput): string | null;
  clock?(): number;
  advance?(clock: number): void;
  /** What the transform adds to its processor's status (status.json, `sluice status`), e.g. the expect processor's counts. */
  status?(): Record<string, unknown>;
}

/** One entry of keyed state, as `KeyedState.ref` returns it. */
export interface StateRef {
  readonly key: string;
  /** The value; undefined once deleted. */
  v: unknown;
  dirty: boolean;
}

/** How a stateful processor keeps its state (its `state` config). */
export interface StatefulOptions {
  maxKeys: number;
  commitMs: number;
  store: 'memory' | 'disk';
  /** Disk: the entries cached in memory. */
  memoryKeys: number;
  /** Disk: where the store's files go (under `<dir>/<pipeline>/<processor>`); default `processors` in the pipeline's `state.dir`. */
  dir?: string;
  /** Worker threads sharing the records by the transform's shard key, each with its part of the state (1: in the task's own thread). */
  parallelism: number;
}

/** Keyed state of a stateful transform (src/engine/state-store.ts): JSON values, committed with the output. */
export interface KeyedState {
  get<T = unknown>(key: string): T | undefined;
  put(key: string, value: unknown): void;
  /** Puts, and returns the entry itself: a transform that keeps it changes its value in place and `touch`es it, with no lookup per change. */
  ref(key: string, value: unknown): StateRef;
  /** Marks an entry's value (changed in place) for the next commit. */
  touch(ref: StateRef): void;
  delete(key: string): void;
  entries(): IterableIterator<[string, unknown]>;
  readonly size: number;
  /**
   * Whether the entries live on disk (`state.store: disk`), with only some cached in memory. A
   * transform then keeps no entries (nor refs to them) of its own beyond one call: it reads them
   * with `get`, writes them with `put`, and finds them by time with `timer` and `due`.
   */
  readonly onDisk: boolean;
  /** Notes that `key` is due at time `at` (an index beside the state, not committed: `open` rebuilds it). */
  timer(at: number, key: string): void;
  /** The keys whose timers are at or before `upTo`, earliest first (at most `max` of them), taken out of the index. */
  due(upTo: number, max?: number): string[];
}

export interface ProcessorContext {
  pipeline: string;
  logger: Logger;
  /** For a processor with side inputs: whether a topic is one of them. */
  isSide?(topic: string): boolean;
  /** For a processor with side inputs: the first entry of `sideInputs` that reads `topic` (undefined: none). */
  sideInput?(topic: string): string | undefined;
  /** The pipeline's metrics registry, for a transform's own metrics (labels: pipeline, processor). */
  registry?: Registry;
  /** `schema.table` of a change event's parsed `source` block, as its source connector names it. */
  tableOf(source: Record<string, unknown>): { schema: string; table: string };
  /** The schema of a change event (its header `s`), for transforms that write change events of new columns; loaded before the record reaches `apply` (undefined: the log lacks it). */
  schemaOf?(id: string): SchemaRecord | undefined;
}

export interface ProcessorSpec<T extends string = string, C extends ProcessorBaseConfig = any> extends SpecBase<T, C> {
  kind: 'processor';
  /**
   * The format of records it reads (`any`: whatever its inputs hold) and writes (`same`: the
   * format of its inputs, for transforms that keep the shape: filter, route, mask).
   */
  input: RecordFormat | 'any';
  output: RecordFormat | 'same' | ((cfg: C) => RecordFormat | 'same');
  create(cfg: C, ctx: ProcessorContext): Promise<RecordTransform>;
  /** Keeps keyed state (committed to `<pipeline>.state.<name>`): its bound and commit interval, from its config. */
  stateful?(cfg: C): StatefulOptions | null;
  /** Inputs beside `inputs` that the transform tells apart (a join's table), as graph entries. */
  sideInputs?(cfg: C): string[];
  /** Reads its input change events' schemas (`ctx.schemaOf`): the task loads each before the records that carry it. */
  schemas?: boolean;
  /** Every output topic template, for a processor that writes more than `output` (routes). */
  outputs?(cfg: C): string[];
}

export type AnySpec = SourceSpec | SinkSpec | LogSpec | ProcessorSpec;

/** Declares a spec with its type name kept as a literal type (so configs get a union type). */
export const defineSource = <const T extends string, C>(s: SourceSpec<T, C>): SourceSpec<T, C> => s;
export const defineSink = <const T extends string, C extends SinkBaseConfig>(s: SinkSpec<T, C>): SinkSpec<T, C> => s;
export const defineLog = <const T extends string, C>(s: LogSpec<T, C>): LogSpec<T, C> => s;
export const defineProcessor = <const T extends string, C extends ProcessorBaseConfig>(s: ProcessorSpec<T, C>): ProcessorSpec<T, C> => s;

export type { DebeziumSourceInfo, ResolveContext };
