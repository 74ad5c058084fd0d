// The page of a one-time link from an email (/verify#token=…,
// /unlock#token=…). Opening it changes nothing (mail scanners prefetch
// links); the button POSTs the token from the URL fragment, which never
// reaches a server log. What the page does and says comes from the data
// attributes of its form: data-endpoint (the API to POST to), data-busy,
// data-label, data-action, data-incomplete, data-done-title,
// data-done-subtitle and data-done-notice.
import { $, pageConfig, errorMessage, responseError, setBusy, isNetworkError } from './common.js';

const cfg = pageConfig();
const form = $('link-form');
const text = form.dataset;
const submit = $('submit');
const notice = $('notice');
const token = new URLSearchParams(window.location.hash.slice(1)).get('token') || '';

function showNotice(kind, message) {
  notice.className = `notice notice-${kind}`;
  notice.textContent = message;
}

if (!token) {
  showNotice('error', text.incomplete);
} else {
  // Keep the token out of the history and of anything that reads the URL.
  history.replaceState(null, '', window.location.pathname);
  submit.disabled = false;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!token) return;
  setBusy(submit, true, text.busy);
  try {
    const res = await fetch(`${cfg.baseUrl}${text.endpoint}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ token }),
    });
    if (!res.ok) throw await responseError(res);
    form.hidden = true;
    $('link-title').textContent = text.doneTitle;
    $('link-subtitle').textContent = text.doneSubtitle;
    showNotice('success', text.doneNotice);
  } catch (err) {
    setBusy(submit, false, text.label);
    if (!isNetworkError(err) && err.code === 'invalid_link') submit.disabled = true;
    showNotice('error', errorMessage(err, { action: text.action }));
  }
});
