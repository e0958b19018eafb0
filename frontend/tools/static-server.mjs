// A tiny static file server for dist/ on 127.0.0.1 (demo and browser tests) that isolates tenants as the CDN does; no dependencies.
//
// Usage as a program: node static-server.mjs [--dev] <dir> <port>   (port 0 picks a free one)
// Usage as a module:  const { url, close } = await serve(dir, 0, { dev: false });
//
// In production mode (the default) every request goes through the CDN's own rules,
// infra/cdn/tenant-router.js, with the hostname map of <dir>/resellers.json: a reseller's hostname
// is served only that reseller's catalog, brand and index, and `/` is its prerendered page
// (storefronts/<reseller>.html); any other hostname is the provider's and is served only the
// direct catalog and page. `--dev` serves every file to every hostname, so that
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

/**
 * Files whose name carries their content's hash (Trunk's `filehash`: `frontend-<hex>.js`,
 * `frontend-<hex>_bg.wasm`, `style-<hex>.css`) never change under that name: a browser may keep
 * them a year without asking, as the CDN's upload sets them (infra/README.md). Trunk prints the
 * 64-bit hash in hex without leading zeros: 16 digits, sometimes fewer.
 */
export const HASHED = /-[0-9a-f]{8,16}(_bg)?\.(js|wasm|css)$/;

/**
 * `Cache-Control` of a file: a year and immutable for hashed files; everything else (index.html,
 * sw.js, the price lists, the reseller index, brands, the preview worker, whose names Trunk does
 * not hash) is revalidated on every use, so a new build or price list is seen at once.
 */
export function cacheControl(file) {
  return HASHED.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache';
}

/**
 * The precompressed copy to send (`finish-dist.mjs` writes `<file>.br` and `<file>.gz`):
 * brotli if the browser accepts it, else gzip, else none. A copy older than its file (a file
 * edited after the build) is never sent: it would be stale.
 */
async function precompressed(file, info, acceptEncoding = '') {
  const accepted = new Set(
    acceptEncoding
      .split(',')
      .map((e) => e.trim().split(';'))
      .filter(([, q]) => !q || !/^q=0(\.0*)?$/.test(q.trim()))
      .map(([e]) => e.toLowerCase()),
  );
  for (const [encoding, ext] of [['br', '.br'], ['gzip', '.gz']]) {
    if (!accepted.has(encoding)) continue;
    const path = file + ext;
    const copy = await stat(path).catch(() => null);
    if (copy?.isFile() && copy.mtimeMs >= info.mtimeMs) return { encoding, path, info: copy };
  }
  return null;
}

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
      let url = req.url;
      if (!dev) {
        const decision = router.route(await hostnames(root), req.headers.host, rawPath);
        if (decision.action === 'deny') throw new Error('not served to this host');
        if (decision.action === 'index') {
          res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : decision.body);
          return;
        }
        // The page is the tenant's prerendered one (frontend/tools/prerender.mjs).
        if (decision.action === 'rewrite') url = decision.path;
      }
      const path = decodeURIComponent(new URL(url, 'http://x').pathname);
      let file = normalize(join(root, path));
      // Never serve outside the root, whatever the request path holds.
      if (file !== root && !file.startsWith(root + sep)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      if ((await stat(file).catch(() => null))?.isDirectory()) file = join(file, 'index.html');
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      const headers = {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': cacheControl(file),
        vary: 'accept-encoding',
      };
      const encoded = await precompressed(file, info, req.headers['accept-encoding']);
      if (encoded) headers['content-encoding'] = encoded.encoding;
      const served = encoded?.info ?? info;
      // A weak validator is enough: the browser revalidates the `no-cache` files on every load
      // and gets 304 without a body when nothing changed.
      headers.etag = `W/"${served.size.toString(16)}-${Math.floor(served.mtimeMs).toString(16)}${encoded ? `-${encoded.encoding}` : ''}"`;
      if (req.headers['if-none-match'] === headers.etag) {
        res.writeHead(304, headers).end();
        return;
      }
      const body = await readFile(encoded?.path ?? file);
      headers['content-length'] = body.length;
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      // Keep-alive connections would hold the port open: closing them too makes a closed
      // server a cut network (offline.test.mjs).
      const close = () =>
        new Promise((c) => {
          server.close(c);
          server.closeAllConnections();
        });
      ok({ port: p, url: `http://127.0.0.1:${p}/`, dev, close });
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
