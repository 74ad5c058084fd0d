// Package protect screens sign-ins and refreshes with package risk: it
// gathers the signals of an attempt (the geo-IP place of its address
// through a latch.Locator, what the account or the session used before),
// asks a risk.Engine for a decision, acts on it (refuse, revoke the
// session, alert the user) and records every decision other than allow as
// a security event whose Detail holds the reasons and the signals, so that
// `latch risk replay` can score it again with other weights.
//
// Its guards implement the seams of package auth (auth.RefreshGuard,
// auth.SignInGuard); instance installs them.
package protect
