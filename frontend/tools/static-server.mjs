// A tiny static file server for dist/ on 127.0.0.1 (demo and browser tests) that isolates tenants as the CDN does; no dependencies.
//
// Usage as a program: node static-server.mjs [--dev] <dir> <port>   (port 0 picks a free one)
// Usage as a module:  const { url, close } = await serve(dir, 0, { dev: false });
//
// In production mode (the default) every request goes through the CDN's own rules,
// infra/cdn/tenant-router.js, with the hostname map of <dir>/resellers.json: a reseller's hostname
// is served only that reseller's catalog, brand and index; any other hostname is the provider's
// and is served only the direct catalog. `--dev` serves every file to every hostname, so that
// `?reseller=` previews of a development build (frontend/serve.sh --dev) can fetch any catalog.

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runInNewContext } from 'node:vm';

// The content types the storefront needs; `application/wasm` lets the browser compile while
// downloading.
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.csv': 'text/csv; charset=utf-8',
};

/** The CloudFront Function's source: the rules below are that code, run here unchanged. */
export const ROUTER_FILE = resolve(dirname(fileURLToPath(import.meta.url)), '../../infra/cdn/tenant-router.js');

/**
 * Loads the CloudFront Function's code as the edge runs it: a plain script whose top-level
 * functions (`route`, `handler`) become globals of its own context. `hostnames` replaces its
 * `HOSTNAMES` line the way the template's Fn::Sub does at deploy time.
 */
export function loadRouter(hostnames = {}) {
  const code = readFileSync(ROUTER_FILE, 'utf8');
  const line = 'var HOSTNAMES = {};';
  if (!code.includes(line)) throw new Error(`${ROUTER_FILE} lost its \`${line}\` line`);
  const context = {};
  runInNewContext(code.replace(line, `var HOSTNAMES = ${JSON.stringify(hostnames)};`), context, {
    filename: ROUTER_FILE,
  });
  return context;
}

/**
 * The hostname map the router reads: `hostnames` of <root>/resellers.json, read on every request
 * so that a rebuild of dist/ under a running server is never served with a stale map. A missing
 * or damaged index maps no hostname: every request is then the provider's, which is served the
 * direct catalog only.
 */
async function hostnames(root) {
  try {
    const index = JSON.parse(await readFile(join(root, 'resellers.json'), 'utf8'));
    return index && typeof index.hostnames === 'object' && index.hostnames ? index.hostnames : {};
  } catch {
    return {};
  }
}

/** Serves `dir` on 127.0.0.1:`port`; resolves once listening. `dev` turns tenant isolation off. */
export function serve(dir, port = 0, { dev = false } = {}) {
  const root = resolve(dir);
  const router = loadRouter();
  const server = createServer(async (req, res) => {
    try {
      // The path exactly as sent (no decoding, no dot-segment removal): the edge sees it so too.
      const rawPath = req.url.split('?')[0];
      if (!dev) {
        const decision = router.route(await hostnames(root), req.headers.host, rawPath);
        if (decision.action === 'deny') throw new Error('not served to this host');
        if (decision.action === 'index') {
          res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : decision.body);
          return;
        }
      }
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      let file = normalize(join(root, path));
      // Never serve outside the root, whatever the request path holds.
      if (file !== root && !file.startsWith(root + sep)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      if ((await stat(file).catch(() => null))?.isDirectory()) file = join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      ok({ port: p, url: `http://127.0.0.1:${p}/`, dev, close: () => new Promise((c) => server.close(c)) });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dev = args[0] === '--dev';
  const [dir, port] = dev ? args.slice(1) : args;
  if (!dir || port === undefined) {
    console.error('usage: node static-server.mjs [--dev] <dir> <port>');
    process.exit(2);
  }
  const s = await serve(dir, Number(port), { dev });
  const mode = dev ? 'development: every file to every host' : 'production: each host gets its own storefront only';
  console.log(`serving ${resolve(dir)} on ${s.url} (${mode})`);
}
