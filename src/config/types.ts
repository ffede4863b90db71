/**
 * The types of a loaded pipeline config, derived from the component specs (src/components.ts) and
 * the top-level keys (pipeline.ts): nothing here is written by hand, so it cannot drift.
 */
import type { PipelineConfig } from './pipeline.ts';
import type { SinkBaseConfig } from '../registry/spec.ts';
import type { UnwrapField } from '../sinks/config.ts';

export type { PipelineConfig, UnwrapField };
export type { ConnectionConfig, PostgresConnectionConfig } from './fields.ts';
export type SourceConfig = PipelineConfig['source'];
export type SinkConfig = PipelineConfig['sinks'][number];
export type ProcessorConfig = PipelineConfig['processors'][number];
export type LogConfig = PipelineConfig['log'];
export type BatchConfig = PipelineConfig['batch'];
export type { PostgresSourceConfig } from '../sources/postgres/spec.ts';
export type { MysqlSourceConfig } from '../sources/mysql/spec.ts';
export type { PostgresSinkConfig } from '../sinks/postgres/spec.ts';
export type { MysqlSinkConfig } from '../sinks/mysql/spec.ts';
export type { DuckdbSinkConfig } from '../sinks/duckdb/spec.ts';
export type { DocumentCollectionConfig, DocumentSinkConfig, MongoSinkConfig, PostgresJsonbSinkConfig } from '../sinks/document/spec.ts';
export type { EmbeddedLogConfig } from '../log/embedded/spec.ts';

/** What the SQL and document sinks share: the engine's keys plus the table options. */
export type SinkCommonConfig = SinkBaseConfig & {
  tableName: string;
  deletes: 'hard' | 'soft';
  softDeleteColumn: string;
  addFields: UnwrapField[];
  schemaEvolution: 'add_columns' | 'none';
};
