// Lighthouse 12.2.3 (mobile profile, simulated slow 4G and a slowed CPU, as a phone meets the site) on the served storefront, direct and a reseller's: the scores are enforced and written to artifacts/lighthouse.json.
//
// Accessibility and best practices must be 100 and SEO at least 95. Performance is enforced at
// PERFORMANCE_MIN, a floor under what the storefront reaches today; issue 19's goal is 95, and
// BENCHMARKS.md says where it stands. Scores move by a few points between runs on a shared
// 2-core machine (shared/TOOLING.md): performance is the best of RUNS runs, the other
// categories do not move.
//
// A slow host does not fail the test for a slow phone: Lighthouse slows the CPU by a factor
// (4 by default) "calibrated for a high-end desktop" (benchmark index 1500-2000, Lighthouse's
// throttling docs), so on a slower host the default simulates a slower phone than intended. The
// factor is therefore set from the host's own benchmark index (Lighthouse's, measured by
// calibration runs): 4 x index / 1750, at most 4 (the default, on any host at least as fast as
// the calibrated one: a high reading is as often noise as a faster CPU).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
import { serve } from '../../frontend/tools/static-server.mjs';
import { ARTIFACTS, CHROMIUM_FLAGS, DIST, ACME_LOCAL_HOST } from './lib/harness.mjs';

/**
 * The floor of the performance score: 85, under what the storefront reaches on the slowest host
 * seen (2026-12-03: 77-85 at the default 4x, 85-93 calibrated; 92-99 on 12-02), so that a
 * loaded CI machine does not fail it. Goal 95: BENCHMARKS.md.
 */
const PERFORMANCE_MIN = 85;
const RUNS = 3;
/** The benchmark index Lighthouse's default 4x slowdown is calibrated for (the middle of 1500-2000). */
const CALIBRATED_INDEX = 1750;
const DEFAULT_SLOWDOWN = 4;
/** Lighthouse runs that measure the host before the audited ones (odd: their median is one of them). */
const CALIBRATION_RUNS = 3;
const CATEGORIES = ['performance', 'accessibility', 'best-practices', 'seo'];

let server;
let chrome;
before(async () => {
  server = await serve(DIST, 0);
  chrome = await chromeLauncher.launch({
    chromePath: '/usr/bin/chromium',
    chromeFlags: ['--headless=new', ...CHROMIUM_FLAGS],
  });
  // CALIBRATION_RUNS runs (the first also warms the browser), their median index kept: on a
  // shared virtual machine one reading moves by a third either way (1,011 to 1,938 within ten
  // minutes on 2026-12-03). Their scores are not used.
  const indices = [];
  for (let i = 0; i < CALIBRATION_RUNS; i++) indices.push((await run(`http://127.0.0.1:${server.port}/`, DEFAULT_SLOWDOWN)).environment.benchmarkIndex);
  benchmarkIndex = [...indices].sort((a, b) => a - b)[Math.floor(CALIBRATION_RUNS / 2)];
  // Never more than the default: a high reading is as likely noise as a faster CPU (2,814 on
  // 2026-12-03 gave 6.43x and scores of 80-87 where 5.2x had given 88-92), and Lighthouse's
  // own mobile profile is 4x on any host faster than the one it was calibrated on.
  slowdown = Math.min(DEFAULT_SLOWDOWN, Math.round((DEFAULT_SLOWDOWN * benchmarkIndex * 100) / CALIBRATED_INDEX) / 100);
  console.log(`lighthouse: host benchmark index ${indices.join(', ')} -> CPU slowdown ${slowdown}x`);
});
after(async () => {
  await chrome?.kill();
  await server?.close();
});

let benchmarkIndex;
let slowdown;

/** One Lighthouse run (mobile profile, the CPU slowed by `cpu`): its report. */
async function run(url, cpu) {
  const flags = { port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: CATEGORIES, throttling: { cpuSlowdownMultiplier: cpu } };
  const { lhr } = await lighthouse(url, flags);
  if (lhr.runtimeError) throw new Error(`lighthouse on ${url}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
  assert.equal(lhr.configSettings.throttling.cpuSlowdownMultiplier, cpu, 'the slowdown asked for is the one used');
  assert.equal(lhr.configSettings.throttling.rttMs, 150, 'the rest of the mobile profile is kept (slow 4G)');
  return lhr;
}

/** One Lighthouse run: the four scores (0-100) and the metrics that explain performance. */
async function audit(url) {
  const lhr = await run(url, slowdown);
  const score = Object.fromEntries(CATEGORIES.map((c) => [c, Math.round(lhr.categories[c].score * 100)]));
  const ms = (id) => Math.round(lhr.audits[id].numericValue);
  const failing = Object.values(lhr.audits)
    .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode === 'binary')
    .map((a) => a.id);
  return {
    url,
    benchmark_index: lhr.environment.benchmarkIndex,
    cpu_slowdown: slowdown,
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
    console.log(`lighthouse ${name} (CPU slowed ${slowdown}x for a host index of ${benchmarkIndex}): ${runs.map((r) => JSON.stringify(r.score)).join(' ')}; best run ${JSON.stringify(best.metrics)}`);
    for (const r of runs) {
      assert.equal(r.score.accessibility, 100, `accessibility: failing ${r.failing_audits.join(', ')}`);
      assert.equal(r.score['best-practices'], 100, `best practices: failing ${r.failing_audits.join(', ')}`);
      assert.ok(r.score.seo >= 95, `SEO ${r.score.seo}: failing ${r.failing_audits.join(', ')}`);
    }
    assert.ok(best.score.performance >= PERFORMANCE_MIN, `performance ${best.score.performance} (best of ${RUNS})`);
  });
}
