// The white-labelled storefront: reseller chosen by its hostname, its brand as CSS variables,
// its retail prices, and not one wholesale price in anything the browser received.
// (Production build and server: `?reseller=` is a development-build preview only; what a
// reseller's hostname can reach at all is isolation.test.mjs.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, openPage, screenshot, wholesaleCatalog, moneyValues, MONEY_KEYS, ACME_HOST } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.close();
});

async function openAcme(url) {
  const p = await openPage(env);
  const store = new Storefront(p.page);
  await store.open(url);
  await store.monthlyTotal().waitFor();
  return { p, store };
}

test('Acme’s hostname shows Acme’s brand, colours, names and euro prices', async () => {
  const { p, store } = await openAcme(env.hostUrl(ACME_HOST));
  try {
    const page = p.page;
    assert.equal((await page.getByTestId('brand-name').textContent()).trim(), 'Acme Cloud');
    assert.equal(await page.title(), 'Acme Cloud — storefront');
    const logo = page.locator('.logo');
    assert.equal(await logo.getAttribute('src'), '/brands/acme/logo.svg');
    assert.ok(await logo.evaluate((img) => img.complete && img.naturalWidth > 0), 'logo loaded');
    const primary = await page.locator('.shop').evaluate((el) => getComputedStyle(el).getPropertyValue('--brand-primary').trim());
    assert.equal(primary, '#0b5394');
    const masthead = await page.locator('.masthead').evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(masthead, 'rgb(11, 83, 148)');
    assert.match(await store.total(), /^€[\d,]+\.\d\d$/);
    assert.equal(await page.getByTestId('setting-tax_jurisdiction').inputValue(), 'de');
    await screenshot(page, 'reseller-acme-build');
    await store.show('catalog');
    const names = await page.locator('.product-name').allTextContents();
    assert.ok(names.includes('Acme Micro (1 vCPU, 512 MB)'), 'renamed product');
    assert.ok(!names.some((n) => /ISO images|VM snapshots/.test(n)), 'hidden products stay hidden');
    // Copper: 2.20 GBP + 25 % markup at 1.17 EUR/GBP = 3.2175 EUR an hour.
    const copper = page.locator('[data-testid="catalog-row"][data-product="copper"]');
    assert.equal((await copper.getByTestId('per-hour').textContent()).trim(), '€3.2175');
    await screenshot(page, 'reseller-acme-catalog');
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});

test('the reseller is recognised by its hostname', async () => {
  const { p } = await openAcme(env.hostUrl(ACME_HOST));
  try {
    assert.equal((await p.page.getByTestId('brand-name').textContent()).trim(), 'Acme Cloud');
    assert.equal(await p.page.locator('.shop').getAttribute('data-storefront'), 'acme');
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});

test('no wholesale price reaches a reseller’s customer', async () => {
  const wholesale = moneyValues(wholesaleCatalog().products);
  for (const r of wholesaleCatalog().regions) moneyValues(r.overrides ?? [], wholesale);
  wholesale.delete('0');
  // The prices as the wholesale catalog writes them (`2.2000`), searched in non-JSON bodies.
  const literal = new Set();
  JSON.stringify(wholesaleCatalog().products, (k, v) => {
    if (MONEY_KEYS.has(k) && typeof v === 'string' && /[1-9]/.test(v)) literal.add(v);
    return v;
  });
  const { p, store } = await openAcme(env.hostUrl(ACME_HOST));
  try {
    // Visit every page so that everything the storefront loads is loaded.
    await store.show('catalog');
    await store.show('invoice');
    await store.show('build');
    await p.page.waitForLoadState('networkidle');
    const urls = [];
    for (const r of p.seen.responses) {
      const url = r.url();
      urls.push(url);
      const body = await r.body();
      const type = r.headers()['content-type'] ?? '';
      if (type.includes('json')) {
        const leaked = [...moneyValues(JSON.parse(body.toString('utf8')))].filter((v) => wholesale.has(v));
        assert.deepEqual(leaked, [], `wholesale prices in ${url}`);
      }
      const text = body.toString('latin1');
      const found = [...literal].filter((v) => new RegExp(`(^|[^0-9.])${v.replace('.', '\\.')}([^0-9]|$)`).test(text));
      assert.deepEqual(found, [], `wholesale price text in ${url}`);
    }
    assert.ok(urls.some((u) => u.endsWith('/catalogs/acme.json')), 'acme catalog fetched');
    assert.ok(!urls.some((u) => u.includes('/catalogs/direct.json')), 'the direct catalog is never fetched');
    assert.ok(urls.some((u) => u.endsWith('.wasm')), 'the app itself was checked too');
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});
