// Storefront tenant router: which files a hostname may be served (CloudFront Function, viewer-request).
//
// This one file is the CloudFront Function's code (runtime cloudfront-js-2.0; infra/template.yaml
// inlines it, infra/check_cdn_function.py keeps the two identical) and the rule set of the local
// static server (frontend/tools/static-server.mjs loads it), so the CDN and the server that the
// browser tests drive cannot drift. Plain ES5 on purpose: the edge runtime is ES5.1 with a few
// later features. No template literals: the template inlines this text with Fn::Sub, which would
// read a dollar sign before a brace as one of its own variables.
//
// Rules, for the tenant a Host header maps to (a reseller id, or "direct" for any host not
// mapped: the provider's own):
// - a path that is not plain (percent-escapes, backslashes, empty, `.` or `..` segments, any
//   character outside [A-Za-z0-9._~-/]) is refused: no origin decodes it differently then;
// - /resellers.json is answered here with an index holding only this tenant, so a reseller's
//   visitors never learn the other resellers' hostnames;
// - under /catalogs/ only /catalogs/<tenant>.json (the current price list) and
//   /catalogs/<tenant>/<version>.json (its published versions, which share links pin); under
//   /brands/ only /brands/<reseller>/... (nothing for the provider's hosts); in any letter case,
//   anything else there is refused;
// - the page, /, is rewritten to /storefronts/<tenant>.html: the tenant's storefront
//   prerendered at build time (frontend/tools/prerender.mjs), so its visitors see its brand and
//   prices before the app has loaded. A viewer-request rewrite happens before the cache lookup,
//   so the cache key is the tenant's own file. /index.html stays the bare shell every tenant
//   shares: the service worker precaches it, checked against its hash, as the offline page;
// - under /storefronts/ only /storefronts/<tenant>.html, in any letter case;
// - every other path passes unchanged. Nothing else is rewritten, so a cache keyed by the path
//   alone never hands one tenant's file to another.

// Hostname -> reseller id. Empty here; the template replaces this line at deploy time with the
// StorefrontHostnames parameter (the `hostnames` of dist/resellers.json).
var HOSTNAMES = {};

var DIRECT = 'direct';
// A path as the app itself requests them: segments of unreserved characters, none starting
// with a dot (so no `.`, `..` or hidden file), no empty segment except a final slash.
var PLAIN_PATH = /^\/([A-Za-z0-9_~-][A-Za-z0-9._~-]*(\/|$))*$/;
// A published version's file name under /catalogs/<tenant>/: one segment, as versions are
// checked when published (frontend/src/model/publish.rs, `is_version_name`).
var VERSION_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]*\.json$/;

// The tenant of a Host header value: lower-cased, port and trailing dot removed.
function tenantOf(hostnames, hostHeader) {
  var host = String(hostHeader || '').toLowerCase();
  var end = host.charAt(0) === '[' ? host.indexOf(']') + 1 : host.indexOf(':');
  if (end > 0) host = host.substring(0, end);
  host = host.replace(/\.+$/, '');
  return Object.prototype.hasOwnProperty.call(hostnames, host) ? hostnames[host] : DIRECT;
}

// The reseller index a tenant's visitors may see: its own hostnames and its own storefront.
function indexOf(hostnames, tenant) {
  var own = {};
  Object.keys(hostnames).sort().forEach(function (h) {
    if (hostnames[h] === tenant) own[h] = tenant;
  });
  return JSON.stringify({ schema_version: 1, hostnames: own, storefronts: [tenant] });
}

// What to do with a request: { action: 'pass' }, { action: 'rewrite', path },
// { action: 'index', body } or { action: 'deny' }.
// `path` is the request path as sent, without the query string.
function route(hostnames, hostHeader, path) {
  var tenant = tenantOf(hostnames, hostHeader);
  if (!PLAIN_PATH.test(path)) {
    return { action: 'deny', tenant: tenant };
  }
  var lower = path.toLowerCase();
  if (lower === '/resellers.json') {
    return { action: 'index', tenant: tenant, body: indexOf(hostnames, tenant) };
  }
  if (path === '/') {
    return { action: 'rewrite', tenant: tenant, path: '/storefronts/' + tenant + '.html' };
  }
  if (lower === '/storefronts' || lower.indexOf('/storefronts/') === 0) {
    return { action: path === '/storefronts/' + tenant + '.html' ? 'pass' : 'deny', tenant: tenant };
  }
  if (lower === '/catalogs' || lower.indexOf('/catalogs/') === 0) {
    var own = '/catalogs/' + tenant;
    var version = path.indexOf(own + '/') === 0 ? path.substring(own.length + 1) : '';
    var ok = path === own + '.json' || VERSION_FILE.test(version);
    return { action: ok ? 'pass' : 'deny', tenant: tenant };
  }
  if (lower === '/brands' || lower.indexOf('/brands/') === 0) {
    var brand = '/brands/' + tenant + '/';
    var mine = tenant !== DIRECT && path.indexOf(brand) === 0 && path.length > brand.length;
    return { action: mine ? 'pass' : 'deny', tenant: tenant };
  }
  return { action: 'pass', tenant: tenant };
}

// CloudFront's entry point: the request goes on to the bucket, or an answer is made here.
function handler(event) {
  var request = event.request;
  var host = request.headers.host ? request.headers.host.value : '';
  var decision = route(HOSTNAMES, host, request.uri);
  if (decision.action === 'pass') return request;
  if (decision.action === 'rewrite') {
    request.uri = decision.path;
    return request;
  }
  if (decision.action === 'index') {
    return {
      statusCode: 200,
      statusDescription: 'OK',
      headers: {
        'content-type': { value: 'application/json; charset=utf-8' },
        'cache-control': { value: 'no-cache' },
      },
      body: { encoding: 'text', data: decision.body },
    };
  }
  return {
    statusCode: 404,
    statusDescription: 'Not Found',
    headers: { 'content-type': { value: 'text/plain; charset=utf-8' } },
    body: { encoding: 'text', data: 'not found' },
  };
}
