// Shared setup of the browser tests: the built storefront served on a free loopback port, Debian's
// Chromium driven by playwright-core, and per-page records of console errors and responses.

import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { serve } from '../../../frontend/tools/static-server.mjs';
import { CHROMIUM_FLAGS, NO_HTTPS_UPGRADE } from '../../../frontend/tools/prerender.mjs';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DIST = join(REPO, 'dist');
/** The benchmark build (`frontend/build.sh --bench`): the storefront plus `window.__ratecardBench`. */
export const DIST_BENCH = join(REPO, 'dist-bench');
/** The development build (`frontend/build.sh --dev`): honours `?reseller=`, so its unknown-storefront page can be reached. */
export const DIST_DEV = join(REPO, 'dist-dev');
export const ARTIFACTS = join(REPO, 'tests/browser/artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** The hostname the example reseller `acme` is reached by (examples/catalogs/cloudstack.json). */
export const ACME_HOST = 'cloud.acme.example';
/** Acme's local hostname: Chromium treats `*.localhost` as a secure context, as the https site is. */
export const ACME_LOCAL_HOST = 'acme.localhost';

/** Flags every headless Chromium of these tests runs with: the build's prerender uses the same. */
export { CHROMIUM_FLAGS };

/**
 * Serves `dist` (the production build unless a test asks for another) and launches Chromium.
 * The server isolates tenants as the CDN does (production mode) unless `dev` is set: on
 * 127.0.0.1 a test sees the provider's own storefront, on a reseller's hostname that reseller's.
 * The flags are those of shared/TOOLING.md; playwright gives each launch a fresh, empty profile
 * itself (it refuses a `--user-data-dir` argument).
 * `--host-resolver-rules` sends the reseller's hostname, and every `*.localhost` name (which
 * Chromium might otherwise try on ::1 first), to the local server, so hostname-based reseller
 * selection is tested for real.
 */
export async function start({ dist = DIST, dev = false } = {}) {
  const server = await serve(dist, 0, { dev });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      ...CHROMIUM_FLAGS,
      NO_HTTPS_UPGRADE,
      `--host-resolver-rules=MAP ${ACME_HOST} 127.0.0.1, MAP *.localhost 127.0.0.1`,
    ],
  });
  return {
    server,
    browser,
    url: (path = '') => `${server.url}${path}`,
    hostUrl: (host, path = '') => `http://${host}:${server.port}/${path}`,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/**
 * A new page with what it saw: console errors, page errors, failed requests and every response
 * (with its body, read lazily). `allow` lists substrings of console errors a test expects.
 * The storefront's service worker is blocked unless `serviceWorkers: 'allow'`: a page it
 * controls would answer requests that `page.route` never sees, and what a test counts of the
 * network would depend on whether the worker had taken over yet. offline.test.mjs allows it.
 */
export async function openPage(env, { viewport = { width: 1280, height: 900 }, serviceWorkers = 'block' } = {}) {
  const context = await env.browser.newContext({ viewport, acceptDownloads: true, serviceWorkers });
  const page = await context.newPage();
  const seen = { errors: [], responses: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') seen.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => seen.errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => seen.responses.push(r));
  return {
    page,
    seen,
    /** Fails the test on any console or page error not in `allow`. */
    assertNoErrors(allow = []) {
      const left = seen.errors.filter((e) => !allow.some((a) => e.includes(a)));
      if (left.length) throw new Error(`browser errors:\n${left.join('\n')}`);
    },
    close: () => context.close(),
  };
}

/** Saves a full-page screenshot as artifacts/<name>.png and returns its path. */
export async function screenshot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * An amount as shown (`£1,927.20`, `-€5.00`, `CHF 12.00`, `¥1,235`) in minor units as a BigInt,
 * with its scale: money is compared exactly, never through a float.
 */
export function minor(text) {
  const m = /(-?)[^\d-]*([\d,]+)(?:\.(\d+))?/.exec(text.trim());
  if (!m) throw new Error(`not an amount: ${text}`);
  const digits = m[2].replaceAll(',', '') + (m[3] ?? '');
  return { value: BigInt(m[1] + digits), scale: (m[3] ?? '').length };
}

/** A plain decimal string (`1927.2`, `-5`) at `scale` decimals, as a BigInt of minor units. */
export function decimalMinor(text, scale) {
  const [int, frac = ''] = text.trim().split('.');
  const neg = int.startsWith('-');
  const f = (frac + '0'.repeat(scale)).slice(0, scale);
  if (frac.length > scale && /[1-9]/.test(frac.slice(scale))) throw new Error(`${text} has more than ${scale} decimals`);
  const v = BigInt(int.replace('-', '') + f);
  return neg ? -v : v;
}

/** Money fields of a catalog (the keys `pricing::reseller::wholesale_prices` reads). */
export const MONEY_KEYS = new Set(['unit_price', 'block_price', 'flat_fee', 'minimum', 'one_time', 'monthly']);

/** Every money value under a money key anywhere in `json`, as normalised decimal strings. */
export function moneyValues(json, out = new Set()) {
  if (Array.isArray(json)) json.forEach((v) => moneyValues(v, out));
  else if (json && typeof json === 'object') {
    for (const [k, v] of Object.entries(json)) {
      if (MONEY_KEYS.has(k) && (typeof v === 'string' || typeof v === 'number')) out.add(normaliseDecimal(String(v)));
      else moneyValues(v, out);
    }
  }
  return out;
}

/** `2.2000` -> `2.2`, `12.00` -> `12`: decimal text compared by value, without floats. */
export function normaliseDecimal(d) {
  let s = d.trim();
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s.replace(/^(-?)0+(\d)/, '$1$2');
}

/** Runs the frontend's native test helper (built by run.sh) and returns its stdout. */
export function e2eHelper(args) {
  const bin = join(REPO, 'target/debug/storefront-e2e');
  return execFileSync(bin, args, { encoding: 'utf8' });
}

/** The wholesale catalog the storefronts are published from. */
export function wholesaleCatalog() {
  return JSON.parse(readFileSync(join(REPO, 'examples/catalogs/cloudstack.json'), 'utf8'));
}

/**
 * Rates a usage file and returns `{ tool, totals: { account: "123.45" } }`. The rater's own CLI
 * (`ratecard rate`, built by run.sh; `RATECARD_BIN` overrides the path) is the reference; when it
 * is not built (run.sh sets `STOREFRONT_RATER=helper`), the frontend's helper rates with the same pricing engine and `tool` says so.
 */
export function rateUsage({ usage, catalog, accounts, period }) {
  const ratecard = process.env.RATECARD_BIN ?? join(REPO, 'target/debug/ratecard');
  if (process.env.STOREFRONT_RATER !== 'helper' && existsSync(ratecard)) {
    const store = mkdtempSync(join(tmpdir(), 'ratecard-store-'));
    const out = execFileSync(
      ratecard,
      ['rate', usage, '--catalog', catalog, '--accounts', accounts, '--period', period,
        '--store', `embedded:${join(store, 'store.redb')}`, '--output', 'json'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const totals = {};
    const nets = {};
    for (const inv of JSON.parse(out).invoices) {
      totals[inv.account] = inv.total;
      nets[inv.account] = inv.net;
    }
    return { tool: 'ratecard', totals, nets };
  }
  const out = JSON.parse(e2eHelper(['invoice', '--catalog', catalog, '--accounts', accounts, '--usage', usage, '--period', period]));
  const totals = {};
  const nets = {};
  for (const [account, v] of Object.entries(out)) {
    totals[account] = v.total;
    nets[account] = v.net;
  }
  return { tool: 'storefront-e2e (ratecard not built)', totals, nets };
}
