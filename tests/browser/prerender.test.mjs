// Content before the wasm: each storefront's first screen, prerendered at build time by the app itself, is what `/` answers on its hostnames, shows brand and prices with the wasm blocked, and is swapped for the live app without a shift.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ACME_LOCAL_HOST, DIST, openPage, screenshot, start } from './lib/harness.mjs';
import { loadAfterPaint, pageWith, storefrontsOf } from '../../frontend/tools/prerender.mjs';

let env;
before(async () => {
  env = await start();
});
after(async () => {
  await env?.close();
});

const index = () => JSON.parse(readFileSync(join(DIST, 'resellers.json'), 'utf8'));
const pageFile = (id) => readFileSync(join(DIST, 'storefronts', `${id}.html`), 'utf8');
/** The text of the first element of `html` with class `cls` (no nested tags inside it). */
function textOf(html, cls) {
  const m = new RegExp(`class="${cls}"[^>]*>([^<]*)<`).exec(html);
  return m ? m[1] : null;
}

/** A raw GET with this Host header, as a browser on that hostname sends it. */
function get(host, path) {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: env.server.port, path, headers: { host: `${host}:${env.server.port}` }, setHost: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end();
  });
}

test('every storefront has its page: the app’s first screen, inert, without test hooks', () => {
  const { storefronts } = index();
  assert.deepEqual(storefronts, ['direct', 'acme', 'nimbus']);
  const brands = new Map();
  for (const id of storefronts) {
    const html = pageFile(id);
    assert.match(html, /<div [^>]*class="shop"[^>]*data-storefront="[^"]+"[^>]*data-prerendered="" inert="">/, `${id}: the app's frame, marked`);
    assert.doesNotMatch(html, /data-testid=/, `${id}: no test hooks in the copy`);
    assert.ok(textOf(html, 'headline-amount'), `${id}: the estimate's total a month is on the page`);
    brands.set(id, textOf(html, 'brand-name'));
    // The app's own shell is all there, once: its loader still starts the app, after the
    // copy's first paint rather than beside it (no wasm preload).
    assert.equal(html.split('<body').length, 2, id);
    const glue = readFileSync(join(DIST, 'index.html'), 'utf8').match(/import init, \* as bindings from '[^']+';/)[0];
    assert.ok(html.includes(glue), `${id}: trunk's loader`);
    assert.match(html, /requestAnimationFrame\(\(\) => setTimeout\(painted\)\)\);\nconst wasm = await init\(/, `${id}: the app starts after the first paint`);
    assert.doesNotMatch(html, /rel="preload"[^>]*_bg\.wasm/, `${id}: no wasm preload`);
  }
  assert.equal(new Set(brands.values()).size, storefronts.length, `one brand each: ${[...brands.values()].join(', ')}`);
});

test('`/` on each hostname is that storefront’s page and no other’s', async () => {
  const acme = await get(ACME_LOCAL_HOST, '/');
  assert.equal(acme.status, 200);
  assert.equal(acme.body, pageFile('acme'));
  const direct = await get('127.0.0.1', '/');
  assert.equal(direct.body, pageFile('direct'));
  for (const other of ['direct', 'nimbus']) {
    assert.equal((await get(ACME_LOCAL_HOST, `/storefronts/${other}.html`)).status, 404, other);
    assert.ok(!acme.body.includes(textOf(pageFile(other), 'brand-name')), `acme's page names ${other}'s brand`);
  }
});

test('with the wasm blocked, the visitor still sees the brand, the builder and its prices', async () => {
  const p = await openPage(env, { viewport: { width: 412, height: 823 } });
  try {
    await p.page.route('**/*_bg.wasm', (r) => r.abort());
    await p.page.goto(env.hostUrl(ACME_LOCAL_HOST));
    const copy = pageFile('acme');
    await p.page.locator('[data-prerendered] .brand-name').waitFor();
    assert.equal((await p.page.locator('h1.brand-name').innerText()).trim(), textOf(copy, 'brand-name'));
    assert.equal((await p.page.locator('.headline-amount').innerText()).trim(), textOf(copy, 'headline-amount'));
    assert.ok(await p.page.locator('.headline-amount').isVisible());
    // The app's loading view stays hidden behind the copy.
    assert.equal(await p.page.locator('.boot').isVisible(), false);
    await screenshot(p.page, 'prerendered-acme-wasm-blocked');
  } finally {
    await p.close();
  }
});

test('the app builds its first screen in parts behind the copy, then replaces it in one step: same figures, no layout shift, largest paint before the app', async () => {
  const p = await openPage(env, { viewport: { width: 412, height: 823 } });
  try {
    await p.page.addInitScript(() => {
      // `parts`: how much of the live first screen was built while the copy was still shown
      // (it is built over several tasks, hidden); `wholeAtSwap`: whether it was whole when the
      // copy went away.
      window.__paint = { shifts: 0, lcp: [], swappedAt: null, parts: [], wholeAtSwap: null };
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) window.__paint.shifts += e.value;
      }).observe({ type: 'layout-shift', buffered: true });
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__paint.lcp.push(e.startTime);
      }).observe({ type: 'largest-contentful-paint', buffered: true });
      let copySeen = false;
      new MutationObserver(() => {
        const paint = window.__paint;
        if (paint.swappedAt !== null) return;
        const live = document.querySelector('.shop:not([data-prerendered])');
        const part = !live
          ? null
          : live.querySelector('[data-testid="monthly-total"]') && live.querySelector('.sla-card')
            ? 'whole'
            : live.querySelector('[data-testid="tier"]')
              ? 'tiers'
              : 'top';
        if (document.querySelector('[data-prerendered]')) {
          copySeen = true;
          if (part && paint.parts.at(-1) !== part) paint.parts.push(part);
        } else if (copySeen) {
          paint.swappedAt = performance.now();
          paint.wholeAtSwap = part === 'whole';
        }
      }).observe(document, { childList: true, subtree: true });
    });
    await p.page.goto(env.hostUrl(ACME_LOCAL_HOST));
    await p.page.locator('[data-testid="monthly-total"]').waitFor();
    // Two frames after the swap, so any shift it caused has been reported.
    await p.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const copy = pageFile('acme');
    assert.equal(await p.page.locator('[data-prerendered]').count(), 0, 'the copy is gone');
    assert.equal(await p.page.locator('h1').count(), 1, 'one level-one heading');
    assert.equal((await p.page.getByTestId('brand-name').innerText()).trim(), textOf(copy, 'brand-name'));
    assert.equal(
      (await p.page.getByTestId('monthly-total').innerText()).trim(),
      textOf(copy, 'headline-amount'),
      'the live estimate equals the prerendered one (same engine, same price list)',
    );
    const paint = await p.page.evaluate(() => window.__paint);
    assert.ok(paint.shifts < 0.01, `layout shift ${paint.shifts}`);
    assert.ok(paint.swappedAt !== null);
    assert.equal(paint.wholeAtSwap, true, 'the copy stays until the live first screen is whole');
    // Top, then tiers, each seen on its own behind the copy; the last part (the SLA comparison
    // and the estimate) comes in the same task as the swap.
    assert.deepEqual(
      paint.parts,
      ['top', 'tiers'],
      'the live first screen is built in parts, in separate tasks, behind the copy',
    );
    assert.ok(paint.lcp.length > 0, 'a largest contentful paint was reported');
    assert.ok(
      Math.max(...paint.lcp) < paint.swappedAt,
      `the largest paint (${paint.lcp.join(', ')} ms) comes before the app's own view (${paint.swappedAt} ms)`,
    );
    await screenshot(p.page, 'prerendered-acme-live');
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});

test('the page maker refuses a shell it does not recognise rather than ship a half-made page', () => {
  const shell = readFileSync(join(DIST, 'index.html'), 'utf8');
  const made = pageWith(shell, { title: 'A & B <shop>', content: '<main data-prerendered>x</main>' });
  assert.match(made, /<title>A &amp; B &lt;shop&gt;<\/title>/);
  assert.match(made, /<body>\n<main data-prerendered>x<\/main>\n/);
  assert.throws(() => pageWith(shell.replace(/<title>[^<]*<\/title>/, ''), { title: 't', content: '' }), /no <title>/);
  assert.throws(() => pageWith('<title>t</title>', { title: 't', content: '' }), /no <body>/);
  assert.throws(() => loadAfterPaint(shell.replace(/<link rel="preload"[^>]*_bg\.wasm"[^>]*>/, '')), /0 wasm preload links/);
  assert.throws(() => loadAfterPaint(shell.replace('const wasm = await init(', 'const wasm = await start(')), /does not call/);
  // Every storefront gets a page; a reseller without a hostname cannot be rendered (the release
  // app picks its storefront by hostname alone), so it is named and gets the bare shell.
  assert.deepEqual(
    storefrontsOf({ hostnames: { 'b.example': 'acme', 'a.example': 'acme' }, storefronts: ['direct', 'acme', 'lone'] }),
    [{ id: 'direct', host: '127.0.0.1' }, { id: 'acme', host: 'a.example' }, { id: 'lone', host: null }],
  );
});
