// Test harness: an in-process fake Latch server implementing the browser
// contract, a fake browser (cookie jar, document.cookie, fetch with
// credentials modes), a fake navigator.locks, and guards that fail the test if
// the SDK touches Web Storage or writes a cookie.

export const AUTH = 'https://auth.test';
export const PAGE = 'https://app.test'; // the page is cross-origin to Latch: cookies need credentials: 'include'
export const PASSWORD = 'correct horse battery staple';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One browser profile: a cookie jar shared by every tab, and a Latch server.
 * @param {{ refreshDelay?: number }} [opts]
 */
export function createWorld({ refreshDelay = 15, cookiePrefix = '__Host-' } = {}) {
  const AT = `${cookiePrefix}latch_at`, RT = `${cookiePrefix}latch_rt`, CSRF = `${cookiePrefix}latch_csrf`;
  /** @type {Map<string, { value: string, path: string, httpOnly: boolean }>} */
  const jar = new Map();
  let n = 0;
  const sessions = new Map(); // sid → { user, csrf, rt, alive, delivery }
  const tokens = new Map(); // access token → { sid, valid }
  const clients = { 'spa-memory': 'memory', 'spa-cookie': 'cookie' };
  const challenges = new Map(); // challenge id → { clientId, code, used }

  const server = {
    refreshCalls: 0,
    log: /** @type {any[]} */ ([]),
    /** Every protected call answers 401 invalid_token, valid token or not. */
    rejectAll: false,
    /** 'network' makes refresh throw like fetch does when offline; a number answers that status. */
    refreshFailure: /** @type {null | 'network' | number} */ (null),
    refreshDelay,
    /** Expires every access token issued so far (the SDK is not told). */
    expireAccessTokens() {
      for (const t of tokens.values()) t.valid = false;
    },
    /** Ends every session server-side (refresh answers invalid_grant). */
    revokeSessions() {
      for (const s of sessions.values()) s.alive = false;
      server.expireAccessTokens();
    },
    calls(path) {
      return server.log.filter((e) => e.path === path);
    },
  };

  const json = (status, body, extra = {}) => ({
    status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...extra },
    body: body === null ? null : JSON.stringify(body),
    setCookies: [],
  });

  function issue(sid, res) {
    const s = sessions.get(sid);
    const at = `at_${++n}`;
    tokens.set(at, { sid, valid: true });
    s.rt = `rt_${++n}`;
    const body = { expires_in: 300, csrf_token: s.csrf, session_id: sid, refresh_token_expires_in: 604800 };
    if (s.delivery === 'cookie') {
      Object.assign(body, { token_type: 'cookie' });
      res.setCookies.push({ name: AT, value: at, path: '/', httpOnly: true });
    } else {
      Object.assign(body, { access_token: at, token_type: 'Bearer' });
    }
    res.setCookies.push({ name: RT, value: s.rt, path: '/v1/auth', httpOnly: true });
    res.setCookies.push({ name: CSRF, value: s.csrf, path: '/', httpOnly: false });
    res.body = JSON.stringify(body);
    return res;
  }

  /** The session a protected request authenticates as, or a 401. */
  function authenticate(req) {
    const auth = req.headers.get('authorization');
    const at = auth?.startsWith('Bearer ') ? auth.slice(7) : req.cookies.get(AT);
    if (!at) return { error: json(401, { error: 'invalid_token', error_description: 'no credentials' }, { 'WWW-Authenticate': 'Bearer' }) };
    const t = tokens.get(at);
    if (server.rejectAll || !t || !t.valid || !sessions.get(t.sid)?.alive) {
      return { error: json(401, { error: 'invalid_token', error_description: 'expired' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' }) };
    }
    const s = sessions.get(t.sid);
    const viaCookie = !auth;
    if (viaCookie && !['GET', 'HEAD', 'OPTIONS'].includes(req.method) && req.headers.get('x-csrf-token') !== s.csrf) {
      return { error: json(403, { error: 'csrf_failed' }) };
    }
    return { sid: t.sid, session: s };
  }

  function sessionFromCookies(req) {
    const rt = req.cookies.get(RT);
    for (const [sid, s] of sessions) if (rt && s.rt === rt) return { sid, s };
    return null;
  }

  function clearCookies(res) {
    for (const name of [AT, RT, CSRF]) res.setCookies.push({ name, value: '', clear: true });
    return res;
  }

  async function route(req) {
    const path = req.url.pathname;
    if (req.method === 'POST' && req.headers.get('content-type') !== 'application/json' && path.startsWith('/v1/auth/')) {
      return json(400, { error: 'invalid_request' });
    }
    if (path === '/v1/auth/login' && req.method === 'POST') {
      const { email, password, client_id: clientId } = JSON.parse(req.body);
      if (email === 'busy@example.com') return json(429, { error: 'rate_limited' }, { 'Retry-After': '7' });
      if (email === 'locked@example.com') return json(403, { error: 'account_locked', error_description: 'too many attempts' });
      if (password !== PASSWORD) return json(401, { error: 'invalid_credentials' });
      if (email === 'stepup@example.com') {
        const id = `latch_ch_${++n}`;
        challenges.set(id, { clientId, code: '042917', used: false });
        return json(403, { error: 'challenge_required', error_description: 'a code was sent to your email', challenge_id: id });
      }
      const sid = `s_${++n}`;
      sessions.set(sid, { user: email, csrf: `csrf_${sid}`, rt: null, alive: true, delivery: clients[clientId] ?? 'memory' });
      return issue(sid, json(200, {}));
    }
    if (path === '/v1/auth/challenge' && req.method === 'POST') {
      const { challenge_id: id, code } = JSON.parse(req.body);
      const ch = challenges.get(id);
      if (!ch || ch.used) return json(400, { error: 'invalid_challenge', error_description: 'unknown challenge; sign in again' });
      if (code !== ch.code) return json(400, { error: 'invalid_code', error_description: 'the code is incorrect; 4 attempts left', attempts_left: 4 });
      ch.used = true;
      const sid = `s_${++n}`;
      sessions.set(sid, { user: 'stepup@example.com', csrf: `csrf_${sid}`, rt: null, alive: true, delivery: clients[ch.clientId] ?? 'memory' });
      return issue(sid, json(200, {}));
    }
    if (path === '/v1/auth/refresh' && req.method === 'POST') {
      server.refreshCalls++;
      await sleep(server.refreshDelay);
      if (server.refreshFailure === 'network') throw new TypeError('fetch failed');
      if (typeof server.refreshFailure === 'number') return json(server.refreshFailure, { error: 'temporarily_unavailable' }, { 'Retry-After': '3' });
      const found = sessionFromCookies(req);
      if (!found || !found.s.alive) return clearCookies(json(401, { error: 'invalid_grant' }));
      if (req.headers.get('x-csrf-token') !== found.s.csrf) return json(403, { error: 'csrf_failed' });
      return issue(found.sid, json(200, {}));
    }
    if ((path === '/v1/auth/logout' || path === '/v1/auth/logout-all') && req.method === 'POST') {
      const who = authenticate(req);
      const found = who.session ? { s: who.session } : sessionFromCookies(req);
      if (!found) return clearCookies(json(401, { error: 'invalid_token' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' }));
      if (req.headers.get('x-csrf-token') !== found.s.csrf) return json(403, { error: 'csrf_failed' });
      for (const s of sessions.values()) if (s === found.s || (path.endsWith('-all') && s.user === found.s.user)) s.alive = false;
      return clearCookies(json(204, null));
    }
    if (path === '/v1/me' || path.startsWith('/api/')) {
      const who = authenticate(req);
      if (who.error) return who.error;
      if (path === '/v1/me') return json(200, { sub: 'u_1', email: who.session.user, session_id: who.sid });
      return json(200, { ok: true, session_id: who.sid, echo: req.body || null });
    }
    return json(404, { error: 'not_found' });
  }

  /** The browser's fetch: cookies only with credentials: 'include' (the page is cross-origin). */
  async function fetch(input, init) {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const include = request.credentials === 'include';
    const entry = {
      method: request.method,
      url: url.href,
      path: url.pathname,
      credentials: request.credentials,
      headers: Object.fromEntries(request.headers),
    };
    server.log.push(entry);
    await sleep(1);
    if (url.origin !== AUTH) return new Response('third party', { status: 200 });
    const cookies = new Map();
    if (include) for (const [name, c] of jar) if (url.pathname.startsWith(c.path)) cookies.set(name, c.value);
    entry.cookies = Object.fromEntries(cookies);
    const req = { method: request.method, url, headers: request.headers, cookies, body: await request.text() };
    const res = await route(req);
    if (include) {
      for (const c of res.setCookies) {
        if (c.clear) jar.delete(c.name);
        else jar.set(c.name, { value: c.value, path: c.path, httpOnly: c.httpOnly });
      }
    }
    return new Response(res.body, { status: res.status, headers: res.headers });
  }

  /** What document.cookie shows: non-HttpOnly cookies only. */
  function readableCookies() {
    return [...jar].filter(([, c]) => !c.httpOnly).map(([name, c]) => `${name}=${c.value}`).join('; ');
  }

  return { server, jar, fetch, readableCookies, route };
}

/**
 * Installs a document whose cookie setter throws, and localStorage /
 * sessionStorage getters that throw; returns the recorded violations.
 */
export function installBrowserGuards(world) {
  const violations = [];
  const trap = (name) => ({
    configurable: true,
    get() {
      violations.push(`read globalThis.${name}`);
      throw new Error(`the SDK must not touch ${name}`);
    },
  });
  Object.defineProperty(globalThis, 'localStorage', trap('localStorage'));
  Object.defineProperty(globalThis, 'sessionStorage', trap('sessionStorage'));
  Object.defineProperty(globalThis, 'document', {
    configurable: true,
    value: {
      get cookie() {
        return world.current?.readableCookies() ?? '';
      },
      set cookie(v) {
        violations.push(`document.cookie = ${v}`);
        throw new Error('the SDK must not write document.cookie');
      },
    },
  });
  return violations;
}

/** A tiny navigator.locks: exclusive, FIFO, honours AbortSignal while queued. */
export function createLocks() {
  const queues = new Map();
  const locks = {
    grants: 0,
    request(name, options, callback) {
      if (typeof options === 'function') [callback, options] = [options, {}];
      let q = queues.get(name);
      if (!q) queues.set(name, (q = { held: false, waiting: [] }));
      return new Promise((resolve, reject) => {
        const entry = {
          async run() {
            locks.grants++;
            try {
              resolve(await callback({ name, mode: 'exclusive' }));
            } catch (err) {
              reject(err);
            } finally {
              q.held = false;
              pump(q);
            }
          },
        };
        const signal = options.signal;
        if (signal?.aborted) return reject(new DOMException('aborted', 'AbortError'));
        signal?.addEventListener('abort', () => {
          const i = q.waiting.indexOf(entry);
          if (i >= 0) {
            q.waiting.splice(i, 1);
            reject(new DOMException('aborted', 'AbortError'));
          }
        });
        q.waiting.push(entry);
        pump(q);
      });
    },
  };
  function pump(q) {
    if (q.held || q.waiting.length === 0) return;
    q.held = true;
    const entry = q.waiting.shift();
    queueMicrotask(() => entry.run()); // granted at once: before any BroadcastChannel message lands
  }
  return locks;
}

export function installLocks(locks) {
  Object.defineProperty(globalThis, 'navigator', { configurable: true, value: { locks } });
}

export function removeLocks() {
  Object.defineProperty(globalThis, 'navigator', { configurable: true, value: undefined });
}

/** Resolves with the next event of that type. */
export function nextEvent(client, type) {
  return new Promise((resolve) => {
    const off = client.on(type, (e) => {
      off();
      resolve(e);
    });
  });
}

export function recordEvents(client) {
  const events = [];
  for (const type of ['login', 'refresh', 'logout', 'sessionExpired']) client.on(type, (e) => events.push(e));
  return events;
}

export { sleep };
