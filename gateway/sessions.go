package gateway

import (
	"errors"
	"net/http"

	"github.com/latchauth/latch/verifier"
)

// ErrNoSession means the request carries no live browser session: no
// cookie, a forged or unknown one, or a session that ended (logout,
// revocation at the auth server, expiry).
var ErrNoSession = errors.New("gateway: no browser session")

// BrowserSession is a browser's live session as the proxy sees it: whom
// it belongs to and the access token to attach upstream, refreshed if it
// was due.
type BrowserSession struct {
	// ID is the session's id (never the cookie value itself).
	ID string
	// AccessToken is sent upstream as "Authorization: Bearer".
	AccessToken string
	// Claims are the verified claims of AccessToken.
	Claims *verifier.Claims
}

// Sessions is the backend-for-frontend side of the gateway (package bff):
// the /auth/ endpoints (login, callback, logout, back-channel logout) and
// the lookup of a request's session.
type Sessions interface {
	// ServeHTTP answers everything under /auth/.
	http.Handler
	// Lookup returns the request's live session with an access token that
	// is not about to expire (refreshing it once across every concurrent
	// request and gateway instance if it is), or ErrNoSession.
	Lookup(r *http.Request) (*BrowserSession, error)
}
