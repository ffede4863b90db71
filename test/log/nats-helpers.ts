/**
 * Helpers for the nats log's tests: the server they need (nats-server with JetStream on
 * 127.0.0.1:4222, which scripts/setup.sh starts; NATS_URL overrides), configs of the nats log
 * isolated by a namespace of their own, and removal of everything in a namespace.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import type { LogConfig } from '../../src/config/types.ts';
import { logSpec } from '../../src/registry/index.ts';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** Fails (never skips) when no server answers: the tests need the real thing. */
export async function requireNats(): Promise<void> {
  const u = new URL(NATS_URL);
  const up = await new Promise<boolean>((resolve) => {
    const s = tcpConnect({ host: u.hostname, port: Number(u.port || 4222) });
    s.setTimeout(2000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
  assert.ok(up, `no NATS server on ${NATS_URL}: run bash scripts/setup.sh (it starts nats-server with JetStream, as CI does)`);
}

/** A namespace no other test case uses (the server's streams outlive runs). */
export function uniqueNamespace(tag: string): string {
  return `t_${tag}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 7)}`;
}

/** The nats log's config with its defaults, as `log:` in a pipeline would give it. */
export function natsConfig(overrides: Record<string, unknown>): LogConfig {
  const spec = logSpec('nats');
  return { backend: 'nats', ...spec.config.resolve({ servers: [NATS_URL], ...overrides }, { root: { name: 'test' }, path: ['log'], fileName: '' }) } as LogConfig;
}

/** A plain client connection (outside the log) for looking at what the log stored. */
export async function natsAdmin(): Promise<{ nc: NatsConnection; jsm: JetStreamManager; close(): Promise<void> }> {
  const nc = await connect({ servers: NATS_URL, timeout: 5000 });
  const jsm = await nc.jetstreamManager({ timeout: 10_000 });
  return { nc, jsm, close: () => nc.close() };
}

/** Deletes the partition streams and the KV bucket of a namespace. */
export async function removeNamespace(ns: string): Promise<void> {
  const a = await natsAdmin();
  try {
    const names: string[] = [];
    for await (const name of a.jsm.streams.names(`${ns}.>`)) names.push(name);
    for (const name of names) await a.jsm.streams.delete(name);
    await a.jsm.streams.delete(`KV_sluice-${ns}`).catch(() => false);
  } finally {
    await a.close();
  }
}
