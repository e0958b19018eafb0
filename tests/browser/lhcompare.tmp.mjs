import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
const [serverMod, dist, label] = process.argv.slice(2);
const { serve } = await import(serverMod);
const server = await serve(dist, 0);
const chrome = await chromeLauncher.launch({ chromePath: '/usr/bin/chromium', chromeFlags: ['--headless=new','--no-sandbox','--disable-gpu','--disable-quic','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync'] });
for (const host of ['127.0.0.1', 'acme.localhost']) for (let i = 0; i < 3; i++) {
  const { lhr } = await lighthouse(`http://${host}:${server.port}/`, { port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: ['performance','accessibility','best-practices','seo'] });
  const s = Object.fromEntries(Object.entries(lhr.categories).map(([k, v]) => [k, Math.round(v.score * 100)]));
  const m = (id) => Math.round(lhr.audits[id].numericValue);
  console.log(JSON.stringify({ label, host, ...s, fcp: m('first-contentful-paint'), lcp: m('largest-contentful-paint'), tti: m('interactive'), tbt: m('total-blocking-time'), si: m('speed-index'), bytes: m('total-byte-weight') }));
}
await chrome.kill(); await server.close();
