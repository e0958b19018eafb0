// Tenant isolation where the storefront is served: on a reseller's hostname no path, encoding or `?reseller=` override returns wholesale or another tenant's data.
//
// Production build, production server (the CDN's rules, infra/cdn/tenant-router.js). For each
// reseller with a `*.localhost` hostname: load its storefront, record every request the app
// makes (every tab, the invoice preview's worker included), then probe each of those paths and
// the forbidden ones (the direct catalog, the other resellers' catalogs and brands, the index,
// `?reseller=` overrides, traversal and encoding variants), from the page itself (as the
// browser sends them) and raw over HTTP (exactly as written, as curl would). Nothing returned
// may carry a wholesale marker or another tenant's marker, and each marker is computed from
// the published files in dist/, then shown to catch the very file it stands for.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, openPage, screenshot, moneyValues, DIST, REPO, ARTIFACTS } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.close();
});

const DIRECT = 'direct';
const read = (path) => readFileSync(join(DIST, path));

/** What dist/ publishes: the full index (as on disk), each storefront's catalog (bytes and JSON). */
function published() {
  const index = JSON.parse(read('resellers.json').toString('utf8'));
  const catalogs = {};
  for (const id of index.storefronts) {
    const bytes = read(`catalogs/${id}.json`);
    catalogs[id] = { bytes, json: JSON.parse(bytes.toString('utf8')) };
  }
  const hostsOf = (id) => Object.keys(index.hostnames).filter((h) => index.hostnames[h] === id);
  return { index, catalogs, hostsOf };
}

/**
 * The markers a response on `own`'s hostname must not carry, each from the published files:
 * - wholesale: the direct catalog's bytes, its id as a JSON string (a reseller's id is
 *   `<id>@<reseller>`), and every money value of it that `own`'s catalog does not also have
 *   (a GBP wholesale unit price), found in any body that parses as JSON;
 * - foreign, for every other storefront F: F's catalog bytes and id, F's brand name and logo
 *   bytes, F's hostnames, and the full index (which names every reseller's hostnames).
 */
function markersFor(pub, own) {
  const ownText = pub.catalogs[own].bytes.toString('utf8');
  const ownMoney = moneyValues(pub.catalogs[own].json);
  const texts = [];
  const bodies = [{ what: 'the full resellers.json', bytes: read('resellers.json') }];
  const money = new Set();
  for (const [id, { bytes, json }] of Object.entries(pub.catalogs)) {
    if (id === own) continue;
    const kind = id === DIRECT ? 'wholesale' : `foreign (${id})`;
    bodies.push({ what: `${kind}: catalogs/${id}.json`, bytes });
    texts.push({ what: `${kind}: catalog id`, text: JSON.stringify(json.id) });
    if (id === DIRECT) {
      for (const v of moneyValues(json)) if (v !== '0' && !ownMoney.has(v)) money.add(v);
      continue;
    }
    texts.push({ what: `${kind}: brand name`, text: json.brand.name });
    bodies.push({ what: `${kind}: brand logo`, bytes: read(json.brand.logo_url.replace(/^\//, '')) });
    for (const h of pub.hostsOf(id)) texts.push({ what: `${kind}: hostname`, text: h });
  }
  // A marker that `own`'s own catalog carries would make the test fail for the wrong reason.
  for (const t of texts) assert.ok(!ownText.includes(t.text), `${own}'s catalog carries the marker ${t.what}`);
  assert.ok(money.size > 0, 'no wholesale price to look for');
  return { texts, bodies, money };
}

/** The markers found in a response body; empty when it is clean. */
function leaks(markers, body) {
  const found = [];
  const text = body.toString('utf8');
  for (const b of markers.bodies) if (body.equals(b.bytes)) found.push(b.what);
  for (const t of markers.texts) if (text.includes(t.text)) found.push(t.what);
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (json !== undefined) {
    const prices = [...moneyValues(json)].filter((v) => markers.money.has(v));
    if (prices.length) found.push(`wholesale prices ${prices.join(', ')}`);
  }
  return found;
}

/** A raw GET: the path goes out exactly as written, with the reseller's Host header. */
function rawGet(host, path) {
  return new Promise((ok, fail) => {
    const headers = { host: `${host}:${env.server.port}` };
    // A fresh connection per probe (`agent: false`): a kept-alive socket the server has just
    // closed as idle would reset the next probe sent on it.
    const req = request({ host: '127.0.0.1', port: env.server.port, path, headers, setHost: false, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * A GET from inside the page, as the browser sends it (it resolves `..` and some escapes
 * itself). The URL is written out whole, so that `//x` stays a path and is not read as a host.
 */
async function pageGet(page, path) {
  const r = await page.evaluate(async (p) => {
    const res = await fetch(location.origin + p, { cache: 'no-store' });
    return { status: res.status, url: res.url, bytes: [...new Uint8Array(await res.arrayBuffer())] };
  }, path);
  return { status: r.status, url: r.url, body: Buffer.from(r.bytes) };
}

/**
 * Paths that must answer 404 on `own`'s hostname: every other storefront's catalog, brand and
 * brand directory, and the ways a path can spell them without writing them plainly.
 */
function forbiddenPaths(pub, own) {
  const targets = [];
  for (const [id, { json }] of Object.entries(pub.catalogs)) {
    if (id === own) continue;
    targets.push(`catalogs/${id}.json`);
    if (json.brand) targets.push(json.brand.logo_url.replace(/^\//, ''), `brands/${id}/`);
  }
  const ownCatalog = `catalogs/${own}.json`;
  const pct = (s) => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
  const paths = [];
  for (const t of targets) {
    const [first, ...rest] = t.split('/');
    paths.push(
      `/${t}`,
      `/${t}?reseller=${own}`,
      `/${ownCatalog}/../../${t}`,
      `/brands/${own}/../../${t}`,
      `/${ownCatalog}%2f..%2f..%2f${t}`,
      `/brands/${own}/%2e%2e/%2e%2e/${t}`,
      `/%2e%2e/${t}`,
      `/./${t}`,
      `//${t}`,
      `/${first}//${rest.join('/')}`,
      `/${first}%2f${rest.join('/')}`,
      `/${first}%2F${rest.join('%2F')}`,
      `/${first}\\${rest.join('\\')}`,
      `/${pct(t)}`,
      `/${t.toUpperCase()}`,
      `/${first.toUpperCase()}/${rest.join('/')}`,
      `/${first}/${rest.join('/').toUpperCase()}`,
      `/${t}%00`,
      `/${t}%3f`,
      `/${t};.svg`,
      `/${t}/`,
    );
  }
  paths.push('/catalogs/', '/catalogs', `/catalogs/${own.toUpperCase()}.json`, '/brands/', '/.ratecard-build');
  return [...new Set(paths)];
}

/** Paths that are served (the app, its own files) but must still carry nothing foreign. */
function overridePaths(pub, own) {
  const paths = ['/', '/index.html', '/resellers.json', `/resellers.json?reseller=${DIRECT}`];
  for (const id of pub.index.storefronts) {
    paths.push(`/?reseller=${id}`, `/index.html?reseller=${id}`, `/catalogs/${own}.json?reseller=${id}`);
  }
  return paths;
}

/** Opens the storefront at `url` and goes through every tab, the invoice preview's worker included. */
async function visitEverything(page) {
  const store = new Storefront(page);
  await store.monthlyTotal().waitFor();
  await store.show('catalog');
  await store.show('invoice');
  await page.getByTestId('usage-file').setInputFiles(join(REPO, 'examples/exports/canonical-2017-02.csv'));
  await page.getByTestId('preview').waitFor();
  await store.show('build');
  await page.waitForLoadState('networkidle');
}

test('the markers catch the files they stand for (so a clean probe means something)', () => {
  const pub = published();
  for (const own of pub.index.storefronts.filter((id) => id !== DIRECT)) {
    const m = markersFor(pub, own);
    for (const [id, { bytes }] of Object.entries(pub.catalogs)) {
      if (id === own) assert.deepEqual(leaks(m, bytes), [], `${own}'s own catalog is clean`);
      else assert.ok(leaks(m, bytes).length > 0, `${id}'s catalog is caught on ${own}'s host`);
    }
    assert.ok(leaks(m, read('resellers.json')).length > 0, 'the full index is caught');
    // The catalog with the wholesale id removed is still caught by its prices alone.
    const direct = { ...pub.catalogs[DIRECT].json, id: 'renamed' };
    assert.ok(leaks(m, Buffer.from(JSON.stringify(direct))).some((w) => w.startsWith('wholesale prices')));
  }
});

for (const own of published().index.storefronts.filter((id) => id !== DIRECT)) {
  test(`${own}'s hostname serves nothing wholesale or foreign, by any path`, async () => {
    const pub = published();
    const host = pub.hostsOf(own).find((h) => h.endsWith('.localhost'));
    assert.ok(host, `${own} has no *.localhost hostname to test with`);
    const name = pub.catalogs[own].json.brand.name;
    const markers = markersFor(pub, own);
    const origin = `http://${host}:${env.server.port}`;
    const p = await openPage(env);
    const requested = [];
    p.page.on('request', (r) => requested.push(r.url()));
    try {
      const page = p.page;
      await page.goto(`${origin}/`);
      await visitEverything(page);
      assert.equal((await page.getByTestId('brand-name').textContent()).trim(), name);
      await screenshot(page, `isolation-${own}`);

      // 1. Everything the app asked for and received while it was used.
      const fetched = new Set();
      for (const u of requested) {
        const url = new URL(u);
        assert.equal(url.origin, origin, `the app fetched from another origin: ${url}`);
        fetched.add(url.pathname + url.search);
      }
      // Chromium reports the preview worker's requests to the page but keeps no body of them
      // for it; those paths are read again below, like every path the app asked for.
      const unread = [];
      for (const r of p.seen.responses) {
        const body = await r.body().catch(() => null);
        if (body === null) unread.push(new URL(r.url()).pathname);
        else assert.deepEqual(leaks(markers, body), [], `${r.url()}: received by the app`);
      }
      assert.ok(unread.every((u) => u.startsWith('/preview-worker')), `bodies not kept: ${unread}`);
      assert.ok(fetched.has(`/catalogs/${own}.json`), `the app fetched its catalog: ${[...fetched]}`);
      assert.ok([...fetched].some((u) => u.startsWith('/preview-worker')), `the worker was loaded: ${[...fetched]}`);

      // 2. Each of those paths again, and the ways to ask for something else.
      const forbidden = forbiddenPaths(pub, own);
      const probes = [...fetched, ...overridePaths(pub, own), ...forbidden];
      const report = [];
      for (const path of probes) {
        for (const [how, get] of [['raw', () => rawGet(host, path)], ['page', () => pageGet(page, path)]]) {
          const got = await get();
          const found = leaks(markers, got.body);
          report.push({ how, path, status: got.status, bytes: got.body.length, leaks: found });
          assert.deepEqual(found, [], `${how} GET ${path} on ${host} (${got.status})`);
          if (forbidden.includes(path)) assert.equal(got.status, 404, `${how} GET ${path} on ${host} is served`);
        }
      }
      // What this host may see of the index: itself only.
      const index = JSON.parse((await rawGet(host, '/resellers.json')).body.toString('utf8'));
      assert.deepEqual(index.storefronts, [own]);
      assert.deepEqual(Object.keys(index.hostnames).sort(), pub.hostsOf(own).sort());
      writeFileSync(join(ARTIFACTS, `isolation-${own}.json`), JSON.stringify(report, null, 2));
      assert.ok(report.length > 100, `only ${report.length} probes`);
      p.assertNoErrors(['Failed to load resource: the server responded with a status of 404']);
    } finally {
      await p.close();
    }
  });

  test(`?reseller= overrides on ${own}'s hostname still show ${own}, and fetch nothing else`, async () => {
    const pub = published();
    const host = pub.hostsOf(own).find((h) => h.endsWith('.localhost'));
    const markers = markersFor(pub, own);
    const name = pub.catalogs[own].json.brand.name;
    for (const other of pub.index.storefronts.filter((id) => id !== own)) {
      const p = await openPage(env);
      try {
        const store = new Storefront(p.page);
        await store.open(`http://${host}:${env.server.port}/?reseller=${other}`);
        await store.monthlyTotal().waitFor();
        await p.page.waitForLoadState('networkidle');
        assert.equal((await p.page.getByTestId('brand-name').textContent()).trim(), name, `?reseller=${other}`);
        assert.equal(await p.page.locator('.shop').getAttribute('data-storefront'), own);
        const catalogs = p.seen.responses.map((r) => new URL(r.url()).pathname).filter((u) => u.startsWith('/catalogs/'));
        assert.deepEqual(catalogs, [`/catalogs/${own}.json`], `?reseller=${other}`);
        for (const r of p.seen.responses) {
          assert.deepEqual(leaks(markers, await r.body()), [], `${r.url()} with ?reseller=${other}`);
        }
        await screenshot(p.page, `isolation-${own}-reseller-${other}`);
        p.assertNoErrors();
      } finally {
        await p.close();
      }
    }
  });
}

test('the provider’s own host serves no reseller’s catalog, brand or hostname', async () => {
  const pub = published();
  const resellers = pub.index.storefronts.filter((id) => id !== DIRECT);
  const direct = pub.catalogs[DIRECT].json;
  for (const id of resellers) {
    const { brand } = pub.catalogs[id].json;
    for (const path of [`/catalogs/${id}.json`, brand.logo_url, `/catalogs/../catalogs/${id}.json`]) {
      const got = await rawGet('127.0.0.1', path);
      assert.equal(got.status, 404, path);
    }
  }
  const index = JSON.parse((await rawGet('127.0.0.1', '/resellers.json')).body.toString('utf8'));
  assert.deepEqual(index, { schema_version: 1, hostnames: {}, storefronts: [DIRECT] });
  const catalog = await rawGet('127.0.0.1', '/catalogs/direct.json');
  assert.equal(JSON.parse(catalog.body.toString('utf8')).id, direct.id);
});
