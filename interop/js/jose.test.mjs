// jose verifies Latch access tokens the way a resource server does: keys
// from the remote JWKS, RFC 9068 typ, issuer, audience, one algorithm.
// Run by go test ./interop/ (TestJose), which starts Latch and sets:
//   LATCH_ISSUER, LATCH_AUDIENCE, LATCH_ALG
//   LATCH_TOKEN      an access token signed before an immediate key rotation
//   LATCH_TOKEN_SID  its session id
//   LATCH_TOKEN_NEW  an access token signed after it, by the new key
//   LATCH_PUBLIC_CLIENT_ID  the client both tokens were issued to
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader, errors, customFetch } from 'jose'

function env(name) {
  const v = process.env[name]
  assert.ok(v, `${name} must be set (run this through go test ./interop/)`)
  return v
}

const issuer = env('LATCH_ISSUER')
const audience = env('LATCH_AUDIENCE')
const alg = env('LATCH_ALG')
const token = env('LATCH_TOKEN')
const tokenNew = env('LATCH_TOKEN_NEW')
const sid = env('LATCH_TOKEN_SID')
const clientId = env('LATCH_PUBLIC_CLIENT_ID')
const jwksURL = new URL(issuer + '/.well-known/jwks.json')

const options = { issuer, audience, typ: 'at+jwt', algorithms: [alg] }

// A JWKS set that counts its fetches.
function remoteSet() {
  const counter = { fetches: 0 }
  const set = createRemoteJWKSet(jwksURL, {
    [customFetch]: (...args) => {
      counter.fetches++
      return fetch(...args)
    },
  })
  return { set, counter }
}

function assertClaims(payload, protectedHeader) {
  assert.equal(protectedHeader.typ, 'at+jwt')
  assert.equal(protectedHeader.alg, alg)
  assert.equal(typeof protectedHeader.kid, 'string')
  assert.equal(payload.iss, issuer)
  assert.ok([payload.aud].flat().includes(audience), `aud ${JSON.stringify(payload.aud)}`)
  assert.match(payload.sub, /^u_/)
  assert.match(payload.sid, /^s_/)
  assert.equal(payload.client_id, clientId)
  assert.equal(typeof payload.jti, 'string')
  assert.ok(payload.jti.length >= 16, `jti ${payload.jti}`)
  assert.equal(typeof payload.iat, 'number')
  assert.equal(typeof payload.auth_time, 'number')
  assert.ok(payload.exp > Date.now() / 1000, 'exp in the future')
  assert.ok(payload.exp - payload.iat <= 300, 'lives at most 5 minutes')
  // RFC 9068 §2.2: no personal data in the token.
  assert.equal(payload.email, undefined)
}

test('verifies a token with the remote JWKS', async () => {
  const { set, counter } = remoteSet()
  const { payload, protectedHeader } = await jwtVerify(token, set, options)
  assertClaims(payload, protectedHeader)
  assert.equal(payload.sid, sid)
  assert.equal(counter.fetches, 1)
})

test('key rotation: tokens of the old and the new key verify with one JWKS', async () => {
  assert.notEqual(decodeProtectedHeader(token).kid, decodeProtectedHeader(tokenNew).kid, 'the rotation changed the kid')
  const { set, counter } = remoteSet()
  const a = await jwtVerify(tokenNew, set, options)
  assertClaims(a.payload, a.protectedHeader)
  const b = await jwtVerify(token, set, options) // the retired key is still published
  assertClaims(b.payload, b.protectedHeader)
  assert.equal(a.payload.sub, b.payload.sub)
  assert.notEqual(a.payload.sid, b.payload.sid)
  assert.notEqual(a.payload.jti, b.payload.jti)
  assert.equal(counter.fetches, 1, 'both keys came in one JWKS document')
})

test('the JWKS is a standard JWK set', async () => {
  const res = await fetch(jwksURL)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type'), /^application\/(jwk-set\+)?json/)
  const { keys } = await res.json()
  assert.ok(keys.length >= 2, 'old and new key published')
  for (const k of keys) {
    // the access-token family's algorithm, or RS256 for the id_token family
    assert.ok([alg, 'RS256'].includes(k.alg), `unexpected alg ${k.alg}`)
    assert.equal(k.use, 'sig')
    assert.equal(typeof k.kid, 'string')
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[priv], undefined, `private member ${priv}`)
  }
  for (const t of [token, tokenNew]) {
    assert.ok(keys.some((k) => k.kid === decodeProtectedHeader(t).kid && k.alg === alg), 'the kid is in the JWKS, with the access-token algorithm')
  }
})

test('a tampered token is rejected', async () => {
  const { set } = remoteSet()
  const [h, p, s] = token.split('.')
  const claims = JSON.parse(Buffer.from(p, 'base64url'))
  claims.sub = 'u_someone_else'
  const forged = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.')
  await assert.rejects(jwtVerify(forged, set, options), (err) => {
    assert.ok(err instanceof errors.JWSSignatureVerificationFailed, err.code)
    assert.equal(err.code, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
    return true
  })
  // A flipped signature byte, too.
  const sig = Buffer.from(s, 'base64url')
  sig[0] ^= 1
  await assert.rejects(jwtVerify([h, p, sig.toString('base64url')].join('.'), set, options), {
    code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  })
})

test('the wrong audience or issuer is rejected', async () => {
  const { set } = remoteSet()
  await assert.rejects(jwtVerify(token, set, { ...options, audience: 'https://other.example' }), (err) => {
    assert.ok(err instanceof errors.JWTClaimValidationFailed)
    assert.equal(err.code, 'ERR_JWT_CLAIM_VALIDATION_FAILED')
    assert.equal(err.claim, 'aud')
    return true
  })
  // The issuer is not the audience.
  await assert.rejects(jwtVerify(token, set, { ...options, audience: issuer }), {
    code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    claim: 'aud',
  })
  await assert.rejects(jwtVerify(token, set, { ...options, issuer: 'https://other.example' }), {
    code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    claim: 'iss',
  })
})

test('typ is enforced: at+jwt is not JWT', async () => {
  const { set } = remoteSet()
  await assert.rejects(jwtVerify(token, set, { ...options, typ: 'JWT' }), (err) => {
    assert.equal(err.code, 'ERR_JWT_CLAIM_VALIDATION_FAILED')
    assert.equal(err.claim, 'typ')
    return true
  })
  // The media type form of RFC 9068 §4 is the same type.
  await jwtVerify(token, set, { ...options, typ: 'application/at+jwt' })
})

test('only the configured algorithm is accepted', async () => {
  const { set } = remoteSet()
  const other = alg === 'RS256' ? 'ES256' : 'RS256'
  await assert.rejects(jwtVerify(token, set, { ...options, algorithms: [other] }), {
    code: 'ERR_JOSE_ALG_NOT_ALLOWED',
  })
})

test('an expired token is rejected', async () => {
  const { set } = remoteSet()
  await assert.rejects(jwtVerify(token, set, { ...options, currentDate: new Date(Date.now() + 3600_000) }), {
    code: 'ERR_JWT_EXPIRED',
  })
})
