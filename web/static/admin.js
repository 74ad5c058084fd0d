// /admin: the admin console. Every node is built with h() and textContent;
// the data comes from the admin API (/admin/v1), which checks the admin
// role, the session's age, CSRF and, for destructive actions, a recent
// password confirmation on every request.
import { createClient } from '/sdk/latch.js';
import {
  $, h, pageConfig, parseTime, timeEl, refreshRelativeTimes, relativeTime, absoluteTime, getJSON, responseError, errorMessage, announce, confirmAction,
} from './common.js';

const cfg = pageConfig();
const client = createClient({ baseUrl: cfg.baseUrl, mode: 'cookie', clientId: cfg.clientId });
const main = $('main');
const section = main.dataset.section;
const notice = $('notice');

let leaving = false;

/** signIn sends the administrator to /login, back here afterwards. */
function signIn(fresh) {
  if (leaving) return;
  leaving = true;
  const u = new URL('/login', window.location.origin);
  u.searchParams.set('return_to', window.location.pathname);
  if (fresh) u.searchParams.set('reason', 'expired');
  window.location.replace(u.pathname + u.search);
}

function showNotice(kind, text) {
  notice.className = `notice notice-${kind}`;
  notice.textContent = text;
}

/**
 * call runs an admin API request. 401: the session is gone or too old,
 * so sign in again; 403 forbidden: not an administrator; 403
 * reauth_required: ask for the password, then retry once.
 */
async function call(path, init = {}, retried = false) {
  const opts = { ...init, headers: { ...(init.headers || {}) } };
  if (opts.body !== undefined && typeof opts.body !== 'string') {
    opts.body = JSON.stringify(opts.body);
    opts.headers['Content-Type'] = 'application/json';
  }
  const res = await client.fetch(`${cfg.baseUrl}${path}`, opts);
  if (res.ok) return res.status === 204 ? null : res.json();
  const err = await responseError(res);
  if (res.status === 401 && err.code !== 'invalid_credentials') {
    signIn(true);
    return new Promise(() => {});
  }
  if (res.status === 403 && err.code === 'reauth_required' && !retried) {
    if (await reauthenticate()) return call(path, init, true);
    const e = new Error('cancelled');
    e.code = 'cancelled';
    throw e;
  }
  if (res.status === 403 && err.code === 'forbidden') {
    showNotice('error', 'Only administrators may use the admin console.');
  }
  throw err;
}

/** reauthenticate asks for the password (the dialog) and proves it. */
function reauthenticate() {
  const dlg = $('reauth-dialog');
  const form = $('reauth-form');
  const pw = $('reauth-password');
  const errEl = $('reauth-error');
  const opener = document.activeElement;
  pw.value = '';
  errEl.textContent = '';
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      form.removeEventListener('submit', onSubmit);
      $('reauth-cancel').removeEventListener('click', onCancel);
      dlg.removeEventListener('close', onClose);
      if (dlg.open) dlg.close();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(ok);
    };
    async function onSubmit(ev) {
      ev.preventDefault();
      if (!pw.value) {
        errEl.textContent = 'Enter your password.';
        pw.focus();
        return;
      }
      $('reauth-ok').disabled = true;
      try {
        await call('/admin/v1/reauth', { method: 'POST', body: { password: pw.value } }, true);
        finish(true);
      } catch (err) {
        errEl.textContent = err.code === 'invalid_credentials' ? 'That password is not right.' : errorMessage(err, { action: 'confirm' });
        pw.value = '';
        pw.focus();
      } finally {
        $('reauth-ok').disabled = false;
      }
    }
    const onCancel = () => finish(false);
    const onClose = () => finish(false);
    form.addEventListener('submit', onSubmit);
    $('reauth-cancel').addEventListener('click', onCancel);
    dlg.addEventListener('close', onClose);
    dlg.showModal();
    pw.focus();
  });
}

function fail(err, action) {
  if (err && err.code === 'cancelled') return;
  // The API's own sentence when it gave one; the shared wording otherwise.
  const text = err && err.status && err.message && !/^HTTP \d+$/.test(err.message) ? err.message : errorMessage(err, { action });
  announce(text, { error: true, ms: 8000 });
}

function when(s) {
  const d = parseTime(s);
  return d ? timeEl(d) : h('span', { className: 'muted' }, '—');
}

/** whenAbs shows a date as a date (the key ring's), the relative time in its title. */
function whenAbs(s) {
  const d = parseTime(s);
  if (!d) return h('span', { className: 'muted' }, '—');
  return h('span', { title: relativeTime(d), className: 'nowrap' }, absoluteTime(d)); // not <time datetime>: refreshRelativeTimes rewrites those
}

function cell(...c) {
  return h('td', {}, ...c);
}

function empty(tbody, state, text) {
  tbody.replaceChildren();
  state.textContent = text;
}

function detailText(d) {
  if (!d) return '';
  return Object.entries(d).map(([k, v]) => `${k}: ${v}`).join(', ');
}

// ---------- Users ----------

let userCursor = '';
let userQuery = '';

async function loadUsers(after = '') {
  const tbody = $('users');
  const state = $('users-state');
  state.textContent = 'Loading users…';
  const p = new URLSearchParams();
  if (userQuery) p.set('q', userQuery);
  if (after) p.set('after', after);
  try {
    const body = await call(`/admin/v1/users?${p}`);
    tbody.replaceChildren(...body.users.map((u) => h('tr', {},
      cell(h('a', { href: `/admin/users/${encodeURIComponent(u.id)}` }, u.email)),
      cell(h('span', { className: 'mono small' }, u.id)),
      cell(userBadges(u)),
      cell(when(u.created_at)))));
    state.textContent = body.users.length ? '' : (userQuery ? 'No user matches.' : 'No users yet.');
    if (typeof body.total === 'number') $('users-total').textContent = `(${body.total} in all)`;
    userCursor = body.next || '';
    $('users-more').hidden = !userCursor;
    $('users-first').hidden = !after;
  } catch (err) {
    empty(tbody, state, 'The users could not be loaded.');
    fail(err, 'load the users');
  }
}

function userBadges(u) {
  const b = h('span', { className: 'row gap-small' });
  if (u.role === 'admin') b.append(h('span', { className: 'badge badge-accent' }, 'Admin'));
  if (u.locked_at) b.append(h('span', { className: 'badge badge-danger' }, u.lock_reason === 'admin' ? 'Locked' : `Locked (${u.lock_reason})`));
  else b.append(h('span', { className: 'badge badge-success' }, 'Active'));
  if (!u.email_verified_at) b.append(h('span', { className: 'badge' }, 'Unverified email'));
  return b;
}

function initUsers() {
  const q = new URLSearchParams(window.location.search).get('q');
  if (q) {
    userQuery = q.trim().slice(0, 254);
    $('q').value = userQuery;
  }
  $('user-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    userQuery = $('q').value.trim();
    loadUsers();
  });
  $('users-more').addEventListener('click', () => loadUsers(userCursor));
  $('users-first').addEventListener('click', () => loadUsers());
  const dlg = $('user-dialog');
  $('user-new').addEventListener('click', () => {
    $('user-form-error').textContent = '';
    dlg.showModal();
    $('new-email').focus();
  });
  $('user-cancel').addEventListener('click', () => dlg.close());
  $('user-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const email = $('new-email').value.trim();
    const password = $('new-password').value;
    if (!email || !password) {
      $('user-form-error').textContent = 'Enter an email address and a password.';
      return;
    }
    try {
      const u = await call('/admin/v1/users', { method: 'POST', body: { email, password } });
      dlg.close();
      window.location.assign(`/admin/users/${encodeURIComponent(u.id)}`);
    } catch (err) {
      $('user-form-error').textContent = err.message || errorMessage(err, { action: 'create the user' });
    }
  });
  loadUsers();
}

// ---------- One user ----------

async function loadUser() {
  const id = main.dataset.user;
  $('uevents-all').href = `/admin/events?user=${encodeURIComponent(id)}`;
  let body;
  try {
    body = await call(`/admin/v1/users/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) showNotice('error', 'There is no such user (any more).');
    else fail(err, 'load the user');
    for (const s of ['usessions-state', 'udevices-state', 'uevents-state']) $(s).textContent = '';
    return;
  }
  const u = body.user;
  $('user-title').textContent = u.email;
  const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
  $('profile').replaceChildren(
    ...kv('Email', u.email),
    ...kv('State', userBadges(u)),
    ...kv('Email verified', u.email_verified_at ? when(u.email_verified_at) : 'not yet'),
    ...kv('Created', when(u.created_at)),
    ...(u.locked_at ? kv('Locked', when(u.locked_at)) : []),
  );
  const locked = Boolean(u.locked_at);
  $('act-lock').hidden = locked;
  $('act-unlock').hidden = !locked;
  for (const b of ['act-lock', 'act-reset', 'act-delete']) $(b).disabled = false;
  $('act-revoke-all').disabled = body.sessions.length === 0;

  const st = $('usessions');
  st.replaceChildren(...body.sessions.map((s) => {
    const btn = h('button', { type: 'button', className: 'btn btn-danger-outline btn-small', 'aria-label': `Revoke the session from ${s.ip}` }, 'Revoke');
    btn.addEventListener('click', () => revokeSession(s, btn));
    return h('tr', { 'data-session': s.id },
      cell(h('span', { className: 'mono small' }, s.client_id)),
      cell(h('span', { className: 'mono' }, s.ip || '—')),
      cell(h('span', { className: 'small clip', title: s.user_agent }, s.user_agent || '—')),
      cell(when(s.created_at)), cell(when(s.last_used_at)), cell(btn));
  }));
  $('usessions-state').textContent = body.sessions.length ? '' : 'No live sessions.';

  $('udevices').replaceChildren(...body.devices.map((d) => h('tr', {},
    cell(d.name || [d.browser, d.os].filter(Boolean).join(' on ') || 'Unknown device'),
    cell(h('span', { className: 'mono' }, d.last_ip || '—')),
    cell([d.city, d.country].filter(Boolean).join(', ') || '—'),
    cell(when(d.last_seen_at)))));
  $('udevices-state').textContent = body.devices.length ? '' : 'No known devices.';

  $('uevents').replaceChildren(...body.events.map(eventRow(false)));
  $('uevents-state').textContent = body.events.length ? '' : 'No events.';
  refreshRelativeTimes();
}

async function revokeSession(s, btn) {
  const ok = await confirmAction({ title: 'Revoke this session?', body: `The session from ${s.ip || 'an unknown address'} ends now; its tokens stop working within a second.`, confirm: 'Revoke' });
  if (!ok) return;
  btn.disabled = true;
  try {
    await call(`/admin/v1/sessions/${encodeURIComponent(s.id)}/revoke`, { method: 'POST' });
    announce('Session revoked.');
    await loadUser();
  } catch (err) {
    btn.disabled = false;
    fail(err, 'revoke the session');
  }
}

async function userAction(btn, { title, body, confirm, path, method = 'POST', done, after }) {
  if (!(await confirmAction({ title, body, confirm }))) return;
  btn.disabled = true;
  try {
    await call(path, { method });
    announce(done);
    if (after) after();
    else await loadUser();
  } catch (err) {
    fail(err, title.replace(/\?$/, '').toLowerCase());
  } finally {
    btn.disabled = false;
  }
}

function initUser() {
  const id = encodeURIComponent(main.dataset.user);
  $('act-revoke-all').addEventListener('click', (ev) => userAction(ev.currentTarget, {
    title: 'Revoke every session?', body: 'Every session of this user ends now and every access token already issued is refused. Needs your password.',
    confirm: 'Revoke all', path: `/admin/v1/users/${id}/revoke`, done: 'Every session revoked.' }));
  $('act-lock').addEventListener('click', (ev) => userAction(ev.currentTarget, {
    title: 'Lock this user?', body: 'They cannot sign in until an administrator unlocks them, and every session ends now. Needs your password.',
    confirm: 'Lock', path: `/admin/v1/users/${id}/lock`, done: 'User locked.' }));
  $('act-unlock').addEventListener('click', (ev) => userAction(ev.currentTarget, {
    title: 'Unlock this user?', body: 'They can sign in again.', confirm: 'Unlock', path: `/admin/v1/users/${id}/unlock`, done: 'User unlocked.' }));
  $('act-reset').addEventListener('click', (ev) => userAction(ev.currentTarget, {
    title: 'Send a password reset?', body: 'The user is emailed a link to choose a new password.', confirm: 'Send',
    path: `/admin/v1/users/${id}/password-reset`, done: 'Password reset sent.' }));
  $('act-delete').addEventListener('click', (ev) => userAction(ev.currentTarget, {
    title: 'Delete this user?', body: 'The account, its sessions and devices are deleted for good; its events stay in the log. Needs your password.',
    confirm: 'Delete', method: 'DELETE', path: `/admin/v1/users/${id}`, done: 'User deleted.',
    after: () => window.location.assign('/admin/users') }));
  loadUser();
}

// ---------- Events ----------

function eventRow(withUser) {
  return (e) => h('tr', {},
    cell(whenAbs(e.at)),
    cell(h('span', { className: 'mono small nowrap' }, e.type)),
    ...(withUser ? [cell(e.user_id ? h('a', { href: `/admin/users/${encodeURIComponent(e.user_id)}`, className: 'mono small id', title: e.user_id }, e.user_id) : '—')] : []),
    cell(h('span', { className: 'mono' }, e.ip || '—')),
    cell(h('span', { className: 'small' }, [e.client_id ? `client: ${e.client_id}` : '', detailText(e.detail)].filter(Boolean).join(', '))));
}

let eventCursor = '';

function eventParams() {
  const p = new URLSearchParams();
  const type = $('f-type').value.trim();
  if (type) p.set('type', type);
  for (const [k, id] of [['user', 'f-user'], ['ip', 'f-ip']]) {
    const v = $(id).value.trim();
    if (v) p.set(k, v);
  }
  for (const [k, id] of [['from', 'f-from'], ['to', 'f-to']]) {
    const v = $(id).value;
    if (v) {
      const d = new Date(v);
      if (!Number.isNaN(d.getTime())) p.set(k, d.toISOString().replace(/\.\d{3}Z$/, 'Z'));
    }
  }
  return p;
}

async function loadEvents(before = '') {
  const tbody = $('events');
  const state = $('events-state');
  state.textContent = 'Loading events…';
  const p = eventParams();
  for (const [id, fmt] of [['export-csv', 'csv'], ['export-json', 'json']]) {
    const q = new URLSearchParams(p);
    q.set('format', fmt);
    $(id).href = `/admin/v1/events/export?${q}`;
  }
  if (before) p.set('before', before);
  try {
    const body = await call(`/admin/v1/events?${p}`);
    tbody.replaceChildren(...body.events.map(eventRow(true)));
    state.textContent = body.events.length ? '' : 'No events match.';
    eventCursor = body.next || '';
    $('events-more').hidden = !eventCursor;
    $('events-first').hidden = !before;
    refreshRelativeTimes();
  } catch (err) {
    empty(tbody, state, 'The events could not be loaded.');
    fail(err, 'load the events');
  }
}

const eventTypes = ['login_succeeded', 'login_failed', 'refresh_token_reused', 'session_revoked', 'logout_all', 'admin_revoked',
  'admin_action', 'admin_created', 'account_locked', 'account_unlocked', 'user_created', 'user_deleted', 'client_created',
  'keys_rotated', 'key_revoked', 'password_reset_requested', 'password_reset', 'risk_denied', 'risk_revoked', 'sign_in_locked'];

function initEvents() {
  $('event-types').replaceChildren(...eventTypes.map((t) => h('option', { value: t })));
  const q = new URLSearchParams(window.location.search);
  if (q.get('user')) $('f-user').value = q.get('user').slice(0, 256);
  if (q.get('type')) $('f-type').value = q.get('type').slice(0, 512);
  $('event-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    loadEvents();
  });
  $('events-more').addEventListener('click', () => loadEvents(eventCursor));
  $('events-first').addEventListener('click', () => loadEvents());
  loadEvents();
}

// ---------- Clients ----------

async function loadClients() {
  const tbody = $('clients');
  const state = $('clients-state');
  try {
    const body = await call('/admin/v1/clients');
    tbody.replaceChildren(...body.clients.map((c) => h('tr', {},
      cell(h('span', { className: 'mono' }, c.id), c.name ? h('span', { className: 'muted small block' }, c.name) : ''),
      cell(h('span', { className: c.public ? 'badge' : 'badge badge-accent' }, c.public ? 'public' : 'confidential'), c.first_party ? h('span', { className: 'badge badge-success' }, 'first-party') : ''),
      cell(c.delivery),
      cell(h('span', { className: 'mono small' }, c.scopes.join(' ') || '—')),
      cell(...(c.redirect_uris || []).map((u) => h('span', { className: 'mono small block' }, u))),
      cell(when(c.created_at)),
      cell(clientActions(c)))));
    state.textContent = body.clients.length ? '' : 'No clients yet.';
    refreshRelativeTimes();
  } catch (err) {
    empty(tbody, state, 'The clients could not be loaded.');
    fail(err, 'load the clients');
  }
}

// editing is the client the dialog edits; null when it registers one.
let editing = null;

function clientActions(c) {
  const wrap = h('span', { className: 'row gap-small nowrap' });
  const edit = h('button', { type: 'button', className: 'btn btn-secondary btn-small', 'aria-label': `Edit ${c.id}` }, 'Edit');
  edit.addEventListener('click', () => openClientDialog(c));
  wrap.append(edit);
  if (!c.public) {
    const rot = h('button', { type: 'button', className: 'btn btn-secondary btn-small', 'aria-label': `Rotate the secret of ${c.id}` }, 'Rotate secret');
    rot.addEventListener('click', async () => {
      if (!(await confirmAction({ title: `Rotate the secret of ${c.id}?`, body: 'A new secret is generated and shown once; the current one stops working at once. Needs your password.', confirm: 'Rotate secret' }))) return;
      try {
        const body = await call(`/admin/v1/clients/${encodeURIComponent(c.id)}/secret`, { method: 'POST' });
        showSecret(c.id, body.client_secret);
      } catch (err) {
        fail(err, 'rotate the secret');
      }
    });
    wrap.append(rot);
  }
  const del = h('button', { type: 'button', className: 'btn btn-danger-outline btn-small', 'aria-label': `Delete ${c.id}` }, 'Delete');
  del.addEventListener('click', async () => {
    if (!(await confirmAction({ title: `Delete the client ${c.id}?`, body: 'It can no longer obtain or refresh tokens, and the consents to it are deleted. Needs your password.', confirm: 'Delete' }))) return;
    try {
      await call(`/admin/v1/clients/${encodeURIComponent(c.id)}`, { method: 'DELETE' });
      announce(`Client ${c.id} deleted.`);
      loadClients();
    } catch (err) {
      fail(err, 'delete the client');
    }
  });
  wrap.append(del);
  return wrap;
}

function showSecret(id, secret) {
  $('secret-client').textContent = id;
  $('secret-value').value = secret;
  $('secret-dialog').showModal();
  $('secret-value').select();
}

function openClientDialog(c) {
  editing = c;
  $('client-form-error').textContent = '';
  $('client-dialog-title').textContent = c ? `Edit ${c.id}` : 'New client';
  $('client-create').textContent = c ? 'Save' : 'Create client';
  $('c-id').value = c ? c.id : '';
  $('c-id').readOnly = Boolean(c);
  $('c-name').value = c ? c.name || '' : '';
  $('c-public').checked = Boolean(c && c.public);
  $('c-confidential').checked = !(c && c.public);
  $('c-public').disabled = Boolean(c);
  $('c-confidential').disabled = Boolean(c);
  $('c-redirects').value = c ? (c.redirect_uris || []).join('\n') : '';
  $('c-scopes').value = c ? c.scopes.join(' ') : '';
  $('c-audience').value = c ? c.audience || '' : '';
  $('c-delivery').value = c ? c.delivery : 'bearer';
  $('c-first-party').checked = Boolean(c && c.first_party);
  $('client-dialog').showModal();
  (c ? $('c-name') : $('c-id')).focus();
}

function initClients() {
  const dlg = $('client-dialog');
  $('client-new').addEventListener('click', () => openClientDialog(null));
  $('client-cancel').addEventListener('click', () => dlg.close());
  $('client-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const isPublic = $('c-public').checked;
    const req = {
      id: $('c-id').value.trim(),
      name: $('c-name').value.trim(),
      public: isPublic,
      redirect_uris: $('c-redirects').value.split('\n').map((s) => s.trim()).filter(Boolean),
      scopes: $('c-scopes').value.split(' ').map((s) => s.trim()).filter(Boolean),
      audience: $('c-audience').value.trim(),
      delivery: $('c-delivery').value,
      first_party: $('c-first-party').checked,
    };
    if (!req.id) {
      $('client-form-error').textContent = 'Enter a client id.';
      $('c-id').focus();
      return;
    }
    try {
      if (editing) {
        const { id, public: _p, ...edit } = req;
        await call(`/admin/v1/clients/${encodeURIComponent(editing.id)}`, { method: 'PATCH', body: edit });
        dlg.close();
        announce(`Client ${editing.id} saved.`);
        loadClients();
        return;
      }
      const body = await call('/admin/v1/clients', { method: 'POST', body: req });
      dlg.close();
      announce(`Client ${body.client.id} created.`);
      if (body.client_secret) showSecret(body.client.id, body.client_secret);
      loadClients();
    } catch (err) {
      $('client-form-error').textContent = err.message || errorMessage(err, { action: 'create the client' });
    }
  });
  $('secret-copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('secret-value').value);
      announce('Copied.');
    } catch {
      $('secret-value').select();
    }
  });
  $('secret-dialog').addEventListener('close', () => {
    $('secret-value').value = '';
  });
  loadClients();
}

// ---------- Keys ----------

async function loadKeys() {
  const tbody = $('keys');
  const state = $('keys-state');
  try {
    const body = await call('/admin/v1/keys');
    tbody.replaceChildren(...body.keys.map((k) => {
      const tone = { active: 'badge-success', pending: 'badge-accent', revoked: 'badge-danger' }[k.state] || '';
      const btn = h('button', { type: 'button', className: 'btn btn-danger-outline btn-small', 'aria-label': `Revoke key ${k.kid}` }, 'Revoke');
      btn.hidden = k.state === 'revoked' || k.state === 'removed';
      btn.addEventListener('click', () => revokeKey(k, btn));
      return h('tr', {},
        cell(h('span', { className: 'mono small' }, k.kid)), cell(k.family), cell(k.alg),
        cell(h('span', { className: `badge ${tone}` }, k.state)),
        cell(whenAbs(k.not_before)), cell(k.not_after ? whenAbs(k.not_after) : h('span', { className: 'muted' }, 'until replaced')), cell(btn));
    }));
    state.textContent = body.keys.length ? '' : 'The ring is empty.';
    refreshRelativeTimes();
  } catch (err) {
    empty(tbody, state, 'The keys could not be loaded.');
    fail(err, 'load the keys');
  }
}

async function revokeKey(k, btn) {
  const ok = await confirmAction({ title: 'Revoke this key?', body: `No token signed by ${k.kid} is accepted any more; if it is active, a new key replaces it at once. Needs your password.`, confirm: 'Revoke key' });
  if (!ok) return;
  btn.disabled = true;
  try {
    await call(`/admin/v1/keys/${encodeURIComponent(k.kid)}/revoke`, { method: 'POST' });
    announce('Key revoked.');
  } catch (err) {
    fail(err, 'revoke the key');
  }
  loadKeys();
}

function initKeys() {
  $('keys-rotate').addEventListener('click', async (ev) => {
    const btn = ev.currentTarget;
    const ok = await confirmAction({ title: 'Rotate the keys now?', body: 'New keys sign from now on; the current ones stay published until their tokens expire. Needs your password.', confirm: 'Rotate now' });
    if (!ok) return;
    btn.disabled = true;
    try {
      await call('/admin/v1/keys/rotate', { method: 'POST' });
      announce('Keys rotated.');
    } catch (err) {
      fail(err, 'rotate the keys');
    } finally {
      btn.disabled = false;
    }
    loadKeys();
  });
  loadKeys();
}

// ---------- Overview ----------

// The chart elements package chart draws; anything else in a chart's
// markup (there is none) is dropped, as is any attribute that could run
// or fetch something.
const chartTags = new Set(['svg', 'title', 'desc', 'g', 'text', 'path', 'rect', 'line', 'polyline', 'circle']);

/**
 * chartNode parses a chart's SVG markup, drawn by the server's package
 * chart from numbers and escaped fixed labels, into an svg element
 * (DOMParser as XML: no script runs, no innerHTML).
 */
function chartNode(markup) {
  const doc = new DOMParser().parseFromString(markup, 'image/svg+xml');
  const svg = doc.documentElement;
  if (!svg || svg.localName !== 'svg' || doc.getElementsByTagName('parsererror').length) return h('span', { className: 'muted small' }, 'no chart');
  for (const el of [svg, ...svg.querySelectorAll('*')]) {
    if (!chartTags.has(el.localName)) {
      el.remove();
      continue;
    }
    for (const a of [...el.attributes]) {
      if (/^on/i.test(a.name) || /href$/i.test(a.name) || a.name === 'style') el.removeAttribute(a.name);
    }
  }
  return document.importNode(svg, true);
}

function emptyRow(tbody, cols, text) {
  tbody.replaceChildren(h('tr', {}, h('td', { colspan: cols, className: 'muted' }, text)));
}

function count(n) {
  return Number.isInteger(n) ? n.toLocaleString('en') : n.toLocaleString('en', { maximumFractionDigits: 1 });
}

function chartRows(tbody, list) {
  tbody.replaceChildren(...list.map((c) => h('tr', {},
    h('th', { scope: 'row' }, c.label),
    h('td', {}, h('div', { className: 'ov-chart' }, h('span', { className: 'ov-total' }, `${count(c.last_hour)} in the last hour`), chartNode(c.hour_svg))),
    h('td', {}, h('div', { className: 'ov-chart' }, h('span', { className: 'ov-total' }, `${count(c.last_day)} in 24 hours`), chartNode(c.day_svg))))));
}

function health(name, list) {
  const hl = list.find((x) => x.name === name);
  const val = $(`ov-health-${name}`);
  const detail = $(`ov-health-${name}-detail`);
  if (!hl || !hl.configured) {
    val.textContent = 'Not configured';
    val.className = 'ov-tile-value ov-word muted';
    detail.textContent = name === 'redis' ? 'single instance: no fan-out' : '';
    return;
  }
  val.textContent = hl.ok ? 'Healthy' : 'Unreachable';
  val.className = `ov-tile-value ov-word ${hl.ok ? 'ov-ok' : 'ov-bad'}`;
  detail.textContent = hl.ok ? `answered in ${hl.latency_ms < 0.1 ? 'under 0.1' : hl.latency_ms.toFixed(1)} ms` : hl.error;
}

function duration(sec) {
  if (sec < 1) return 'current';
  if (sec < 120) return `${Math.round(sec)} s`;
  if (sec < 7200) return `${Math.round(sec / 60)} min`;
  return `${Math.round(sec / 3600)} h`;
}

async function loadOverview() {
  let o;
  try {
    o = await call('/admin/v1/overview');
  } catch (err) {
    fail(err, 'load the overview');
    return;
  }
  $('ov-at').textContent = `As of ${absoluteTime(parseTime(o.at))}.`;
  $('ov-users').textContent = count(o.users);
  $('ov-sessions').textContent = count(o.live_sessions);
  health('store', o.health);
  health('redis', o.health);
  chartRows($('ov-cluster'), o.cluster);
  chartRows($('ov-instance'), o.instance);
  $('ov-feed-head').textContent = `Head: entry ${count(o.feed.head)}. Followers connected to this instance and how far behind they are.`;
  const fl = $('ov-followers');
  if (!o.feed.followers.length) emptyRow(fl, 4, 'No follower is connected to this instance.');
  else fl.replaceChildren(...o.feed.followers.map((f) => h('tr', {},
    cell(h('span', { className: 'mono' }, f.client_id)),
    cell(f.behind === 0 ? h('span', { className: 'badge badge-success' }, 'up to date') : h('span', { className: 'badge badge-warning' }, `${count(f.behind)} entries`)),
    cell(f.synced_at ? duration(f.age_seconds) : 'never synced'),
    cell(timeEl(parseTime(f.since))))));
  const keys = $('ov-keys');
  if (!o.keys.length) emptyRow(keys, 4, 'No key.');
  else keys.replaceChildren(...o.keys.map((k) => h('tr', {},
    cell(h('span', { className: 'mono id', title: k.kid }, k.kid)),
    cell(k.family, ' ', h('span', { className: 'muted small' }, k.alg)),
    cell(h('span', { className: `badge ${k.state === 'revoked' ? 'badge-danger' : k.state === 'active' ? 'badge-success' : ''}` }, k.state)),
    cell(timeEl(parseTime(k.created_at))))));
  const ev = $('ov-events');
  if (!o.events.length) emptyRow(ev, 3, 'No event in the last 24 hours.');
  else ev.replaceChildren(...o.events.map((e) => h('tr', {},
    cell(h('span', { className: 'mono' }, e.type)), cell(count(e.last_hour)), cell(count(e.last_day)))));
  if (o.errors.length) showNotice('error', `Some figures could not be read: ${o.errors.join('; ')}`);
  else if (notice.classList.contains('notice-error')) { notice.className = 'notice'; notice.textContent = ''; }
}

function initOverview() {
  loadOverview();
  setInterval(loadOverview, 60000);
}

// ---------- Start ----------

async function start() {
  $('signout').addEventListener('click', async () => {
    try {
      await client.logout();
    } catch {
      // signed out locally all the same
    }
    window.location.replace('/login?reason=signed_out');
  });
  try {
    const me = await call('/admin/v1/me');
    if (me.user) $('admin-email').textContent = me.user.email;
  } catch (err) {
    if (err.status !== 403) fail(err, 'open the console');
    main.setAttribute('aria-busy', 'false');
    return;
  }
  const init = { overview: initOverview, users: initUsers, user: initUser, events: initEvents, clients: initClients, keys: initKeys }[section];
  if (init) init();
  main.setAttribute('aria-busy', 'false');
  setInterval(() => refreshRelativeTimes(), 30000);
}

start();
