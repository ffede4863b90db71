/** Sink factory: one implementation per target type. */
import type { SinkConfig } from '../config/types.ts';
import type { Logger } from '../core/logger.ts';
import type { Sink } from './types.ts';

export async function createSink(cfg: SinkConfig, logger: Logger, id: string): Promise<Sink> {
  switch (cfg.type) {
    case 'postgres':
      return new (await import('./postgres/sink.ts')).PostgresSink(cfg, logger, id);
    case 'mysql':
      return new (await import('./mysql/sink.ts')).MysqlSink(cfg, logger, id);
    case 'duckdb':
      return new (await import('./duckdb/sink.ts')).DuckdbSink(cfg, logger, id);
    case 'mongodb':
    case 'postgres_jsonb':
      return new (await import('./document/sink.ts')).DocumentSink(cfg, logger, id);
  }
}
