// Prerenders each storefront of a build into <dist>/storefronts/<id>.html: the app itself renders its first screen in headless Chromium at build time, so a visitor sees the brand, the builder and its prices before the wasm has loaded.
//
// Usage: node frontend/tools/prerender.mjs <dist>            (frontend/build.sh, release builds)
//        node frontend/tools/prerender.mjs --plain <dist>    (bench and dev builds: copies of
//                                                             index.html, nothing rendered)
//
// Why the app and not a second renderer: the page a visitor first sees is then the same Leptos
// components over the same view models and engine as the live app, to the character, so the
// swap when the app starts changes nothing on screen (no layout shift, no other figure). The
// app renders client side only (no server rendering to hydrate), so instead of hydrating the
// copy it replaces it: every top-level element of the copy is marked `data-prerendered`, and
// the app removes them in the same task that inserts its own view (frontend/src/app/mod.rs).
// Until then the copy is `inert` (nothing in it can be clicked or typed into and then lost)
// and carries no `data-testid` (a test must find the live app, never the copy).
//
// The tenant router (infra/cdn/tenant-router.js) answers `/` on each hostname with that
// hostname's page, so the CDN and the local server need no other rule. Every storefront of
// resellers.json gets a page; without Chromium (or playwright-core) the pages are plain copies
// of index.html and the build says so: the storefront works, only without content before the
// wasm. Prices on a prerendered page are those of the build's date (the app prices at the
// visitor's date when it starts): publishing a price list rebuilds the pages.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve } from './static-server.mjs';

const CHROMIUM = '/usr/bin/chromium';
/**
 * Flags every headless Chromium of the build and of the browser tests runs with
 * (shared/TOOLING.md): no sandbox (root), and nothing that reaches for the network on its own
 * (this machine's network is closed). tests/browser/lib/harness.mjs uses this list.
 */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Plain http on a reseller's hostname must not be upgraded to https (no TLS locally). */
export const NO_HTTPS_UPGRADE = '--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable';
/** The provider's own storefront: any hostname not mapped to a reseller. */
const DIRECT = 'direct';
/** How long one storefront may take to load and render (a loaded 2-core machine). */
const RENDER_TIMEOUT_MS = 60_000;

/** `text` safe inside an HTML element. */
function escapeHtml(text) {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * index.html with `content` as the first thing in its body and `title` as its title. Throws if
 * the page lacks either place: a build that changed its shell must not ship a half-made page.
 */
export function pageWith(indexHtml, { title, content }) {
  const place = /<title>[^<]*<\/title>/;
  if (!place.test(indexHtml)) throw new Error('index.html has no <title> to replace');
  const titled = indexHtml.replace(place, () => `<title>${escapeHtml(title)}</title>`);
  const body = /<body[^>]*>/.exec(titled);
  if (!body) throw new Error('index.html has no <body>');
  const at = body.index + body[0].length;
  return `${titled.slice(0, at)}\n${content}\n${titled.slice(at)}`;
}

/**
 * A prerendered page's loader: the app's wasm is fetched once the page's own content has been
 * painted, not preloaded beside it. The copy is what the visitor reads first, so on a slow
 * network its stylesheet and logo should not share the link with 270 KB of wasm; the app starts
 * one frame later than it would (requestAnimationFrame, then a task: the frame has been painted).
 * Throws unless the loader is exactly as Trunk writes it: a Trunk that changed it must fail the
 * build, not ship a page that preloads after all.
 */
export function loadAfterPaint(html) {
  const preload = html.match(/<link rel="preload" href="[^"]*_bg\.wasm"[^>]*as="fetch" type="application\/wasm">/g) ?? [];
  if (preload.length !== 1) throw new Error(`index.html has ${preload.length} wasm preload links, not 1`);
  const start = 'const wasm = await init(';
  if (html.split(start).length !== 2) throw new Error(`index.html's loader does not call \`${start}\` once`);
  return html
    .replace(preload[0], '')
    .replace(start, `await new Promise((painted) => requestAnimationFrame(() => setTimeout(painted)));\n${start}`);
}

/** The storefronts of a build and, for each reseller, a hostname that reaches it. */
export function storefrontsOf(index) {
  const hostnames = index?.hostnames ?? {};
  return (index?.storefronts ?? []).map((id) => ({
    id,
    host: id === DIRECT ? '127.0.0.1' : Object.keys(hostnames).sort().find((h) => hostnames[h] === id) ?? null,
  }));
}

/**
 * Runs in the page: the app's top-level elements, copied with the form state the app set as
 * properties (cloning copies attributes only), marked and stripped as the header says.
 */
function snapshot() {
  const skip = new Set(['SCRIPT', 'NOSCRIPT', 'TEMPLATE', 'LINK', 'STYLE']);
  const out = [];
  for (const node of document.body.children) {
    if (skip.has(node.tagName) || node.id === 'sw-notice' || node.hasAttribute('data-prerendered')) continue;
    const copy = node.cloneNode(true);
    const live = [node, ...node.querySelectorAll('*')];
    const dead = [copy, ...copy.querySelectorAll('*')];
    live.forEach((el, i) => {
      const c = dead[i];
      if (el instanceof HTMLInputElement) {
        if (el.type === 'checkbox' || el.type === 'radio') c.toggleAttribute('checked', el.checked);
        else c.setAttribute('value', el.value);
      } else if (el instanceof HTMLSelectElement) {
        [...el.options].forEach((o, j) => c.options[j].toggleAttribute('selected', o.selected));
      } else if (el instanceof HTMLTextAreaElement) {
        c.textContent = el.value;
      }
      c.removeAttribute('data-testid');
    });
    copy.setAttribute('data-prerendered', '');
    copy.setAttribute('inert', '');
    out.push(copy.outerHTML);
  }
  return { title: document.title, content: out.join('\n'), version: document.documentElement.dataset.catalogVersion };
}

/** Renders every storefront with the app in Chromium; returns [{ id, title, content, version }]. */
async function render(dist, storefronts, chromium) {
  const server = await serve(dist, 0, { dev: true });
  const hosts = storefronts.filter((s) => s.host && s.host !== '127.0.0.1').map((s) => `MAP ${s.host} 127.0.0.1`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, NO_HTTPS_UPGRADE, ...(hosts.length ? [`--host-resolver-rules=${hosts.join(', ')}`] : [])],
  });
  try {
    const pages = [];
    for (const s of storefronts) {
      if (!s.host) {
        console.error(`prerender: storefront ${s.id} has no hostname; its page is index.html as built`);
        pages.push(null);
        continue;
      }
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: 'block' });
      const page = await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      // The development server hands every file to every host, and the release app picks its
      // storefront by hostname alone, so each reseller's page renders as its visitors see it.
      // `/index.html` is the unrendered shell (the router is not in the way in this mode).
      await page.goto(`http://${s.host}:${server.port}/index.html`);
      try {
        await page.waitForFunction(
          () => document.documentElement.dataset.catalogVersion && document.querySelector('.shop[data-built=whole]'),
          null,
          { timeout: RENDER_TIMEOUT_MS },
        );
      } catch (e) {
        throw new Error(`storefront ${s.id} (${s.host}) did not render: ${errors.join('; ') || e.message}`);
      }
      if (errors.length) throw new Error(`storefront ${s.id} (${s.host}) rendered with errors: ${errors.join('; ')}`);
      pages.push({ id: s.id, ...(await page.evaluate(snapshot)) });
      await context.close();
    }
    return pages;
  } finally {
    await browser.close();
    await server.close();
  }
}

/** Writes <dist>/storefronts/<id>.html for every storefront of <dist>/resellers.json. */
export async function prerender(dist, { plain = false } = {}) {
  const root = resolve(dist);
  const indexHtml = readFileSync(join(root, 'index.html'), 'utf8');
  const storefronts = storefrontsOf(JSON.parse(readFileSync(join(root, 'resellers.json'), 'utf8')));
  if (!storefronts.length) throw new Error(`${join(root, 'resellers.json')} lists no storefront`);
  let pages = storefronts.map(() => null);
  if (!plain) {
    let chromium = null;
    try {
      if (existsSync(CHROMIUM)) ({ chromium } = await import('playwright-core'));
    } catch {
      chromium = null;
    }
    if (chromium) pages = await render(root, storefronts, chromium);
    else console.error(`prerender: no ${CHROMIUM} or playwright-core (frontend/install-tools.sh installs both); the storefront pages are index.html as built`);
  }
  mkdirSync(join(root, 'storefronts'), { recursive: true });
  const written = [];
  storefronts.forEach((s, i) => {
    const page = pages[i];
    const html = page ? loadAfterPaint(pageWith(indexHtml, page)) : indexHtml;
    writeFileSync(join(root, 'storefronts', `${s.id}.html`), html);
    written.push(page ? `${s.id} (price list ${page.version}, ${Buffer.byteLength(html)} B)` : `${s.id} (not rendered)`);
  });
  console.log(`prerender: ${written.join(', ')}`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const plain = args[0] === '--plain';
  const dist = plain ? args[1] : args[0];
  if (!dist) {
    console.error('usage: node frontend/tools/prerender.mjs [--plain] <dist>');
    process.exit(2);
  }
  try {
    await prerender(dist, { plain });
  } catch (e) {
    console.error(`prerender: ${e.message}`);
    process.exit(1);
  }
}
