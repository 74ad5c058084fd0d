// /reset: without a token, ask for a reset link (the answer is the same
// whether or not the account exists); with /reset#token=… (the emailed
// link), choose a new password. Only the buttons POST; opening the link
// changes nothing, and the token stays in the URL fragment.
import { $, pageConfig, errorMessage, responseError, setBusy, isNetworkError } from './common.js';

const cfg = pageConfig();
const notice = $('notice');
const forgotForm = $('forgot-form');
const resetForm = $('reset-form');
const email = $('email');
const password = $('password');
const forgotSubmit = $('forgot-submit');
const resetSubmit = $('reset-submit');
const token = new URLSearchParams(window.location.hash.slice(1)).get('token') || '';

function showNotice(kind, text) {
  notice.className = `notice notice-${kind}`;
  notice.textContent = text;
}

function fieldError(input, text) {
  const err = $(`${input.id}-error`);
  err.textContent = text || '';
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

async function post(path, body) {
  const res = await fetch(`${cfg.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await responseError(res);
  return res.json();
}

if (token) {
  history.replaceState(null, '', window.location.pathname);
  forgotForm.hidden = true;
  resetForm.hidden = false;
  $('reset-subtitle').textContent = 'Choose a new password for your account.';
  resetSubmit.disabled = false;
  password.focus();
} else {
  forgotSubmit.disabled = false;
}

forgotForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  fieldError(email, '');
  if (!email.value.trim()) {
    fieldError(email, 'Enter your email address.');
    return;
  }
  setBusy(forgotSubmit, true, 'Sending…');
  try {
    const body = await post('/v1/auth/password/forgot', { email: email.value.trim() });
    forgotForm.hidden = true;
    showNotice('success', body.message || 'If an account with that email exists, we have sent it a link.');
  } catch (err) {
    setBusy(forgotSubmit, false, 'Send reset link');
    showNotice('error', errorMessage(err, { action: 'send the link' }));
  }
});

resetForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  fieldError(password, '');
  if (password.value.length < 8) {
    fieldError(password, 'Use at least 8 characters.');
    return;
  }
  setBusy(resetSubmit, true, 'Saving…');
  try {
    const body = await post('/v1/auth/password/reset', { token, password: password.value });
    resetForm.hidden = true;
    $('reset-title').textContent = 'Password changed';
    $('reset-subtitle').textContent = 'Every device was signed out. Sign in with your new password.';
    if (body.account_locked) showNotice('warning', body.message);
    else showNotice('success', 'Your password was changed.');
  } catch (err) {
    setBusy(resetSubmit, false, 'Set new password');
    if (!isNetworkError(err) && err.code === 'invalid_link') {
      resetSubmit.disabled = true;
      showNotice('error', 'This reset link is invalid, expired or already used. Ask for a new one below.');
      resetForm.hidden = true;
      forgotForm.hidden = false;
      forgotSubmit.disabled = false;
      return;
    }
    showNotice('error', errorMessage(err, { action: 'change the password' }));
  }
});
