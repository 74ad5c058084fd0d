// Several tabs of one origin: two clients sharing a cookie jar (one browser
// profile), a BroadcastChannel name and navigator.locks.
import { test, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../latch.js';
import { AUTH, PASSWORD, createLocks, createWorld, installBrowserGuards, installLocks, nextEvent, recordEvents, removeLocks, sleep } from './harness.mjs';

const browser = { current: null };
const violations = installBrowserGuards(browser);
let open = [];
let locks;
let channelSeq = 0;

beforeEach(() => {
  locks = createLocks();
  installLocks(locks);
});
afterEach(() => {
  for (const c of open) c.close();
  open = [];
});
after(() => {
  removeLocks();
  assert.deepEqual(violations, [], 'the SDK touched Web Storage or wrote a cookie');
});

/** Opens `count` tabs on one browser profile. */
function tabs(mode, count = 2, { refreshDelay } = {}) {
  const world = createWorld({ refreshDelay });
  browser.current = world;
  const channelName = `latch-test-${++channelSeq}`; // a fresh channel per test
  const list = Array.from({ length: count }, () => {
    const client = createClient({ baseUrl: AUTH, mode, clientId: `spa-${mode}`, fetch: world.fetch, channelName });
    open.push(client);
    return { client, events: recordEvents(client) };
  });
  return { world, server: world.server, tabs: list };
}

async function signIn(mode, count = 2, opts) {
  const t = tabs(mode, count, opts);
  const others = t.tabs.slice(1).map(({ client }) => nextEvent(client, 'login'));
  await t.tabs[0].client.login('ada@example.com', PASSWORD);
  const seen = await Promise.all(others);
  for (const e of seen) assert.equal(e.fromOtherTab, true);
  return t;
}

for (const mode of ['memory', 'cookie']) {
  test(`${mode} mode: a login in one tab signs in the others`, async () => {
    const { server, tabs: [a, b] } = await signIn(mode);
    assert.equal(b.client.session.sessionId, a.client.session.sessionId);
    assert.equal(b.client.session.expiresAt, a.client.session.expiresAt);
    assert.equal((await b.client.fetch(`${AUTH}/api/data`, { method: 'POST' })).status, 200);
    assert.equal(server.refreshCalls, 0);
  });

  test(`${mode} mode: two tabs with simultaneous 401s cause exactly one refresh`, async () => {
    const { server, tabs: [a, b] } = await signIn(mode);
    server.expireAccessTokens();
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () => a.client.fetch(`${AUTH}/api/data`)),
      ...Array.from({ length: 5 }, () => b.client.fetch(`${AUTH}/api/data`, { method: 'POST' })),
    ]);
    assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
    assert.equal(server.refreshCalls, 1);
    // Both tabs know about the refresh: one did it, the other heard of it.
    const refreshes = [a, b].map((t) => t.events.filter((e) => e.type === 'refresh'));
    assert.deepEqual(refreshes.map((r) => r.length), [1, 1]);
    assert.deepEqual(refreshes.map((r) => r[0].fromOtherTab).sort(), [false, true]);
    assert.equal(a.client.session.expiresAt, b.client.session.expiresAt);
  });
}

test('five tabs, each with 401s in flight: one refresh', async () => {
  const { server, tabs: list } = await signIn('memory', 5);
  server.expireAccessTokens();
  const results = await Promise.all(list.flatMap(({ client }) => [client.fetch(`${AUTH}/api/data`), client.fetch(`${AUTH}/api/data`)]));
  assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
  assert.equal(server.refreshCalls, 1);
});

test('a tab whose 401 comes after another tab refreshed just retries', async () => {
  const { server, tabs: [a, b] } = await signIn('memory');
  server.expireAccessTokens();
  const heard = nextEvent(b.client, 'refresh');
  assert.equal((await a.client.fetch(`${AUTH}/api/data`)).status, 200);
  await heard;
  assert.equal((await b.client.fetch(`${AUTH}/api/data`)).status, 200);
  assert.equal(server.refreshCalls, 1);
  assert.equal(server.calls('/api/data').length, 3, 'b used the new token at once');
});

test('a failed refresh: every tab emits sessionExpired once, no loop', async () => {
  const { server, tabs: [a, b] } = await signIn('cookie');
  server.revokeSessions();
  const results = await Promise.all([a.client.fetch(`${AUTH}/api/data`), b.client.fetch(`${AUTH}/api/data`), b.client.fetch(`${AUTH}/api/data`)]);
  assert.deepEqual(results.map((r) => r.status), [401, 401, 401]);
  await sleep(20);
  assert.equal(server.refreshCalls, 1);
  for (const t of [a, b]) {
    assert.deepEqual(t.events.map((e) => e.type), ['login', 'sessionExpired']);
    assert.equal(t.client.session.authenticated, false);
  }
  assert.equal(server.calls('/api/data').length, 3);
});

for (const mode of ['memory', 'cookie']) {
  test(`${mode} mode: logout in one tab clears state and emits logout in both`, async () => {
    const { server, tabs: [a, b] } = await signIn(mode);
    const heard = nextEvent(b.client, 'logout');
    await a.client.logout();
    const event = await heard;
    assert.equal(event.fromOtherTab, true);
    assert.equal(event.session.authenticated, false);
    for (const t of [a, b]) {
      assert.deepEqual(t.events.map((e) => e.type), ['login', 'logout']);
      assert.equal(t.client.session.authenticated, false);
    }
    const res = await b.client.fetch(`${AUTH}/api/data`);
    assert.equal(res.status, 401);
    assert.equal(server.calls('/api/data')[0].headers.authorization, undefined, 'b forgot the token');
    assert.equal(server.refreshCalls, 0);
  });
}

test('a refresh already in flight when the user signs out does not sign the tab back in', async () => {
  const { server, tabs: [a] } = await signIn('memory', 1, { refreshDelay: 40 });
  server.expireAccessTokens();
  const pending = a.client.fetch(`${AUTH}/api/data`);
  await sleep(15); // the refresh is on the wire
  await a.client.logout();
  const res = await pending;
  assert.equal(res.status, 401);
  assert.equal(a.client.session.authenticated, false);
  assert.deepEqual(a.events.map((e) => e.type), ['login', 'logout']);
});

test('a page reload in memory mode restores from the cookies while another tab is signed in', async () => {
  const { world, server, tabs: [a] } = await signIn('memory', 1);
  const reloaded = createClient({ baseUrl: AUTH, mode: 'memory', clientId: 'spa-memory', fetch: world.fetch, channelName: `latch-test-${channelSeq}` });
  open.push(reloaded);
  const heard = nextEvent(a.client, 'refresh');
  const session = await reloaded.restore();
  assert.equal(session.sessionId, a.client.session.sessionId);
  assert.equal(server.refreshCalls, 1);
  await heard; // tab a takes the new access token too
  assert.equal(a.client.session.expiresAt, session.expiresAt);
});

test('without Web Locks, tabs still converge through the channel', async () => {
  removeLocks();
  const { server, tabs: [a, b] } = await signIn('memory');
  server.expireAccessTokens();
  const heard = nextEvent(b.client, 'refresh');
  assert.equal((await a.client.fetch(`${AUTH}/api/data`)).status, 200);
  await heard;
  assert.equal((await b.client.fetch(`${AUTH}/api/data`)).status, 200);
  assert.equal(server.refreshCalls, 1);
  assert.equal(locks.grants, 0);
});
