// Package js holds the Latch browser SDK (latch.js, an ES module with its
// TypeScript declarations in latch.d.ts) so that the Go server can serve it to
// pages, at /sdk/latch.js, from the binary itself.
//
// The same files are published to npm as @latchauth/sdk; see README.md in this
// directory for the SDK's reference. The SDK's tests are JavaScript: run
// `node --test` in this directory.
package js

import "embed"

// FS holds latch.js and latch.d.ts at its root.
//
//go:embed latch.js latch.d.ts
var FS embed.FS
