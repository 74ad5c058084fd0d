// oauth4webapi and openid-client, unmodified and with no Latch-specific
// options, against a real Latch: discovery, client_credentials with
// client_secret_basic and client_secret_post, introspection, revocation,
// and the refresh grant of a public client.
// Run by go test ./interop/ (TestOAuthClients), which starts Latch and sets:
//   LATCH_ISSUER, LATCH_AUDIENCE, LATCH_ALG
//   LATCH_CLIENT_ID / LATCH_CLIENT_SECRET  a confidential client with scopes read and write
//   LATCH_PUBLIC_CLIENT_ID                 a public client
//   LATCH_REFRESH_TOKEN, LATCH_REFRESH_TOKEN_2  refresh tokens of two sessions of that public client
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import { createRemoteJWKSet, jwtVerify } from 'jose'

function env(name) {
  const v = process.env[name]
  assert.ok(v, `${name} must be set (run this through go test ./interop/)`)
  return v
}

const issuer = new URL(env('LATCH_ISSUER'))
const audience = env('LATCH_AUDIENCE')
const alg = env('LATCH_ALG')
const clientId = env('LATCH_CLIENT_ID')
const clientSecret = env('LATCH_CLIENT_SECRET')
const publicClientId = env('LATCH_PUBLIC_CLIENT_ID')
const refreshToken = env('LATCH_REFRESH_TOKEN')
const refreshToken2 = env('LATCH_REFRESH_TOKEN_2')

// The issuer is http://127.0.0.1:port: both libraries refuse plain HTTP
// unless told otherwise.
const insecure = { [oauth.allowInsecureRequests]: true }

const JWKS = createRemoteJWKSet(new URL(issuer.href.replace(/\/$/, '') + '/.well-known/jwks.json'))
async function verifyAccessToken(token) {
  const { payload } = await jwtVerify(token, JWKS, {
    issuer: env('LATCH_ISSUER'),
    audience,
    typ: 'at+jwt',
    algorithms: [alg],
  })
  return payload
}

describe('oauth4webapi', () => {
  const c = { client_id: clientId }
  const basic = oauth.ClientSecretBasic(clientSecret)
  const post = oauth.ClientSecretPost(clientSecret)
  let as

  test('discovery (RFC 8414 and OpenID Connect Discovery paths)', async () => {
    for (const algorithm of ['oauth2', 'oidc']) {
      const res = await oauth.discoveryRequest(issuer, { algorithm, ...insecure })
      const md = await oauth.processDiscoveryResponse(issuer, res)
      assert.equal(md.issuer, env('LATCH_ISSUER'))
      for (const ep of ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'jwks_uri']) {
        assert.ok(md[ep]?.startsWith(env('LATCH_ISSUER') + '/'), `${algorithm}: ${ep} = ${md[ep]}`)
      }
      assert.deepEqual(md.grant_types_supported, ['authorization_code', 'client_credentials', 'refresh_token'])
      for (const m of ['client_secret_basic', 'client_secret_post']) {
        assert.ok(md.token_endpoint_auth_methods_supported.includes(m), m)
        assert.ok(md.introspection_endpoint_auth_methods_supported.includes(m), m)
        assert.ok(md.revocation_endpoint_auth_methods_supported.includes(m), m)
      }
      as = md
    }
  })

  for (const [name, auth] of [
    ['client_secret_basic', basic],
    ['client_secret_post', post],
  ]) {
    test(`client_credentials with ${name}, introspect, revoke, introspect`, async () => {
      const res = await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams({ scope: 'read' }), insecure)
      const tok = await oauth.processClientCredentialsResponse(as, c, res)
      assert.equal(tok.token_type, 'bearer')
      assert.equal(tok.scope, 'read')
      assert.ok(tok.expires_in > 0 && tok.expires_in <= 300, `expires_in ${tok.expires_in}`)
      assert.equal(tok.refresh_token, undefined)
      assert.equal(res.headers.get('cache-control'), 'no-store')

      const claims = await verifyAccessToken(tok.access_token)
      assert.equal(claims.sub, clientId)
      assert.equal(claims.client_id, clientId)
      assert.equal(claims.scope, 'read')

      const intro = await oauth.processIntrospectionResponse(
        as, c, await oauth.introspectionRequest(as, c, auth, tok.access_token, insecure))
      assert.equal(intro.active, true)
      assert.equal(intro.sub, clientId)
      assert.equal(intro.client_id, clientId)
      assert.equal(intro.scope, 'read')
      assert.equal(intro.jti, claims.jti)
      assert.equal(intro.exp, claims.exp)

      await oauth.processRevocationResponse(
        await oauth.revocationRequest(as, c, auth, tok.access_token, {
          additionalParameters: { token_type_hint: 'access_token' }, ...insecure,
        }))

      const after = await oauth.processIntrospectionResponse(
        as, c, await oauth.introspectionRequest(as, c, auth, tok.access_token, insecure))
      assert.deepEqual(after, { active: false })
    })
  }

  test('all of the client\'s scopes without a scope parameter', async () => {
    const tok = await oauth.processClientCredentialsResponse(
      as, c, await oauth.clientCredentialsGrantRequest(as, c, basic, new URLSearchParams(), insecure))
    assert.equal(tok.scope, 'read write')
  })

  test('errors come back as RFC 6749 §5.2 errors', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, c, basic, new URLSearchParams({ scope: 'admin' }), insecure)
    await assert.rejects(oauth.processClientCredentialsResponse(as, c, res), (err) => {
      assert.ok(err instanceof oauth.ResponseBodyError, err.name)
      assert.equal(err.error, 'invalid_scope')
      assert.equal(err.status, 400)
      return true
    })
    // A wrong secret is a 401 with a Basic challenge (RFC 6749 §5.2).
    const bad = await oauth.clientCredentialsGrantRequest(as, c, oauth.ClientSecretBasic('wrong-secret-wrong-secret-wrong'), new URLSearchParams(), insecure)
    await assert.rejects(oauth.processClientCredentialsResponse(as, c, bad), (err) => {
      assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, err.name)
      assert.equal(err.status, 401)
      assert.equal(err.cause[0].scheme, 'basic')
      return true
    })
  })

  test('refresh grant of a public client rotates the refresh token', async () => {
    const pub = { client_id: publicClientId }
    const res = await oauth.refreshTokenGrantRequest(as, pub, oauth.None(), refreshToken, insecure)
    const tok = await oauth.processRefreshTokenResponse(as, pub, res)
    assert.equal(tok.token_type, 'bearer')
    assert.equal(typeof tok.refresh_token, 'string')
    assert.notEqual(tok.refresh_token, refreshToken, 'a new refresh token')
    const claims = await verifyAccessToken(tok.access_token)
    assert.equal(claims.client_id, publicClientId)
    assert.match(claims.sid, /^s_/)

    // The successor works; revoking it (RFC 7009, public client) ends the session.
    const next = await oauth.processRefreshTokenResponse(
      as, pub, await oauth.refreshTokenGrantRequest(as, pub, oauth.None(), tok.refresh_token, insecure))
    assert.notEqual(next.refresh_token, tok.refresh_token)
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, pub, oauth.None(), next.refresh_token, {
      additionalParameters: { token_type_hint: 'refresh_token' }, ...insecure,
    }))
    const dead = await oauth.refreshTokenGrantRequest(as, pub, oauth.None(), next.refresh_token, insecure)
    await assert.rejects(oauth.processRefreshTokenResponse(as, pub, dead), { error: 'invalid_grant', status: 400 })
  })
})

describe('openid-client', () => {
  const opts = { execute: [client.allowInsecureRequests] }

  test('discovery, client_credentials, introspection, revocation', async () => {
    for (const auth of [client.ClientSecretBasic(clientSecret), client.ClientSecretPost(clientSecret)]) {
      const config = await client.discovery(issuer, clientId, undefined, auth, opts)
      assert.equal(config.serverMetadata().issuer, env('LATCH_ISSUER'))

      const tok = await client.clientCredentialsGrant(config, { scope: 'read write' })
      assert.equal(tok.scope, 'read write')
      assert.ok(tok.expiresIn() > 0)
      const claims = await verifyAccessToken(tok.access_token)
      assert.equal(claims.client_id, clientId)

      const intro = await client.tokenIntrospection(config, tok.access_token)
      assert.equal(intro.active, true)
      assert.equal(intro.sub, clientId)
      assert.equal(intro.client_id, clientId)
      assert.equal(intro.scope, 'read write')

      await client.tokenRevocation(config, tok.access_token, { token_type_hint: 'access_token' })
      assert.deepEqual(await client.tokenIntrospection(config, tok.access_token), { active: false })
    }
  })

  test('refresh grant of a public client rotates the refresh token', async () => {
    const config = await client.discovery(issuer, publicClientId, undefined, client.None(), opts)
    const tok = await client.refreshTokenGrant(config, refreshToken2)
    assert.equal(typeof tok.refresh_token, 'string')
    assert.notEqual(tok.refresh_token, refreshToken2, 'a new refresh token')
    const claims = await verifyAccessToken(tok.access_token)
    assert.equal(claims.client_id, publicClientId)

    // Inside the grace window the previous token returns the same successor.
    const again = await client.refreshTokenGrant(config, refreshToken2)
    assert.equal(again.refresh_token, tok.refresh_token)

    await client.tokenRevocation(config, tok.refresh_token)
    await assert.rejects(client.refreshTokenGrant(config, tok.refresh_token), (err) => {
      assert.ok(err instanceof client.ResponseBodyError, err.name)
      assert.equal(err.error, 'invalid_grant')
      return true
    })
  })
})
