// Budgets of the release build: the wasm and JS of the first download (goal 250 KB brotli, held
// to a ceiling while it is not met), the total with the lazily loaded preview worker (a ceiling),
// and the recompute of a 200-component app inside Chromium (timed in the benchmark build, which
// adds only the timing hook).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { start, openPage, DIST, DIST_BENCH, ARTIFACTS } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

/**
 * The storefront issue's goal for everything executable the storefront downloads to show its
 * first page (KB = 1,000 bytes): the app's wasm and JS glue. Reported on every run (met or not).
 */
const BUNDLE_BROTLI_BYTES_GOAL = 250_000;
/**
 * What the first download may not exceed. It met the goal (249,171 B on 2026-11-30, 248,287 B
 * after issue 13) until issue 12 made every money and quantity operation of the estimate
 * checked and added the catalog's overflow bounds to its validation: 259,302 B on 2026-12-01
 * (twiggy: `bill::build` +6.5 KB raw, `QuoteMonth::usage` +6.8 KB, the bound checks +5.9 KB,
 * `exact` +4.7 KB), then 269,012 B after issue 18's pricing in the shared pipeline (plan
 * allowances and over-usage, monthly allowances pooled over short periods, catalog line order,
 * one quantity display), then 274,759 B with issue 18's coupons (the storefront's coupon field,
 * checked and estimated as the rater bills it), cost codes and datacenters not billed in the
 * catalog (cost codes alone: 1,004 B, measured by building without them), then 279,185 B with
 * issue 19's replay of old share links (the pinned price list fetched and handed to the preview
 * worker, which prices the app with both and lays out the comparison: +3.3 KB in the app),
 * then 280,623 B when the estimate's amounts per hour were rounded in the catalog's own mode
 * instead of always banker's (+123 B on 2026-12-03: `Currency::round_to`), then 281,492 B once
 * the estimate's yearly and term totals price each month with the promotions and coupon valid
 * as it begins (+815 B on 2026-12-03, twiggy: `estimate::other_months` +2.3 KB raw with
 * chrono's month arithmetic +375 B, less the coupon-only path) and the catalog refuses project-
 * and resource-scoped discounts (+151 B raw).
 * Correct money comes before the size goal; BENCHMARKS.md ("Size") lists what was tried to win it back and what is
 * left. The ceiling stops further growth; lower it to the goal once the goal is met again.
 */
const BUNDLE_BROTLI_BYTES_MAX = 281_600;
/**
 * The invoice preview's importers and invoicing live in a second wasm module, a web worker
 * (`preview-worker*` files) fetched only when a usage export is dropped. Its files are not part
 * of the first download, so they are held to a ceiling of their own: everything shipped
 * measured 426,557 B brotli on 2026-11-30, then 428,756 B after the rater's speed work, then
 * 451,589 B on 2026-12-01 once the worker's invoices went through the billing month's
 * `Statement` (issue dates, prepaid credit remaining, the adjustments section) and every
 * operation became checked (issue 12), then 494,112 B once the worker read the catalog's
 * importer mappings (parsed and checked with their JSON paths) and rated Ceilometer windows,
 * mapped counters and CloudStack resource rules, with contract prices and invoice blocks
 * (issue 18), then 504,761 B with coupons, cost codes and the carried Ceilometer readings,
 * then 518,749 B with the cost explorer computed in the worker (issue 17: the invoice spread
 * over days, projects, resources and products, its CSV and markup; the first download grew
 * 461 B, for the explorer's slot and the print button), then 521,192 B once usage totals kept
 * their records' tags and reports grouped by a tag's value (issue 17: the aggregator's tag sets,
 * the tag dimension and its serde in the worker; the first download shrank 134 B), then
 * 542,938 B with issue 19's service worker (sw.js, 3,127 B: fetched after the page has loaded,
 * so not part of the first download), the replay of old links and the estimate shown against a
 * dropped export (the worker now prices the app itself, config validation and the estimate, and
 * lays out both comparisons: +15.5 KB in the worker, +3.3 KB in the app).
 * 546,523 B once CloudStack documents stream (2026-12-02): the preview worker, which invoices a
 * dropped export, reads them through serde_json's reader path (+3.6 KB), the price of rating a
 * document of any size with the same code as the rater.
 * 547,007 B once the estimate's amounts per hour are rounded in the catalog's mode (2026-12-03:
 * `Currency::round_to` in both modules), then 548,481 B once the yearly and term totals price
 * each month with the discounts valid as it begins (both modules estimate).
 * The ceiling stops the total from growing; lower it with every win.
 */
const TOTAL_BROTLI_BYTES_MAX = 548_600;
/**
 * Files fetched after the first download: the lazily loaded preview worker, and the service
 * worker (registered once the page has loaded, off the critical path).
 */
const WORKER_FILE = /^(preview-worker|sw\.js$)/;
/** Components in the benchmark app (the issue's "200-line app"). */
const BENCH_COMPONENTS = 200;
/**
 * Regression ceiling for one recompute in this test. The goal is 1 ms (BENCHMARKS.md records
 * the measured figure); the ceiling leaves room for a loaded CI machine without letting a
 * tenfold regression through.
 */
const RECOMPUTE_MS_MAX = 20;

test('the first download (app wasm + JS) and everything shipped stay under their ceilings; the 250 KB goal is reported', () => {
  const files = readdirSync(DIST).filter((f) => /\.(wasm|js)$/.test(f));
  assert.ok(files.some((f) => f.endsWith('.wasm') && !WORKER_FILE.test(f)), 'no app wasm in dist/: build first');
  assert.ok(files.some((f) => f.endsWith('.wasm') && WORKER_FILE.test(f)), 'no preview worker wasm in dist/');
  const sizes = files.map((f) => {
    const raw = readFileSync(join(DIST, f));
    const brotli = brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
    return { file: f, raw: raw.length, brotli, first_download: !WORKER_FILE.test(f) };
  });
  const initial = sizes.filter((s) => s.first_download).reduce((s, x) => s + x.brotli, 0);
  const total = sizes.reduce((s, x) => s + x.brotli, 0);
  writeFileSync(
    join(ARTIFACTS, 'size.json'),
    JSON.stringify({ initial_brotli: initial, total_brotli: total, goal: BUNDLE_BROTLI_BYTES_GOAL, initial_ceiling: BUNDLE_BROTLI_BYTES_MAX, total_ceiling: TOTAL_BROTLI_BYTES_MAX, files: sizes }, null, 2),
  );
  console.log(
    `bundle: ${sizes.map((s) => `${s.file} ${s.raw} B raw, ${s.brotli} B brotli`).join('; ')}; ` +
      `first download ${initial} B brotli (goal ${BUNDLE_BROTLI_BYTES_GOAL} B: ${initial <= BUNDLE_BROTLI_BYTES_GOAL ? 'met' : 'NOT met'}); ` +
      `everything shipped (with the preview worker) ${total} B brotli`,
  );
  assert.ok(initial <= BUNDLE_BROTLI_BYTES_MAX, `the first download is ${initial} B brotli, over its ${BUNDLE_BROTLI_BYTES_MAX} B ceiling`);
  assert.ok(total <= TOTAL_BROTLI_BYTES_MAX, `wasm + JS are ${total} B brotli in all, over the ${TOTAL_BROTLI_BYTES_MAX} B ceiling`);
});

// The recompute is timed by a hook that only the benchmark build has (frontend/bench.html,
// `frontend/build.sh --bench`); the sizes above are those of the production build.
let env;
before(async () => {
  env = await start({ dist: DIST_BENCH });
});
after(async () => {
  await env?.close();
});

test('a 200-component app recomputes its estimate quickly in Chromium', async () => {
  const p = await openPage(env);
  try {
    const store = new Storefront(p.page);
    await store.open(env.url());
    await store.monthlyTotal().waitFor();
    // The first download really is the app alone: the preview worker waits for a dropped file.
    assert.deepEqual(p.seen.responses.map((r) => r.url()).filter((u) => WORKER_FILE.test(new URL(u).pathname.slice(1))), []);
    // The debug hook builds the app in wasm and times validate + estimate with performance.now().
    const result = JSON.parse(await p.page.evaluate((n) => window.__ratecardBench(n, 200), BENCH_COMPONENTS));
    writeFileSync(join(ARTIFACTS, 'bench.json'), JSON.stringify(result, null, 2));
    console.log(
      `recompute of ${result.components} components (${result.bill_lines} bill lines): ${result.estimate_mean_ms} ms mean ` +
        `(pricing::estimate alone ${result.engine_only_mean_ms} ms), ` +
        `${result.estimate_median_ms} ms median; with the SLA comparison ${result.with_sla_comparison_median_ms} ms median`,
    );
    assert.equal(result.components, BENCH_COMPONENTS);
    assert.ok(result.monthly_total !== '', 'the generated app prices');
    assert.ok(Number(result.estimate_mean_ms) <= RECOMPUTE_MS_MAX, `${result.estimate_mean_ms} ms`);
    p.assertNoErrors();
  } finally {
    await p.close();
  }
});
