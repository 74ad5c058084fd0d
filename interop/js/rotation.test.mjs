// A scheduled key rotation does not break a jose JWKS cache: the new key is
// published before it signs, so a cache filled in between verifies the new
// key's tokens without fetching again.
// Run by go test ./interop/ (TestJWKSCacheAcrossScheduledRotation), which
// starts Latch and sets LATCH_ISSUER, LATCH_AUDIENCE, LATCH_ALG, LATCH_TOKEN
// (signed by the first key) and LATCH_CONTROL, a test-only server that
// rotates, moves Latch's clock and signs in (see control in interop_test.go).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader, customFetch } from 'jose'

function env(name) {
  const v = process.env[name]
  assert.ok(v, `${name} must be set (run this through go test ./interop/)`)
  return v
}

const issuer = env('LATCH_ISSUER')
const options = { issuer, audience: env('LATCH_AUDIENCE'), typ: 'at+jwt', algorithms: [env('LATCH_ALG')] }

async function control(step) {
  const res = await fetch(env('LATCH_CONTROL') + step, { method: 'POST' })
  assert.equal(res.status, 200, `${step}: ${await res.clone().text()}`)
  return res.json()
}

test('a JWKS cache filled after a scheduled rotation started verifies the new key without a refetch', async () => {
  let fetches = 0
  const JWKS = createRemoteJWKSet(new URL(issuer + '/.well-known/jwks.json'), {
    [customFetch]: (...args) => {
      fetches++
      return fetch(...args)
    },
  })
  const token = env('LATCH_TOKEN')
  const oldKid = decodeProtectedHeader(token).kid
  await jwtVerify(token, JWKS, options)
  assert.equal(fetches, 1)

  // Latch publishes the next key now; it signs from not_before on.
  const next = await control('/rotate')
  assert.notEqual(next.kid, oldKid)
  // Published at least one announced JWKS max-age before it signs, so
  // every cache that honours Cache-Control has it in time.
  const res = await fetch(issuer + '/.well-known/jwks.json')
  const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1])
  assert.ok(maxAge > 0, `Cache-Control: ${res.headers.get('cache-control')}`)
  assert.ok(next.not_before - next.now > maxAge, `published ${next.not_before - next.now}s ahead, max-age ${maxAge}s`)
  assert.ok((await res.json()).keys.some((k) => k.kid === next.kid), 'the pending key is in the JWKS')
  const still = await control('/login')
  assert.equal(decodeProtectedHeader(still.access_token).kid, oldKid, 'the old key signs until not_before')

  // The verifier's cache expires and is refilled while the key is pending
  // (Latch's publish delay exceeds the JWKS max-age it announces).
  await JWKS.reload()
  assert.equal(fetches, 2)

  // Latch's clock passes not_before: the new key signs.
  await control(`/advance?seconds=${next.not_before - next.now + 60}`)
  const after = await control('/login')
  assert.equal(decodeProtectedHeader(after.access_token).kid, next.kid, 'the new key signs')

  const at = new Date(after.now * 1000)
  const { payload } = await jwtVerify(after.access_token, JWKS, { ...options, currentDate: at })
  assert.equal(payload.sid, after.session_id)
  // A token of the retired key is still accepted while it lives.
  await jwtVerify(still.access_token, JWKS, { ...options, currentDate: new Date(still.now * 1000) })
  assert.equal(fetches, 2, 'no JWKS fetch was needed for the new key')
})
