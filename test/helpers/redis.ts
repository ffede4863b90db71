/**
 * Test helpers for the machine's real Redis (127.0.0.1:6379, no password). A missing server fails
 * the test with a message that says how to start it; nothing skips. Tests share the server (and
 * its db 0) with each other: each uses keys under a prefix of its own and deletes them afterwards
 * (never FLUSHDB/FLUSHALL).
 */
import { randomBytes } from 'node:crypto';
import { RespClient } from '../../src/sinks/redis/resp.ts';

export const REDIS_HOST = process.env.REDIS_HOST_TEST ?? '127.0.0.1';
export const REDIS_PORT = Number(process.env.REDIS_PORT_TEST ?? 6379);

export async function redisClient(db = 0): Promise<RespClient> {
  try {
    return await RespClient.connect({ host: REDIS_HOST, port: REDIS_PORT, db, connectTimeoutMs: 5000, commandTimeoutMs: 30_000 });
  } catch (e) {
    throw new Error(`Redis is not reachable at ${REDIS_HOST}:${REDIS_PORT} (${(e as Error).message}). Start it: redis-server --daemonize yes (or service redis-server start)`, { cause: e });
  }
}

/** A key prefix of one test: `sluicet:<random>:`. */
export const keyPrefix = (): string => `sluicet:${randomBytes(4).toString('hex')}:`;

/** Every key under `prefix` (SCAN, not KEYS: the server is shared). */
export async function keysUnder(c: RespClient, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = (await c.call('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)) as [string, string[]];
    out.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return out.sort();
}

/** Deletes every key under `prefix`. */
export async function dropPrefix(c: RespClient, prefix: string): Promise<void> {
  const keys = await keysUnder(c, prefix);
  for (let i = 0; i < keys.length; i += 500) await c.call('UNLINK', ...keys.slice(i, i + 500));
}

/** A hash as an object (HGETALL). */
export async function hgetall(c: RespClient, key: string): Promise<Record<string, string>> {
  const r = (await c.call('HGETALL', key)) as string[];
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < r.length; i += 2) o[r[i]] = r[i + 1];
  return o;
}
