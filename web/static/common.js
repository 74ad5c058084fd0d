// Helpers shared by the Latch pages. No framework, no HTML strings: every node
// is built with createElement and textContent, so nothing the server or a
// user sends can become markup.

/** The page configuration the server renders into <meta name="latch-config">. */
export function pageConfig() {
  const meta = document.querySelector('meta[name="latch-config"]');
  let cfg = {};
  try {
    cfg = JSON.parse(meta ? meta.content : '{}') || {};
  } catch {
    cfg = {};
  }
  return {
    baseUrl: typeof cfg.baseUrl === 'string' ? cfg.baseUrl : '',
    clientId: typeof cfg.clientId === 'string' ? cfg.clientId : 'latch-account',
    registration: cfg.registration === true,
    demo: cfg.demo === true,
    returnTo: safeReturnTo(cfg.returnTo),
  };
}

/**
 * safeReturnTo returns s when /login may go there after signing in — a
 * same-origin relative URL whose path is exactly /oauth2/authorize, with an
 * optional query, or a page of the admin console — and '' otherwise. The server checks the same before it
 * puts the value in the page configuration; this is the second lock.
 */
export function safeReturnTo(s) {
  const path = '/oauth2/authorize';
  if (typeof s !== 'string' || s.length > 8192) return '';
  // The admin console's pages: /admin or /admin/seg(/seg)*, segments of
  // [A-Za-z0-9_-] only, no query (the server checks the same).
  if (s.length <= 200 && /^\/admin(\/[A-Za-z0-9_-]+)*$/.test(s)) return s;
  if (s !== path && !s.startsWith(`${path}?`)) return '';
  // No space, control character, backslash or fragment anywhere.
  if (/[\s\\#\u0000-\u001f\u007f-\u009f]/.test(s)) return '';
  let u;
  try {
    u = new URL(s, window.location.origin);
  } catch {
    return '';
  }
  if (u.origin !== window.location.origin || u.pathname !== path || u.hash !== '') return '';
  return u.pathname + u.search;
}

/** $ returns the element with the id, or throws: the templates and scripts ship together. */
export function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e;
}

/**
 * h builds an element: h('p', {className: 'x', title: 't'}, 'text', child).
 * Attributes go through properties or setAttribute, never through markup.
 */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'className' || k === 'textContent' || k === 'hidden' || k === 'type' || k === 'disabled') e[k] = v;
    else if (k.startsWith('on')) throw new Error('use addEventListener');
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const absFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** parseTime reads an RFC 3339 string; null if absent or invalid. */
export function parseTime(s) {
  if (!s) return null;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1971 ? null : d;
}

/** relativeTime: "just now", "2 minutes ago", "yesterday", "in 3 days". */
export function relativeTime(d, now = Date.now()) {
  const s = Math.round((d.getTime() - now) / 1000);
  const a = Math.abs(s);
  if (a < 45) return 'just now';
  if (a < 45 * 60) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 22 * 3600) return rtf.format(Math.round(s / 3600), 'hour');
  if (a < 26 * 86400) return rtf.format(Math.round(s / 86400), 'day');
  if (a < 320 * 86400) return rtf.format(Math.round(s / (30 * 86400)), 'month');
  return rtf.format(Math.round(s / (365 * 86400)), 'year');
}

export function absoluteTime(d) {
  return absFmt.format(d);
}

export function clockTime(d) {
  return clockFmt.format(d);
}

/**
 * timeEl renders a <time> with a relative label and the absolute time as its
 * tooltip and machine-readable datetime; refreshRelativeTimes keeps the
 * label current.
 */
export function timeEl(d, prefix = '') {
  if (!d) return h('span', {}, 'unknown');
  const t = h('time', { datetime: d.toISOString(), title: absoluteTime(d) });
  t.dataset.prefix = prefix;
  t.textContent = prefix + relativeTime(d);
  return t;
}

export function refreshRelativeTimes(root = document) {
  for (const t of root.querySelectorAll('time[datetime]')) {
    const d = parseTime(t.getAttribute('datetime'));
    if (d) t.textContent = (t.dataset.prefix || '') + relativeTime(d);
  }
}

/** deviceLabel: "Chrome on macOS", "Firefox", "an unknown device". */
export function deviceLabel(x) {
  const browser = clean(x && x.browser);
  const os = clean(x && x.os);
  if (browser && os) return `${browser} on ${os}`;
  if (browser) return browser;
  if (os) return `a browser on ${os}`;
  // The server names no browser for non-browser clients (curl, SDKs).
  if (x && x.user_agent && !String(x.user_agent).startsWith('Mozilla/')) return 'an API or command-line client';
  if (x && x.user_agent) return 'an unknown browser';
  return 'an unknown device';
}

/** deviceKind picks the icon: 'mobile', 'desktop' or 'api'. */
export function deviceKind(x) {
  const os = (clean(x && x.os) || '').toLowerCase();
  const ua = (clean(x && x.user_agent) || '').toLowerCase();
  if (/ios|iphone|ipad|android|mobile/.test(os) || /mobile|iphone|android/.test(ua)) return 'mobile';
  if (!x || (!x.browser && !x.os && !x.user_agent)) return 'api';
  if (!x.browser && /curl|go-http|python|okhttp|node|axios|wget|java/.test(ua)) return 'api';
  return 'desktop';
}

function clean(s) {
  if (typeof s !== 'string') return '';
  const t = s.trim();
  return t === '' || t.toLowerCase() === 'unknown' || t.toLowerCase() === 'other' ? '' : t;
}

export function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/** formatWait turns a Retry-After in seconds into "30 seconds", "2 minutes". */
export function formatWait(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 0));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'}`;
  const hr = Math.ceil(m / 60);
  return `${hr} hour${hr === 1 ? '' : 's'}`;
}

/** retryAfterSeconds reads LatchError.retryAfter: seconds, or a Date/HTTP date. */
export function retryAfterSeconds(err) {
  const r = err && err.retryAfter;
  if (r === undefined || r === null || r === '') return null;
  if (r instanceof Date) return Math.max(1, Math.ceil((r.getTime() - Date.now()) / 1000));
  const n = Number(r);
  if (Number.isFinite(n)) return Math.max(1, Math.ceil(n));
  const d = new Date(r);
  if (!Number.isNaN(d.getTime())) return Math.max(1, Math.ceil((d.getTime() - Date.now()) / 1000));
  return null;
}

/** isNetworkError recognises a request that never got an answer. */
export function isNetworkError(err) {
  if (!err) return false;
  if (err.code === 'network_error' || err.code === 'network') return true;
  if (err.name === 'TypeError' && !('status' in err)) return true;
  return err.status === 0;
}

/**
 * errorMessage turns an SDK error into a sentence for people. `wait` is the
 * Retry-After in seconds when the server sent one.
 */
export function errorMessage(err, { action = 'sign in' } = {}) {
  const wait = retryAfterSeconds(err);
  if (isNetworkError(err)) {
    return "Can't reach the server. Check your connection and try again.";
  }
  switch (err && err.code) {
    case 'invalid_credentials':
      if (err.message && err.message.includes('not verified')) {
        return 'That email and password combination is not right, or the email address is not verified yet: follow the link in the email we sent you.';
      }
      return 'That email and password combination is not right. Check both and try again.';
    case 'account_locked':
      if (!wait && err.message && !err.message.startsWith('too many')) return 'This account is locked. Reset your password if you were asked to, or contact support.';
      return wait
        ? `This account is temporarily locked after too many failed sign-in attempts. Try again in ${formatWait(wait)}.`
        : 'This account is temporarily locked after too many failed sign-in attempts. Try again later.';
    case 'rate_limited':
    case 'too_many_requests':
      return wait
        ? `Too many attempts. Please wait ${formatWait(wait)} before you try again.`
        : 'Too many attempts. Please wait a moment before you try again.';
    case 'temporarily_unavailable':
      return wait
        ? `The server is busy. Try again in ${formatWait(wait)}.`
        : 'The server is busy. Try again in a moment.';
    case 'invalid_link':
      return 'This link is invalid, expired or already used. Ask for a new one.';
    case 'registration_disabled':
      return 'New accounts cannot be created on this server. Ask an administrator for an account.';
    case 'weak_password':
      return 'Choose a stronger password: 8 to 256 characters, and not your email address.';
    case 'email_taken':
      return 'An account with this email already exists. Sign in instead.';
    case 'invalid_request':
      return `The server could not ${action} with those details. Check the email address and password.`;
    case 'unauthorized_client':
      return 'This page is not allowed to sign in on this server (client not registered). Contact the administrator.';
    case 'csrf':
    case 'csrf_failed':
    case 'invalid_csrf':
      return 'Your session check failed. Reload the page and try again.';
  }
  if (err && err.status >= 500) return `Something went wrong on the server. Try again in a moment.`;
  return `Could not ${action}. Try again.`;
}

/** Is the error "your session is gone"? */
export function isSessionGone(err) {
  if (!err) return false;
  return err.status === 401 || ['invalid_token', 'invalid_grant', 'session_expired', 'unauthenticated'].includes(err.code);
}

/**
 * readError turns a non-2xx Response from client.fetch into an Error with
 * .status, .code and .retryAfter, like a LatchError.
 */
export async function responseError(res) {
  let body = {};
  try {
    body = await res.json();
  } catch {
    body = {};
  }
  const e = new Error((body && body.error_description) || `HTTP ${res.status}`);
  e.status = res.status;
  e.code = (body && body.error) || '';
  const ra = res.headers.get('Retry-After');
  if (ra) e.retryAfter = ra;
  return e;
}

/**
 * getJSON fetches with the SDK and returns the parsed body, or throws the
 * error responseError builds.
 */
export async function getJSON(client, url, init) {
  const res = await client.fetch(url, init);
  if (!res.ok) throw await responseError(res);
  if (res.status === 204) return null;
  return res.json();
}

let toastTimer = 0;
/** announce shows a short message in the page's polite live region. */
export function announce(text, { error = false, ms = 5000 } = {}) {
  const t = document.getElementById('status');
  if (!t) return;
  clearTimeout(toastTimer);
  t.classList.toggle('toast-error', error);
  t.textContent = text;
  toastTimer = setTimeout(() => {
    t.textContent = '';
  }, ms);
}

/**
 * confirmAction opens the confirmation <dialog> and resolves true when the
 * user confirms. Escape and Cancel resolve false; focus returns to the
 * opener.
 */
export function confirmAction({ title, body, confirm = 'Sign out' }) {
  const dlg = document.getElementById('confirm-dialog');
  if (!dlg || typeof dlg.showModal !== 'function') {
    return Promise.resolve(window.confirm(`${title}\n\n${body}`));
  }
  const opener = document.activeElement;
  $('confirm-title').textContent = title;
  $('confirm-body').textContent = body;
  $('confirm-ok').textContent = confirm;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener(
      'close',
      () => {
        resolve(dlg.returnValue === 'confirm');
        if (opener && typeof opener.focus === 'function' && opener.isConnected) opener.focus();
      },
      { once: true },
    );
    dlg.showModal();
    $('confirm-cancel').focus();
  });
}

/** setBusy marks a button as working: disabled, aria-busy, spinner. */
export function setBusy(btn, busy, label) {
  btn.disabled = busy;
  if (busy) btn.setAttribute('aria-busy', 'true');
  else btn.removeAttribute('aria-busy');
  if (label !== undefined) {
    const l = btn.querySelector('[id$="-label"]');
    if (l) l.textContent = label;
    else btn.textContent = label;
  }
}

/** Where to go after the session ends, with a reason the login page explains. */
export function goToLogin(reason) {
  const u = new URL('/login', window.location.origin);
  if (reason) u.searchParams.set('reason', reason);
  window.location.replace(u.pathname + u.search);
}
