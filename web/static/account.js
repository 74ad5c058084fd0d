// /account: the signed-in user's sessions, the apps with access to the
// account (OpenID Connect consents) and recent security events.
import { createClient } from '/sdk/latch.js';
import {
  $, h, pageConfig, parseTime, timeEl, refreshRelativeTimes, deviceLabel, deviceKind, capitalize,
  getJSON, responseError, errorMessage, isSessionGone, announce, confirmAction, goToLogin,
} from './common.js';

const cfg = pageConfig();
const client = createClient({ baseUrl: cfg.baseUrl, mode: 'cookie', clientId: cfg.clientId });
const api = (p) => `${cfg.baseUrl}${p}`;

const main = $('main');
const sessionsList = $('sessions');
const sessionsState = $('sessions-state');
const appsList = $('apps');
const appsState = $('apps-state');
const eventsList = $('events');
const eventsState = $('events-state');
const devicesList = $('devices');
const devicesState = $('devices-state');
const alertsList = $('alerts');
const alertsState = $('alerts-state');
const signoutAll = $('signout-all');
const signout = $('signout');
const userEmail = $('user-email');

let leaving = false;

function sessionEnded(reason = 'expired') {
  if (leaving) return;
  leaving = true;
  goToLogin(reason);
}

/** guard runs an API call and sends the user to /login when the session is gone. */
async function guard(fn) {
  try {
    return await fn();
  } catch (err) {
    if (isSessionGone(err)) {
      sessionEnded('expired');
      return new Promise(() => {}); // never settles: the page is going away
    }
    throw err;
  }
}

// ---------- Sessions ----------

function sessionRow(s) {
  const current = s.current === true;
  const api = deviceKind(s) === 'api' && !s.browser;
  const label = api ? 'API or command-line client' : capitalize(deviceLabel(s));
  const created = parseTime(s.created_at);
  const lastUsed = parseTime(s.last_used_at) || created;

  const title = h('span', { className: 'row-title' }, h('span', {}, label));
  if (current) title.append(h('span', { className: 'badge badge-success' }, 'This device'));
  if (s.client_name || s.client_id) {
    title.append(h('span', { className: 'badge' }, s.client_name || s.client_id));
  }

  const meta = h('span', { className: 'row-meta' });
  if (api && s.user_agent) meta.append(h('span', { className: 'mono' }, String(s.user_agent).slice(0, 60)), ' · ');
  if (s.ip) meta.append(h('span', { className: 'mono' }, s.ip), ' · ');
  meta.append('Signed in ', timeEl(created));
  if (!current) meta.append(' · Last active ', timeEl(lastUsed));
  else meta.append(' · Active now');

  const action = current
    ? h('button', { type: 'button', className: 'btn btn-secondary btn-small' }, 'Sign out')
    : h('button', { type: 'button', className: 'btn btn-danger-outline btn-small' }, 'Sign out');
  action.setAttribute('aria-label', current ? 'Sign out of this device' : `Sign out ${label}${s.ip ? ` at ${s.ip}` : ''}`);
  action.addEventListener('click', () => (current ? signOutHere(action) : revokeSession(s, label, action)));

  return h(
    'li',
    { className: `list-row session-row${current ? ' session-current' : ''}`, 'data-session-id': s.id },
    h('span', { className: `row-icon icon-${deviceKind(s)}`, 'aria-hidden': 'true' }),
    h('span', { className: 'row-body' }, title, meta),
    h('span', { className: 'row-action' }, action),
  );
}

async function loadSessions() {
  const body = await guard(() => getJSON(client, api('/v1/sessions')));
  const list = (body && Array.isArray(body.sessions) ? body.sessions : []).slice();
  // This device first, then the most recently active.
  list.sort((a, b) => (b.current === true) - (a.current === true) ||
    (parseTime(b.last_used_at)?.getTime() || 0) - (parseTime(a.last_used_at)?.getTime() || 0));
  sessionsList.replaceChildren(...list.map(sessionRow));
  const others = list.filter((s) => !s.current).length;
  if (list.length === 0) sessionsState.textContent = 'No active sessions.';
  else if (others === 0) sessionsState.textContent = "You're only signed in on this device.";
  else sessionsState.textContent = '';
  signoutAll.disabled = list.length === 0;
}

async function revokeSession(s, label, btn) {
  const ok = await confirmAction({
    title: `Sign out ${label}?`,
    body: `That ${deviceKind(s) === 'api' ? 'client' : 'device'}${s.ip ? ` (${s.ip})` : ''} will have to sign in again.`,
    confirm: 'Sign out',
  });
  if (!ok) return;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    await guard(async () => {
      const res = await client.fetch(api(`/v1/sessions/${encodeURIComponent(s.id)}`), { method: 'DELETE' });
      if (!res.ok && res.status !== 404) throw await responseError(res);
    });
    const row = btn.closest('li');
    const index = row ? [...sessionsList.children].indexOf(row) : 0;
    announce(`Signed out ${label}.`);
    await Promise.allSettled([loadSessions(), loadEvents()]);
    // Keep keyboard focus where the row was, once it is gone.
    const rows = sessionsList.children;
    const next = rows.length ? rows[Math.min(Math.max(index, 0), rows.length - 1)].querySelector('button') : null;
    (next || signoutAll).focus();
  } catch (err) {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    announce(errorMessage(err, { action: 'sign out that session' }), { error: true });
  }
}

async function signOutHere(btn) {
  btn.disabled = true;
  leaving = true;
  try {
    await client.logout();
  } catch {
    // The cookies are cleared by the SDK either way; the session may already be gone.
  }
  goToLogin('signed_out');
}

async function signOutEverywhere() {
  const ok = await confirmAction({
    title: 'Sign out everywhere?',
    body: 'Every session on every device, including this one, is ended. You will need to sign in again everywhere.',
    confirm: 'Sign out everywhere',
  });
  if (!ok) return;
  signoutAll.disabled = true;
  signoutAll.setAttribute('aria-busy', 'true');
  leaving = true;
  try {
    await client.logoutAll();
    goToLogin('signed_out_all');
  } catch (err) {
    leaving = false;
    signoutAll.disabled = false;
    signoutAll.removeAttribute('aria-busy');
    if (isSessionGone(err)) return sessionEnded('expired');
    announce(errorMessage(err, { action: 'sign you out everywhere' }), { error: true });
  }
}

// ---------- Devices ----------

function placeOf(d) {
  if (d.city && d.country) return `${d.city}, ${d.country}`;
  return d.country || '';
}

function deviceRow(d) {
  const kind = d.client ? 'api' : deviceKind(d);
  const what = d.client ? `API or command-line client${d.browser ? ` (${d.browser})` : ''}` : capitalize(deviceLabel(d));
  const label = d.name ? String(d.name) : what;
  const title = h('span', { className: 'row-title' }, h('span', { className: 'device-name' }, label));
  if (d.current) title.append(h('span', { className: 'badge badge-success' }, 'This device'));
  if (d.confirmed_at) title.append(h('span', { className: 'badge' }, 'Confirmed'));
  const meta = h('span', { className: 'row-meta' });
  if (d.name) meta.append(what, ' · ');
  const where = placeOf(d);
  if (where) meta.append(where, ' · ');
  if (d.last_ip) meta.append(h('span', { className: 'mono' }, d.last_ip), ' · ');
  meta.append('Last seen ', timeEl(parseTime(d.last_seen_at)));

  const rename = h('button', { type: 'button', className: 'btn btn-secondary btn-small' }, 'Rename');
  rename.setAttribute('aria-label', `Rename ${label}`);
  const forget = h('button', { type: 'button', className: 'btn btn-danger-outline btn-small' }, 'Forget');
  forget.setAttribute('aria-label', `Forget ${label}`);
  const row = h(
    'li',
    { className: 'list-row device-row', 'data-device-id': d.id },
    h('span', { className: `row-icon icon-${kind}`, 'aria-hidden': 'true' }),
    h('span', { className: 'row-body' }, title, meta),
    h('span', { className: 'row-action' }, rename, forget),
  );
  rename.addEventListener('click', () => startRename(d, row));
  forget.addEventListener('click', () => forgetDevice(d, label, forget));
  return row;
}

function startRename(d, row) {
  const input = h('input', { type: 'text', maxlength: '100', 'aria-label': 'Device name' });
  input.value = d.name || '';
  const save = h('button', { type: 'submit', className: 'btn btn-primary btn-small' }, 'Save');
  const cancel = h('button', { type: 'button', className: 'btn btn-secondary btn-small' }, 'Cancel');
  const form = h('form', { className: 'rename-form' }, input, save, cancel);
  const body = row.querySelector('.row-body');
  const action = row.querySelector('.row-action');
  body.replaceChildren(form);
  action.hidden = true;
  input.focus();
  cancel.addEventListener('click', () => loadDevices());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    save.disabled = true;
    try {
      await guard(async () => {
        const res = await client.fetch(api(`/v1/devices/${encodeURIComponent(d.id)}`), {
          method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: input.value.trim() }),
        });
        if (!res.ok) throw await responseError(res);
      });
      announce('Device renamed.');
      await loadDevices();
    } catch (err) {
      save.disabled = false;
      announce(errorMessage(err, { action: 'rename the device' }), { error: true });
    }
  });
}

async function forgetDevice(d, label, btn) {
  const ok = await confirmAction({
    title: `Forget ${label}?`,
    body: 'Its next sign-in will count as a new device and email you an alert. Its sessions stay signed in; sign them out above.',
    confirm: 'Forget',
  });
  if (!ok) return;
  btn.disabled = true;
  try {
    await guard(async () => {
      const res = await client.fetch(api(`/v1/devices/${encodeURIComponent(d.id)}`), { method: 'DELETE' });
      if (!res.ok && res.status !== 404) throw await responseError(res);
    });
    announce(`Forgot ${label}.`);
    await loadDevices();
  } catch (err) {
    btn.disabled = false;
    announce(errorMessage(err, { action: 'forget the device' }), { error: true });
  }
}

async function loadDevices() {
  let body;
  try {
    body = await guard(() => getJSON(client, api('/v1/devices')));
  } catch (err) {
    if (err && err.status === 404) {
      $('devices-card').hidden = true; // this server does not track devices
      return;
    }
    throw err;
  }
  const list = (body && Array.isArray(body.devices) ? body.devices : []).slice();
  // This device first, then the most recently seen.
  list.sort((a, b) => (b.current === true) - (a.current === true) ||
    (parseTime(b.last_seen_at)?.getTime() || 0) - (parseTime(a.last_seen_at)?.getTime() || 0));
  devicesList.replaceChildren(...list.map(deviceRow));
  devicesState.textContent = list.length === 0 ? 'No devices yet.' : '';
}

// ---------- Sign-in alerts ----------

const alertStates = {
  pending: { text: 'Not answered', badge: 'badge-warning' },
  confirmed: { text: 'You confirmed it', badge: 'badge-success' },
  not_me: { text: "You said it wasn't you", badge: 'badge-danger' },
  expired: { text: 'Expired unanswered', badge: '' },
};

function alertRow(a) {
  const st = alertStates[a.state] || { text: String(a.state || ''), badge: '' };
  const title = h('span', { className: 'row-title' }, h('span', {}, `New sign-in from ${deviceLabel(a)}`),
    h('span', { className: `badge ${st.badge}` }, st.text));
  const meta = h('span', { className: 'row-meta' });
  if (a.where) meta.append(String(a.where), ' · ');
  meta.append(timeEl(parseTime(a.at)));
  return h(
    'li',
    { className: `list-row alert-row alert-${a.state}`, 'data-alert-id': a.id },
    h('span', { className: 'row-icon icon-warning', 'aria-hidden': 'true' }),
    h('span', { className: 'row-body' }, title, meta),
  );
}

async function loadAlerts() {
  let body;
  try {
    body = await guard(() => getJSON(client, api('/v1/alerts')));
  } catch (err) {
    if (err && err.status === 404) {
      $('alerts-card').hidden = true;
      return;
    }
    throw err;
  }
  const list = body && Array.isArray(body.alerts) ? body.alerts : [];
  alertsList.replaceChildren(...list.map(alertRow));
  alertsState.textContent = list.length === 0 ? 'No alerts: every sign-in came from a device you use.' : '';
}

// ---------- Apps with access ----------

// What a scope lets an app do, in the words of the consent page.
const scopeWords = {
  openid: 'your identity',
  profile: 'your basic profile',
  email: 'your email address',
  offline_access: 'stay signed in while you are away',
};

function scopeSummary(scopes) {
  const list = Array.isArray(scopes) ? [...new Set(scopes.filter((s) => typeof s === 'string' && s))] : [];
  if (list.length === 0) return '';
  return capitalize(list.map((s) => (Object.hasOwn(scopeWords, s) ? scopeWords[s] : s)).join(', '));
}

function appRow(c) {
  const name = String(c.client_name || c.client_id || 'An app');
  const title = h('span', { className: 'row-title' }, h('span', {}, name));
  if (c.client_name && c.client_id && c.client_name !== c.client_id) {
    title.append(h('span', { className: 'badge mono' }, c.client_id));
  }
  const meta = h('span', { className: 'row-meta' });
  const what = scopeSummary(c.scopes);
  if (what) meta.append(what, ' · ');
  meta.append('Allowed ', timeEl(parseTime(c.granted_at)));

  const action = h('button', { type: 'button', className: 'btn btn-danger-outline btn-small' }, 'Revoke');
  action.setAttribute('aria-label', `Revoke access for ${name}`);
  action.addEventListener('click', () => revokeApp(c, name, action));
  return h(
    'li',
    { className: 'list-row app-row', 'data-client-id': c.client_id },
    h('span', { className: 'row-icon icon-app', 'aria-hidden': 'true' }),
    h('span', { className: 'row-body' }, title, meta),
    h('span', { className: 'row-action' }, action),
  );
}

async function loadApps() {
  const body = await guard(() => getJSON(client, api('/v1/consents')));
  const list = (body && Array.isArray(body.consents) ? body.consents : []).filter((c) => c && c.client_id);
  // Most recently allowed first.
  list.sort((a, b) => (parseTime(b.granted_at)?.getTime() || 0) - (parseTime(a.granted_at)?.getTime() || 0));
  appsList.replaceChildren(...list.map(appRow));
  appsState.textContent = list.length === 0 ? 'No apps have access.' : '';
}

async function revokeApp(c, name, btn) {
  const ok = await confirmAction({
    title: `Revoke access for ${name}?`,
    body: `${name} will have to ask for your permission again the next time you use it.`,
    confirm: 'Revoke',
  });
  if (!ok) return;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    await guard(async () => {
      const res = await client.fetch(api(`/v1/consents/${encodeURIComponent(c.client_id)}`), { method: 'DELETE' });
      if (!res.ok && res.status !== 404) throw await responseError(res);
    });
    const row = btn.closest('li');
    const index = row ? [...appsList.children].indexOf(row) : 0;
    announce(`Revoked access for ${name}.`);
    await Promise.allSettled([loadApps(), loadEvents()]);
    const rows = appsList.children;
    const next = rows.length ? rows[Math.min(Math.max(index, 0), rows.length - 1)].querySelector('button') : null;
    (next || signoutAll).focus();
  } catch (err) {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    announce(errorMessage(err, { action: `revoke access for ${name}` }), { error: true });
  }
}

// ---------- Events ----------

/** describe turns an event into a sentence and a tone: ok, warning or danger. */
function describe(e) {
  const d = e.detail && typeof e.detail === 'object' ? e.detail : {};
  const device = deviceLabel(e);
  switch (e.type) {
    case 'login_succeeded':
      return { tone: 'ok', icon: 'signin', text: `Signed in from ${device}` };
    case 'login_failed':
      if (d.reason === 'locked' || d.reason === 'account_locked') {
        return { tone: 'warning', icon: 'warning', text: `Sign-in blocked while the account was locked, from ${device}` };
      }
      if (d.reason === 'rate_limited') {
        return { tone: 'warning', icon: 'warning', text: `Sign-in attempt from ${device} was rate limited` };
      }
      return { tone: 'warning', icon: 'warning', text: `Failed sign-in attempt from ${device}` };
    case 'refresh_token_reused':
      return { tone: 'danger', icon: 'warning', text: 'Someone reused an old refresh token — the session was ended' };
    case 'session_revoked':
      switch (d.reason) {
        case 'logout':
          return { tone: 'neutral', icon: 'signout', text: `Signed out from ${device}` };
        case 'revoked_by_user':
          return { tone: 'neutral', icon: 'signout', text: `A session was signed out from ${device}` };
        case 'revoked_by_client':
          return { tone: 'neutral', icon: 'signout', text: 'A session was ended by an application' };
        case 'admin':
        case 'revoked_by_admin':
          return { tone: 'warning', icon: 'signout', text: 'An administrator ended a session' };
        case 'reuse':
        case 'refresh_token_reused':
          return { tone: 'danger', icon: 'warning', text: 'A session was ended because an old refresh token was reused' };
      }
      return { tone: 'neutral', icon: 'signout', text: 'A session was signed out' };
    case 'logout_all': {
      const n = Number(d.sessions);
      const what = Number.isFinite(n) && n > 0 ? ` (${n} session${n === 1 ? '' : 's'})` : '';
      return { tone: 'neutral', icon: 'signout', text: `Signed out everywhere from ${device}${what}` };
    }
    case 'token_revoked':
      return { tone: 'neutral', icon: 'key', text: 'An access token was revoked' };
    case 'user_created':
      return { tone: 'ok', icon: 'user', text: 'Account created' };
    case 'password_changed':
      return { tone: 'neutral', icon: 'shield', text: 'Password changed' };
    case 'account_locked':
      if (d.reason === 'reset_required') {
        return { tone: 'danger', icon: 'warning', text: 'Account locked until the password is reset' };
      }
      return { tone: 'warning', icon: 'warning', text: 'Account locked after too many failed sign-in attempts' };
    case 'new_device_sign_in':
      return { tone: 'warning', icon: 'warning', text: `New device signed in: ${device} — we emailed you` };
    case 'device_confirmed':
      return { tone: 'ok', icon: 'shield', text: 'You confirmed a new sign-in was you' };
    case 'not_me':
      return { tone: 'danger', icon: 'warning', text: "You reported a sign-in that wasn't you: signed out everywhere and locked" };
    case 'risk_denied':
      return { tone: 'danger', icon: 'warning', text: `A sign-in from ${device} was refused` };
  }
  const name = String(e.type || 'security event').replace(/_/g, ' ');
  return { tone: 'neutral', icon: 'shield', text: capitalize(name) };
}

function eventRow(e) {
  const { tone, icon, text } = describe(e);
  const meta = h('span', { className: 'row-meta' });
  if (e.type === 'refresh_token_reused') {
    // Who presented the old token, and where the session really was.
    const d = e.detail || {};
    meta.append(`Old token presented by ${deviceLabel(e)}`);
    if (e.ip) meta.append(' at ', h('span', { className: 'mono' }, e.ip));
    if (d.session_ip && d.session_ip !== e.ip) meta.append(' · the session was on ', h('span', { className: 'mono' }, d.session_ip));
    meta.append(' · ');
  } else if (e.ip) {
    meta.append(h('span', { className: 'mono' }, e.ip), ' · ');
  }
  meta.append(timeEl(parseTime(e.at)));

  const title = h('span', { className: 'row-title' }, text);
  if (tone === 'danger') title.append(h('span', { className: 'badge badge-danger' }, 'Security alert'));
  return h(
    'li',
    { className: `list-row event-row event-${tone}` },
    h('span', { className: `row-icon icon-${icon}`, 'aria-hidden': 'true' }),
    h('span', { className: 'row-body' }, title, meta),
  );
}

async function loadEvents() {
  const body = await guard(() => getJSON(client, api('/v1/events?limit=20')));
  const list = body && Array.isArray(body.events) ? body.events : [];
  eventsList.replaceChildren(...list.map(eventRow));
  eventsState.textContent = list.length === 0 ? 'No security activity yet.' : '';
}

function showLoadError(stateEl, listEl, what, retry) {
  listEl.replaceChildren();
  const btn = h('button', { type: 'button', className: 'btn btn-secondary btn-small' }, 'Try again');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    stateEl.textContent = `Loading ${what}…`;
    try {
      await retry();
    } catch {
      showLoadError(stateEl, listEl, what, retry);
    }
  });
  stateEl.replaceChildren(`Couldn't load ${what}. `, btn);
}

async function loadAll() {
  const [s, a, e, d, al] = await Promise.allSettled([loadSessions(), loadApps(), loadEvents(), loadDevices(), loadAlerts()]);
  if (s.status === 'rejected') showLoadError(sessionsState, sessionsList, 'your sessions', loadSessions);
  if (d.status === 'rejected') showLoadError(devicesState, devicesList, 'your devices', loadDevices);
  if (al.status === 'rejected') showLoadError(alertsState, alertsList, 'the sign-in alerts', loadAlerts);
  if (a.status === 'rejected') showLoadError(appsState, appsList, 'the apps with access', loadApps);
  if (e.status === 'rejected') showLoadError(eventsState, eventsList, 'recent activity', loadEvents);
  main.setAttribute('aria-busy', 'false');
}

// ---------- Start ----------

async function init() {
  client.on('sessionExpired', () => sessionEnded('expired'));
  client.on('logout', () => sessionEnded('signed_out'));

  let session = null;
  try {
    session = await client.restore();
  } catch (err) {
    sessionsState.textContent = errorMessage(err, { action: 'load your account' });
    eventsState.textContent = '';
    eventsList.replaceChildren();
    appsState.textContent = '';
    appsList.replaceChildren();
    sessionsList.replaceChildren();
    return;
  }
  if (!session || session.authenticated === false) {
    leaving = true;
    window.location.replace('/login');
    return;
  }

  signout.hidden = false;
  signout.addEventListener('click', () => signOutHere(signout));
  signoutAll.addEventListener('click', signOutEverywhere);

  guard(() => getJSON(client, api('/v1/me')))
    .then((me) => {
      if (me && me.email) {
        userEmail.textContent = me.email;
        userEmail.title = me.email;
        userEmail.hidden = false;
      }
    })
    .catch(() => {});

  await loadAll();

  setInterval(() => refreshRelativeTimes(main), 30_000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && !leaving) loadAll();
  });
}

init();
