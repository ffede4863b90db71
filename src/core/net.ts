/** Network addresses. */

/** Whether `host` (a listen address, or a Host header's name) is this machine's loopback: `localhost`, `127.x.x.x`, `::1`. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** The database named in the path of a `mongodb://` (or `mongodb+srv://`) URL, if any. */
export function mongoUrlDatabase(url: string): string | undefined {
  const m = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]+)/.exec(url);
  return m ? decodeURIComponent(m[1]) : undefined;
}
