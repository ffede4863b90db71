/**
 * Every component Sluice has: one line per connector, log backend and processor. Adding one is a
 * folder with its spec (src/registry/spec.ts says what a spec holds) plus a line here; config
 * validation, config types, `sluice schema`, docs/config.md and docs/errors.md all follow from it.
 */
import { embeddedLog } from './log/embedded/spec.ts';
import { kafkaLog } from './log/kafka/spec.ts';
import { natsLog } from './log/nats/spec.ts';
import { filterProcessor } from './processors/filter/spec.ts';
import { mapProcessor } from './processors/map/spec.ts';
import { maskProcessor } from './processors/mask/spec.ts';
import { moduleProcessor } from './processors/module/spec.ts';
import { outboxProcessor } from './processors/outbox/spec.ts';
import { windowProcessor } from './processors/window/spec.ts';
import { joinProcessor } from './processors/join/spec.ts';
import { intervalJoinProcessor } from './processors/interval-join/spec.ts';
import { dedupeProcessor } from './processors/dedupe/spec.ts';
import { deriveProcessor } from './processors/derive/spec.ts';
import { avroProcessor } from './processors/avro/spec.ts';
import { expectProcessor } from './processors/expect/spec.ts';
import { routeProcessor } from './processors/route/spec.ts';
import { unwrapProcessor } from './processors/unwrap/spec.ts';
import { duckdbSink } from './sinks/duckdb/spec.ts';
import { mongodbSink, postgresJsonbSink } from './sinks/document/spec.ts';
import { mysqlSink } from './sinks/mysql/spec.ts';
import { postgresSink } from './sinks/postgres/spec.ts';
import { redisSink } from './sinks/redis/spec.ts';
import { cassandraSink } from './sinks/cassandra/spec.ts';
import { deltaSink } from './sinks/delta/spec.ts';
import { icebergSink } from './sinks/iceberg/spec.ts';
import { mysqlSource } from './sources/mysql/spec.ts';
import { postgresSource } from './sources/postgres/spec.ts';
import { mongodbSource } from './sources/mongodb/spec.ts';
import { couchdbSource } from './sources/couchdb/spec.ts';

export const SOURCES = [postgresSource, mysqlSource, mongodbSource, couchdbSource] as const;
export const SINKS = [postgresSink, mysqlSink, duckdbSink, mongodbSink, postgresJsonbSink, redisSink, deltaSink, icebergSink, cassandraSink] as const;
export const LOGS = [embeddedLog, kafkaLog, natsLog] as const;
export const PROCESSORS = [unwrapProcessor, filterProcessor, mapProcessor, routeProcessor, maskProcessor, outboxProcessor, moduleProcessor, windowProcessor, joinProcessor, intervalJoinProcessor, dedupeProcessor, deriveProcessor, avroProcessor, expectProcessor] as const;
