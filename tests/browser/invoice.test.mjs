// The invoice preview: usage exports dropped on the page are invoiced in the browser, equal to
// what the rater invoices for the same account settings, and never sent anywhere.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, openPage, screenshot, minor, decimalMinor, rateUsage, REPO, DIST } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.close();
});

const EXPORTS = join(REPO, 'examples/exports');

/** The account the preview invoices to: the storefront's default settings (see invoice_preview.rs). */
function previewAccounts(ids) {
  return {
    schema_version: 1,
    version: 'storefront-preview',
    accounts: ids.map((id) => ({
      id,
      name: id,
      region: 'lon1',
      tax_jurisdiction: 'gb',
      sla_tier: 'standard',
      term: 'monthly',
    })),
  };
}

async function openInvoicePage() {
  const p = await openPage(env);
  const store = new Storefront(p.page);
  await store.open(env.url());
  await store.show('invoice');
  return { p, store };
}

/** The browser's invoice totals by account, after the preview shows. */
async function previewTotals(page) {
  await page.getByTestId('preview').waitFor();
  const totals = {};
  for (const inv of await page.getByTestId('invoice').all()) {
    totals[await inv.getAttribute('data-account')] = (await inv.getByTestId('invoice-total').textContent()).trim();
  }
  return totals;
}

for (const file of ['canonical-2017-02.csv', 'canonical-2017-02.jsonl', 'cloudstack-nightly-2017-02-14.json', 'cloudstack-2017-02.json']) {
  test(`${file}: the browser's invoice equals the rater's`, async () => {
    const { p } = await openInvoicePage();
    try {
      const page = p.page;
      const requestsBefore = p.seen.responses.length;
      await page.getByTestId('usage-file').setInputFiles(join(EXPORTS, file));
      const browser = await previewTotals(page);
      assert.ok(Object.keys(browser).length > 0);
      // Reading and invoicing the file sent it nowhere: the only requests are plain GETs of the
      // preview worker's own files (the second wasm module, fetched on the first drop).
      const sent = p.seen.responses.slice(requestsBefore).filter((r) => {
        const url = new URL(r.url());
        const workerFile = /^\/preview-worker(_loader\.js|\.js|_bg\.wasm)$/.test(url.pathname);
        return !(workerFile && url.search === '' && r.request().method() === 'GET');
      });
      assert.deepEqual(sent.map((r) => r.url()), [], 'the export was sent somewhere');

      const dir = mkdtempSync(join(tmpdir(), 'preview-'));
      const accounts = join(dir, 'accounts.json');
      writeFileSync(accounts, JSON.stringify(previewAccounts(Object.keys(browser))));
      const rated = rateUsage({ usage: join(EXPORTS, file), catalog: join(DIST, 'catalogs/direct.json'), accounts, period: '2017-02' });
      for (const [account, shown] of Object.entries(browser)) {
        const m = minor(shown);
        assert.equal(m.value, decimalMinor(rated.totals[account], m.scale), `${account} (${rated.tool})`);
      }
      if (file.startsWith('cloudstack-2017')) await screenshot(page, 'invoice-preview');
      p.assertNoErrors();
    } finally {
      await p.close();
    }
  });
}

test('an export dropped on the page is previewed, and settings reprice it', async () => {
  const { p, store } = await openInvoicePage();
  try {
    const page = p.page;
    const text = readFileSync(join(EXPORTS, 'canonical-2017-02.csv'), 'utf8');
    const dt = await page.evaluateHandle((t) => {
      const d = new DataTransfer();
      d.items.add(new File([t], 'dropped.csv', { type: 'text/csv' }));
      return d;
    }, text);
    await page.dispatchEvent('[data-testid="dropzone"]', 'drop', { dataTransfer: dt });
    const gbp = await previewTotals(page);
    assert.match(Object.values(gbp)[0], /^£/);
    await store.setSetting('currency', 'CHF');
    await page.waitForFunction(() => document.querySelector('[data-testid="invoice-total"]').textContent.startsWith('CHF'));
    assert.match(await page.getByTestId('preview-summary').textContent(), /dropped\.csv: 37 records \(csv\) for 2017-02/);
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});

// The cost explorer: the CloudStack example month spread over its days, projects, resources
// and products in the browser (by the preview's worker, with the rater's report code), adding up
// to the net the rater bills for the same settings; its CSV; and the invoice printing alone.
test('the cost explorer spreads the CloudStack month and the invoice prints alone', async () => {
  const { p } = await openInvoicePage();
  try {
    const page = p.page;
    const file = join(EXPORTS, 'cloudstack-2017-02.json');
    await page.getByTestId('usage-file').setInputFiles(file);
    const browser = await previewTotals(page);
    const account = Object.keys(browser)[0];
    const invoice = page.locator(`[data-testid="invoice"][data-account="${account}"]`);
    const explorer = invoice.getByTestId('explorer');
    await explorer.waitFor();
    const costs = await explorer.locator('.bar').evaluateAll((bs) => bs.map((b) => b.dataset.cost));
    assert.equal(costs.length, 28, 'a bar per day of February 2017');
    const dir = mkdtempSync(join(tmpdir(), 'explorer-'));
    const accounts = join(dir, 'accounts.json');
    writeFileSync(accounts, JSON.stringify(previewAccounts([account])));
    const rated = rateUsage({ usage: file, catalog: join(DIST, 'catalogs/direct.json'), accounts, period: '2017-02' });
    const scale = 2;
    const sum = costs.reduce((a, c) => a + decimalMinor(c, scale), 0n);
    assert.equal(sum, decimalMinor(rated.nets[account], scale), `the days add up to the net (${rated.tool})`);
    for (const dim of ['project', 'resource', 'product']) {
      assert.ok(await explorer.getByTestId(`breakdown-${dim}`).locator('tbody tr').count() > 0, dim);
    }
    // The CSV link holds the same days: its rows add up to the net too.
    const href = await explorer.getByTestId('explorer-csv').getAttribute('href');
    const csv = decodeURIComponent(href.slice(href.indexOf(',') + 1));
    const lines = csv.trim().split('\n');
    assert.equal(lines[0], 'date,currency,project,resource,product,meter,unit,quantity,amount');
    const rows = lines.slice(1).filter((l) => !l.startsWith('total'));
    const csvSum = rows.reduce((a, l) => a + decimalMinor(l.split(',').at(-1), scale), 0n);
    assert.equal(csvSum, sum);
    await explorer.scrollIntoViewIfNeeded();
    await screenshot(page, 'cost-explorer');
    // Printed, the page is the invoice alone: no drop zone, settings or explorer.
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.getByTestId('dropzone').isVisible(), false);
    assert.equal(await explorer.isVisible(), false);
    assert.equal(await invoice.getByTestId('invoice-total').isVisible(), true);
    await screenshot(page, 'invoice-print');
    await page.emulateMedia({ media: 'screen' });
    assert.equal(await page.getByTestId('print-invoice').isVisible(), true);
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});

// The preview runs in a web worker owned by the page: leaving the page stops it, and coming
// back starts a new one that answers like the first.
test('the preview works again after leaving the invoice page and coming back', async () => {
  const { p, store } = await openInvoicePage();
  try {
    const page = p.page;
    const file = join(EXPORTS, 'canonical-2017-02.csv');
    await page.getByTestId('usage-file').setInputFiles(file);
    const first = await previewTotals(page);
    await store.show('build');
    await store.monthlyTotal().waitFor();
    await store.show('invoice');
    await page.getByTestId('usage-file').setInputFiles(file);
    assert.deepEqual(await previewTotals(page), first);
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});

test('an export of another cloud’s products lists the records it refuses', async () => {
  const { p } = await openInvoicePage();
  try {
    const page = p.page;
    // Ceilometer samples price against the OpenStack catalog, not this storefront's.
    await page.getByTestId('usage-file').setInputFiles(join(EXPORTS, 'ceilometer-2026-11.json'));
    const err = page.getByTestId('preview-error');
    await err.waitFor();
    assert.match(await err.textContent(), /records of the file are refused/);
    assert.match(await err.textContent(), /unknown product/);
    await page.getByTestId('usage-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await page.getByTestId('preview-error').filter({ hasText: 'does not look like a usage export' }).waitFor();
    await screenshot(page, 'invoice-error');
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});
