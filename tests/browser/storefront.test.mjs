// The direct storefront in Chromium: build an app, validation, SLA, currency, share link, catalog,
// CSV export, print view, phone width, loading errors, and `?reseller=` ignored by the production build.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { start, openPage, screenshot, minor, ARTIFACTS } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.close();
});

/** Runs `body` on a fresh page of the direct storefront and checks the console stayed clean. */
async function withStore(body, { path = '', viewport, allow = [] } = {}) {
  const p = await openPage(env, { viewport });
  try {
    const store = new Storefront(p.page);
    await store.open(env.url(path));
    await body(store, p);
    p.assertNoErrors(allow);
  } finally {
    await p.close();
  }
}

test('the starter app is priced, and adding a VM raises the total by its price', async () => {
  await withStore(async (store, { page }) => {
    await store.monthlyTotal().waitFor();
    assert.deepEqual(await store.tierNames(), ['web', 'app', 'db']);
    const before = await store.total();
    assert.match(before, /^£[\d,]+\.\d\d$/);
    await store.addComponent(0, 'compute');
    const after = await store.totalAfter(before);
    // One more copper VM: 730 h x £2.20 = £1,606.00, plus 20 % VAT = £1,927.20.
    assert.equal(minor(after).value - minor(before).value, 192720n);
    assert.equal(await store.component(0, 3).getAttribute('data-kind'), 'compute');
    await screenshot(page, 'build');
  });
});

test('a bad number gets a message beside its field and the estimate waits for it', async () => {
  await withStore(async (store, { page }) => {
    const before = await store.total();
    const count = store.field(0, 0, 'count');
    await count.fill('two');
    const msgId = await count.getAttribute('aria-describedby');
    await page.locator(`#${msgId}`).filter({ hasText: 'Enter a whole number from 0 to 10,000' }).waitFor();
    assert.equal(await count.getAttribute('aria-invalid'), 'true');
    await page.getByTestId('estimate-pending').waitFor();
    await count.fill('2');
    await store.monthlyTotal().waitFor();
    assert.equal(await store.total(), before);
    assert.equal(await count.getAttribute('aria-invalid'), null);
  });
});

test('tiers can be added, duplicated, reordered and removed', async () => {
  await withStore(async (store) => {
    await store.tier(0).getByTestId('tier-duplicate').click();
    assert.deepEqual(await store.tierNames(), ['web', 'web copy', 'app', 'db']);
    await store.tier(3).getByTestId('tier-up').click();
    assert.deepEqual(await store.tierNames(), ['web', 'web copy', 'db', 'app']);
    await store.tier(1).getByTestId('tier-remove').click();
    assert.deepEqual(await store.tierNames(), ['web', 'db', 'app']);
    await store.page.getByTestId('add-tier').click();
    assert.deepEqual(await store.tierNames(), ['web', 'db', 'app', 'tier 4']);
    await store.page.getByTestId('template-single-vm').click();
    assert.deepEqual(await store.tierNames(), ['vm']);
  });
});

test('one click on an SLA card changes the total by the impact the card showed', async () => {
  await withStore(async (store, { page }) => {
    const before = await store.total();
    const gold = page.getByTestId('sla-gold');
    assert.equal(await page.getByTestId('sla-standard').getAttribute('aria-checked'), 'true');
    const impact = (await gold.getByTestId('sla-impact').textContent()).trim();
    assert.match(impact, /^\+£[\d,]+\.\d\d a month$/);
    await store.chooseSla('gold');
    const after = await store.totalAfter(before);
    assert.equal(await gold.getAttribute('aria-checked'), 'true');
    assert.equal(minor(after).value - minor(before).value, minor(impact).value);
    const compare = page.getByTestId('sla-compare');
    assert.match(await compare.textContent(), /99\.95 %.*99\.5 %|99\.5 %.*99\.95 %/s);
  });
});

test('switching currency reprices in that currency everywhere', async () => {
  await withStore(async (store, { page }) => {
    const before = await store.total();
    await store.setSetting('currency', 'EUR');
    const after = await store.totalAfter(before);
    assert.match(after, /^€[\d,]+\.\d\d$/);
    await store.setSetting('currency', 'JPY');
    assert.match(await store.totalAfter(after), /^¥[\d,]+$/);
    await store.show('catalog');
    const copper = page.locator('[data-testid="catalog-row"][data-product="copper"]');
    assert.match(await copper.getByTestId('per-hour').textContent(), /^¥/);
  });
});

test('a share link restores the app, its settings and its catalog version exactly', async () => {
  let link;
  let total;
  await withStore(async (store) => {
    await store.tier(1).getByTestId('tier-name').fill('backend');
    await store.addComponent(2, 'usage');
    await store.field(2, 3, 'product').selectOption('disk-io');
    await store.field(2, 3, 'meter').selectOption('disk.write.requests');
    await store.field(2, 3, 'quantity').fill('25000000');
    await store.chooseSla('gold');
    await store.setSetting('currency', 'EUR');
    await store.setSetting('term', '1y');
    await store.setDate('2017-04-03');
    await store.page.getByTestId('row-discount:spring-storage').waitFor();
    total = await store.total();
    link = await store.share();
  });
  assert.match(link, /#app=v1\.[A-Za-z0-9_-]+$/);
  const payload = JSON.parse(Buffer.from(link.split('#app=v1.')[1], 'base64url').toString('utf8'));
  assert.equal(payload.catalog_version, '2017-02.1');
  await withStore(
    async (store) => {
      await store.monthlyTotal().waitFor();
      assert.equal(await store.total(), total);
      assert.deepEqual(await store.tierNames(), ['web', 'backend', 'db']);
      assert.equal(await store.page.getByTestId('sla-gold').getAttribute('aria-checked'), 'true');
      assert.equal(await store.page.getByTestId('setting-at').inputValue(), '2017-04-03');
      // Sharing the restored app gives the same link: nothing was lost or added.
      assert.equal(await store.share(), link);
    },
    { path: link.slice(env.url().length) },
  );
});

test('a coupon code takes 10 % off the subtotal, and the share link keeps it', async () => {
  let link;
  let total;
  await withStore(async (store, { page }) => {
    // The example coupon is redeemable in 2017, the example catalog's year.
    await store.setDate('2017-02-15');
    await store.monthlyTotal().waitFor();
    const before = await store.total();
    const coupon = page.getByTestId('setting-coupon');
    await coupon.fill('nope');
    await coupon.press('Tab');
    await page.locator('#setting-coupon-msg').filter({ hasText: 'Unknown coupon code' }).waitFor();
    assert.equal(await coupon.getAttribute('aria-invalid'), 'true');
    // Codes ignore case, as the rater's redemption check does.
    await coupon.fill('welcome10');
    await coupon.press('Tab');
    const row = page.getByTestId('row-discount:coupon:WELCOME10');
    await row.waitFor();
    total = await store.totalAfter(before);
    // The coupon is 10 % of the subtotal (every charge), rounded half-up to the penny (the
    // catalog's GBP rounding).
    const subtotal = minor(await page.getByTestId('row-subtotal').locator('td').textContent()).value;
    const expected = subtotal / 10n + (subtotal % 10n >= 5n ? 1n : 0n);
    assert.equal(minor(await row.locator('td').textContent()).value, -expected);
    assert.ok(minor(total).value < minor(before).value);
    await screenshot(page, 'coupon');
    link = await store.share();
  });
  const payload = JSON.parse(Buffer.from(link.split('#app=v1.')[1], 'base64url').toString('utf8'));
  assert.equal(payload.coupon, 'welcome10');
  await withStore(
    async (store) => {
      await store.monthlyTotal().waitFor();
      assert.equal(await store.total(), total);
      assert.equal(await store.page.getByTestId('setting-coupon').inputValue(), 'welcome10');
    },
    { path: link.slice(env.url().length) },
  );
});

test('a damaged share link says so and opens the starter app', async () => {
  await withStore(
    async (store, { page }) => {
      await page.getByTestId('notice').filter({ hasText: 'could not be opened' }).waitFor();
      assert.deepEqual(await store.tierNames(), ['web', 'app', 'db']);
    },
    { path: '#app=v1.bm90IGpzb24' },
  );
});

test('the catalog can be searched and filtered by category and region', async () => {
  await withStore(async (store, { page }) => {
    await store.show('catalog');
    const rows = page.getByTestId('catalog-row');
    await page.getByTestId('catalog-search').fill('sata');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="catalog-row"]').length === 3);
    await page.getByTestId('catalog-search').fill('');
    await page.getByTestId('catalog-category').selectOption('Services');
    await page.getByTestId('setting-region').selectOption('gva1');
    await page.getByTestId('catalog-count').filter({ hasText: '1 not sold in this region' }).waitFor();
    assert.deepEqual(await rows.evaluateAll((r) => r.map((x) => x.dataset.product)), ['daily-backup', 'monitoring']);
    await page.getByTestId('catalog-category').selectOption('');
    await page.getByTestId('setting-region').selectOption('lon1');
    const copper = page.locator('[data-testid="catalog-row"][data-product="copper"]');
    assert.equal((await copper.getByTestId('per-hour').textContent()).trim(), '£2.20');
    assert.equal((await copper.getByTestId('per-month').textContent()).trim(), '£1,606.00');
    await screenshot(page, 'catalog');
  });
});

test('the estimate exports as CSV with the total shown on the page', async () => {
  await withStore(async (store, { page }) => {
    const total = await store.total();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-csv').click()]);
    assert.match(download.suggestedFilename(), /^estimate-.*\.csv$/);
    const csv = readFileSync(await download.path(), 'utf8');
    const lines = csv.split('\r\n');
    assert.match(lines[0], /^row,tier,category,description,quantity,unit,unit_price_GBP,/);
    const row = lines.find((l) => l.startsWith('monthly_total,'));
    const amount = row.split(',')[8];
    assert.equal(amount, total.replace(/[£,]/g, ''));
  });
});

test('the print view is the estimate alone', async () => {
  await withStore(async (store, { page }) => {
    await store.monthlyTotal().waitFor();
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.locator('.masthead').isVisible(), false);
    assert.equal(await page.getByTestId('tiers').isVisible(), false);
    assert.equal(await store.monthlyTotal().isVisible(), true);
    assert.equal(await page.getByTestId('estimate-tiers').isVisible(), true);
    await screenshot(page, 'print');
  });
});

test('at phone width nothing overflows sideways', async () => {
  await withStore(
    async (store, { page }) => {
      await store.monthlyTotal().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
      await screenshot(page, 'phone-build');
      // Full-page shots of a phone are too tall to read: the top and the estimate on their own.
      await page.screenshot({ path: `${ARTIFACTS}/phone-build-top.png` });
      await page.getByTestId('estimate').screenshot({ path: `${ARTIFACTS}/phone-estimate.png` });
      await store.show('catalog');
      await screenshot(page, 'phone-catalog');
    },
    { viewport: { width: 390, height: 844 } },
  );
});

test('every form control has a label and the skip link comes first', async () => {
  await withStore(async (store, { page }) => {
    // Keyboard first, from a freshly loaded page: the first Tab reaches the skip link.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
    for (const tab of ['build', 'catalog', 'invoice']) {
      await store.show(tab);
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea')]
          .filter((el) => el.labels.length === 0 && !el.getAttribute('aria-label'))
          .map((el) => el.outerHTML.slice(0, 80)),
      );
      assert.deepEqual(unlabelled, [], `${tab}: controls without a label`);
    }
  });
});

test('the production build ignores ?reseller=: the provider’s host shows the provider’s storefront', async () => {
  // A development build would show acme, or the unknown-storefront page for `nobody`
  // (tenant.rs tests both kinds of build); the shipped build goes by hostname alone.
  for (const path of ['?reseller=nobody', '?reseller=acme']) {
    await withStore(
      async (store, { page }) => {
        assert.equal(await page.locator('.shop').getAttribute('data-storefront'), 'direct', path);
        assert.equal(await page.getByTestId('unknown-reseller').count(), 0, path);
        assert.match(await store.total(), /^£/, path);
      },
      { path },
    );
  }
});

test('a failed catalog download shows an error with a retry that works', async () => {
  const p = await openPage(env);
  try {
    let failures = 1;
    await p.page.route('**/catalogs/direct.json', (route) => (failures-- > 0 ? route.abort() : route.continue()));
    const store = new Storefront(p.page);
    await store.open(env.url());
    await p.page.getByTestId('load-error').waitFor();
    await screenshot(p.page, 'load-error');
    await p.page.getByTestId('retry').click();
    await store.monthlyTotal().waitFor();
    // The aborted request is the only error, and it is the one this test caused.
    p.assertNoErrors(['catalogs/direct.json', 'Failed to load resource: net::ERR_FAILED']);
  } finally {
    await p.close();
  }
});
