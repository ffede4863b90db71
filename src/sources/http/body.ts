/**
 * Reads a request body within a byte bound, decompressing gzip, deflate or brotli on the way (the
 * bound applies to the decompressed bytes, so a small compressed bomb is refused as soon as it
 * grows past it). Answers what went wrong as an HTTP status with a message for the client.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = { gzip: createGunzip, 'x-gzip': createGunzip, deflate: createInflate, br: createBrotliDecompress };

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (encoding === 'identity' && declared > maxBytes) throw new HttpProblem(413, `the body is ${declared} bytes; this gateway takes at most ${maxBytes}`);
  if (encoding === 'identity') return readPlain(req, maxBytes);
  let stream: Readable = req;
  if (encoding !== 'identity') {
    const make = DECODERS[encoding];
    if (!make) throw new HttpProblem(415, `content-encoding ${JSON.stringify(encoding)} is not supported: send gzip, deflate, br or none`);
    stream = req.pipe(make()) as unknown as Readable;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of stream) {
      n += (chunk as Buffer).length;
      if (n > maxBytes) throw new HttpProblem(413, `the body is larger than ${maxBytes} bytes${encoding !== 'identity' ? ' once decompressed' : ''}; send smaller requests`);
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    if (e instanceof HttpProblem) throw e;
    // zlib's errors carry a Z_ code; a client that went away is a plain stream error.
    if (String((e as { code?: string }).code ?? '').startsWith('Z_')) throw new HttpProblem(400, `the body is not valid ${encoding} data: ${(e as Error).message}`);
    throw e;
  }
  return Buffer.concat(chunks, n);
}

/** An uncompressed body, with listeners rather than an async iterator (the common case, per request). */
function readPlain(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (chunk: Buffer) => {
      n += chunk.length;
      if (n > maxBytes) {
        req.off('data', onData);
        req.resume();
        reject(new HttpProblem(413, `the body is larger than ${maxBytes} bytes; send smaller requests`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n)));
    req.once('error', reject);
  });
}
