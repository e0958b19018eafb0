// Lighthouse 12.2.3 runs (mobile profile) of a built storefront, direct and Acme's, one JSON line per run: for BENCHMARKS.md's before/after figures.
//
// Usage (from tests/browser, after npm ci):
//   node lighthouse-runs.mjs <static-server.mjs> <dist> <label> [runs]
// e.g. this checkout's server and build:
//   node lighthouse-runs.mjs ../../frontend/tools/static-server.mjs ../../dist after 3
// An older checkout's server and build give the "before" (its server may send no compression).
// The test command's check is lighthouse.test.mjs; this script only measures.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
import { CHROMIUM_FLAGS } from './lib/harness.mjs';
const [serverMod, dist, label, runs = '3'] = process.argv.slice(2);
if (!serverMod || !dist || !label) {
  console.error('usage: node lighthouse-runs.mjs <static-server.mjs> <dist> <label> [runs]');
  process.exit(2);
}
const { serve } = await import(pathToFileURL(resolve(serverMod)).href);
const server = await serve(dist, 0);
const chrome = await chromeLauncher.launch({ chromePath: '/usr/bin/chromium', chromeFlags: ['--headless=new', ...CHROMIUM_FLAGS] });
for (const host of ['127.0.0.1', 'acme.localhost']) for (let i = 0; i < Number(runs); i++) {
  const { lhr } = await lighthouse(`http://${host}:${server.port}/`, { port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: ['performance','accessibility','best-practices','seo'] });
  const s = Object.fromEntries(Object.entries(lhr.categories).map(([k, v]) => [k, Math.round(v.score * 100)]));
  const m = (id) => Math.round(lhr.audits[id].numericValue);
  console.log(JSON.stringify({ label, host, ...s, fcp: m('first-contentful-paint'), lcp: m('largest-contentful-paint'), tti: m('interactive'), tbt: m('total-blocking-time'), si: m('speed-index'), bytes: m('total-byte-weight') }));
}
await chrome.kill(); await server.close();
