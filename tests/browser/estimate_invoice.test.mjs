// The promise of the storefront: the monthly total of an app built in the browser equals, to the
// cent, the invoice the rater produces from a month of that app's usage.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, openPage, minor, decimalMinor, e2eHelper, rateUsage, DIST, ARTIFACTS, REPO, ACME_LOCAL_HOST } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.close();
});

const PERIOD = '2017-02';

/** Makes the helper's account a customer of Acme, and adds Acme's own account with the provider. */
function asAcmeCustomer(accountsPath) {
  const book = JSON.parse(readFileSync(accountsPath, 'utf8'));
  for (const a of book.accounts) a.reseller = 'acme';
  book.accounts.push({ id: 'reseller-acme', name: 'Acme Cloud (reseller)', resells: 'acme', currency: 'EUR', tax_jurisdiction: 'none' });
  writeFileSync(accountsPath, JSON.stringify(book, null, 2));
}

/** A month of the shared app's usage (canonical CSV) and its account, written by the helper. */
function monthOfUsage(link, catalog) {
  const dir = mkdtempSync(join(tmpdir(), 'estimate-invoice-'));
  const usage = join(dir, 'usage.csv');
  const accounts = join(dir, 'accounts.json');
  e2eHelper(['month-usage', '--catalog', catalog, '--link', link, '--period', PERIOD, '--account', 'customer-1', '--csv', usage, '--accounts', accounts]);
  return { usage, accounts };
}

test('direct storefront: three tiers, Gold SLA, 1-year term, EUR: estimate equals the rater’s invoice', async () => {
  const p = await openPage(env);
  try {
    const store = new Storefront(p.page);
    await store.open(env.url());
    await store.monthlyTotal().waitFor();
    // Prices as of a day inside the invoiced month, so that both see the same promotions.
    await store.setDate('2017-02-14');
    await store.addComponent(1, 'compute');
    await store.field(1, 2, 'hours').fill('400');
    await store.field(1, 2, 'stopped_hours').fill('330');
    await store.addComponent(2, 'usage');
    await store.field(2, 3, 'product').selectOption('disk-io');
    await store.field(2, 3, 'meter').selectOption('disk.write.requests');
    await store.field(2, 3, 'quantity').fill('25000000');
    await store.chooseSla('gold');
    await store.setSetting('currency', 'EUR');
    await store.setSetting('term', '1y');
    await p.page.getByTestId('row-discount:term:1y').waitFor();
    const shown = await store.total();
    const link = await store.share();

    const catalog = join(DIST, 'catalogs/direct.json');
    const { usage, accounts } = monthOfUsage(link, catalog);
    const rated = rateUsage({ usage, catalog, accounts, period: PERIOD });
    const m = minor(shown);
    assert.equal(m.value, decimalMinor(rated.totals['customer-1'], m.scale), `browser ${shown}, ${rated.tool} ${rated.totals['customer-1']}`);
    writeFileSync(join(ARTIFACTS, 'estimate-invoice-direct.json'), JSON.stringify({ shown, rated, link }, null, 2));
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});

test('reseller storefront: the estimate equals the rater’s invoice and the browser’s own invoice preview', async () => {
  const p = await openPage(env);
  try {
    const store = new Storefront(p.page);
    // On the reseller's own hostname (the production build ignores `?reseller=`). Its
    // `.localhost` name: a secure context, as the https site is, which the share link's
    // clipboard needs (plain http on cloud.acme.example has no `navigator.clipboard`).
    await store.open(env.hostUrl(ACME_LOCAL_HOST));
    await store.monthlyTotal().waitFor();
    await store.setDate('2017-02-14');
    // No subscriptions here: the preview invoices usage only, so the app is usage only.
    await store.component(2, 2).getByTestId('component-remove').click();
    await store.addComponent(0, 'ip');
    await store.field(0, 3, 'count').fill('3');
    await store.chooseSla('gold');
    const shown = await store.total();
    const link = await store.share();

    // The month of usage comes from the app as Acme's storefront priced it; the rater is given
    // what a real deployment holds: the provider's wholesale catalog and an accounts book where
    // the customer belongs to Acme (and Acme has its own account). It must find Acme's prices
    // itself, through the same publishing the storefront's catalog came from.
    const published = join(DIST, 'catalogs/acme.json');
    const { usage, accounts } = monthOfUsage(link, published);
    asAcmeCustomer(accounts);
    const wholesale = join(REPO, 'examples/catalogs/cloudstack.json');
    const rated = rateUsage({ usage, catalog: wholesale, accounts, period: PERIOD });
    assert.equal(rated.tool, 'ratecard', 'a reseller customer is priced by the rater itself');
    const m = minor(shown);
    assert.equal(m.value, decimalMinor(rated.totals['customer-1'], m.scale), `browser ${shown}, ${rated.tool} ${rated.totals['customer-1']}`);

    // The same usage dropped on the invoice preview, with the same settings, in the browser.
    await store.show('invoice');
    await p.page.getByTestId('usage-file').setInputFiles({ name: 'month.csv', mimeType: 'text/csv', buffer: readFileSync(usage) });
    await p.page.getByTestId('preview').waitFor();
    assert.equal((await p.page.getByTestId('invoice-total').textContent()).trim(), shown);
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});
