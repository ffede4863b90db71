/**
 * The types of a loaded pipeline config, derived from the component specs (src/components.ts) and
 * the top-level keys (pipeline.ts): nothing here is written by hand, so it cannot drift.
 */
import type { PipelineConfig } from './pipeline.ts';
import type { SinkCommonConfig, UnwrapField } from '../sinks/config.ts';

export type { PipelineConfig, SinkCommonConfig, UnwrapField };
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
