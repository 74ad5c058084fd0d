// One tab: login in both modes, credentials on requests, single flight,
// retry once, failed refresh, logout, restore, errors.
import { test, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, LatchError } from '../latch.js';
import { AUTH, PASSWORD, createWorld, installBrowserGuards, recordEvents, removeLocks } from './harness.mjs';

const browser = { current: null };
const violations = installBrowserGuards(browser);
const clients = [];

function setup(mode, opts = {}) {
  const world = createWorld(opts.world);
  browser.current = world;
  const client = createClient({ baseUrl: AUTH, mode, clientId: `spa-${mode}`, fetch: world.fetch, channelName: null, ...opts.client });
  clients.push(client);
  return { world, server: world.server, client, events: recordEvents(client) };
}

beforeEach(() => removeLocks()); // no Web Locks: the in-tab single flight alone
after(() => {
  for (const c of clients) c.close();
  assert.deepEqual(violations, [], 'the SDK touched Web Storage or wrote a cookie');
});

test('memory mode: login keeps the token in memory and fetch sends it as Bearer', async () => {
  const { server, client, events, world } = setup('memory');
  const session = await client.login('ada@example.com', PASSWORD);
  assert.equal(session.authenticated, true);
  assert.match(session.sessionId, /^s_/);
  assert.ok(session.expiresAt > Date.now() + 299_000);
  assert.ok(Object.isFrozen(session));
  assert.equal(client.session, session);
  assert.deepEqual(events.map((e) => e.type), ['login']);
  assert.equal(events[0].fromOtherTab, false);

  const login = server.calls('/v1/auth/login')[0];
  assert.equal(login.credentials, 'include');
  assert.equal(login.headers['content-type'], 'application/json');

  const res = await client.fetch(`${AUTH}/api/data`, { method: 'POST', body: 'x', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(res.status, 200);
  const call = server.calls('/api/data')[0];
  assert.match(call.headers.authorization, /^Bearer at_/);
  assert.equal(call.headers['x-csrf-token'], undefined, 'memory mode needs no CSRF header');
  assert.equal(call.headers['content-type'], 'text/plain', 'caller headers are kept');
  assert.deepEqual((await res.json()).echo, 'x');
  // The access token is in no cookie the page can read.
  assert.doesNotMatch(world.readableCookies(), /at_/);
});

test('cookie mode: credentials include, CSRF header on POST but not on GET', async () => {
  const { server, client } = setup('cookie');
  const session = await client.login('ada@example.com', PASSWORD);
  assert.equal(session.authenticated, true);

  assert.equal((await client.fetch(`${AUTH}/api/data`)).status, 200);
  assert.equal((await client.fetch(`${AUTH}/api/data`, { method: 'POST', body: '{}' })).status, 200);
  const [get, post] = server.calls('/api/data');
  assert.equal(get.credentials, 'include');
  assert.equal(get.headers['x-csrf-token'], undefined);
  assert.equal(get.headers.authorization, undefined);
  assert.equal(post.credentials, 'include');
  assert.equal(post.headers['x-csrf-token'], `csrf_${session.sessionId}`);
});

test('credentials go only to trusted origins', async () => {
  const { server, client } = setup('memory');
  await client.login('ada@example.com', PASSWORD);
  await client.fetch('https://other.test/x', { method: 'POST' });
  assert.equal(server.calls('/x')[0].headers.authorization, undefined);

  const { server: s2, client: c2 } = setup('memory', { client: { origins: ['https://api.test'] } });
  await c2.login('ada@example.com', PASSWORD);
  await c2.fetch('https://api.test/y');
  assert.match(s2.calls('/y')[0].headers.authorization, /^Bearer /);
});

test('a Request object works and is replayed after a refresh', async () => {
  const { server, client } = setup('memory');
  await client.login('ada@example.com', PASSWORD);
  server.expireAccessTokens();
  const res = await client.fetch(new Request(`${AUTH}/api/data`, { method: 'PUT', body: 'payload' }));
  assert.equal(res.status, 200);
  assert.equal((await res.json()).echo, 'payload');
  assert.equal(server.refreshCalls, 1);
});

for (const mode of ['memory', 'cookie']) {
  test(`${mode} mode: 10 concurrent 401s cause exactly one refresh`, async () => {
    const { server, client, events } = setup(mode);
    await client.login('ada@example.com', PASSWORD);
    server.expireAccessTokens();
    const results = await Promise.all(Array.from({ length: 10 }, () => client.fetch(`${AUTH}/api/data`)));
    assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
    assert.equal(server.refreshCalls, 1);
    assert.equal(server.calls('/api/data').length, 20, 'each request: one 401, one retry');
    const refresh = server.calls('/v1/auth/refresh')[0];
    assert.equal(refresh.credentials, 'include');
    assert.equal(refresh.headers['x-csrf-token'], `csrf_${client.session.sessionId}`);
    assert.equal(refresh.headers['content-type'], 'application/json');
    assert.ok(refresh.cookies['__Host-latch_rt'], 'the refresh cookie was sent');
    assert.deepEqual(events.map((e) => e.type), ['login', 'refresh']);
  });
}

test('retry once, then give up: a 401 after the refresh is returned as is', { timeout: 5000 }, async () => {
  const { server, client, events } = setup('memory');
  await client.login('ada@example.com', PASSWORD);
  server.rejectAll = true;
  const res = await client.fetch(`${AUTH}/api/data`);
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, 'invalid_token', 'the body is intact');
  assert.equal(server.refreshCalls, 1);
  assert.equal(server.calls('/api/data').length, 2);
  assert.equal(client.session.authenticated, true, 'a successful refresh keeps the session');
  assert.deepEqual(events.map((e) => e.type), ['login', 'refresh']);
});

test('a failed refresh ends the session once, returns the 401s, never loops', { timeout: 5000 }, async () => {
  const { server, client, events } = setup('cookie');
  await client.login('ada@example.com', PASSWORD);
  server.revokeSessions();
  const results = await Promise.all(Array.from({ length: 5 }, () => client.fetch(`${AUTH}/api/data`, { method: 'DELETE' })));
  assert.deepEqual(results.map((r) => r.status), Array(5).fill(401));
  assert.equal(server.refreshCalls, 1);
  assert.equal(server.calls('/api/data').length, 5, 'no retries after a failed refresh');
  assert.deepEqual(events.map((e) => e.type), ['login', 'sessionExpired']);
  assert.deepEqual({ ...client.session }, { authenticated: false, sessionId: null, expiresAt: null });

  // Signed out now: a 401 is simply returned, no refresh attempted.
  assert.equal((await client.fetch(`${AUTH}/api/data`)).status, 401);
  assert.equal(server.refreshCalls, 1);
  await assert.rejects(client.refresh(), (err) => err instanceof LatchError);
});

test('a 403 csrf_failed on refresh ends the session too', async () => {
  const { server, client, events, world } = setup('memory');
  await client.login('ada@example.com', PASSWORD);
  world.jar.get('__Host-latch_csrf').value = 'forged';
  server.expireAccessTokens();
  const res = await client.fetch(`${AUTH}/api/data`);
  assert.equal(res.status, 401);
  assert.deepEqual(events.map((e) => e.type), ['login', 'sessionExpired']);
});

test('a network error during refresh rejects the waiting fetches but keeps the session', async () => {
  const { server, client, events } = setup('memory');
  await client.login('ada@example.com', PASSWORD);
  server.expireAccessTokens();
  server.refreshFailure = 'network';
  const results = await Promise.allSettled([client.fetch(`${AUTH}/api/data`), client.fetch(`${AUTH}/api/data`)]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(results[0].reason.message, 'fetch failed');
  assert.equal(server.refreshCalls, 1);
  assert.equal(client.session.authenticated, true);
  assert.deepEqual(events.map((e) => e.type), ['login']);

  server.refreshFailure = 503;
  const err = await client.refresh().catch((e) => e);
  assert.ok(err instanceof LatchError);
  assert.equal(err.status, 503);
  assert.equal(err.retryAfter, 3);
  assert.equal(client.session.authenticated, true);

  server.refreshFailure = null; // back online: the next 401 refreshes normally
  assert.equal((await client.fetch(`${AUTH}/api/data`)).status, 200);
});

test('an access token known to be expired is refreshed before the request', async () => {
  const { server, client } = setup('memory');
  const realNow = Date.now;
  try {
    await client.login('ada@example.com', PASSWORD);
    Date.now = () => realNow() + 301_000;
    server.expireAccessTokens();
    assert.equal((await client.fetch(`${AUTH}/api/data`)).status, 200);
    assert.equal(server.refreshCalls, 1);
    assert.equal(server.calls('/api/data').length, 1, 'no 401 round trip');

    // Refreshed first and still a 401: that was the one refresh; no retry.
    Date.now = () => realNow() + 602_000;
    server.rejectAll = true;
    assert.equal((await client.fetch(`${AUTH}/api/data`)).status, 401);
    assert.equal(server.refreshCalls, 2);
    assert.equal(server.calls('/api/data').length, 2);
  } finally {
    Date.now = realNow;
  }
});

test('explicit refresh() is single-flight', async () => {
  const { server, client } = setup('cookie');
  await client.login('ada@example.com', PASSWORD);
  const before = client.session.expiresAt;
  const [a, b] = await Promise.all([client.refresh(), client.refresh()]);
  assert.equal(server.refreshCalls, 1);
  assert.equal(a, b);
  assert.ok(a.expiresAt >= before);
});

for (const mode of ['memory', 'cookie']) {
  test(`${mode} mode: logout posts CSRF (and Bearer), clears state, emits logout`, async () => {
    const { server, client, events, world } = setup(mode);
    const { sessionId } = await client.login('ada@example.com', PASSWORD);
    await client.logout();
    const call = server.calls('/v1/auth/logout')[0];
    assert.equal(call.credentials, 'include');
    assert.equal(call.headers['x-csrf-token'], `csrf_${sessionId}`);
    if (mode === 'memory') assert.match(call.headers.authorization, /^Bearer at_/);
    else assert.equal(call.headers.authorization, undefined);
    assert.equal(client.session.authenticated, false);
    assert.deepEqual(events.map((e) => e.type), ['login', 'logout']);
    assert.equal(world.jar.size, 0, 'the server cleared the cookies');
    const res = await client.fetch(`${AUTH}/api/data`);
    assert.equal(res.status, 401);
    assert.equal(server.calls('/api/data')[0].headers.authorization, undefined);
    assert.equal(server.refreshCalls, 0);
  });
}

test('logoutAll calls logout-all; logout still signs out locally when offline', async () => {
  const { server, client, events } = setup('cookie');
  await client.login('ada@example.com', PASSWORD);
  await client.logoutAll();
  assert.equal(server.calls('/v1/auth/logout-all').length, 1);
  assert.equal(events.at(-1).type, 'logout');

  const offline = setup('memory', { client: { fetch: async (input, init) => {
    if (String(input).endsWith('/logout')) throw new TypeError('fetch failed');
    return offline.world.fetch(input, init);
  } } });
  await offline.client.login('ada@example.com', PASSWORD);
  await assert.rejects(offline.client.logout(), /fetch failed/);
  assert.equal(offline.client.session.authenticated, false);
  assert.deepEqual(offline.events.map((e) => e.type), ['login', 'logout']);
});

test('restore after a page load: memory mode refreshes with the cookies, cookie mode asks /v1/me', async () => {
  const m = setup('memory');
  await m.client.login('ada@example.com', PASSWORD);
  const reloaded = createClient({ baseUrl: AUTH, mode: 'memory', clientId: 'spa-memory', fetch: m.world.fetch, channelName: null });
  const events = recordEvents(reloaded);
  const session = await reloaded.restore();
  assert.equal(session.authenticated, true);
  assert.equal(session.sessionId, m.client.session.sessionId);
  assert.equal(m.server.refreshCalls, 1);
  assert.deepEqual(events.map((e) => e.type), ['login']);
  assert.equal((await reloaded.fetch(`${AUTH}/api/data`)).status, 200);

  const c = setup('cookie');
  await c.client.login('ada@example.com', PASSWORD);
  const reloadedC = createClient({ baseUrl: AUTH, mode: 'cookie', fetch: c.world.fetch, channelName: null });
  assert.equal((await reloadedC.restore()).sessionId, c.client.session.sessionId);
  assert.equal(c.server.refreshCalls, 0);
  assert.equal(c.server.calls('/v1/me').length, 1);

  // Access cookie gone, refresh cookie alive: restore refreshes.
  c.world.jar.delete('__Host-latch_at');
  const reloadedC2 = createClient({ baseUrl: AUTH, mode: 'cookie', fetch: c.world.fetch, channelName: null });
  assert.equal((await reloadedC2.restore()).authenticated, true);
  assert.equal(c.server.refreshCalls, 1);

  // Nothing to restore: null, no request beyond what is needed, no events.
  const empty = setup('memory');
  const fresh = createClient({ baseUrl: AUTH, mode: 'memory', fetch: empty.world.fetch, channelName: null });
  const freshEvents = recordEvents(fresh);
  assert.equal(await fresh.restore(), null);
  assert.equal(empty.server.log.length, 0);
  empty.server.revokeSessions();
  assert.deepEqual(freshEvents, []);
  for (const x of [reloaded, reloadedC, reloadedC2, fresh]) x.close();
});

test('cookie mode: a 401 without credentials (expired cookie dropped) refreshes', async () => {
  const { server, client, world } = setup('cookie');
  await client.login('ada@example.com', PASSWORD);
  world.jar.delete('__Host-latch_at'); // the browser dropped the expired access cookie
  assert.equal((await client.fetch(`${AUTH}/api/data`)).status, 200);
  assert.equal(server.refreshCalls, 1);
});

test('login errors are LatchErrors with code, status and retryAfter', async () => {
  const { client, events } = setup('memory');
  const cases = [
    ['ada@example.com', 'wrong', 'invalid_credentials', 401, null],
    ['busy@example.com', PASSWORD, 'rate_limited', 429, 7],
    ['locked@example.com', PASSWORD, 'account_locked', 403, null],
  ];
  for (const [email, password, code, status, retryAfter] of cases) {
    const err = await client.login(email, password).catch((e) => e);
    assert.ok(err instanceof LatchError, code);
    assert.deepEqual([err.code, err.status, err.retryAfter], [code, status, retryAfter]);
  }
  assert.equal(events.length, 0);
  assert.equal(client.session.authenticated, false);
});

test('a client whose server delivery does not match the mode is refused', async () => {
  const { client } = setup('memory', { client: { clientId: 'spa-cookie' } });
  const err = await client.login('ada@example.com', PASSWORD).catch((e) => e);
  assert.equal(err.code, 'mode_mismatch');
  assert.equal(client.session.authenticated, false);
  assert.throws(() => createClient({ baseUrl: AUTH, mode: 'local' }), TypeError);
  assert.throws(() => client.on('nope', () => {}), TypeError);
});

test('unsubscribe works and a throwing handler does not break the SDK', async () => {
  const { client } = setup('memory');
  const original = console.error;
  const reported = [];
  console.error = (e) => reported.push(e);
  try {
    let calls = 0;
    const off = client.on('login', () => calls++);
    client.on('login', () => {
      throw new Error('handler bug');
    });
    await client.login('ada@example.com', PASSWORD);
    off();
    await client.login('ada@example.com', PASSWORD);
    assert.equal(calls, 1);
    assert.equal(reported.length, 2);
  } finally {
    console.error = original;
  }
});

test('step-up: login rejects with challenge_required and its id; completeChallenge signs in once', async () => {
  for (const mode of ['memory', 'cookie']) {
    const { server, client, events } = setup(mode);
    const err = await client.login('stepup@example.com', PASSWORD).catch((e) => e);
    assert.ok(err instanceof LatchError);
    assert.equal(err.code, 'challenge_required');
    assert.equal(err.status, 403);
    assert.match(err.challengeId, /^latch_ch_/);
    assert.equal(client.session.authenticated, false);
    assert.deepEqual(events, []);

    const wrong = await client.completeChallenge(err.challengeId, '000000').catch((e) => e);
    assert.equal(wrong.code, 'invalid_code');
    assert.equal(wrong.attemptsLeft, 4);
    assert.equal(wrong.challengeId, null);
    assert.equal(client.session.authenticated, false);

    const session = await client.completeChallenge(err.challengeId, '042917');
    assert.equal(session.authenticated, true);
    assert.match(session.sessionId, /^s_/);
    assert.deepEqual(events.map((e) => e.type), ['login']);
    const call = server.calls('/v1/auth/challenge')[1];
    assert.equal(call.credentials, 'include');
    assert.equal(call.headers['content-type'], 'application/json');

    const reused = await client.completeChallenge(err.challengeId, '042917').catch((e) => e);
    assert.equal(reused.code, 'invalid_challenge');
  }
});
