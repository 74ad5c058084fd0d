// Package js holds the Latch browser SDK (latch.js, an ES module with its
// TypeScript declarations in latch.d.ts) so that the Go server can serve it to
// pages, at /sdk/latch.js, from the binary itself.
//
// The same files form the npm package @latchauth/sdk, which is not published
// to the registry; README.md in this directory says how to get the SDK and
// documents it. The SDK's tests are JavaScript: run
// `node --test` in this directory.
package js

import "embed"

// FS holds latch.js and latch.d.ts at its root.
//
//go:embed latch.js latch.d.ts
var FS embed.FS
