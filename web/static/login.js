// /login: sign in (and sign up when the server allows it) with the SDK in
// cookie mode, then go to /account, or back to /oauth2/authorize when the
// page was reached from there (?return_to=, checked by the server and again
// here).
import { createClient } from '/sdk/latch.js';
import {
  $, pageConfig, safeReturnTo, errorMessage, retryAfterSeconds, formatWait, setBusy, isNetworkError,
} from './common.js';

const cfg = pageConfig();
const returnTo = safeReturnTo(cfg.returnTo);
const client = createClient({ baseUrl: cfg.baseUrl, mode: 'cookie', clientId: cfg.clientId });

const form = $('auth-form');
const email = $('email');
const password = $('password');
const submit = $('submit');
const submitLabel = $('submit-label');
const notice = $('notice');
const rules = $('password-rules');
const title = $('auth-title');
const subtitle = $('auth-subtitle');

// Messages for /login?reason=...: fixed sentences, never text from the URL.
const reasons = {
  expired: ['info', 'Your session has ended. Sign in again to continue.'],
  revoked: ['warning', 'You were signed out because this session was revoked.'],
  signed_out: ['success', 'You have been signed out.'],
  signed_out_all: ['success', 'You have been signed out on all your devices.'],
};

const codeForm = $('code-form');
const codeInput = $('code');
const codeSubmit = $('code-submit');

let mode = 'signin';
let challengeId = '';
let lockedUntil = 0;
let lockTimer = 0;

function showNotice(kind, text) {
  notice.className = `notice notice-${kind}`;
  notice.textContent = text;
}

function clearNotice() {
  notice.textContent = '';
}

function fieldError(input, text) {
  const err = $(`${input.id}-error`);
  err.textContent = text || '';
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

function label() {
  return mode === 'signup' ? 'Create account' : 'Sign in';
}

function setMode(m) {
  mode = m;
  form.dataset.mode = m;
  const up = m === 'signup';
  title.textContent = up ? 'Create your account' : 'Sign in to your account';
  subtitle.textContent = up ? 'Choose an email address and a password.' : 'Use your email address and password.';
  password.autocomplete = up ? 'new-password' : 'current-password';
  rules.hidden = !up;
  if (!lockedUntil) submitLabel.textContent = label();
  for (const b of document.querySelectorAll('.segment')) {
    b.setAttribute('aria-pressed', String(b.id === `mode-${m}`));
  }
  clearNotice();
  fieldError(email, '');
  fieldError(password, '');
}

function validate() {
  let ok = true;
  const e = email.value.trim();
  const p = password.value;
  fieldError(email, '');
  fieldError(password, '');
  if (!e) {
    fieldError(email, 'Enter your email address.');
    ok = false;
  } else if (!/^[^\s@]+@[^\s@]+$/.test(e)) {
    fieldError(email, 'Enter an email address like name@example.com.');
    ok = false;
  }
  if (!p) {
    fieldError(password, 'Enter your password.');
    ok = false;
  } else if (mode === 'signup') {
    if (p.length < 8) {
      fieldError(password, 'Use at least 8 characters.');
      ok = false;
    } else if (p.length > 256) {
      fieldError(password, 'Use at most 256 characters.');
      ok = false;
    } else if (e && p.trim().toLowerCase() === e.toLowerCase()) {
      fieldError(password, "Your password can't be your email address.");
      ok = false;
    }
  }
  if (!ok) {
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
  }
  return ok;
}

// lockFor disables the form's button for a Retry-After, counting down on
// the button (not in the live region, which would chatter every second).
function lockFor(seconds) {
  lockedUntil = Date.now() + seconds * 1000;
  clearInterval(lockTimer);
  const tick = () => {
    const left = Math.ceil((lockedUntil - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(lockTimer);
      lockedUntil = 0;
      submit.disabled = false;
      submitLabel.textContent = label();
      return;
    }
    submit.disabled = true;
    submitLabel.textContent = `Try again in ${formatWait(left)}`;
  };
  tick();
  lockTimer = setInterval(tick, 1000);
}

async function register(e, p) {
  if (typeof client.register === 'function') return client.register(e, p);
  let res;
  try {
    res = await fetch(`${cfg.baseUrl}/v1/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: e, password: p }),
      credentials: 'same-origin',
    });
  } catch (cause) {
    const err = new Error('network error');
    err.code = 'network_error';
    err.status = 0;
    err.cause = cause;
    throw err;
  }
  if (res.status === 201 || res.ok) return;
  let body = {};
  try {
    body = await res.json();
  } catch {
    body = {};
  }
  const err = new Error(body.error_description || `HTTP ${res.status}`);
  err.status = res.status;
  err.code = body.error || '';
  err.retryAfter = res.headers.get('Retry-After');
  throw err;
}

async function onSubmit(ev) {
  ev.preventDefault();
  if (lockedUntil || submit.getAttribute('aria-busy') === 'true') return;
  clearNotice();
  if (!validate()) return;
  const e = email.value.trim();
  const p = password.value;
  setBusy(submit, true, mode === 'signup' ? 'Creating account…' : 'Signing in…');
  try {
    if (mode === 'signup') await register(e, p);
    await client.login(e, p);
    submitLabel.textContent = returnTo ? 'Signed in, continuing…' : 'Signed in';
    signedIn();
    return;
  } catch (err) {
    setBusy(submit, false, label());
    if (err && err.code === 'challenge_required' && err.challengeId) {
      askForCode(err.challengeId);
      return;
    }
    handleError(err);
  }
}

function signedIn() {
  if (returnTo) window.location.replace(returnTo);
  else window.location.assign('/account');
}

// askForCode swaps the password form for the code form: the server held
// the sign-in back (a new device) and emailed a code.
function askForCode(id) {
  challengeId = id;
  password.value = '';
  form.hidden = true;
  for (const b of document.querySelectorAll('.segmented')) b.hidden = true;
  title.textContent = 'Check your email';
  subtitle.textContent = 'This browser is new to your account.';
  clearNotice();
  codeForm.hidden = false;
  codeInput.value = '';
  fieldError(codeInput, '');
  codeSubmit.disabled = false;
  codeInput.focus();
}

function backToPassword(kind, text) {
  challengeId = '';
  codeForm.hidden = true;
  form.hidden = false;
  for (const b of document.querySelectorAll('.segmented')) b.hidden = false;
  setMode('signin');
  if (text) showNotice(kind, text);
  password.focus();
}

async function onCode(ev) {
  ev.preventDefault();
  if (codeSubmit.getAttribute('aria-busy') === 'true') return;
  const code = codeInput.value.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(code)) {
    fieldError(codeInput, 'Enter the 6 digits from the email.');
    codeInput.focus();
    return;
  }
  fieldError(codeInput, '');
  clearNotice();
  setBusy(codeSubmit, true, 'Checking…');
  try {
    await client.completeChallenge(challengeId, code);
    setBusy(codeSubmit, true, returnTo ? 'Signed in, continuing…' : 'Signed in');
    signedIn();
  } catch (err) {
    setBusy(codeSubmit, false, 'Continue');
    switch (err && err.code) {
      case 'invalid_code':
        if (err.attemptsLeft === 0) {
          backToPassword('error', 'Too many wrong codes. Sign in again to get a new code.');
          return;
        }
        codeInput.value = '';
        fieldError(codeInput, err.attemptsLeft === 1
          ? 'That code is not right. You have 1 try left.'
          : `That code is not right. You have ${err.attemptsLeft} tries left.`);
        codeInput.focus();
        return;
      case 'invalid_challenge':
        backToPassword('warning', capitalizeFirst(err.description || 'the code can no longer be used; sign in again'));
        return;
      case 'invalid_request':
        fieldError(codeInput, 'Enter the 6 digits from the email.');
        codeInput.focus();
        return;
    }
    showNotice(isNetworkError(err) ? 'warning' : 'error', errorMessage(err, { action: 'check the code' }));
  }
}

function handleError(err) {
  const code = err && err.code;
  const msg = errorMessage(err, { action: mode === 'signup' ? 'create the account' : 'sign in' });
  const wait = retryAfterSeconds(err);
  switch (code) {
    case 'invalid_credentials':
      showNotice('error', msg);
      password.value = '';
      password.setAttribute('aria-invalid', 'true');
      password.focus();
      return;
    case 'account_locked':
    case 'rate_limited':
    case 'too_many_requests':
    case 'temporarily_unavailable':
      showNotice('warning', msg);
      if (wait) lockFor(Math.min(wait, 24 * 3600));
      return;
    case 'weak_password':
      showNotice('error', msg);
      fieldError(password, err.description ? capitalizeFirst(err.description) : 'Choose a stronger password.');
      password.focus();
      return;
    case 'email_taken':
      showNotice('error', msg);
      if (cfg.registration) {
        setMode('signin');
        showNotice('info', 'An account with this email already exists. Sign in with its password.');
      }
      password.value = '';
      password.focus();
      return;
    case 'registration_disabled':
      showNotice('error', msg);
      if (document.getElementById('mode-signin')) setMode('signin');
      return;
  }
  showNotice(isNetworkError(err) ? 'warning' : 'error', msg);
}

function capitalizeFirst(s) {
  const t = String(s).replace(/^password:\s*/i, '');
  return t ? t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.') : t;
}

function init() {
  const reason = new URLSearchParams(window.location.search).get('reason');
  if (reason && Object.hasOwn(reasons, reason)) {
    const [kind, text] = reasons[reason];
    showNotice(kind, text);
  }

  form.addEventListener('submit', onSubmit);
  codeForm.addEventListener('submit', onCode);
  $('code-back').addEventListener('click', () => backToPassword());
  codeInput.addEventListener('input', () => {
    if (codeInput.getAttribute('aria-invalid') === 'true') fieldError(codeInput, '');
  });
  $('toggle-password').addEventListener('click', (ev) => {
    const show = password.type === 'password';
    password.type = show ? 'text' : 'password';
    ev.currentTarget.setAttribute('aria-pressed', String(show));
    ev.currentTarget.textContent = show ? 'Hide' : 'Show';
    ev.currentTarget.setAttribute('aria-label', show ? 'Hide password' : 'Show password');
  });
  $('toggle-password').setAttribute('aria-label', 'Show password');
  for (const input of [email, password]) {
    input.addEventListener('input', () => {
      if (input.getAttribute('aria-invalid') === 'true') fieldError(input, '');
    });
  }
  if (cfg.registration) {
    $('mode-signin').addEventListener('click', () => setMode('signin'));
    $('mode-signup').addEventListener('click', () => {
      setMode('signup');
      email.focus();
    });
    if (new URLSearchParams(window.location.search).get('mode') === 'signup') setMode('signup');
  }
  submit.disabled = false;
  // A login_hint prefilled the email: the password is what is left to type.
  if (email.value) password.focus();
  else email.focus();

  // Already signed in on this browser? Go straight to the account. Not when
  // an app sent the user here: /oauth2/authorize asks for a sign-in only
  // when it needs a fresh one (prompt=login, max_age), so going back
  // without one would loop.
  if (!reason && !returnTo) {
    Promise.resolve()
      .then(() => client.restore())
      .then((s) => {
        if (s && s.authenticated !== false) window.location.replace('/account');
      })
      .catch(() => {});
  }
}

init();
