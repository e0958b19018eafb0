// How the built storefront is served locally: precompressed brotli and gzip by negotiation, hashed files cached a year, everything else revalidated, and a service worker that precaches exactly the build's files.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { serve, HASHED } from '../../frontend/tools/static-server.mjs';
import { DIST } from './lib/harness.mjs';

let server;
before(async () => {
  server = await serve(DIST, 0);
});
after(async () => {
  await server?.close();
});

/** A raw GET (node's fetch would decompress and hide the encoding), with its body as bytes. */
function get(base, path, headers = {}) {
  return new Promise((ok, fail) => {
    const req = request(new URL(path, base), { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', fail);
    req.end();
  });
}

const top = () => readdirSync(DIST).filter((f) => !f.endsWith('.br') && !f.endsWith('.gz'));
const wasm = () => top().find((f) => /^frontend-[0-9a-f]+_bg\.wasm$/.test(f));

test('the app is sent as brotli, gzip or plain as the browser accepts, each equal to the file', async () => {
  const file = wasm();
  assert.ok(file, `no hashed app wasm in ${DIST}: ${top().join(', ')}`);
  const raw = readFileSync(join(DIST, file));
  const br = await get(server.url, file, { 'accept-encoding': 'gzip, deflate, br, zstd' });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(br.headers.vary, 'accept-encoding');
  assert.ok(br.body.length < raw.length / 2, `brotli ${br.body.length} B of ${raw.length} B`);
  assert.deepEqual(brotliDecompressSync(br.body), raw);
  const gz = await get(server.url, file, { 'accept-encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.deepEqual(gunzipSync(gz.body), raw);
  const refused = await get(server.url, file, { 'accept-encoding': 'br;q=0, gzip;q=0' });
  assert.equal(refused.headers['content-encoding'], undefined);
  assert.deepEqual(refused.body, raw);
  const plain = await get(server.url, file);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.deepEqual(plain.body, raw);
});

test('hashed files are cached a year; index.html, sw.js, price lists and the worker are revalidated', async () => {
  const hashed = top().filter((f) => HASHED.test(f));
  assert.ok(hashed.length >= 3, `hashed files: ${hashed.join(', ')}`);
  for (const f of hashed) {
    assert.equal((await get(server.url, f)).headers['cache-control'], 'public, max-age=31536000, immutable', f);
  }
  for (const path of ['', 'index.html', 'sw.js', 'catalogs/direct.json', 'preview-worker_bg.wasm']) {
    const r = await get(server.url, path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers['cache-control'], 'no-cache', path);
    const again = await get(server.url, path, { 'if-none-match': r.headers.etag });
    assert.equal(again.status, 304, `${path} revalidated`);
    assert.equal(again.body.length, 0);
  }
});

test('a file edited after the build is sent as edited, never as its stale compressed copy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'storefront-dist-'));
  cpSync(DIST, dir, { recursive: true });
  const edited = join(dir, 'catalogs/direct.json');
  const json = JSON.parse(readFileSync(edited, 'utf8'));
  json.version = `${json.version}-edited`;
  writeFileSync(edited, JSON.stringify(json));
  // The copies are older than the file whatever the clock's resolution.
  for (const ext of ['.br', '.gz']) utimesSync(`${edited}${ext}`, new Date(0), new Date(0));
  const s = await serve(dir, 0);
  try {
    const r = await get(s.url, 'catalogs/direct.json', { 'accept-encoding': 'br, gzip' });
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(JSON.parse(r.body).version, json.version);
  } finally {
    await s.close();
  }
});

test('the service worker precaches exactly this build, each file with its hash: index.html, `/` (any storefront page), every script, wasm and stylesheet', async () => {
  const sw = (await get(server.url, 'sw.js')).body.toString('utf8');
  assert.doesNotMatch(sw, /__RATECARD_(BUILD|PRECACHE)__/);
  const entries = JSON.parse(/const PRECACHE = (\[.*?\]);/.exec(sw)[1]);
  const sha = (f) => `sha256-${createHash('sha256').update(readFileSync(join(DIST, f))).digest('base64')}`;
  // Each with the SHA-256 of the file as built: a file of another build fails the install.
  for (const { url, integrity, hashed } of entries.filter((e) => e.url !== './')) {
    assert.equal(integrity, sha(url), url);
    assert.equal(hashed, HASHED.test(url), url);
  }
  // `/`, whichever page the hostname gets: the shell or a storefront's prerendered page.
  const root = entries.find((e) => e.url === './');
  const storefronts = readdirSync(join(DIST, 'storefronts')).filter((f) => f.endsWith('.html'));
  assert.ok(storefronts.length >= 3, 'every storefront has its page');
  assert.deepEqual(
    root?.integrity.split(' ').sort(),
    ['index.html', ...storefronts.map((f) => `storefronts/${f}`)].map(sha).sort(),
    '`/` is checked against the shell and every storefront page',
  );
  assert.equal(root.hashed, false);
  const listed = entries.map((e) => e.url).sort();
  const expected = top()
    .filter((f) => f === 'index.html' || (/\.(js|wasm|css)$/.test(f) && f !== 'sw.js'))
    .concat('./')
    .sort();
  assert.deepEqual(listed, expected);
  assert.ok(listed.some((f) => f.startsWith('preview-worker')), 'the invoice preview’s worker is precached');
  assert.match(/const BUILD = "([0-9a-f]{16})";/.exec(sw)?.[1] ?? '', /^[0-9a-f]{16}$/);
});
