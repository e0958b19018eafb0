// Offline use: after one visit a reseller's storefront (app, brand, price list, invoice preview) works with the server gone, says it is offline, announces a newly published price list once the network is back, and tells an open tab of one published meanwhile.
//
// The network is cut for real: the server is closed (its connections too), so every request
// the service worker passes on fails as it would on a train. The server then comes back on
// the same port (a service worker belongs to its origin) with a new version of the price list.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../frontend/tools/static-server.mjs';
import { start, openPage, screenshot, minor, REPO, DIST, ACME_LOCAL_HOST } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

let env;
let dir;
let restored;
before(async () => {
  // A copy of the build: this test publishes a new price list into it.
  dir = mkdtempSync(join(tmpdir(), 'storefront-offline-'));
  cpSync(DIST, dir, { recursive: true });
  env = await start({ dist: dir });
});
after(async () => {
  // The harness closes the server it started; the one restored on its port is this test's.
  await env?.close();
  if (restored) await restored.close();
});

async function cutNetwork() {
  await env.server.close();
  await assert.rejects(fetch(env.hostUrl(ACME_LOCAL_HOST)), 'the server still answers');
}

/**
 * A network that hangs (a train's): connections to the port are accepted and never answered.
 * Returns its closer.
 */
async function hangNetwork(port) {
  const sockets = new Set();
  const server = createServer((socket) => sockets.add(socket));
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  return () =>
    new Promise((ok) => {
      for (const s of sockets) s.destroy();
      server.close(ok);
    });
}

async function restoreNetwork() {
  restored = await serve(dir, env.server.port);
  env.server = restored;
}

test('a reseller’s storefront works offline after one visit, and a new price list is announced', async () => {
  const p = await openPage(env, { serviceWorkers: 'allow' });
  const page = p.page;
  const store = new Storefront(page);
  const url = env.hostUrl(ACME_LOCAL_HOST);
  const catalog = JSON.parse(readFileSync(join(dir, 'catalogs/acme.json'), 'utf8'));
  try {
    // First visit, online: the worker installs, precaches the build and keeps what the page
    // fetched before it took over (the reseller index, Acme's price list and logo).
    await store.open(url);
    const online = await store.total();
    await page.waitForFunction(() => (document.documentElement.dataset.offlineReady ?? '').includes('catalogs/acme.json'));
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    assert.equal(await page.getByTestId('sw-notice').count(), 0, 'no notice while online');

    await cutNetwork();
    // Offline, `/` is the worker's copy of the storefront's own page: its first screen
    // prerendered (brand and all), as online, not the bare shell.
    const offlinePage = await page.reload();
    assert.ok(offlinePage.fromServiceWorker(), 'the page comes from the service worker');
    const html = await offlinePage.text();
    assert.match(html, /data-prerendered/, 'the prerendered storefront, not the bare shell');
    assert.ok(html.includes(`>${catalog.brand.name}<`), `the page carries ${catalog.brand.name}'s brand`);
    await page.getByTestId('brand-name').waitFor();
    assert.equal((await page.getByTestId('brand-name').textContent()).trim(), catalog.brand.name);
    assert.equal(await store.total(), online, 'the same estimate offline');
    const notice = (await page.getByTestId('sw-notice').textContent()).trim();
    assert.match(notice, /offline/);
    assert.ok(notice.includes(catalog.version), `${notice} names ${catalog.version}`);
    const logo = page.locator('.brand img.logo');
    if (await logo.count()) {
      assert.ok(await logo.evaluate((img) => img.complete && img.naturalWidth > 0), 'the brand’s logo shows offline');
    }
    // The invoice preview's worker was precached: an export is invoiced offline too.
    await store.show('invoice');
    await page.getByTestId('usage-file').setInputFiles(join(REPO, 'examples/exports/cloudstack-2017-02.json'));
    const invoice = page.getByTestId('invoice').first();
    await invoice.waitFor();
    assert.ok(minor(await invoice.getByTestId('invoice-total').textContent()).value > 0n);
    await screenshot(page, 'offline-acme');

    // A network that hangs instead of failing: the kept storefront shows after the worker's
    // wait (4 s for the page, 4 s for the price list), not after the browser's own timeout.
    const unhang = await hangNetwork(env.server.port);
    try {
      const started = Date.now();
      await page.goto(url, { timeout: 30_000 });
      await page.getByTestId('brand-name').waitFor({ timeout: 30_000 });
      await page.getByTestId('sw-notice').filter({ hasText: 'too slow' }).waitFor({ timeout: 30_000 });
      assert.equal(await store.total(), online, 'the same estimate on a hanging network');
      const waited = Date.now() - started;
      assert.ok(waited < 20_000, `the storefront took ${waited} ms on a hanging network`);
    } finally {
      await unhang();
    }

    // The provider publishes a new version of Acme's price list; the visitor comes back online.
    const next = { ...catalog, version: `${catalog.version}-next` };
    writeFileSync(join(dir, 'catalogs/acme.json'), JSON.stringify(next));
    await restoreNetwork();
    await page.goto(url);
    await page.getByTestId('brand-name').waitFor();
    await page.getByTestId('sw-notice').filter({ hasText: next.version }).waitFor();
    const updated = (await page.getByTestId('sw-notice').textContent()).trim();
    assert.match(updated, /new price list/);
    assert.ok(updated.includes(catalog.version), `${updated} names the previous version`);
    assert.match(await page.locator('footer').textContent(), new RegExp(next.version.replace(/[.]/g, '\\.')));
    await screenshot(page, 'offline-updated');

    // Another version is published while the page is open: coming back to the tab tells the
    // visitor, and the Reload the notice offers prices with it.
    const third = { ...catalog, version: `${catalog.version}-third` };
    writeFileSync(join(dir, 'catalogs/acme.json'), JSON.stringify(third));
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    const told = page.getByTestId('sw-notice').filter({ hasText: third.version });
    await told.waitFor();
    assert.match(await told.textContent(), /since this page was opened/);
    await told.getByRole('button', { name: 'Reload' }).click();
    await page.waitForFunction((v) => document.documentElement.dataset.catalogVersion === v, third.version);
    assert.match(await page.locator('footer').textContent(), new RegExp(third.version.replace(/[.]/g, '\\.')));
  } finally {
    await p.close();
  }
});
