// The storefront's service worker: after one visit the app, its invoice preview and the visitor's published price list and brand work with the network off.
//
// `frontend/tools/finish-dist.mjs` writes it into dist/ with the build's id and file list in
// place of the two placeholders below, so every build is a new service worker (the browser
// compares sw.js byte for byte on each visit) and its precache always matches its index.html.
//
// Two caches:
// - `ratecard-app-<build>`: index.html, `/` (this hostname's prerendered storefront page, see
//   finish-dist's `pagesOf`) and every script, wasm module and stylesheet of this build, the
//   preview worker included (it is fetched only when an export is dropped, so it is precached
//   rather than kept as seen). Served cache first: a build's files never change under
//   their build. Caches of older builds are deleted when this one activates.
// - `ratecard-data`: what depends on the hostname (the reseller index, the published price list,
//   the brand's files), kept as the page fetched them. The tenant router gives each hostname its
//   own, and a service worker belongs to one origin, so a cache never mixes two storefronts.
//   Served network first: a visitor whose network answers prices with the current price list;
//   the copy is used only when the network fails or hangs (NETWORK_WAIT_MS), and the page is
//   told so. Only JSON is kept for a `.json` path (the CDN answers index.html for a missing
//   file), and a file found gone is dropped from the copy too (a withdrawn version).
//
// Messages to the page (handled by the script in index.html):
//   { type: 'offline', version }          served a kept price list: the network is unreachable
//   { type: 'catalog-updated', version, previous }
//                                         the price list changed since the visitor's last visit
//                                         (not for the open page's own check, which says so itself)
// From the page: { type: 'keep', urls } (what it fetched before this worker controlled it).

const BUILD = '__RATECARD_BUILD__';
/**
 * [{ url, integrity, hashed }]: this build's files, each with its SHA-256, and whether its name
 * carries its content's hash (decided by finish-dist with the local server's `HASHED` rule).
 */
const PRECACHE = ['__RATECARD_PRECACHE__'];
const APP_CACHE = `ratecard-app-${BUILD}`;
const DATA_CACHE = 'ratecard-data';

/**
 * How long a page load or a price list may wait for the network before the kept copy is used:
 * on a train the connection often hangs rather than fails, and a visitor should not wait for
 * the browser's own timeout (a minute or more) to see a storefront it has.
 */
const NETWORK_WAIT_MS = 4000;

const scope = () => new URL(self.registration.scope);

/** `fetch`, failing after NETWORK_WAIT_MS when a kept copy can stand in. */
function fetchOrTimeout(request) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('the network is too slow')), NETWORK_WAIT_MS);
    fetch(request).then(
      (r) => {
        clearTimeout(timer);
        ok(r);
      },
      (e) => {
        clearTimeout(timer);
        fail(e);
      },
    );
  });
}
const inScope = (url) => url.origin === scope().origin && url.pathname.startsWith(scope().pathname);
const relative = (url) => url.pathname.slice(scope().pathname.length);

/** Hostname-dependent files: network first, kept for offline use. */
function isData(path) {
  return path === 'resellers.json' || path.startsWith('catalogs/') || path.startsWith('brands/');
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(APP_CACHE);
      // Each file is checked against its hash (integrity), so a copy of another build fails the
      // install rather than being kept. Hashed names may come from the HTTP cache (the page has
      // just downloaded them: no second download); the others are revalidated.
      await cache.addAll(
        PRECACHE.map(
          ({ url, integrity, hashed }) =>
            new Request(new URL(url, scope()), { integrity, cache: hashed ? 'default' : 'no-cache' }),
        ),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith('ratecard-app-') && key !== APP_CACHE) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (!inScope(url)) return;
  if (request.mode === 'navigate') {
    event.respondWith(navigate(request));
  } else if (isData(relative(url))) {
    event.respondWith(networkFirst(event, url));
  } else {
    event.respondWith(cacheFirst(request));
  }
});

/**
 * A page load: the network's page (a new build shows at once); offline, this build's copy of the
 * storefront's page for `/` (its first screen prerendered, as online), index.html for any other.
 */
async function navigate(request) {
  const root = relative(new URL(request.url)) === '';
  const kept =
    (root && (await caches.match(scope().href, { cacheName: APP_CACHE, ignoreSearch: true }))) ||
    (await caches.match(new URL('index.html', scope()), { cacheName: APP_CACHE }));
  try {
    return await (kept ? fetchOrTimeout(request) : fetch(request));
  } catch (offline) {
    if (kept) return kept;
    throw offline;
  }
}

async function cacheFirst(request) {
  const kept = await caches.match(request, { cacheName: APP_CACHE, ignoreSearch: true });
  return kept ?? fetch(request);
}

/**
 * The network's copy, kept for later; the kept copy when the network fails. A price list whose
 * version differs from the kept one is announced to the page (its prices are already the new
 * ones); one served from the cache is announced as offline.
 */
async function networkFirst(event, url) {
  const key = new URL(url.pathname, url.origin).href;
  const cache = await caches.open(DATA_CACHE);
  const kept = await cache.match(key);
  let response;
  try {
    response = await (kept ? fetchOrTimeout(event.request) : fetch(event.request));
  } catch (offline) {
    if (!kept) throw offline;
    if (isCurrentCatalog(url)) tell(event, { type: 'offline', version: await versionOf(kept) });
    return kept;
  }
  const json = (response.headers.get('content-type') ?? '').includes('json');
  if (response.ok && (json || !relative(url).endsWith('.json'))) {
    await cache.put(key, response.clone());
    // A check of an open page (index.html's script) is told by the page itself: it has not
    // loaded the new list and asks the visitor to reload.
    const check = event.request.headers.get('x-ratecard-check') === '1';
    if (kept && !check && isCurrentCatalog(url)) {
      const [was, now] = [await versionOf(kept), await versionOf(response.clone())];
      if (was && now && was !== now) tell(event, { type: 'catalog-updated', version: now, previous: was });
    }
  } else if (response.status === 404 || (response.ok && !json)) {
    // Gone (a withdrawn price list version; the CDN answers index.html for a missing file):
    // what was kept must not stand in for it offline either.
    await cache.delete(key);
  }
  return response;
}

/** The storefront's current price list (`catalogs/<id>.json`), not a pinned version of it. */
function isCurrentCatalog(url) {
  return /^catalogs\/[^/]+\.json$/.test(relative(url));
}

/** A published price list's `version`, or null for a body that is not one. */
async function versionOf(response) {
  try {
    const v = (await response.clone().json()).version;
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}

async function tell(event, message) {
  const client = await self.clients.get(event.clientId || event.resultingClientId);
  client?.postMessage(message);
}

/**
 * The page lists what it fetched before this worker controlled it (on the first visit the price
 * list is fetched before the worker is installed); the hostname-dependent ones are kept.
 */
self.addEventListener('message', (event) => {
  if (event.data?.type !== 'keep' || !Array.isArray(event.data.urls)) return;
  event.waitUntil(
    (async () => {
      const cache = await caches.open(DATA_CACHE);
      const kept = [];
      for (const raw of event.data.urls) {
        let url;
        try {
          url = new URL(raw);
        } catch {
          continue;
        }
        if (!inScope(url) || !isData(relative(url))) continue;
        const key = new URL(url.pathname, url.origin).href;
        if (!(await cache.match(key))) {
          try {
            const response = await fetch(key);
            if (response.ok) await cache.put(key, response);
            else continue;
          } catch {
            continue;
          }
        }
        kept.push(relative(url));
      }
      event.source?.postMessage({ type: 'kept', paths: kept });
    })(),
  );
});
