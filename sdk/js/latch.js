// @ts-check
/**
 * Latch browser SDK: sign-in, sign-out and a fetch wrapper that keeps a Latch
 * session alive.
 *
 *  - cookie mode: access and refresh tokens live in HttpOnly cookies set by the
 *    server; the SDK sends `credentials: 'include'` and the CSRF header.
 *  - memory mode: the access token lives in a variable of this module and is
 *    sent as `Authorization: Bearer`; the refresh token is an HttpOnly cookie.
 *
 * On a 401 `invalid_token` the wrapper refreshes once and retries once. All
 * concurrent 401s of a tab share one refresh; tabs of one origin take turns on
 * a Web Lock and tell each other the outcome over a BroadcastChannel, so N tabs
 * cause one refresh. A failed refresh ends the session and emits
 * `sessionExpired`; it never loops.
 *
 * The SDK never writes localStorage, sessionStorage or document.cookie. It
 * reads document.cookie only for the CSRF cookie, which is not a credential.
 * No dependencies, no build step: this file is the package.
 * @module @latchauth/sdk
 */

/** Names of the server's JS-readable CSRF cookie, most specific first. */
const CSRF_COOKIES = ['__Host-latch_csrf', '__Secure-latch_csrf', 'latch_csrf'];
/** Methods that change nothing: no CSRF header. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const EVENTS = /** @type {const} */ (['login', 'refresh', 'logout', 'sessionExpired']);
/** How long a tab holding the lock waits for the outcome of another tab's announced refresh. */
const REMOTE_REFRESH_WAIT_MS = 1000;

/**
 * An error answered by the Latch server, or detected by the SDK. `code` is the
 * server's `error` member (`invalid_credentials`, `rate_limited`, …).
 */
export class LatchError extends Error {
  /**
   * @param {string} code
   * @param {{ status?: number, retryAfter?: number | null, description?: string, challengeId?: string | null, attemptsLeft?: number | null }} [details]
   */
  constructor(code, { status = 0, retryAfter = null, description = '', challengeId = null, attemptsLeft = null } = {}) {
    super(description ? `${code}: ${description}` : code);
    this.name = 'LatchError';
    /** The server's error code, e.g. `invalid_credentials`. */
    this.code = code;
    /** The HTTP status; 0 when no response was involved. */
    this.status = status;
    /** Seconds to wait before trying again (from `Retry-After`), or null. */
    this.retryAfter = retryAfter;
    /** The server's `error_description`, or ''. */
    this.description = description;
    /**
     * With `challenge_required`: the challenge to complete with the code the
     * server emailed (`completeChallenge`); otherwise null.
     */
    this.challengeId = challengeId;
    /** With `invalid_code`: how many more codes may be tried; otherwise null. */
    this.attemptsLeft = attemptsLeft;
  }
}

/**
 * @typedef {'login' | 'refresh' | 'logout' | 'sessionExpired'} EventType
 * @typedef {{ accessToken: string | null, csrf: string | null, sessionId: string | null, expiresAt: number | null }} Fields
 * @typedef {Fields & { authenticated: boolean }} State
 */

/** @type {State} */
const SIGNED_OUT = Object.freeze({ authenticated: false, accessToken: null, csrf: null, sessionId: null, expiresAt: null });

/**
 * Creates a client for one Latch server. See latch.d.ts and README.md.
 * @param {{ baseUrl?: string, mode: 'cookie' | 'memory', clientId?: string, fetch?: typeof fetch,
 *           lockName?: string, channelName?: string | null, origins?: string[], csrfCookieName?: string }} options
 */
export function createClient(options) {
  const { baseUrl = '', mode, clientId } = options ?? {};
  if (mode !== 'cookie' && mode !== 'memory') {
    throw new TypeError(`latch: mode must be 'cookie' or 'memory', not ${JSON.stringify(mode)}`);
  }
  const root = String(baseUrl).replace(/\/+$/, '');
  /** @type {typeof fetch} */
  const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const key = `latch:${root}:${clientId ?? ''}`;
  const lockName = options.lockName ?? key;
  const csrfCookies = options.csrfCookieName ? [options.csrfCookieName] : CSRF_COOKIES;
  const trusted = trustedOrigins(root, options.origins ?? []);

  /** @type {State} */
  let state = SIGNED_OUT;
  let snapshot = freezeSession(state);
  let generation = 0; // bumps on every change of state, made here or learned from another tab
  let epoch = 0; // bumps when a session starts or ends (not on a refresh)
  /** @type {Promise<void> | null} */
  let inflight = null; // this tab's single-flight refresh
  /** @type {LatchError | null} */
  let lastFailure = null; // why the last refresh ended the session
  /** @type {string | null} */
  let endedSession = null; // a session that ended here; late news of it is ignored
  /** @type {Set<() => void>} */
  const watchers = new Set(); // woken on the next change of state
  const listeners = new Map(EVENTS.map((e) => [e, new Set()]));

  // Cross-tab: the nonce ties another tab's "refreshing" message to its outcome.
  const tabId = Math.random().toString(36).slice(2);
  let nonces = 0;
  /** @type {string | null} */
  let remotePending = null; // nonce of another tab's refresh whose outcome has not arrived
  /** @type {BroadcastChannel | null} */
  let channel = null;
  if (options.channelName !== null && typeof BroadcastChannel === 'function') {
    channel = new BroadcastChannel(options.channelName ?? key);
    channel.onmessage = (ev) => onMessage(ev.data);
  }

  // ---- state and events ----------------------------------------------------

  /** @param {State} next @param {EventType | null} event @param {boolean} fromOtherTab */
  function setState(next, event, fromOtherTab) {
    state = next;
    snapshot = freezeSession(next);
    generation++;
    for (const wake of watchers) wake();
    watchers.clear();
    if (event) emit(event, fromOtherTab);
  }

  /** @returns {Promise<void>} resolved on the next change of state */
  function nextChange() {
    return new Promise((resolve) => watchers.add(resolve));
  }

  /** @param {EventType} type @param {boolean} fromOtherTab */
  function emit(type, fromOtherTab) {
    const event = Object.freeze({ type, session: snapshot, fromOtherTab });
    for (const handler of [...(listeners.get(type) ?? [])]) {
      try {
        handler(event);
      } catch (err) {
        if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
        else console.error(err);
      }
    }
  }

  /** Starts a session, or moves the current one to new tokens. @param {Fields} fields @param {boolean} fromOtherTab */
  function signedIn(fields, fromOtherTab) {
    const isNew = !state.authenticated || state.sessionId !== fields.sessionId;
    if (isNew) {
      epoch++;
      endedSession = null;
      lastFailure = null;
    }
    setState(Object.freeze({ authenticated: true, ...fields }), isNew ? 'login' : 'refresh', fromOtherTab);
  }

  /** Ends the session in this tab; emits only if there was one. @param {'logout' | 'sessionExpired'} type @param {boolean} fromOtherTab */
  function signedOut(type, fromOtherTab) {
    const was = state.authenticated;
    endedSession = state.sessionId;
    epoch++;
    setState(SIGNED_OUT, was ? type : null, fromOtherTab);
  }

  /** The fields of a login or refresh answer. @param {any} body @returns {Fields} */
  function fieldsFrom(body) {
    if (mode === 'memory' && typeof body.access_token !== 'string') {
      throw new LatchError('mode_mismatch', {
        status: 200,
        description: "the server set the tokens as cookies: use mode 'cookie', or register the client for memory delivery",
      });
    }
    if (mode === 'cookie' && body.access_token !== undefined) {
      throw new LatchError('mode_mismatch', {
        status: 200,
        description: "the server put the access token in the body: use mode 'memory', or register the client for cookie delivery",
      });
    }
    return {
      accessToken: mode === 'memory' ? body.access_token : null, // never the refresh token, even if sent
      csrf: body.csrf_token ?? currentCsrf(),
      sessionId: body.session_id ?? null,
      expiresAt: typeof body.expires_in === 'number' ? Date.now() + body.expires_in * 1000 : null,
    };
  }

  /** The CSRF cookie is the truth shared by all tabs; the last answer is the fallback. */
  function currentCsrf() {
    return readCsrfCookie(csrfCookies) ?? state.csrf;
  }

  // ---- cross-tab -----------------------------------------------------------

  /** @param {Record<string, unknown>} message */
  function post(message) {
    try {
      channel?.postMessage({ latch: 1, from: tabId, ...message });
    } catch {
      // closed channel: other tabs learn on their next 401
    }
  }

  /** Tells other tabs about this tab's session. @param {'login' | 'refreshed'} type @param {string} [nonce] */
  function postState(type, nonce) {
    const { sessionId, expiresAt, csrf, accessToken } = state;
    // In memory mode the access token goes to same-origin tabs, into their memory. Never stored.
    post({ type, nonce, sessionId, expiresAt, csrf, accessToken: mode === 'memory' ? accessToken : undefined });
  }

  /** @param {any} m */
  function onMessage(m) {
    if (!m || m.latch !== 1 || m.from === tabId || typeof m.type !== 'string') return;
    if (m.type === 'refreshing') {
      remotePending = m.nonce;
      return;
    }
    if (m.nonce && m.nonce === remotePending) remotePending = null;
    if (m.type === 'login' || m.type === 'refreshed') {
      if (mode === 'memory' && typeof m.accessToken !== 'string') return;
      if (m.type === 'refreshed' && m.sessionId && m.sessionId === endedSession) return; // news of a session we ended
      const same = state.authenticated && state.sessionId === m.sessionId;
      if (same && m.expiresAt != null && state.expiresAt != null && m.expiresAt < state.expiresAt) return; // older news
      const fields = { accessToken: mode === 'memory' ? m.accessToken : null, csrf: m.csrf ?? state.csrf };
      signedIn({ ...fields, sessionId: m.sessionId ?? null, expiresAt: m.expiresAt ?? null }, true);
    } else if (m.type === 'logout' || m.type === 'sessionExpired') {
      if (!state.authenticated) return;
      if (!m.all && m.sessionId && state.sessionId && m.sessionId !== state.sessionId) return;
      signedOut(m.type, true);
    }
  }

  /** Waits for the outcome of a refresh another tab announced (it arrives just before its lock is released). */
  async function settleRemote() {
    await new Promise((resolve) => setTimeout(resolve, 0)); // let queued messages land
    const deadline = Date.now() + REMOTE_REFRESH_WAIT_MS;
    while (remotePending && Date.now() < deadline) {
      await Promise.race([nextChange(), new Promise((resolve) => setTimeout(resolve, 25))]);
    }
    remotePending = null; // that tab went away mid-refresh: stop waiting for it
  }

  // ---- refresh -------------------------------------------------------------

  /**
   * Refreshes unless the state changed since `seen` (someone already
   * refreshed, signed in or out). One refresh in flight per tab; tabs queue on
   * a Web Lock.
   * @param {number} seen the generation the caller's request was sent with
   */
  function refreshSince(seen) {
    if (generation !== seen) return Promise.resolve();
    inflight ??= lockedRefresh(seen).finally(() => {
      inflight = null;
    });
    return inflight;
  }

  /** @param {number} seen */
  async function lockedRefresh(seen) {
    const work = async () => {
      await settleRemote();
      if (generation === seen) await refreshRequest();
    };
    const locks = globalThis.navigator?.locks;
    if (!locks) return work(); // no Web Locks: single flight within the tab only
    const abort = new AbortController();
    const granted = locks.request(lockName, { signal: abort.signal }, work);
    granted.catch(() => {}); // AbortError when news from another tab wins the race below
    try {
      await Promise.race([granted, nextChange()]); // another tab's news may come before our turn
    } finally {
      abort.abort(); // no effect once granted
    }
  }

  /** One POST /v1/auth/refresh, applied to the state and told to the other tabs. */
  async function refreshRequest() {
    const startEpoch = epoch;
    const csrf = currentCsrf();
    if (!csrf) {
      lastFailure = new LatchError('no_session', { description: 'no CSRF token: sign in first' });
      if (state.authenticated) endSession('sessionExpired');
      return;
    }
    const nonce = `${tabId}:${++nonces}`;
    post({ type: 'refreshing', nonce });
    let told = false;
    try {
      const res = await fetchImpl(root + '/v1/auth/refresh', {
        method: 'POST',
        credentials: 'include',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: '{}',
      });
      if (epoch !== startEpoch) return; // signed in or out meanwhile: that state wins
      if (res.ok) {
        signedIn(fieldsFrom(await res.json()), false);
        postState('refreshed', nonce);
        told = true;
        return;
      }
      const err = await errorFrom(res);
      // 429 and 5xx are passing trouble: the session may live on. Any other
      // refusal (401 invalid_grant, 403 csrf_failed, 400 with the cookies
      // gone) means this session cannot be refreshed again: it is over.
      if (res.status === 429 || res.status >= 500) throw err;
      lastFailure = err; // invalid_grant or csrf_failed: the session is over
      if (state.authenticated) {
        endSession('sessionExpired', { nonce });
        told = true;
      }
    } finally {
      if (!told) post({ type: 'refreshAborted', nonce });
    }
  }

  /** Ends the session here and in the other tabs. @param {'logout' | 'sessionExpired'} type @param {{ all?: boolean, nonce?: string }} [extra] */
  function endSession(type, extra = {}) {
    const { authenticated, sessionId } = state;
    signedOut(type, false);
    // A sign-out concerns the shared cookies even if this tab had no session; an expiry only a live one.
    if (type === 'logout' || authenticated) post({ type, sessionId, ...extra });
  }

  // ---- fetch ---------------------------------------------------------------

  /** @param {RequestInfo | URL} input */
  function isTrusted(input) {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    try {
      return trusted.has(new URL(url, globalThis.location?.href ?? (root || undefined)).origin);
    } catch {
      return false;
    }
  }

  /** Does this answer ask for a refresh? @param {Response} res */
  async function wantsRefresh(res) {
    if (res.status !== 401 || !state.authenticated) return false;
    const challenge = res.headers.get('WWW-Authenticate');
    /** @type {unknown} */
    let error = challenge ? /\berror="?([^",\s]+)/i.exec(challenge)?.[1] : undefined;
    if (!challenge) {
      try {
        error = (await res.clone().json())?.error; // CORS hides WWW-Authenticate unless exposed
      } catch {
        error = undefined;
      }
    }
    if (error) return error === 'invalid_token';
    // No credentials reached the server: in cookie mode the browser dropped the expired access cookie.
    return mode === 'cookie';
  }

  /** @param {RequestInfo | URL} input @param {RequestInit} init @param {string} method */
  function send(input, init, method) {
    const request = typeof Request === 'function' && input instanceof Request ? input : null;
    const headers = new Headers(init.headers ?? request?.headers);
    /** @type {RequestInit} */
    const next = { ...init, headers };
    if (mode === 'memory') {
      if (state.accessToken) headers.set('Authorization', `Bearer ${state.accessToken}`);
    } else {
      next.credentials = init.credentials ?? 'include';
      const csrf = currentCsrf();
      if (csrf && !SAFE_METHODS.has(method) && !headers.has('X-CSRF-Token')) headers.set('X-CSRF-Token', csrf);
    }
    return fetchImpl(request ? request.clone() : input, next); // a clone, so the body can be sent again
  }

  /**
   * The drop-in fetch: credentials for trusted origins; on a 401 invalid_token
   * one refresh and one retry.
   * @param {RequestInfo | URL} input
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async function wrappedFetch(input, init = {}) {
    const request = typeof Request === 'function' && input instanceof Request ? input : null;
    const ownAuth = mode === 'memory' && new Headers(init.headers ?? request?.headers).has('Authorization');
    if (ownAuth || !isTrusted(input)) return fetchImpl(input, init);
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
    const replayable = !(typeof ReadableStream === 'function' && init.body instanceof ReadableStream);

    let refreshed = false;
    if (state.authenticated && state.expiresAt !== null && Date.now() >= state.expiresAt) {
      await refreshSince(generation); // known to have expired: refresh first rather than after a 401
      refreshed = true;
    }
    const seen = generation;
    const res = await send(input, init, method);
    if (refreshed || !replayable || !(await wantsRefresh(res))) return res;
    await refreshSince(seen);
    if (!state.authenticated) return res; // the session ended: the caller gets the 401
    return send(input, init, method); // once; a second 401 is the caller's
  }

  // ---- public API ----------------------------------------------------------

  /** @param {string} email @param {string} password */
  async function login(email, password) {
    return begin('/v1/auth/login', { email, password, ...(clientId ? { client_id: clientId } : {}) });
  }

  /**
   * Finishes a sign-in the server held back (`challenge_required`) with the
   * code it emailed. @param {string} challengeId @param {string} code
   */
  async function completeChallenge(challengeId, code) {
    return begin('/v1/auth/challenge', { challenge_id: challengeId, code });
  }

  /** Starts a session from a login or a completed challenge. @param {string} path @param {Record<string, string>} body */
  async function begin(path, body) {
    const res = await fetchImpl(root + path, {
      method: 'POST',
      credentials: 'include',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw await errorFrom(res);
    const fields = fieldsFrom(await res.json());
    signedIn(fields, false);
    postState('login');
    return snapshot;
  }

  /** @param {boolean} all */
  async function logout(all) {
    const headers = new Headers({ 'Content-Type': 'application/json' });
    const csrf = currentCsrf();
    if (csrf) headers.set('X-CSRF-Token', csrf);
    if (mode === 'memory' && state.accessToken) headers.set('Authorization', `Bearer ${state.accessToken}`);
    const path = all ? '/v1/auth/logout-all' : '/v1/auth/logout';
    /** @type {Response | null} */
    let res = null;
    let failure = null;
    try {
      res = await fetchImpl(root + path, { method: 'POST', credentials: 'include', headers, body: '{}' });
    } catch (err) {
      failure = err;
    }
    endSession('logout', all ? { all: true } : {}); // this tab signs out whatever the server said
    if (failure) throw failure;
    if (res && !res.ok && res.status !== 401) throw await errorFrom(res); // 401: no live session to end
  }

  /** Picks up a session that outlived a page load. */
  async function restore() {
    if (state.authenticated) return snapshot;
    const seen = generation;
    if (mode === 'cookie') {
      const res = await fetchImpl(root + '/v1/me', { credentials: 'include', headers: { Accept: 'application/json' } });
      if (res.ok) {
        const me = await res.json();
        if (generation === seen) {
          const csrf = me.csrf_token ?? currentCsrf();
          signedIn({ accessToken: null, csrf, sessionId: me.session_id ?? null, expiresAt: null }, false);
        }
        return state.authenticated ? snapshot : null;
      }
      if (res.status !== 401) throw await errorFrom(res);
    }
    if (!currentCsrf()) return null; // no session cookies here
    await refreshSince(seen);
    return state.authenticated ? snapshot : null;
  }

  return Object.freeze({
    login,
    completeChallenge,
    logout: () => logout(false),
    logoutAll: () => logout(true),
    restore,
    fetch: wrappedFetch,
    /** Refreshes now: single flight, shared with other tabs. */
    async refresh() {
      await refreshSince(generation);
      if (!state.authenticated) throw lastFailure ?? new LatchError('no_session', { description: 'not signed in' });
      return snapshot;
    },
    get session() {
      return snapshot;
    },
    get mode() {
      return mode;
    },
    /** @param {EventType} type @param {(event: any) => void} handler */
    on(type, handler) {
      const set = listeners.get(type);
      if (!set) throw new TypeError(`latch: unknown event ${JSON.stringify(type)}; one of ${EVENTS.join(', ')}`);
      if (typeof handler !== 'function') throw new TypeError('latch: handler must be a function');
      set.add(handler);
      return () => set.delete(handler);
    },
    close() {
      channel?.close();
      channel = null;
    },
  });
}

// ---- helpers ---------------------------------------------------------------

/** @param {State} s */
function freezeSession(s) {
  return Object.freeze({ authenticated: s.authenticated, sessionId: s.sessionId, expiresAt: s.expiresAt });
}

/** The origins that get credentials: Latch's, the page's, and any listed. @param {string} root @param {string[]} extra */
function trustedOrigins(root, extra) {
  const page = globalThis.location?.href;
  const origins = new Set();
  for (const u of [root || page, page, ...extra]) {
    if (!u) continue;
    try {
      origins.add(new URL(u, page).origin);
    } catch {
      throw new TypeError(`latch: not a URL: ${JSON.stringify(u)}`);
    }
  }
  return origins;
}

/** Reads the CSRF cookie (never writes one). @param {string[]} names */
function readCsrfCookie(names) {
  const jar = globalThis.document?.cookie;
  if (!jar) return null;
  const cookies = new Map();
  for (const part of jar.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) cookies.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  for (const name of names) {
    const value = cookies.get(name);
    if (!value) continue;
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return null;
}

/** @param {Response} res */
async function errorFrom(res) {
  /** @type {any} */
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: a proxy's error page
  }
  return new LatchError(typeof body?.error === 'string' ? body.error : 'http_error', {
    status: res.status,
    retryAfter: parseRetryAfter(res.headers.get('Retry-After')),
    description: typeof body?.error_description === 'string' ? body.error_description : '',
    challengeId: typeof body?.challenge_id === 'string' ? body.challenge_id : null,
    attemptsLeft: typeof body?.attempts_left === 'number' ? body.attempts_left : null,
  });
}

/** Retry-After in seconds, from delta-seconds or an HTTP date. @param {string | null} value */
function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
