// /alert#id=…&t=…: a link of a sign-in alert email ("Yes, it was me" or
// "This wasn't me"). The id and token travel in the URL fragment, which
// never reaches a server, a proxy log or a Referer; the page removes them
// from the address bar and the history at once. Links sent before the
// fragment form carried them in the query (/alert?id=…&t=…): they are
// read the same way and stripped too. Opening the link changes nothing
// (mail scanners prefetch links): the page asks the server what the link
// would do (POST /v1/alerts/preview, which acts on nothing), and only the
// button's POST /v1/alerts/answer acts.
import { $, pageConfig, errorMessage, responseError, setBusy, isNetworkError } from './common.js';

const cfg = pageConfig();
const form = $('alert-form');
const submit = $('confirm');
const notice = $('notice');

function linkParams() {
  const frag = new URLSearchParams(window.location.hash.slice(1));
  if (frag.get('t')) return frag;
  return new URLSearchParams(window.location.search);
}

const params = linkParams();
const link = { id: params.get('id') || '', token: params.get('t') || '' };
// Keep the token out of the history and of anything that reads the URL.
if (window.location.hash || window.location.search) {
  history.replaceState(null, '', window.location.pathname);
}
// Another alert link opened in this tab changes the fragment only (no
// new page load): start over with it.
window.addEventListener('hashchange', () => window.location.reload());

function showNotice(kind, text) {
  notice.className = `notice notice-${kind}`;
  notice.textContent = text;
}

function setText(id, text) {
  $(id).textContent = text;
}

async function post(path) {
  const res = await fetch(`${cfg.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify(link),
  });
  if (!res.ok) throw await responseError(res);
  return res.json();
}

// invalid says the link cannot be used (used, expired, foreign, malformed).
function invalid() {
  $('alert-ask').hidden = true;
  $('alert-facts').hidden = true;
  $('alert-invalid').hidden = false;
  setText('alert-title', 'This link can no longer be used');
  setText('alert-subtitle', '');
  showNotice('error', 'The link is invalid, has expired, or was used already (each alert can be answered once, through either of its links).');
}

let notMe = false;

function show(a) {
  notMe = a.answer === 'not_me';
  setText('alert-when', a.when);
  setText('alert-where', a.where);
  setText('alert-browser', a.browser || 'unknown');
  setText('alert-os', a.os || 'unknown');
  setText('alert-ip', a.ip);
  $('alert-facts').hidden = false;
  setText('alert-title', notMe ? 'This wasn\u2019t you?' : 'Was this you?');
  setText('alert-subtitle', 'A new device or place signed in to your account:');
  $('alert-me').hidden = notMe;
  $('alert-not-me').hidden = !notMe;
  submit.className = `btn btn-block ${notMe ? 'btn-danger' : 'btn-primary'}`;
  setText('confirm-label', notMe ? 'Sign out and lock my account' : 'Yes, it was me');
  $('alert-ask').hidden = false;
  submit.disabled = false;
}

function done() {
  $('alert-ask').hidden = true;
  showNotice('success', notMe ? 'Done: your account is locked.' : 'Done: the device is remembered.');
  if (notMe) {
    setText('alert-title', 'Your account is locked and signed out');
    setText('alert-result', 'Every session of your account was signed out, and the account is locked. We emailed you a link to choose a new password; resetting it unlocks the account.');
  } else {
    setText('alert-title', 'Thanks \u2014 this device is remembered');
    setText('alert-result', 'This device is now one of your known devices. You can rename or forget it on your account page.');
    const next = $('alert-next');
    next.href = '/account';
    next.textContent = 'Go to your account';
  }
  setText('alert-subtitle', '');
  $('alert-done').hidden = false;
}

async function preview() {
  if (!link.id || !link.token) {
    setText('alert-subtitle', '');
    showNotice('error', 'This link is incomplete. Open the link from the email again.');
    return;
  }
  try {
    show(await post('/v1/alerts/preview'));
  } catch (err) {
    if (!isNetworkError(err) && (err.status === 410 || err.code === 'invalid_link')) {
      invalid();
      return;
    }
    setText('alert-subtitle', '');
    showNotice('error', errorMessage(err, { action: 'read the link' }));
  }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (submit.disabled) return;
  const label = notMe ? 'Sign out and lock my account' : 'Yes, it was me';
  setBusy(submit, true, notMe ? 'Signing out everywhere…' : 'Remembering this device…');
  try {
    await post('/v1/alerts/answer');
    done();
  } catch (err) {
    setBusy(submit, false, label);
    if (!isNetworkError(err) && (err.status === 410 || err.code === 'invalid_link')) {
      invalid();
      return;
    }
    showNotice('error', errorMessage(err, { action: 'answer the alert' }));
  }
});

preview();
