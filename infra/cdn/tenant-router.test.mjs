// The CDN's tenant rules (tenant-router.js) and the local static server checked against one table of requests.
//
// Each case is run three ways: the rule function `route`, the CloudFront entry point `handler`
// with the hostname map substituted as the template does at deploy time, and the static server
// (frontend/tools/static-server.mjs, production mode) over raw HTTP on a scratch dist/. All three
// must give the same answer, so what the browser tests see locally is what the CDN does.
// Run by infra/check.sh; alone: `node --test infra/cdn/tenant-router.test.mjs`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, loadRouter } from '../../frontend/tools/static-server.mjs';

/** The example catalog's hostnames (examples/catalogs/cloudstack.json), as publish-catalogs writes them. */
const HOSTNAMES = {
  'acme.localhost': 'acme',
  'cloud.acme.example': 'acme',
  'cloud.nimbus.example': 'nimbus',
  'nimbus.localhost': 'nimbus',
};

/** A scratch site: each file's content names it, so a body tells which file was served. */
const FILES = {
  'index.html': '<!-- index -->',
  'storefronts/direct.html': '<!-- direct storefront -->',
  'storefronts/acme.html': '<!-- acme storefront -->',
  'storefronts/nimbus.html': '<!-- nimbus storefront -->',
  'frontend-0123abcd_bg.wasm': 'wasm',
  'catalogs/direct.json': '{"id":"wholesale"}',
  'catalogs/acme.json': '{"id":"wholesale@acme"}',
  'catalogs/nimbus.json': '{"id":"wholesale@nimbus"}',
  'catalogs/direct/2017-02.1.json': '{"id":"wholesale","version":"2017-02.1"}',
  'catalogs/acme/2017-02.1.json': '{"id":"wholesale@acme","version":"2017-02.1"}',
  'catalogs/nimbus/2017-02.1.json': '{"id":"wholesale@nimbus","version":"2017-02.1"}',
  'brands/acme/logo.svg': '<svg>acme</svg>',
  'brands/nimbus/logo.svg': '<svg>nimbus</svg>',
  '.ratecard-build': 'stamp',
};

const ACME_INDEX = { schema_version: 1, hostnames: { 'acme.localhost': 'acme', 'cloud.acme.example': 'acme' }, storefronts: ['acme'] };
const DIRECT_INDEX = { schema_version: 1, hostnames: {}, storefronts: ['direct'] };

/**
 * [host header, path as sent, what must come back]: a file of FILES, an index object, or 404.
 * The variants are the ways a path can name a file it does not spell plainly.
 */
const CASES = [
  // A reseller's host: its own prerendered page, catalog, brand and index, the app, and nothing else.
  ['acme.localhost:8080', '/', 'storefronts/acme.html'],
  ['acme.localhost:8080', '/index.html', 'index.html'],
  ['acme.localhost:8080', '/?reseller=nimbus', 'storefronts/acme.html'],
  ['acme.localhost:8080', '/storefronts/acme.html', 'storefronts/acme.html'],
  ['acme.localhost:8080', '/storefronts/nimbus.html', 404],
  ['acme.localhost:8080', '/storefronts/direct.html', 404],
  ['acme.localhost:8080', '/storefronts/ACME.html', 404],
  ['acme.localhost:8080', '/Storefronts/nimbus.html', 404],
  ['acme.localhost:8080', '/storefronts/', 404],
  ['acme.localhost:8080', '/storefronts/acme.html/../nimbus.html', 404],
  ['acme.localhost:8080', '/storefronts/%6eimbus.html', 404],
  ['acme.localhost:8080', '/frontend-0123abcd_bg.wasm', 'frontend-0123abcd_bg.wasm'],
  ['acme.localhost:8080', '/catalogs/acme.json', 'catalogs/acme.json'],
  ['acme.localhost:8080', '/brands/acme/logo.svg', 'brands/acme/logo.svg'],
  ['acme.localhost:8080', '/resellers.json', ACME_INDEX],
  ['cloud.acme.example', '/catalogs/acme.json', 'catalogs/acme.json'],
  ['CLOUD.ACME.EXAMPLE.:443', '/resellers.json', ACME_INDEX],
  ['acme.localhost', '/RESELLERS.JSON', ACME_INDEX],
  ['acme.localhost', '/catalogs/direct.json', 404],
  ['acme.localhost', '/catalogs/nimbus.json', 404],
  ['acme.localhost', '/brands/nimbus/logo.svg', 404],
  ['acme.localhost', '/catalogs/', 404],
  ['acme.localhost', '/catalogs', 404],
  ['acme.localhost', '/brands/acme/', 404],
  ['acme.localhost', '/brands/acme', 404],
  ['acme.localhost', '/catalogs/acme.json/', 404],
  ['acme.localhost', '/catalogs/acme.json/../direct.json', 404],
  ['acme.localhost', '/catalogs/../catalogs/direct.json', 404],
  ['acme.localhost', '/./catalogs/direct.json', 404],
  ['acme.localhost', '/catalogs/%2e%2e/catalogs/direct.json', 404],
  ['acme.localhost', '/catalogs/%2E%2E%2Fdirect.json', 404],
  ['acme.localhost', '/catalogs%2fdirect.json', 404],
  ['acme.localhost', '/catalogs/%64irect.json', 404],
  ['acme.localhost', '/catalogs/direct%2ejson', 404],
  ['acme.localhost', '/catalogs/direct.json%00', 404],
  // A published version of its own price list (share links pin one), and no one else's.
  ['acme.localhost', '/catalogs/acme/2017-02.1.json', 'catalogs/acme/2017-02.1.json'],
  ['acme.localhost', '/catalogs/nimbus/2017-02.1.json', 404],
  ['acme.localhost', '/catalogs/direct/2017-02.1.json', 404],
  ['acme.localhost', '/catalogs/acme/../direct/2017-02.1.json', 404],
  ['acme.localhost', '/catalogs/acme/x/../../direct/2017-02.1.json', 404],
  ['acme.localhost', '/catalogs/acme/sub/2017-02.1.json', 404],
  ['acme.localhost', '/catalogs/acme/.json', 404],
  ['acme.localhost', '/catalogs/acme/2017-02.1.JSON', 404],
  ['acme.localhost', '/catalogs/acme-eu/2017-02.1.json', 404],
  ['acme.localhost', '/catalogs/acme%2f2017-02.1.json', 404],
  ['acme.localhost', '/%63atalogs/direct.json', 404],
  ['acme.localhost', '/catalogs\\direct.json', 404],
  ['acme.localhost', '/catalogs/acme.json%2f..%2fdirect.json', 404],
  ['acme.localhost', '//catalogs/direct.json', 404],
  ['acme.localhost', '/catalogs//direct.json', 404],
  ['acme.localhost', '/CATALOGS/DIRECT.JSON', 404],
  ['acme.localhost', '/Catalogs/direct.json', 404],
  ['acme.localhost', '/catalogs/Direct.json', 404],
  ['acme.localhost', '/catalogs/ACME.json', 404],
  ['acme.localhost', '/brands/acme/../nimbus/logo.svg', 404],
  ['acme.localhost', '/brands/acme/%2e%2e/nimbus/logo.svg', 404],
  ['acme.localhost', '/Brands/nimbus/logo.svg', 404],
  ['acme.localhost', '/brands/NIMBUS/logo.svg', 404],
  ['acme.localhost', '/brands/acme%2f..%2fnimbus/logo.svg', 404],
  ['acme.localhost', '/.ratecard-build', 404],
  ['acme.localhost', 'http://127.0.0.1/catalogs/direct.json', 404],
  // Another reseller's host is as closed as the first.
  ['nimbus.localhost', '/catalogs/nimbus.json', 'catalogs/nimbus.json'],
  ['nimbus.localhost', '/catalogs/acme.json', 404],
  ['nimbus.localhost', '/catalogs/direct.json', 404],
  ['nimbus.localhost', '/', 'storefronts/nimbus.html'],
  ['nimbus.localhost', '/storefronts/acme.html', 404],
  // The provider's own hosts (any host not mapped): the direct catalog, no reseller's anything.
  ['127.0.0.1:8080', '/catalogs/direct.json', 'catalogs/direct.json'],
  ['127.0.0.1:8080', '/', 'storefronts/direct.html'],
  ['127.0.0.1:8080', '/index.html', 'index.html'],
  ['127.0.0.1:8080', '/storefronts/acme.html', 404],
  ['127.0.0.1:8080', '/resellers.json', DIRECT_INDEX],
  ['127.0.0.1:8080', '/catalogs/acme.json', 404],
  ['127.0.0.1:8080', '/catalogs/direct/2017-02.1.json', 'catalogs/direct/2017-02.1.json'],
  ['127.0.0.1:8080', '/catalogs/acme/2017-02.1.json', 404],
  ['127.0.0.1:8080', '/brands/acme/logo.svg', 404],
  ['127.0.0.1:8080', '/brands/nimbus/logo.svg', 404],
  ['d111111abcdef8.cloudfront.net', '/catalogs/direct.json', 'catalogs/direct.json'],
  ['[::1]:8080', '/catalogs/direct.json', 'catalogs/direct.json'],
  ['acme.localhost.evil.example', '/catalogs/acme.json', 404],
  ['', '/catalogs/direct.json', 'catalogs/direct.json'],
  ['', '/catalogs/acme.json', 404],
];

let dist;
let prod;
let dev;
before(async () => {
  dist = mkdtempSync(join(tmpdir(), 'tenant-router-'));
  for (const [path, body] of Object.entries(FILES)) {
    mkdirSync(join(dist, path, '..'), { recursive: true });
    writeFileSync(join(dist, path), body);
  }
  const index = { schema_version: 1, hostnames: HOSTNAMES, storefronts: ['direct', 'acme', 'nimbus'] };
  writeFileSync(join(dist, 'resellers.json'), JSON.stringify(index));
  prod = await serve(dist, 0);
  dev = await serve(dist, 0, { dev: true });
});
after(async () => {
  await prod?.close();
  await dev?.close();
  rmSync(dist, { recursive: true, force: true });
});

/** A raw GET: the path goes out exactly as written (no normalisation), with this Host header. */
function get(port, host, path) {
  return new Promise((ok, fail) => {
    const headers = host === '' ? {} : { host };
    const req = request({ host: '127.0.0.1', port, path, headers, setHost: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * `expect` as (status, body): a file's content, an index's JSON, or 404; `uri` is the path the
 * request goes on to the bucket with (the page is rewritten to the tenant's prerendered one).
 */
function expected(expect, path) {
  if (expect === 404) return { status: 404 };
  if (typeof expect === 'string') return { status: 200, body: FILES[expect], uri: `/${expect}`, rewritten: `/${expect}` !== uriOf(path) };
  return { status: 200, index: expect };
}

/** The CloudFront request path of a raw one: the edge splits the query off into its own field. */
const uriOf = (path) => path.split('?')[0];

test('route: the rules give each host only its own storefront', () => {
  const { route } = loadRouter();
  for (const [host, path, expect] of CASES) {
    const d = route(HOSTNAMES, host, uriOf(path));
    const want = expected(expect, path);
    const what = `${host} ${path}`;
    if (want.status === 404) assert.equal(d.action, 'deny', what);
    else if (want.index) assert.deepEqual(JSON.parse(d.body), want.index, what);
    else if (want.rewritten) assert.deepEqual([d.action, d.path], ['rewrite', want.uri], what);
    else assert.equal(d.action, 'pass', what);
  }
});

test('handler: the CloudFront entry point with the map substituted as at deploy time', () => {
  const { handler } = loadRouter(HOSTNAMES);
  for (const [host, path, expect] of CASES) {
    const request = {
      method: 'GET',
      uri: uriOf(path),
      querystring: {},
      headers: host === '' ? {} : { host: { value: host } },
      cookies: {},
    };
    const event = { version: '1.0', context: { eventType: 'viewer-request' }, viewer: { ip: '192.0.2.1' }, request };
    const out = handler(event);
    const want = expected(expect, path);
    const what = `${host} ${path}`;
    if (want.status === 404) {
      assert.equal(out.statusCode, 404, what);
      assert.equal(out.body.data, 'not found', what);
    } else if (want.index) {
      assert.equal(out.statusCode, 200, what);
      assert.equal(out.headers['content-type'].value, 'application/json; charset=utf-8');
      assert.deepEqual(JSON.parse(out.body.data), want.index, what);
    } else {
      assert.equal(out, request, `${what}: the request goes on to the bucket`);
      assert.equal(out.uri, want.uri, what);
    }
  }
});

test('static server, production mode: the same answers over HTTP', async () => {
  for (const [host, path, expect] of CASES) {
    const got = await get(prod.port, host, path);
    const what = `${host} ${path}`;
    // Node's HTTP server refuses an HTTP/1.1 request without a Host header before any rule.
    const want = host === '' ? { status: 400 } : expected(expect, path);
    assert.equal(got.status, want.status, what);
    if (want.index) assert.deepEqual(JSON.parse(got.body), want.index, what);
    else if (want.body !== undefined) assert.equal(got.body, want.body, what);
  }
});

test('static server, production mode: a query string changes nothing', async () => {
  for (const [path, status] of [
    ['/catalogs/direct.json?reseller=direct', 404],
    ['/catalogs/nimbus.json?x=1', 404],
    ['/resellers.json?reseller=nimbus', 200],
    ['/catalogs/acme.json?v=2', 200],
  ]) {
    const got = await get(prod.port, 'acme.localhost', path);
    assert.equal(got.status, status, path);
    assert.ok(!got.body.includes('nimbus'), `${path}: ${got.body}`);
  }
});

test('static server, development mode: every file to every host, for ?reseller= previews', async () => {
  for (const path of ['catalogs/direct.json', 'catalogs/nimbus.json', 'brands/nimbus/logo.svg']) {
    const got = await get(dev.port, 'acme.localhost', `/${path}`);
    assert.deepEqual(got, { status: 200, body: FILES[path] }, path);
  }
  const index = JSON.parse((await get(dev.port, 'acme.localhost', '/resellers.json')).body);
  assert.deepEqual(index.hostnames, HOSTNAMES);
  // Still never outside its root.
  for (const path of ['/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc/passwd', '/../../etc/passwd']) {
    const { status } = await get(dev.port, 'acme.localhost', path);
    assert.ok(status === 403 || status === 404, `${path}: ${status}`);
  }
});

test('the function fits CloudFront’s 10 KB code limit with a full StorefrontHostnames map', () => {
  const code = readFileSync(new URL('./tenant-router.js', import.meta.url), 'utf8');
  // infra/template.yaml caps StorefrontHostnames at 4,096 characters (a CloudFormation
  // parameter's limit); the substituted line must leave the code under 10,240 bytes.
  assert.ok(Buffer.byteLength(code) + 4096 <= 10240, `${Buffer.byteLength(code)} bytes`);
});
