// Budgets of the release build: the wasm and JS shipped (goal 250 KB brotli, not met yet; a
// regression ceiling is enforced) and the recompute of a 200-component app inside Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { start, openPage, DIST, ARTIFACTS } from './lib/harness.mjs';
import { Storefront } from './lib/storefront.mjs';

/** The issue's goal for everything executable the storefront ships (KB = 1,000 bytes). */
const BUNDLE_BROTLI_BYTES_GOAL = 250_000;
/**
 * What this test enforces today: the build measured 305,426 B brotli on 2026-11-30, over the
 * goal (open in issue #4; see BENCHMARKS.md). The ceiling stops the bundle from growing while the
 * goal is worked on; lower it with every win, and set it to the goal once met.
 */
const BUNDLE_BROTLI_BYTES_MAX = 307_000;
/** Components in the benchmark app (the issue's "200-line app"). */
const BENCH_COMPONENTS = 200;
/**
 * Regression ceiling for one recompute in this test. The goal is 1 ms (BENCHMARKS.md records
 * the measured figure); the ceiling leaves room for a loaded CI machine without letting a
 * tenfold regression through.
 */
const RECOMPUTE_MS_MAX = 20;

test('wasm + JS of the release build stay under the regression ceiling (goal: 250 KB brotli)', () => {
  const files = readdirSync(DIST).filter((f) => /\.(wasm|js)$/.test(f));
  assert.ok(files.some((f) => f.endsWith('.wasm')), 'no wasm in dist/: build first');
  const sizes = files.map((f) => {
    const raw = readFileSync(join(DIST, f));
    const brotli = brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
    return { file: f, raw: raw.length, brotli };
  });
  const total = sizes.reduce((s, x) => s + x.brotli, 0);
  writeFileSync(join(ARTIFACTS, 'size.json'), JSON.stringify({ total_brotli: total, goal: BUNDLE_BROTLI_BYTES_GOAL, ceiling: BUNDLE_BROTLI_BYTES_MAX, files: sizes }, null, 2));
  console.log(`bundle: ${sizes.map((s) => `${s.file} ${s.raw} B raw, ${s.brotli} B brotli`).join('; ')}; total ${total} B brotli (goal ${BUNDLE_BROTLI_BYTES_GOAL} B: ${total <= BUNDLE_BROTLI_BYTES_GOAL ? 'met' : 'NOT met'})`);
  assert.ok(total <= BUNDLE_BROTLI_BYTES_MAX, `wasm + JS are ${total} B brotli, over the ${BUNDLE_BROTLI_BYTES_MAX} B budget`);
});

let env;
before(async () => {
  env = await start();
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
