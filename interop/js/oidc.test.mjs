// openid-client, unmodified, as the relying party of a real sign-in: this
// file serves an RP on 127.0.0.1 and the Go side drives Chromium through
// it. Discovery, an authorization URL with PKCE (S256), state and nonce,
// the code exchange with the id_token validated by openid-client,
// userinfo, a refresh, then RP-initiated logout through buildEndSessionUrl
// (id_token_hint, post_logout_redirect_uri, state), after which Latch
// refuses the access tokens at userinfo.
// Run by go test ./interop/ (TestOpenIDClientCodeFlow), which starts
// Latch and a browser and sets:
//   LATCH_ISSUER                                    the issuer
//   LATCH_RP_CLIENT_ID / LATCH_RP_CLIENT_SECRET     the RP's confidential client
//   LATCH_CONTROL   the Go side: POST /rp {"base"} registers the client with
//                   base/callback and base/bye, and the browser then opens
//                   base/login, signs in, allows, and follows the RP's
//                   "Sign out" link
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import * as client from 'openid-client'

function env(name) {
  const v = process.env[name]
  assert.ok(v, `${name} must be set (run this through go test ./interop/)`)
  return v
}

const issuer = new URL(env('LATCH_ISSUER'))
const clientId = env('LATCH_RP_CLIENT_ID')
const clientSecret = env('LATCH_RP_CLIENT_SECRET')
const control = env('LATCH_CONTROL')

// The RP as its documentation shows it, on 127.0.0.1; the browser
// reaches it as localhost, another site than the issuer. The issuer is
// http://127.0.0.1, which openid-client refuses unless told.
async function rp() {
  const server = http.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://localhost:${server.address().port}`
  const config = await client.discovery(issuer, clientId, clientSecret, undefined, {
    execute: [client.allowInsecureRequests],
  })
  const session = {} // one user: what a cookie session would hold
  const outcome = {}
  let finish, fail
  const done = new Promise((resolve, reject) => {
    finish = resolve
    fail = reject
  })
  done.catch(() => {}) // awaited by the test; not unhandled meanwhile

  const routes = {
    async '/login'() {
      session.verifier = client.randomPKCECodeVerifier()
      session.state = client.randomState()
      session.nonce = client.randomNonce()
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: base + '/callback',
        scope: 'openid email offline_access',
        code_challenge: await client.calculatePKCECodeChallenge(session.verifier),
        code_challenge_method: 'S256',
        state: session.state,
        nonce: session.nonce,
      })
      outcome.authorizationUrl = url.href
      return { redirect: url }
    },
    async '/callback'(url) {
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: session.verifier,
        expectedState: session.state,
        expectedNonce: session.nonce,
        idTokenExpected: true,
      })
      const claims = tokens.claims()
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
      assert.ok(tokens.refresh_token, 'offline_access was asked: a refresh token')
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
      const refreshedClaims = refreshed.claims()
      session.accessTokens = [tokens.access_token, refreshed.access_token]
      session.idToken = refreshed.id_token ?? tokens.id_token
      Object.assign(outcome, {
        claims,
        userinfo,
        scope: tokens.scope,
        refreshed: {
          newAccessToken: refreshed.access_token !== tokens.access_token,
          rotated: !!refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token,
          claims: refreshedClaims,
        },
      })
      return { page: { id: 'result', data: { sub: claims.sub, email: claims.email, sid: claims.sid, userinfo_sub: userinfo.sub }, link: true } }
    },
    async '/logout'() {
      session.logoutState = client.randomState()
      const url = client.buildEndSessionUrl(config, {
        id_token_hint: session.idToken,
        post_logout_redirect_uri: base + '/bye',
        state: session.logoutState,
      })
      outcome.endSessionUrl = url.href
      return { redirect: url }
    },
    async '/bye'(url) {
      assert.equal(url.searchParams.get('state'), session.logoutState, 'the post-logout redirect carries the state')
      outcome.afterLogout = []
      for (const token of session.accessTokens) {
        try {
          await client.fetchUserInfo(config, token, client.skipSubjectCheck)
          outcome.afterLogout.push(200)
        } catch (err) {
          outcome.afterLogout.push(err.status ?? err.response?.status ?? String(err))
        }
      }
      return { last: true, page: { id: 'bye', data: { state: url.searchParams.get('state'), userinfo: outcome.afterLogout } } }
    },
  }

  server.on('request', async (req, res) => {
    const url = new URL(req.url, base)
    const route = routes[url.pathname]
    if (!route) {
      res.writeHead(404).end()
      return
    }
    try {
      const out = await route(url)
      if (out.redirect) {
        res.writeHead(302, { Location: out.redirect.href }).end()
        return
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
      // The test ends (and closes this server) once the last page is out.
      if (out.last) res.on('finish', () => finish(outcome))
      res.end(page(out.page.id, out.page.data, out.page.link))
    } catch (err) {
      res.writeHead(400, { 'Content-Type': 'text/html; charset=utf-8' })
      res.end(page('rp-error', { path: url.pathname, error: String(err), code: err.code, cause: String(err.cause ?? '') }))
      fail(err)
    }
  })
  return { server, base, done }
}

function page(id, data, logoutLink) {
  const json = JSON.stringify(data).replace(/</g, '\\u003c')
  return `<!doctype html><html><head><title>openid-client RP</title></head><body>
<pre id="${id}">${json.replace(/&/g, '&amp;')}</pre>${logoutLink ? '<a id="logout" href="/logout">Sign out</a>' : ''}
</body></html>`
}

test('openid-client signs in through Latch with PKCE, validates the id_token, reads userinfo, refreshes and logs out', { timeout: 120_000 }, async () => {
  const { server, base, done } = await rp()
  try {
    const res = await fetch(control + '/rp', { method: 'POST', body: JSON.stringify({ base }) })
    assert.equal(res.status, 200, await res.text())
    const outcome = await done

    const url = new URL(outcome.authorizationUrl)
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
    assert.ok(url.searchParams.get('code_challenge') && url.searchParams.get('state') && url.searchParams.get('nonce'))

    const { claims, userinfo, refreshed } = outcome
    assert.equal(claims.iss, issuer.href.replace(/\/$/, ''))
    assert.equal(claims.aud, clientId)
    assert.ok(claims.sub)
    assert.equal(claims.email, 'ada@example.com')
    assert.ok(claims.sid, 'sid')
    assert.equal(userinfo.sub, claims.sub)
    assert.equal(userinfo.email, 'ada@example.com')
    assert.ok(refreshed.newAccessToken, 'the refresh gives a new access token')
    assert.ok(refreshed.rotated, 'the refresh rotates the refresh token')
    assert.equal(refreshed.claims.sub, claims.sub)

    const end = new URL(outcome.endSessionUrl)
    assert.equal(end.origin + end.pathname, issuer.href.replace(/\/$/, '') + '/oauth2/logout')
    assert.ok(end.searchParams.get('id_token_hint'))
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), base + '/bye')
    assert.deepEqual(outcome.afterLogout, [401, 401], 'logout revokes every access token of the sign-in')
  } finally {
    server.close()
    server.closeAllConnections()
  }
})
