// A static file server for the built app (dist/), with the runtime
// config.json that tells the app where the Guard API is.
//
//   node scripts/serve.mjs --api http://localhost:8080 [--port 5173] [--host 127.0.0.1] [--dir dist]
//
// It is imported by scripts/demo.mjs (make web) and by the end-to-end
// tests, which start it on a free port before they know the API's address
// (setApiBaseUrl). The page gets a Content-Security-Policy that lets it
// talk to its own origin and to the API only.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
export const distDir = path.resolve(here, '..', 'dist');

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/**
 * Serves dir on host:port (port 0: a free one). extra maps a path to
 * { type, body } for pages served beside the app (tests use it).
 * Resolves to { server, port, setApiBaseUrl, close }.
 */
export async function serveApp({ dir = distDir, apiBaseUrl = '', host = '127.0.0.1', port = 0, extra = {} } = {}) {
  let api = apiBaseUrl;
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const common = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...common, Allow: 'GET, HEAD' }).end();
      return;
    }
    if (extra[url.pathname]) {
      const { type, body } = extra[url.pathname];
      res.writeHead(200, { ...common, 'Content-Type': type }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (url.pathname === '/config.json') {
      res.writeHead(200, { ...common, 'Content-Type': types['.json'] }).end(JSON.stringify({ apiBaseUrl: api }));
      return;
    }
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
    const file = path.resolve(root, rel);
    let st;
    try {
      st = file.startsWith(root + path.sep) ? statSync(file) : undefined;
    } catch {
      st = undefined;
    }
    if (!st?.isFile()) {
      res.writeHead(404, { ...common, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const headers = {
      ...common,
      'Content-Type': types[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': st.size,
    };
    if (file.endsWith('.html')) {
      let apiOrigin = '';
      try {
        apiOrigin = new URL(api).origin;
      } catch {
        // no API yet: the page shows that it is not configured
      }
      headers['Content-Security-Policy'] = [
        "default-src 'self'",
        `connect-src 'self' ${apiOrigin}`.trim(),
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
      ].join('; ');
    }
    res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: server.address().port,
    setApiBaseUrl(u) {
      api = u;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      api: { type: 'string' },
      port: { type: 'string', default: '5173' },
      host: { type: 'string', default: '127.0.0.1' },
      dir: { type: 'string', default: distDir },
    },
  });
  if (!values.api) {
    console.error('usage: node scripts/serve.mjs --api http://localhost:8080 [--port 5173] [--host 127.0.0.1] [--dir dist]');
    process.exit(2);
  }
  const app = await serveApp({ dir: values.dir, apiBaseUrl: values.api, host: values.host, port: Number(values.port) });
  console.log(`serving ${values.dir} on http://localhost:${app.port} (API ${values.api})`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => app.close().then(() => process.exit(0)));
}
