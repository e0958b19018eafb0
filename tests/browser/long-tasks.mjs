// The storefront's long tasks after its first paint, in real Chromium with the CPU slowed 4x (as Lighthouse's mobile profile): for BENCHMARKS.md's blocking-time figures.
//
// Usage (from tests/browser, after npm ci):
//   node long-tasks.mjs <dist> [runs]
// e.g. `node long-tasks.mjs ../../dist 6`. Each run is a fresh context (no service worker, no
// cache) on `/` of the direct and Acme storefronts at phone size; it waits for the app's whole
// first screen, then reads the `longtask` entries that start at or after the first contentful
// paint. Prints each run and the medians of: blocking time (the sum of each task's time over
// 50 ms, as total blocking time counts it), the tasks' total time, and the longest task.
// Lighthouse (lighthouse-runs.mjs) simulates its throttling and varies more from run to run;
// this measures the same tasks directly. Measure only: the test command does not run it.

import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS } from './lib/harness.mjs';
import { serve } from '../../frontend/tools/static-server.mjs';

const [dist, runs = '5'] = process.argv.slice(2);
if (!dist) {
  console.error('usage: node long-tasks.mjs <dist> [runs]');
  process.exit(2);
}
const server = await serve(resolve(dist), 0);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
const results = [];
for (const host of ['127.0.0.1', 'acme.localhost']) {
  for (let i = 0; i < Number(runs); i++) {
    const context = await browser.newContext({ viewport: { width: 412, height: 823 }, serviceWorkers: 'block' });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    await page.addInitScript(() => {
      window.__tasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__tasks.push([Math.round(e.startTime), Math.round(e.duration)]);
      }).observe({ type: 'longtask', buffered: true });
    });
    await page.goto(`http://${host}:${server.port}/`);
    // The whole first screen (its last part is the SLA comparison), then time for late tasks.
    await page.waitForSelector('.shop:not([data-prerendered]) .sla-card');
    await page.waitForTimeout(1500);
    const { fcp, tasks } = await page.evaluate(() => ({
      fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? 0,
      tasks: window.__tasks,
    }));
    const after = tasks.filter(([start]) => start >= fcp);
    const blocking = after.reduce((sum, [, d]) => sum + Math.max(0, d - 50), 0);
    const total = after.reduce((sum, [, d]) => sum + d, 0);
    const longest = Math.max(0, ...after.map(([, d]) => d));
    results.push({ blocking, total, longest });
    console.log(JSON.stringify({ host, fcp: Math.round(fcp), blocking, total, longest, tasks: after }));
    await context.close();
  }
}
const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
console.log(
  `median of ${results.length} runs: blocking ${median(results.map((r) => r.blocking))} ms, ` +
    `total ${median(results.map((r) => r.total))} ms, longest task ${median(results.map((r) => r.longest))} ms`,
);
await browser.close();
await server.close();
