// /demo: a tiny app on the SDK. Sign in, call a protected API, watch the
// access token refresh, and get signed out when the session is revoked
// somewhere else.
import { createClient } from '/sdk/latch.js';
import {
  $, h, pageConfig, clockTime, errorMessage, retryAfterSeconds, formatWait, isSessionGone, setBusy, announce,
} from './common.js';

const cfg = pageConfig();
const client = createClient({ baseUrl: cfg.baseUrl, mode: 'cookie', clientId: cfg.clientId });
const api = (p) => `${cfg.baseUrl}${p}`;

const views = { signin: $('signin-view'), app: $('app-view'), revoked: $('revoked-view') };
const form = $('demo-form');
const email = $('email');
const password = $('password');
const submit = $('submit');
const notice = $('notice');
const callBtn = $('call-api');
const autoCall = $('auto-call');
const apiStatus = $('api-status');
const apiTime = $('api-time');
const apiBody = $('api-body');
const tokenState = $('token-state');
const countdown = $('token-countdown');
const progress = $('token-progress');
const sessionIdEl = $('session-id');
const log = $('token-log');
const signout = $('signout');
const userEmail = $('user-email');

let view = 'signin';
let expiresAt = null; // Date
let lifetimeMs = 0; // length of the current access token's life, as first seen
let autoTimer = 0;
let signingOut = false;

function show(v) {
  view = v;
  for (const [k, el] of Object.entries(views)) el.hidden = k !== v;
  signout.hidden = v !== 'app';
  userEmail.hidden = v !== 'app' || !userEmail.textContent;
  if (v !== 'app') stopAuto();
}

/** toDate accepts the SDK's expiresAt as a Date, epoch ms or s, or a string. */
function toDate(x) {
  if (!x) return null;
  if (x instanceof Date) return Number.isNaN(x.getTime()) ? null : x;
  if (typeof x === 'number') return new Date(x < 1e12 ? x * 1000 : x);
  const d = new Date(x);
  return Number.isNaN(d.getTime()) ? null : d;
}

function trackSession(s) {
  if (!s) return;
  if (s.sessionId) sessionIdEl.textContent = s.sessionId;
  const exp = toDate(s.expiresAt);
  if (exp && (!expiresAt || exp.getTime() !== expiresAt.getTime())) {
    expiresAt = exp;
    lifetimeMs = Math.max(1000, exp.getTime() - Date.now());
  }
  tick();
}

function fmtLeft(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

function tick() {
  if (!expiresAt) {
    countdown.textContent = '–';
    progress.value = 0;
    tokenState.className = 'badge';
    tokenState.textContent = 'Unknown';
    return;
  }
  const left = expiresAt.getTime() - Date.now();
  countdown.textContent = fmtLeft(left);
  progress.value = Math.max(0, Math.min(100, (left / lifetimeMs) * 100));
  progress.classList.toggle('low', left < lifetimeMs * 0.25);
  if (left > 0) {
    tokenState.className = 'badge badge-success';
    tokenState.textContent = 'Valid';
  } else {
    tokenState.className = 'badge badge-warning';
    tokenState.textContent = 'Expired — refreshes on the next call';
  }
}

function addLog(kind, text) {
  const empty = log.querySelector('.log-empty');
  if (empty) empty.remove();
  const now = new Date();
  log.prepend(h('li', { className: `log-${kind}` }, h('time', { datetime: now.toISOString() }, clockTime(now)), h('span', {}, text)));
  while (log.children.length > 50) log.lastElementChild.remove();
}

function resetLog() {
  log.replaceChildren(h('li', { className: 'log-empty' }, 'Nothing yet. Refreshes appear here as they happen.'));
}

// ---------- Sign in ----------

function showNotice(kind, text) {
  notice.className = `notice notice-${kind}`;
  notice.textContent = text;
}

async function onSubmit(ev) {
  ev.preventDefault();
  if (submit.getAttribute('aria-busy') === 'true') return;
  notice.textContent = '';
  if (!email.value.trim() || !password.value) {
    showNotice('error', 'Enter the demo email address and password.');
    (email.value.trim() ? password : email).focus();
    return;
  }
  setBusy(submit, true, 'Signing in…');
  try {
    const s = await client.login(email.value.trim(), password.value);
    setBusy(submit, false, 'Sign in');
    enterApp(s || client.session, 'Signed in');
  } catch (err) {
    setBusy(submit, false, 'Sign in');
    const wait = retryAfterSeconds(err);
    showNotice(err && err.code === 'invalid_credentials' ? 'error' : 'warning', errorMessage(err));
    if (wait && ['rate_limited', 'account_locked', 'temporarily_unavailable'].includes(err.code)) {
      submit.disabled = true;
      setTimeout(() => (submit.disabled = false), Math.min(wait, 3600) * 1000);
      $('submit-label').textContent = `Wait ${formatWait(wait)}`;
      setTimeout(() => ($('submit-label').textContent = 'Sign in'), Math.min(wait, 3600) * 1000);
    }
    password.focus();
  }
}

function enterApp(s, how) {
  signingOut = false;
  expiresAt = null;
  resetLog();
  addLog('login', how === 'Restored' ? 'Restored the session from its cookies' : 'Signed in: new session, access token issued');
  trackSession(s || client.session);
  apiStatus.className = 'badge';
  apiStatus.textContent = 'No call yet';
  apiTime.textContent = '';
  apiBody.textContent = 'Press “Call protected API”.';
  show('app');
  loadMe();
  callBtn.focus();
}

async function loadMe() {
  try {
    const res = await client.fetch(api('/v1/me'));
    if (res.ok) {
      const me = await res.json();
      if (me && me.email) {
        userEmail.textContent = me.email;
        userEmail.hidden = view !== 'app';
      }
    }
  } catch {
    // The API card shows errors; the e-mail in the header is cosmetic.
  }
}

// ---------- Protected API ----------

async function callApi() {
  if (view !== 'app') return;
  callBtn.setAttribute('aria-busy', 'true');
  const started = performance.now();
  try {
    const res = await client.fetch(api('/v1/me'));
    const ms = Math.round(performance.now() - started);
    let text = await res.text();
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not JSON: show as is
    }
    apiStatus.className = `badge ${res.ok ? 'badge-success' : 'badge-danger'}`;
    apiStatus.textContent = `${res.status} ${res.statusText || (res.ok ? 'OK' : '')}`.trim();
    apiTime.textContent = `${clockTime(new Date())} · ${ms} ms`;
    apiBody.textContent = text;
    if (res.status === 401) signedOut('revoked');
  } catch (err) {
    apiStatus.className = 'badge badge-danger';
    apiStatus.textContent = isSessionGone(err) ? '401 Unauthorized' : 'Error';
    apiTime.textContent = clockTime(new Date());
    apiBody.textContent = errorMessage(err, { action: 'call the API' });
    if (isSessionGone(err)) signedOut('revoked');
  } finally {
    callBtn.removeAttribute('aria-busy');
    trackSession(client.session);
  }
}

function stopAuto() {
  clearInterval(autoTimer);
  autoTimer = 0;
  autoCall.checked = false;
}

autoCall.addEventListener('change', () => {
  clearInterval(autoTimer);
  autoTimer = 0;
  if (autoCall.checked) {
    callApi();
    autoTimer = setInterval(callApi, 5000);
    announce('Calling the API every 5 seconds.');
  }
});

// ---------- Signed out ----------

function signedOut(why) {
  if (view === 'revoked' || signingOut) return;
  expiresAt = null;
  tick();
  addLog('bad', why === 'other-tab' ? 'Signed out in another tab' : 'Session revoked: the SDK dropped it');
  $('revoked-title').textContent =
    why === 'other-tab' ? 'You were signed out in another tab' : 'You were signed out (session revoked)';
  $('revoked-body').textContent =
    why === 'other-tab'
      ? 'This browser signed out of the demo in another tab, so this tab dropped its session too.'
      : 'This session was ended somewhere else — from the account page, another tab, or by “Sign out everywhere”. The SDK noticed and dropped it.';
  show('revoked');
  views.revoked.focus();
}

async function signOut() {
  signingOut = true;
  setBusy(signout, true);
  try {
    await client.logout();
  } catch {
    // Gone already: nothing to do.
  }
  setBusy(signout, false, 'Sign out');
  expiresAt = null;
  userEmail.textContent = '';
  show('signin');
  showNotice('success', 'You have been signed out.');
  email.focus();
}

// ---------- Start ----------

async function init() {
  // Handlers get { type, session, fromOtherTab }.
  client.on('refresh', (ev) => {
    trackSession(ev.session || client.session);
    const exp = expiresAt ? ` — valid until ${clockTime(expiresAt)}` : '';
    addLog('refresh', `Access token refreshed${ev.fromOtherTab ? ' by another tab' : ''}${exp}`);
  });
  client.on('login', (ev) => {
    if (view === 'app') trackSession(ev.session || client.session);
  });
  client.on('logout', (ev) => {
    if (!signingOut && view === 'app') signedOut(ev.fromOtherTab ? 'other-tab' : 'revoked');
  });
  client.on('sessionExpired', () => signedOut('revoked'));

  form.addEventListener('submit', onSubmit);
  callBtn.addEventListener('click', callApi);
  signout.addEventListener('click', signOut);
  $('signin-again').addEventListener('click', () => {
    notice.textContent = '';
    show('signin');
    password.focus();
  });
  setInterval(tick, 1000);
  // Back from the account tab? Ask the API at once, so a revoked session shows.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && view === 'app') callApi();
  });

  submit.disabled = false;
  try {
    const s = await client.restore();
    if (s && s.authenticated !== false) {
      enterApp(s, 'Restored');
      // A restored cookie session does not say when its access token
      // expires; one refresh does, and starts the countdown.
      if (!client.session.expiresAt && typeof client.refresh === 'function') {
        client.refresh().catch(() => {});
      }
      return;
    }
  } catch {
    // Not signed in, or the server is unreachable: the form says so on submit.
  }
  show('signin');
}

init();
