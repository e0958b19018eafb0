// Lighthouse 12.2.3 (mobile profile, simulated slow 4G and a slowed CPU, as a phone meets the site) on the served storefront, direct and a reseller's: the scores are enforced and written to artifacts/lighthouse.json.
//
// Accessibility and best practices must be 100 and SEO at least 95. Performance is enforced at
// PERFORMANCE_MIN, a floor under what the storefront reaches today (93-99 with each storefront
// prerendered); issue 19's goal is 95, and BENCHMARKS.md says where it stands.
// Scores move by a few points between runs on a shared 2-core machine (shared/TOOLING.md):
// performance is the best of RUNS runs, the other categories do not move.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
import { serve } from '../../frontend/tools/static-server.mjs';
import { ARTIFACTS, CHROMIUM_FLAGS, DIST, ACME_LOCAL_HOST } from './lib/harness.mjs';

/** The floor of the performance score: 90, so that a loaded CI machine does not fail it (goal 95). */
const PERFORMANCE_MIN = 90;
const RUNS = 2;
const CATEGORIES = ['performance', 'accessibility', 'best-practices', 'seo'];

let server;
let chrome;
before(async () => {
  server = await serve(DIST, 0);
  chrome = await chromeLauncher.launch({
    chromePath: '/usr/bin/chromium',
    chromeFlags: ['--headless=new', ...CHROMIUM_FLAGS],
  });
});
after(async () => {
  await chrome?.kill();
  await server?.close();
});

/** One Lighthouse run: the four scores (0-100) and the metrics that explain performance. */
async function audit(url) {
  const { lhr } = await lighthouse(url, { port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: CATEGORIES });
  if (lhr.runtimeError) throw new Error(`lighthouse on ${url}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
  const score = Object.fromEntries(CATEGORIES.map((c) => [c, Math.round(lhr.categories[c].score * 100)]));
  const ms = (id) => Math.round(lhr.audits[id].numericValue);
  const failing = Object.values(lhr.audits)
    .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode === 'binary')
    .map((a) => a.id);
  return {
    url,
    score,
    metrics: {
      first_contentful_paint_ms: ms('first-contentful-paint'),
      largest_contentful_paint_ms: ms('largest-contentful-paint'),
      speed_index_ms: ms('speed-index'),
      total_blocking_time_ms: ms('total-blocking-time'),
      cumulative_layout_shift: lhr.audits['cumulative-layout-shift'].numericValue,
      interactive_ms: ms('interactive'),
      transfer_bytes: lhr.audits['total-byte-weight'].numericValue,
    },
    failing_audits: failing,
  };
}

const report = [];
after(() => writeFileSync(join(ARTIFACTS, 'lighthouse.json'), JSON.stringify(report, null, 2)));

for (const [name, host] of [['direct', '127.0.0.1'], ['reseller acme', ACME_LOCAL_HOST]]) {
  test(`Lighthouse, mobile, ${name}: accessibility and best practices 100, SEO ≥ 95, performance ≥ ${PERFORMANCE_MIN}`, async () => {
    const url = `http://${host}:${server.port}/`;
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await audit(url));
    const best = runs.reduce((a, b) => (b.score.performance > a.score.performance ? b : a));
    report.push({ name, runs });
    console.log(`lighthouse ${name}: ${runs.map((r) => JSON.stringify(r.score)).join(' ')}; best run ${JSON.stringify(best.metrics)}`);
    for (const r of runs) {
      assert.equal(r.score.accessibility, 100, `accessibility: failing ${r.failing_audits.join(', ')}`);
      assert.equal(r.score['best-practices'], 100, `best practices: failing ${r.failing_audits.join(', ')}`);
      assert.ok(r.score.seo >= 95, `SEO ${r.score.seo}: failing ${r.failing_audits.join(', ')}`);
    }
    assert.ok(best.score.performance >= PERFORMANCE_MIN, `performance ${best.score.performance} (best of ${RUNS})`);
  });
}
