// /unlock#token=…: the link of a sign-in lock email. Opening it changes
// nothing (mail scanners prefetch links); the button POSTs the token from
// the URL fragment, which never reaches a server log.
import { $, pageConfig, errorMessage, responseError, setBusy, isNetworkError } from './common.js';

const cfg = pageConfig();
const form = $('unlock-form');
const submit = $('submit');
const notice = $('notice');
const token = new URLSearchParams(window.location.hash.slice(1)).get('token') || '';

function showNotice(kind, text) {
  notice.className = `notice notice-${kind}`;
  notice.textContent = text;
}

if (!token) {
  showNotice('error', 'This link is incomplete. Open the link from the email again.');
} else {
  // Keep the token out of the history and of anything that reads the URL.
  history.replaceState(null, '', window.location.pathname);
  submit.disabled = false;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!token) return;
  setBusy(submit, true, 'Lifting the lock…');
  try {
    const res = await fetch(`${cfg.baseUrl}/v1/auth/unlock`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ token }),
    });
    if (!res.ok) throw await responseError(res);
    form.hidden = true;
    $('unlock-title').textContent = 'Sign-in unlocked';
    $('unlock-subtitle').textContent = 'You can sign in from anywhere again.';
    showNotice('success', 'The lock is lifted.');
  } catch (err) {
    setBusy(submit, false, 'Lift the lock');
    if (!isNetworkError(err) && err.code === 'invalid_link') submit.disabled = true;
    showNotice('error', errorMessage(err, { action: 'lift the lock' }));
  }
});
