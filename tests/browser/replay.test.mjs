// Replayable estimates: a share link pins its price list version; opened after a new version is published it shows the app's month then and now, row by row, with the difference; a withdrawn version says so.
//
// The older version is published into a copy of the build (`catalogs/acme/<old>.json`, as the
// deployment keeps every version), with one product of the starter app at another price. What
// "then" must be comes from elsewhere: a second copy of the build where that older price list is
// the current one, whose storefront prices the same link with no replay at all.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../frontend/tools/static-server.mjs';
import { start, openPage, screenshot, minor, REPO, DIST, ACME_LOCAL_HOST } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';
import { violations } from './lib/axe.mjs';

const OLD = '2017-01.7';
let env;
let then; // the build where OLD is Acme's current price list
let current;
let old;
let repriced; // the name of the product priced differently in OLD
before(async () => {
  const now = mkdtempSync(join(tmpdir(), 'storefront-replay-now-'));
  const past = mkdtempSync(join(tmpdir(), 'storefront-replay-then-'));
  cpSync(DIST, now, { recursive: true });
  cpSync(DIST, past, { recursive: true });
  current = JSON.parse(readFileSync(join(DIST, 'catalogs/acme.json'), 'utf8'));
  old = JSON.parse(JSON.stringify(current));
  old.version = OLD;
  env = await start({ dist: now });
  // Which product the starter app's first line bills: it gets another price in the old list.
  const p = await openPage(env);
  let name;
  try {
    const store = new Storefront(p.page);
    await store.open(env.hostUrl(ACME_LOCAL_HOST));
    name = (await p.page.locator('.line-desc').first().textContent()).trim();
  } finally {
    await p.close();
  }
  const product = old.products.find((x) => name.includes(x.name));
  assert.ok(product, `no product named in “${name}”`);
  for (const charge of product.charges) {
    if (charge.price.unit_price) charge.price.unit_price = doubled(charge.price.unit_price);
  }
  repriced = product.name;
  writeFileSync(join(now, `catalogs/acme/${OLD}.json`), JSON.stringify(old));
  writeFileSync(join(past, 'catalogs/acme.json'), JSON.stringify(old));
  then = await serve(past, 0);
});
after(async () => {
  await env?.close();
  await then?.close();
});

/** A decimal string times two, exactly (`0.8775` -> `1.7550`). */
function doubled(d) {
  const [int, frac = ''] = d.split('.');
  const v = (BigInt(int + frac) * 2n).toString().padStart(frac.length + 1, '0');
  return frac ? `${v.slice(0, -frac.length)}.${v.slice(-frac.length)}` : v;
}

/** `link` with its pinned price list version replaced. */
function pinned(link, version) {
  const [base, fragment] = link.split('#app=v1.');
  const config = JSON.parse(Buffer.from(fragment, 'base64url').toString('utf8'));
  config.catalog_version = version;
  return { base, fragment: `#app=v1.${Buffer.from(JSON.stringify(config)).toString('base64url')}` };
}

/**
 * Opens Acme's storefront with its starter app in `p` and makes a share link of it pinned to
 * `version`: the page object, today's total as shown, and the link's fragment.
 */
async function openPinned(p, version) {
  const store = new Storefront(p.page);
  await store.open(env.hostUrl(ACME_LOCAL_HOST));
  const nowTotal = await store.total();
  const { fragment } = pinned(await store.share(), version);
  return { store, nowTotal, fragment };
}

/** Opens `fragment` on the storefront as a fresh page load (not only a hash change). */
async function openLink(page, fragment) {
  await page.goto(`${env.hostUrl(ACME_LOCAL_HOST)}${fragment}`);
  await page.reload();
}

/** An amount cell as minor units (BigInt), `—` as null. */
const cents = (text) => (text.trim() === '—' ? null : minor(text).value);

test('an old link shows its month then and now, row by row, and the differences add up', async () => {
  const p = await openPage(env);
  try {
    const page = p.page;
    const { nowTotal, fragment } = await openPinned(p, OLD);

    // The same link where OLD is still the current price list: the month as it was.
    const q = await openPage(env);
    let thenTotal;
    try {
      const s = new Storefront(q.page);
      await s.open(`http://${ACME_LOCAL_HOST}:${then.port}/${fragment}`);
      thenTotal = await s.total();
      assert.equal(await q.page.getByTestId('replay').count(), 0, 'no replay on the version itself');
    } finally {
      await q.close();
    }
    assert.notEqual(thenTotal, nowTotal, 'the old price list must price the app differently');

    await openLink(page, fragment);
    await page.getByTestId('replay-total').waitFor();
    assert.match(await page.getByTestId('notice').textContent(), new RegExp(`version ${OLD.replace('.', '\\.')} then`));
    const total = await page.getByTestId('replay-total').locator('td').allTextContents();
    assert.equal(cents(total[0]), minor(thenTotal).value, 'then = the month under the old list');
    assert.equal(cents(total[1]), minor(nowTotal).value, 'now = today’s estimate');
    assert.equal(cents(total[2]), minor(nowTotal).value - minor(thenTotal).value);

    let sum = 0n;
    let moved = 0;
    for (const row of await page.getByTestId('replay-row').all()) {
      const label = (await row.locator('th').textContent()).trim();
      const [a, b, d] = (await row.locator('td').allTextContents()).map(cents);
      assert.equal(d, (b ?? 0n) - (a ?? 0n), label);
      sum += d;
      const cls = (await row.getAttribute('class')) ?? '';
      if (cls === '' && label.includes(repriced)) moved += d === 0n ? 0 : 1;
      else if (cls === '') assert.equal(d, 0n, `${label} did not change price`);
    }
    assert.ok(moved > 0, `no line of ${repriced} moved`);
    assert.equal(sum, cents(total[2]), 'the differences shown add up to the total’s');
    assert.deepEqual(await violations(page), [], 'axe on the replay');
    await screenshot(page, 'replay');
  } finally {
    await p.close();
  }
});

test('a link to a withdrawn price list says so and prices with today’s', async () => {
  const p = await openPage(env);
  try {
    const page = p.page;
    const { store, nowTotal, fragment } = await openPinned(p, '2016-06.1');
    await openLink(page, fragment);
    await page.getByTestId('notice').filter({ hasText: 'withdrawn' }).waitFor();
    assert.match(await page.getByTestId('notice').textContent(), /2016-06\.1\) has been withdrawn/);
    assert.equal(await page.getByTestId('replay').count(), 0);
    assert.equal(await store.total(), nowTotal);
  } finally {
    await p.close();
  }
});

/** The against table's total row of the first invoice: [estimated, actual, difference] in minor units. */
async function againstTotal(page) {
  const row = page.getByTestId('invoice').first().getByTestId('against-total');
  await row.waitFor();
  return (await row.locator('td').allTextContents()).map(cents);
}

test('a usage export dropped on an estimate is shown against it, line by line, under the same price list', async () => {
  const p = await openPage(env);
  try {
    const page = p.page;
    const { store, nowTotal, fragment } = await openPinned(p, OLD);
    const estimated = minor(nowTotal).value;
    const usage = join(REPO, 'examples/exports/cloudstack-2017-02.json');

    // Today's app against the export: the estimate's total, the invoice's total, their difference.
    await store.show('invoice');
    await page.getByTestId('usage-file').setInputFiles(usage);
    const [e, a, d] = await againstTotal(page);
    const invoiceTotal = minor(await page.getByTestId('invoice').first().getByTestId('invoice-total').textContent()).value;
    assert.equal(e, estimated);
    assert.equal(a, invoiceTotal);
    assert.equal(d, a - e);
    let sum = 0n;
    for (const row of await page.getByTestId('invoice').first().getByTestId('against-row').all()) {
      const [x, y, z] = (await row.locator('td').allTextContents()).map(cents);
      assert.equal(z, (y ?? 0n) - (x ?? 0n));
      sum += z;
    }
    assert.equal(sum, d, 'the differences shown add up to the total’s');
    assert.deepEqual(await violations(page), [], 'axe on the estimate against the usage');
    await screenshot(page, 'estimate-against-actual');

    // The old link: both sides priced with the list the link was made with.
    await openLink(page, fragment);
    await page.getByTestId('replay-total').waitFor();
    const thenTotal = cents((await page.getByTestId('replay-total').locator('td').allTextContents())[0]);
    await store.show('invoice');
    await page.getByTestId('usage-file').setInputFiles(usage);
    const [e2, a2] = await againstTotal(page);
    assert.equal(e2, thenTotal, 'estimated with the link’s price list');
    assert.match(await page.getByTestId('invoice').first().textContent(), new RegExp(`price list ${OLD.replace('.', '\\.')}`));
    assert.equal(a2, minor(await page.getByTestId('invoice').first().getByTestId('invoice-total').textContent()).value);
    assert.notEqual(a2, a, 'the usage is priced with the old list too');
  } finally {
    await p.close();
  }
});

test('a link in a currency the storefront cannot quote shows the estimate in its own, and says so', async () => {
  // Acme quotes in EUR only; a link in USD (made on the provider's storefront, or before the
  // resellers' catalogs dropped the provider's rates) used to show "no exchange rate" and no
  // estimate.
  const p = await openPage(env);
  try {
    const store = new Storefront(p.page);
    await store.open(env.hostUrl(ACME_LOCAL_HOST));
    const total = await store.total();
    const [, payload] = (await store.share()).split('#app=v1.');
    const config = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    config.currency = 'USD';
    await openLink(p.page, `#app=v1.${Buffer.from(JSON.stringify(config)).toString('base64url')}`);
    const notice = p.page.getByTestId('notice').filter({ hasText: 'quotes in EUR only' });
    await notice.waitFor();
    assert.match(await notice.textContent(), /This link was made in USD/);
    assert.equal(await store.total(), total, 'the same estimate, in EUR');
  } finally {
    await p.close();
  }
});
