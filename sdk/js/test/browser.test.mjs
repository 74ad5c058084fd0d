// The SDK in a real browser: headless Chromium loads two same-origin iframes
// ("tabs") that import latch.js from a local HTTP server running the fake Latch
// contract with real cookies (HttpOnly refresh and access cookies, a readable
// CSRF cookie). Real Web Locks, BroadcastChannel and cookie jar.
// Skipped when no Chromium is installed (set LATCH_CHROMIUM to point at one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PASSWORD, createWorld } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const chromium = findChromium();

function findChromium() {
  if (process.env.LATCH_CHROMIUM) return process.env.LATCH_CHROMIUM;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
      const file = path.join(dir, name);
      if (fs.existsSync(file)) return file;
    }
  }
  return null;
}

// Runs in the top page: each iframe is a tab with its own copy of the SDK.
const TOP_PAGE = `<!doctype html><meta charset=utf-8><title>latch sdk</title><body><script type=module>
const PASSWORD = ${JSON.stringify(PASSWORD)};
const ctl = (what) => fetch('/control/' + what, { method: 'POST' }).then((r) => r.json());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tab = () => new Promise((resolve) => {
  const f = document.createElement('iframe');
  f.src = '/tab.html';
  f.onload = () => resolve(f.contentWindow);
  document.body.append(f);
});
async function scenario(mode, tabs) {
  await ctl('reset');
  const [A, B] = tabs.map((w) => w.latch.createClient({ mode, clientId: 'spa-' + mode, channelName: 'latch-' + mode, lockName: 'latch-' + mode }));
  const events = { a: [], b: [] };
  for (const t of ['login', 'refresh', 'logout', 'sessionExpired']) {
    A.on(t, () => events.a.push(t));
    B.on(t, () => events.b.push(t));
  }
  const bLogin = new Promise((r) => B.on('login', r));
  await A.login('ada@example.com', PASSWORD);
  await bLogin;
  const cookiesSeen = tabs.map((w) => w.document.cookie);
  await ctl('expire');
  const burst = await Promise.all(Array.from({ length: 5 }, () => [A.fetch('/api/data'), B.fetch('/api/data', { method: 'POST', body: 'x' })]).flat());
  const afterBurst = await ctl('stats');
  await ctl('revoke');
  const failed = await Promise.all([A.fetch('/api/data'), B.fetch('/api/data'), B.fetch('/api/data')]);
  await sleep(100);
  const afterFailure = await ctl('stats');
  const bLogin2 = new Promise((r) => B.on('login', r));
  await A.login('ada@example.com', PASSWORD);
  await bLogin2;
  const bLogout = new Promise((r) => B.on('logout', r));
  await A.logout();
  await bLogout;
  const reloaded = tabs[1].latch.createClient({ mode, clientId: 'spa-' + mode, channelName: null });
  const restored = await reloaded.restore();
  const storage = tabs.map((w) => w.localStorage.length + w.sessionStorage.length);
  for (const c of [A, B, reloaded]) c.close();
  return {
    cookiesSeen, storage, events,
    burst: burst.map((r) => r.status), afterBurst,
    failed: failed.map((r) => r.status), afterFailure,
    signedOut: [A.session.authenticated, B.session.authenticated], restored,
  };
}
const result = {};
try {
  const tabs = [await tab(), await tab()];
  result.locks = typeof tabs[0].navigator.locks?.request;
  for (const mode of ['memory', 'cookie']) result[mode] = await scenario(mode, tabs);
} catch (err) {
  result.error = String(err && err.stack || err);
}
await fetch('/result', { method: 'POST', body: JSON.stringify(result) });
</script>`;

const TAB_PAGE = `<!doctype html><meta charset=utf-8><script type=module>
import * as latch from '/latch.js';
window.latch = latch;
</script>`;

function serve(onResult) {
  let world = createWorld({ cookiePrefix: '', refreshDelay: 20 });
  const source = fs.readFileSync(path.join(here, '..', 'latch.js'));
  return http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString();
    const reply = (status, type, text, extra = {}) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...extra });
      res.end(text);
    };
    if (url.pathname === '/') return reply(200, 'text/html', TOP_PAGE);
    if (url.pathname === '/tab.html') return reply(200, 'text/html', TAB_PAGE);
    if (url.pathname === '/latch.js') return reply(200, 'text/javascript', source);
    if (url.pathname === '/result') {
      reply(204, 'text/plain', '');
      return onResult(JSON.parse(body));
    }
    if (url.pathname.startsWith('/control/')) {
      const what = url.pathname.slice('/control/'.length);
      if (what === 'reset') world = createWorld({ cookiePrefix: '', refreshDelay: 20 });
      if (what === 'expire') world.server.expireAccessTokens();
      if (what === 'revoke') world.server.revokeSessions();
      const stats = { refreshCalls: world.server.refreshCalls, apiCalls: world.server.calls('/api/data').length };
      return reply(200, 'application/json', JSON.stringify(stats));
    }
    world.server.log.push({ method: req.method, path: url.pathname, headers: req.headers });
    const cookies = new Map();
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const i = part.indexOf('=');
      if (i > 0) cookies.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const answer = await world.route({ method: req.method, url, headers, cookies, body });
    const setCookie = answer.setCookies.map((c) => {
      const p = c.name === 'latch_rt' ? '/v1/auth' : '/';
      if (c.clear) return `${c.name}=; Path=${p}; Max-Age=0`;
      return `${c.name}=${c.value}; Path=${c.path}; SameSite=Strict${c.httpOnly ? '; HttpOnly' : ''}`;
    });
    res.writeHead(answer.status, { ...answer.headers, ...(setCookie.length ? { 'Set-Cookie': setCookie } : {}) });
    res.end(answer.body ?? undefined);
  });
}

test('in headless Chromium: two tabs, real Web Locks, BroadcastChannel and cookies', { skip: !chromium && 'no Chromium found', timeout: 60_000 }, async () => {
  let resolveResult;
  const resultP = new Promise((r) => (resolveResult = r));
  const server = serve(resolveResult);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'latch-sdk-chromium-'));
  const browser = spawn(chromium, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/`,
  ], { stdio: 'ignore', detached: true });
  try {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('no result from the browser in 45s')), 45_000);
    });
    const result = await Promise.race([resultP, timeout]).finally(() => clearTimeout(timer));
    assert.equal(result.error, undefined, result.error);
    assert.equal(result.locks, 'function', 'Chromium has Web Locks');
    for (const mode of ['memory', 'cookie']) {
      const r = result[mode];
      assert.deepEqual(r.burst, Array(10).fill(200), `${mode}: the burst succeeds`);
      assert.equal(r.afterBurst.refreshCalls, 1, `${mode}: one refresh for two tabs`);
      assert.equal(r.afterBurst.apiCalls, 20, `${mode}: each request retried once`);
      assert.deepEqual(r.failed, [401, 401, 401], `${mode}: a failed refresh returns the 401s`);
      assert.equal(r.afterFailure.refreshCalls, 2, `${mode}: one refresh attempt for the failure`);
      assert.equal(r.afterFailure.apiCalls, 23, `${mode}: no retries after a failed refresh`);
      for (const tab of ['a', 'b']) {
        assert.deepEqual(r.events[tab], ['login', 'refresh', 'sessionExpired', 'login', 'logout'], `${mode}: events of tab ${tab}`);
      }
      assert.deepEqual(r.signedOut, [false, false]);
      assert.equal(r.restored, null, `${mode}: nothing to restore after logout`);
      for (const seen of r.cookiesSeen) assert.match(seen, /^latch_csrf=[^;]+$/, `${mode}: the page sees only the CSRF cookie`);
      assert.deepEqual(r.storage, [0, 0], `${mode}: Web Storage stays empty`);
    }
  } finally {
    const exited = new Promise((r) => browser.once('exit', r));
    try {
      process.kill(-browser.pid, 'SIGTERM'); // the process group this test started
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    server.close();
    server.closeAllConnections?.();
    fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
});
