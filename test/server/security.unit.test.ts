/**
 * The HTTP server's hardening, without a pipeline: config validation refuses a non-loopback host
 * without a token; with a token everything but /health and the static page wants it; hostile
 * requests get 404/405/413/415/400/421 as JSON; static files come from an explicit map (no path
 * traversal); every answer carries the Content-Security-Policy and no CORS header; actions
 * registered in `ServerDeps.actions` answer POST /api/actions/<name>; passwords never leave.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { startServer } from '../../src/server/http.ts';

const quiet = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });

/** A raw request (no URL normalization, any Host header). */
function raw(port: number, o: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' || (e as NodeJS.ErrnoException).code === 'EPIPE' ? resolve({ status: 413, headers: {}, body: '' }) : reject(e)));
    if (o.body !== undefined) req.end(o.body);
    else req.end();
  });
}

const yaml = (server: string) => `name: sec
source:
  type: postgres
  connection: {host: 127.0.0.1, port: 5432, user: postgres, database: x, password: "Sup3r-Secret-Pw!"}
server:
${server}
`;

describe('server config', () => {
  it('refuses a host other than loopback without a token, at the line, and accepts one with it', () => {
    assert.throws(
      () => parseConfig(yaml('  host: 0.0.0.0\n  port: 9000'), 'p.yaml', {}),
      (e: Error) => /p\.yaml:6.*server\.host.*server\.token is required when server\.host is 0\.0\.0\.0/s.test(e.message) && !e.message.includes('Sup3r-Secret-Pw!'),
    );
    const cfg = parseConfig(yaml('  host: 0.0.0.0\n  token: ${SLUICE_TOKEN}'), 'p.yaml', { SLUICE_TOKEN: 'a-long-enough-token-1234' });
    assert.equal(cfg.server!.token, 'a-long-enough-token-1234');
    assert.equal(parseConfig(yaml('  port: 9000'), 'p.yaml', {}).server!.host, '127.0.0.1', 'loopback by default, no token needed');
    assert.doesNotThrow(() => parseConfig(yaml('  host: "::1"'), 'p.yaml', {}));
    assert.throws(() => parseConfig(yaml('  host: 0.0.0.0\n  token: short'), 'p.yaml', {}), /token/);
  });
});

describe('the HTTP server', () => {
  const TOKEN = 'console-test-token-0123456789';
  const SECRET = 'Hunter2-Pa55word-XYZ';
  let open: { port: number; close(): Promise<void> };
  let tokened: { port: number; close(): Promise<void> };
  const seen: unknown[] = [];
  before(async () => {
    // The secret is a config password: registered for masking as parseConfig does.
    parseConfig(yaml(`  port: 0`).replace('Sup3r-Secret-Pw!', SECRET), 'p.yaml', {});
    const deps = {
      metrics: { render: () => 'sluice_up 1\n' },
      // A status that (wrongly) carries the password: the server masks it anyway.
      status: () => ({ pipeline: 'sec', state: 'running', error: `connection postgres://u:${SECRET}@db failed; password ${SECRET}` }),
      logger: quiet,
      actions: {
        echo: async (body: unknown) => (seen.push(body), { got: body }),
        boom: async () => {
          throw new Error(`no luck with ${SECRET}`);
        },
      },
    };
    open = await startServer({ host: '127.0.0.1', port: 0 }, deps);
    tokened = await startServer({ host: '127.0.0.1', port: 0, token: TOKEN }, deps);
  });
  after(async () => {
    await open?.close();
    await tokened?.close();
  });

  it('serves /health, /status and the page, with a CSP and no CORS, and masks passwords', async () => {
    const health = await raw(open.port, { path: '/health' });
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
    const st = await raw(open.port, { path: '/status', headers: { origin: 'https://evil.example' } });
    assert.equal(st.status, 200);
    assert.ok(!st.body.includes(SECRET), st.body);
    assert.match(st.body, /\*\*\*/);
    assert.equal(st.headers['access-control-allow-origin'], undefined);
    assert.match(String(st.headers['content-security-policy']), /default-src 'self'/);
    const page = await raw(open.port, { path: '/ui/' });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(page.body, /<script type="module" src="\/ui\/app\.js">/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.equal((await raw(open.port, { path: '/ui/app.js' })).status, 200);
    assert.equal((await raw(open.port, { path: '/ui/style.css' })).status, 200);
  });

  it('answers hostile requests with 404, 405, 413, 415, 400 and 421, as JSON', async () => {
    for (const path of ['/nope', '/ui/../package.json', '/ui/..%2f..%2fpackage.json', '/ui/%2e%2e/%2e%2e/package.json', '/../../../../etc/passwd', '/ui/http.ts', '/ui//app.js', '/ui/app.js/']) {
      const r = await raw(open.port, { path });
      assert.equal(r.status, 404, path);
      assert.match(String(r.headers['content-type']), /application\/json/, path);
      assert.ok(!r.body.includes('"version"') && !r.body.includes('root:'), path);
    }
    const post = await raw(open.port, { method: 'POST', path: '/status', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal((await raw(open.port, { method: 'DELETE', path: '/ui/' })).status, 405);
    assert.equal((await raw(open.port, { path: '/api/actions/echo' })).status, 405, 'GET on an action');
    const big = await raw(open.port, { method: 'POST', path: '/api/actions/echo', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'a'.repeat(70 * 1024) }) });
    assert.equal(big.status, 413);
    const form = await raw(open.port, { method: 'POST', path: '/api/actions/echo', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
    assert.equal(form.status, 415, 'a form post (CSRF) is refused');
    const bad = await raw(open.port, { method: 'POST', path: '/api/actions/echo', headers: { 'content-type': 'application/json' }, body: '{not json' });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error, /not valid JSON/);
    const rebound = await raw(open.port, { path: '/status', headers: { host: 'evil.example:8080' } });
    assert.equal(rebound.status, 421, 'a DNS-rebound page cannot read a server without a token');
    assert.equal(seen.length, 0, 'no refused request reached the action');
  });

  it('runs registered actions: JSON in and out, 404 for an unknown one, errors as 500 without secrets', async () => {
    const ok = await raw(open.port, { method: 'POST', path: '/api/actions/echo', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"table":"public.orders"}' });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { got: { table: 'public.orders' } });
    const unknown = await raw(open.port, { method: 'POST', path: '/api/actions/repairx', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(unknown.status, 404);
    assert.match(JSON.parse(unknown.body).error, /no action "repairx"/);
    assert.equal((await raw(open.port, { method: 'POST', path: '/api/actions/__proto__', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 404);
    const boom = await raw(open.port, { method: 'POST', path: '/api/actions/boom', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(boom.status, 500);
    assert.ok(!boom.body.includes(SECRET), boom.body);
  });

  it('with a token: 401 without it or with a wrong one, 200 with it; /health and the page stay open', async () => {
    for (const path of ['/status', '/metrics', '/api/status', '/api/actions/echo']) {
      const r = await raw(tokened.port, { path });
      assert.equal(r.status, 401, path);
      assert.match(String(r.headers['www-authenticate']), /Bearer/);
      assert.equal((await raw(tokened.port, { path, headers: { authorization: `Bearer ${TOKEN}x` } })).status, 401, `${path} wrong token`);
    }
    assert.equal((await raw(tokened.port, { path: '/status', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await raw(tokened.port, { path: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    const act = await raw(tokened.port, { method: 'POST', path: '/api/actions/echo', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(act.status, 200);
    assert.equal((await raw(tokened.port, { path: '/health' })).status, 200);
    assert.equal((await raw(tokened.port, { path: '/ui/' })).status, 200, 'the page holds no data and asks for the token');
    assert.equal((await raw(tokened.port, { path: '/status', headers: { host: 'console.example.com', authorization: `Bearer ${TOKEN}` } })).status, 200, 'with a token any Host is served');
  });
});
