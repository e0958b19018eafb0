// Finishes a trunk build for serving: writes its service worker (build id and precache list filled in) and brotli and gzip copies of every compressible file.
//
// Usage: node frontend/tools/finish-dist.mjs <dist>      (frontend/build.sh runs it after trunk)
//
// Why here and not in a Trunk hook: hooks see the staging directory before Trunk has finished
// writing it, and the precache list must name exactly the files the build ships.
//
// The compressed copies (`<file>.br`, `<file>.gz`) are what the local server sends to a browser
// that accepts them (frontend/tools/static-server.mjs), so the demo and the browser tests load
// the storefront as a CDN serves it. CloudFront compresses at the edge itself (the template's
// `Compress: true`): the copies are not uploaded (infra/README.md).

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { HASHED } from './static-server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The service worker's source, with its two placeholders. */
export const SW_SOURCE = resolve(HERE, '../sw.js');
/** File types worth compressing (text and wasm); images other than SVG are compressed already. */
export const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.wasm', '.css', '.json', '.svg', '.csv']);
/** Below this, a compressed copy saves less than its own request headers. */
const MIN_BYTES = 1024;

/** Every file under `dir`, as paths relative to it with `/` separators. */
function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * What the service worker precaches: index.html and the build's own scripts, wasm and styles at
 * the top level (the app and the preview worker). Catalogs, the reseller index and brands depend
 * on the hostname and are kept as the page fetches them instead.
 */
export function precacheList(dir) {
  return files(dir).filter((f) => !f.includes('/') && (f === 'index.html' || /\.(js|wasm|css)$/.test(f)) && f !== 'sw.js');
}

/**
 * The pages `/` may answer on a hostname: the shell, and each storefront's page prerendered at
 * build time (`storefronts/<id>.html`: the tenant router rewrites `/` to the hostname's own). The
 * worker precaches `/` as its hostname gets it, accepting any of their hashes (it cannot know
 * which storefront its hostname is), so that a visitor offline sees the storefront's first
 * screen at once, as online, instead of the bare shell.
 */
export function pagesOf(dir) {
  return ['index.html', ...files(dir).filter((f) => /^storefronts\/[^/]+\.html$/.test(f))];
}

const sha256 = (bytes) => `sha256-${createHash('sha256').update(bytes).digest('base64')}`;

/**
 * Writes `<dir>/sw.js`; returns its build id (a hash of the precached files and the worker's
 * source). Each precached file carries its SHA-256 (subresource integrity): a file of another
 * build (an upload half done, a stale edge copy, the CDN's index.html answered for a missing
 * file) fails the worker's install instead of being served from its cache for the build's life.
 */
export function writeServiceWorker(dir) {
  const list = precacheList(dir);
  const source = readFileSync(SW_SOURCE, 'utf8');
  const hash = createHash('sha256').update(source);
  // A file's integrity; its name and bytes go into the build id too.
  const integrityOf = (f) => {
    const bytes = readFileSync(join(dir, f));
    hash.update(f).update('\0').update(bytes);
    return sha256(bytes);
  };
  // `hashed`: the name carries the content's hash (the server's rule, one definition), so the
  // worker may take the file from the HTTP cache; the others it revalidates.
  const entries = list.map((f) => ({ url: f, integrity: integrityOf(f), hashed: HASHED.test(f) }));
  // `/`, checked against every page it may be (subresource integrity takes a list: any match).
  const pages = pagesOf(dir).map(integrityOf);
  entries.push({ url: './', integrity: pages.join(' '), hashed: false });
  const build = hash.digest('hex').slice(0, 16);
  for (const placeholder of ["'__RATECARD_BUILD__'", "['__RATECARD_PRECACHE__']"]) {
    if (!source.includes(placeholder)) throw new Error(`${SW_SOURCE} lost its ${placeholder} placeholder`);
  }
  const out = source
    .replace("'__RATECARD_BUILD__'", JSON.stringify(build))
    .replace("['__RATECARD_PRECACHE__']", JSON.stringify(entries));
  writeFileSync(join(dir, 'sw.js'), out);
  return build;
}

/** Writes `.br` (quality 11) and `.gz` (level 9) beside every compressible file; returns their count. */
export function precompress(dir) {
  let n = 0;
  for (const f of files(dir)) {
    if (f.endsWith('.br') || f.endsWith('.gz')) {
      // A copy whose source is gone (a previous build's) must not be served.
      const source = join(dir, f.slice(0, -3));
      if (!statSync(source, { throwIfNoEntry: false })) unlinkSync(join(dir, f));
      continue;
    }
    if (!COMPRESSIBLE.has(extname(f))) continue;
    const path = join(dir, f);
    const raw = readFileSync(path);
    if (raw.length < MIN_BYTES) continue;
    writeFileSync(`${path}.br`, brotliCompressSync(raw, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
    }));
    writeFileSync(`${path}.gz`, gzipSync(raw, { level: 9 }));
    n += 1;
  }
  return n;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node finish-dist.mjs <dist>');
    process.exit(2);
  }
  const build = writeServiceWorker(dir);
  const n = precompress(dir);
  console.log(`storefront: ${dir}/sw.js for build ${build}; ${n} files precompressed (br, gz)`);
}
