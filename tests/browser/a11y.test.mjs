// Accessibility: axe-core (every rule it runs by default, best practices included) finds no violation on any page or state of the storefront.
//
// The states a visitor meets: the builder (direct and a reseller's), the SLA comparison after a
// choice, the catalog, the invoice preview empty and with an invoice shown, the page of a price
// list that failed to load, and the unknown-storefront page (reached only in a development
// build, which honours `?reseller=`).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, openPage, screenshot, REPO, DIST_DEV, ACME_LOCAL_HOST } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';
import { violations } from './lib/axe.mjs';

const EXPORT = join(REPO, 'examples/exports/cloudstack-2017-02.json');

let env;
let dev;
before(async () => {
  env = await start();
  dev = await start({ dist: DIST_DEV, dev: true });
});
after(async () => {
  await env?.close();
  await dev?.close();
});

/** Opens `url`, brings the page to a state with `act`, and checks it with axe. */
async function check(name, on, url, act = async () => {}) {
  const p = await openPage(on);
  try {
    const store = new Storefront(p.page);
    await act(store, p.page, url);
    await p.page.waitForLoadState('networkidle');
    const found = await violations(p.page);
    await screenshot(p.page, `a11y-${name}`);
    assert.deepEqual(found, [], `${name}: ${found.length} axe violations`);
  } finally {
    await p.close();
  }
}

const open = async (store, _page, url) => store.open(url);

test('the builder (the provider’s storefront)', () => check('builder', env, env.url(), open));

test('the builder of a reseller’s storefront', () =>
  check('builder-acme', env, env.hostUrl(ACME_LOCAL_HOST), open));

test('the SLA comparison after choosing a service level', () =>
  check('sla', env, env.url(), async (store, _page, url) => {
    await store.open(url);
    const before = await store.total();
    await store.chooseSla('gold');
    await store.totalAfter(before);
  }));

test('the catalog', () =>
  check('catalog', env, env.url(), async (store, page, url) => {
    await store.open(url);
    await store.show('catalog');
    await page.locator('#catalog-heading').waitFor();
  }));

test('the invoice preview, empty', () =>
  check('invoice-empty', env, env.url(), async (store, page, url) => {
    await store.open(url);
    await store.show('invoice');
    await page.locator('#invoice-heading').waitFor();
  }));

test('the invoice preview with an invoice shown', () =>
  check('invoice-shown', env, env.url(), async (store, page, url) => {
    await store.open(url);
    await store.show('invoice');
    await page.getByTestId('usage-file').setInputFiles(EXPORT);
    await page.getByTestId('invoice').first().waitFor();
  }));

test('the page of a price list that could not be loaded', () =>
  check('load-error', env, env.url(), async (store, page, url) => {
    await page.route('**/catalogs/direct.json', (route) => route.abort());
    await store.open(url);
    await page.getByTestId('load-error').waitFor();
  }));

test('the unknown-storefront page (development build)', () =>
  check('unknown-reseller', dev, dev.url('?reseller=nobody'), async (store, page, url) => {
    await store.open(url);
    await page.getByTestId('unknown-reseller').waitFor();
  }));
