package oidc

import (
	"context"
	"net/url"
	"slices"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/tag"
)

// Logout is a validated RP-initiated logout request (OpenID Connect
// RP-Initiated Logout 1.0 §2).
type Logout struct {
	// Client is the RP asking, from id_token_hint or client_id; nil if
	// neither names one.
	Client *latch.Client
	// Redirect is the post_logout_redirect_uri, registered for Client;
	// empty for none.
	Redirect string
	State    string
	// HintSubject and HintSID come from a valid id_token_hint.
	HintSubject, HintSID string
	Params               url.Values
}

// ParseLogout validates a logout request. Its errors are page errors: a
// logout request that cannot be trusted never redirects.
func (p *Provider) ParseLogout(ctx context.Context, q url.Values) (*Logout, error) {
	if err := checkParams(q); err != nil {
		return nil, err
	}
	l := &Logout{State: q.Get("state"), Params: q}
	clientID := q.Get("client_id")
	if h := q.Get("id_token_hint"); h != "" {
		claims, err := p.verifyIDToken(h)
		if err != nil {
			return nil, &Error{Code: "invalid_request", Description: "id_token_hint is not an id_token this provider issued"}
		}
		if clientID != "" && clientID != claims.Audience {
			return nil, &Error{Code: "invalid_request", Description: "client_id is not the audience of id_token_hint"}
		}
		clientID, l.HintSubject, l.HintSID = claims.Audience, claims.Subject, claims.SessionID
	}
	if clientID != "" {
		c, err := p.client(ctx, clientID)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, &Error{Code: "invalid_request", Description: "no application is registered with this client_id"}
		}
		l.Client = c
	}
	if r := q.Get("post_logout_redirect_uri"); r != "" {
		if l.Client == nil {
			return nil, &Error{Code: "invalid_request", Description: "post_logout_redirect_uri needs id_token_hint or client_id to name the application"}
		}
		if !slices.Contains(l.Client.PostLogoutRedirectURIs, r) {
			return nil, &Error{Code: "invalid_request", Description: "post_logout_redirect_uri is not registered for this application"}
		}
		l.Redirect = r
	}
	return l, nil
}

// Confirmed reports whether the logout may end the browser's SSO session
// without asking the user: the request carries an id_token_hint for the
// signed-in user from this very SSO session (an id_token of an earlier,
// ended one proves nothing about this one). Without one, anyone could
// sign the user out with a link, so the user confirms (§2: the OP SHOULD
// ask).
func (l *Logout) Confirmed(sso *latch.SSOSession) bool {
	return sso != nil && l.HintSubject != "" && l.HintSubject == sso.UserID && l.HintSID == sso.ID
}

// RedirectURL is where the browser goes once the logout is done: the
// post_logout_redirect_uri with state, or "" to show the signed-out page.
func (l *Logout) RedirectURL() string {
	if l.Redirect == "" {
		return ""
	}
	q := url.Values{}
	if l.State != "" {
		q.Set("state", l.State)
	}
	if len(q) == 0 {
		return l.Redirect
	}
	return addQuery(l.Redirect, q)
}

// logoutPurpose keys the logout confirmation form's token.
const logoutPurpose = "latch logout form v1"

// LogoutToken is the logout confirmation form's anti-forgery token, bound
// to the SSO session it ends.
func (p *Provider) LogoutToken(sso *latch.SSOSession) string {
	return tag.Make(p.mac, logoutPurpose, []byte(sso.ID))
}

// CheckLogoutToken checks the confirmation form's token in constant time.
func (p *Provider) CheckLogoutToken(sso *latch.SSOSession, token string) bool {
	return tag.Check(p.mac, logoutPurpose, []byte(sso.ID), token)
}

// EndSSO ends the SSO session: its families are revoked and every app it
// served is told by back-channel logout.
func (p *Provider) EndSSO(ctx context.Context, sso *latch.SSOSession, reason string, dev auth.Device) error {
	err := p.auth.EndSSOSession(ctx, sso.UserID, sso.ID, reason, dev)
	if err != nil && err != auth.ErrNotFound {
		return err
	}
	return nil
}
