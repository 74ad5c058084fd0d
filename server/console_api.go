package server

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/admin"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/password"
)

// The admin API's JSON shapes.
type (
	adminUserJSON struct {
		ID              string     `json:"id"`
		Email           string     `json:"email"`
		Role            string     `json:"role,omitempty"`
		CreatedAt       time.Time  `json:"created_at"`
		EmailVerifiedAt *time.Time `json:"email_verified_at,omitempty"`
		LockedAt        *time.Time `json:"locked_at,omitempty"`
		LockReason      string     `json:"lock_reason,omitempty"`
	}
	adminSessionJSON struct {
		ID         string    `json:"id"`
		ClientID   string    `json:"client_id"`
		IP         string    `json:"ip"`
		UserAgent  string    `json:"user_agent"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		ExpiresAt  time.Time `json:"expires_at"`
	}
	adminDeviceJSON struct {
		ID         string    `json:"id"`
		Name       string    `json:"name,omitempty"`
		Browser    string    `json:"browser,omitempty"`
		OS         string    `json:"os,omitempty"`
		LastIP     string    `json:"last_ip,omitempty"`
		Country    string    `json:"country,omitempty"`
		City       string    `json:"city,omitempty"`
		LastSeenAt time.Time `json:"last_seen_at"`
	}

	adminClientJSON struct {
		ID                     string    `json:"id"`
		Name                   string    `json:"name,omitempty"`
		Public                 bool      `json:"public"`
		Scopes                 []string  `json:"scopes"`
		Audience               string    `json:"audience,omitempty"`
		Delivery               string    `json:"delivery"`
		Permissions            []string  `json:"permissions,omitempty"`
		RedirectURIs           []string  `json:"redirect_uris,omitempty"`
		PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris,omitempty"`
		BackchannelLogoutURI   string    `json:"backchannel_logout_uri,omitempty"`
		FirstParty             bool      `json:"first_party"`
		CreatedAt              time.Time `json:"created_at"`
	}
	adminKeyJSON struct {
		ID        string     `json:"kid"`
		Algorithm string     `json:"alg"`
		Family    string     `json:"family"`
		State     string     `json:"state"`
		CreatedAt time.Time  `json:"created_at"`
		NotBefore time.Time  `json:"not_before"`
		NotAfter  *time.Time `json:"not_after,omitempty"`
		RevokedAt *time.Time `json:"revoked_at,omitempty"`
	}
)

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func userJSON(u *latch.User) adminUserJSON {
	return adminUserJSON{ID: u.ID, Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, EmailVerifiedAt: optTime(u.EmailVerifiedAt),
		LockedAt: optTime(u.LockedAt), LockReason: u.LockReason}
}

func clientJSON(c *latch.Client) adminClientJSON {
	sc := c.Scopes
	if sc == nil {
		sc = []string{}
	}
	return adminClientJSON{ID: c.ID, Name: c.Name, Public: c.Public(), Scopes: sc, Audience: c.Audience, Delivery: c.Delivery,
		Permissions: c.Permissions, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		BackchannelLogoutURI: c.BackchannelLogoutURI, FirstParty: c.FirstParty, CreatedAt: c.CreatedAt}
}

// consoleMe says who is signed in to the console.
func (s *Server) consoleMe(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	out := map[string]any{"client_id": by.ClientID, "session_ttl": int(s.console.Gate.SessionTTL() / time.Second)}
	if by.AdminID != "" {
		u, err := s.auth.User(r.Context(), by.AdminID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out["user"] = userJSON(u)
	}
	writeJSON(w, http.StatusOK, out)
}

// maxQuery bounds every text filter of the admin API.
const maxQuery = 256

// queryText reads a text parameter: at most maxQuery bytes of valid text.
func queryText(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	v := r.URL.Query().Get(name)
	if len(v) > maxQuery || strings.ContainsFunc(v, func(c rune) bool { return c < ' ' || c == 0x7f || c == 0xfffd }) {
		writeError(w, http.StatusBadRequest, "invalid_request", "parameter "+name+" is too long or holds control characters")
		return "", false
	}
	return v, true
}

// queryLimit reads limit (1 to admin.MaxPage; default 50).
func queryLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > admin.MaxPage {
		writeError(w, http.StatusBadRequest, "invalid_request", "limit must be a number from 1 to "+strconv.Itoa(admin.MaxPage))
		return 0, false
	}
	return n, true
}

// consoleUsers searches users (GET ?q=&after=&limit=) or creates one
// (POST {"email","password"}).
func (s *Server) consoleUsers(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	if r.Method == http.MethodPost {
		var req struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		}
		if !decode(w, r, &req) {
			return
		}
		u, err := s.console.Users.Create(r.Context(), by, req.Email, req.Password)
		var policy *password.PolicyError
		switch {
		case errors.As(err, &policy):
			writeError(w, http.StatusBadRequest, "weak_password", policy.Message)
		case errors.Is(err, auth.ErrInvalidEmail):
			writeError(w, http.StatusBadRequest, "invalid_request", "email is not a valid address")
		case errors.Is(err, auth.ErrEmailTaken):
			writeError(w, http.StatusConflict, "email_taken", "a user with this email exists")
		case err != nil:
			s.fail(w, r, err)
		default:
			writeJSON(w, http.StatusCreated, userJSON(u))
		}
		return
	}
	q, ok := queryText(w, r, "q")
	if !ok {
		return
	}
	after, ok := queryText(w, r, "after")
	if !ok {
		return
	}
	limit, ok := queryLimit(w, r)
	if !ok {
		return
	}
	list, next, err := s.console.Users.Search(r.Context(), strings.TrimSpace(q), after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]adminUserJSON, 0, len(list))
	for i := range list {
		out = append(out, userJSON(&list[i]))
	}
	body := map[string]any{"users": out, "next": next}
	if n, err := s.console.Users.Count(r.Context()); err == nil {
		body["total"] = n
	}
	writeJSON(w, http.StatusOK, body)
}

// consoleUser shows a user: profile, live sessions, known devices (with
// their place) and latest events.
func (s *Server) consoleUser(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	d, err := s.console.Users.Get(r.Context(), r.PathValue("id"))
	if s.adminFailed(w, r, err, "no such user") {
		return
	}
	sess := make([]adminSessionJSON, 0, len(d.Sessions))
	for _, x := range d.Sessions {
		sess = append(sess, adminSessionJSON{ID: x.ID, ClientID: x.ClientID, IP: x.IP, UserAgent: x.UserAgent,
			CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt})
	}
	ev := make([]latch.Event, 0, len(d.Events))
	for _, e := range d.Events {
		ev = append(ev, e)
	}
	devs := []adminDeviceJSON{}
	if s.deviceReg != nil {
		if list, err := s.deviceReg.List(r.Context(), d.User.ID); err == nil {
			for _, x := range list {
				devs = append(devs, adminDeviceJSON{ID: x.ID, Name: x.Name, Browser: x.Browser, OS: x.OS, LastIP: x.LastIP,
					Country: x.LastPlace.Country, City: x.LastPlace.City, LastSeenAt: x.LastSeenAt})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": userJSON(d.User), "sessions": sess, "devices": devs, "events": ev})
}

// consoleUserAction answers a user action's outcome.
func (s *Server) consoleUserAction(w http.ResponseWriter, r *http.Request, err error, done string) {
	if errors.Is(err, admin.ErrSelf) {
		writeError(w, http.StatusConflict, "forbidden_self", err.Error())
		return
	}
	if !s.adminFailed(w, r, err, "no such user") {
		writeJSON(w, http.StatusOK, map[string]any{"user_id": r.PathValue("id"), done: true})
	}
}

func (s *Server) consoleLock(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	s.consoleUserAction(w, r, s.console.Users.Lock(r.Context(), by, r.PathValue("id")), "locked")
}

func (s *Server) consoleUnlock(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	s.consoleUserAction(w, r, s.console.Users.Unlock(r.Context(), by, r.PathValue("id")), "unlocked")
}

func (s *Server) consoleReset(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	s.consoleUserAction(w, r, s.console.Users.SendReset(r.Context(), by, r.PathValue("id")), "reset_sent")
}

func (s *Server) consoleDeleteUser(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	s.consoleUserAction(w, r, s.console.Users.Delete(r.Context(), by, r.PathValue("id")), "deleted")
}

// clientRequest is the body of POST /admin/v1/clients: the settings of
// latch client add.
type clientRequest struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	Public                 bool     `json:"public"`
	Secret                 string   `json:"secret"`
	Scopes                 []string `json:"scopes"`
	Audience               string   `json:"audience"`
	Delivery               string   `json:"delivery"`
	Permissions            []string `json:"permissions"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri"`
	FirstParty             bool     `json:"first_party"`
}

// consoleClients lists the clients (GET) or registers one (POST): a
// confidential client without a secret gets one, in the answer only.
func (s *Server) consoleClients(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	if r.Method != http.MethodPost {
		list, err := s.console.Clients.List(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := make([]adminClientJSON, 0, len(list))
		for _, c := range list {
			out = append(out, clientJSON(c))
		}
		writeJSON(w, http.StatusOK, map[string]any{"clients": out})
		return
	}
	var req clientRequest
	if !decodeStrict(w, r, &req) {
		return
	}
	// An admin client needs no re-authentication: making one is as
	// destructive as anything it may then do. A first-party client skips
	// the consent page: made with an intruder's redirect URI, it would
	// hand them every user who follows their link.
	if (containsString(req.Scopes, admin.Scope) || req.FirstParty) && !s.consoleReauthed(w, r, by) {
		return
	}
	c, secret, err := s.console.Clients.Create(r.Context(), by, auth.NewClient{ID: req.ID, Name: req.Name, Public: req.Public, Secret: req.Secret,
		Scopes: req.Scopes, Audience: req.Audience, Delivery: req.Delivery, Permissions: req.Permissions, RedirectURIs: req.RedirectURIs,
		PostLogoutRedirectURIs: req.PostLogoutRedirectURIs, BackchannelLogoutURI: req.BackchannelLogoutURI, FirstParty: req.FirstParty})
	switch {
	case errors.Is(err, auth.ErrClientExists):
		writeError(w, http.StatusConflict, "client_exists", "a client with this id exists")
		return
	case err != nil && ctxErr(r) == nil:
		// Every other error of CreateClient is the request's settings.
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", err.Error())
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	body := map[string]any{"client": clientJSON(c)}
	if secret != "" {
		body["client_secret"] = secret
	}
	writeJSON(w, http.StatusCreated, body)
}

func ctxErr(r *http.Request) error { return r.Context().Err() }

// clientEdit is the body of PATCH /admin/v1/clients/{id}: the members
// present replace the client's settings.
type clientEdit struct {
	Name                   *string   `json:"name"`
	Scopes                 *[]string `json:"scopes"`
	Audience               *string   `json:"audience"`
	Delivery               *string   `json:"delivery"`
	RedirectURIs           *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   *string   `json:"backchannel_logout_uri"`
	FirstParty             *bool     `json:"first_party"`
}

// consoleClientFailed answers a client operation's error, if any.
func (s *Server) consoleClientFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, admin.ErrClientNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such client")
	case errors.Is(err, admin.ErrPublicClient):
		writeError(w, http.StatusConflict, "public_client", "a public client has no secret to rotate")
	case ctxErr(r) == nil && !strings.HasPrefix(err.Error(), "admin: "):
		// auth.BuildClient's refusals: the request's settings.
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", err.Error())
	default:
		s.fail(w, r, err)
	}
	return true
}

// consoleEditClient changes a client's settings.
func (s *Server) consoleEditClient(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	var req clientEdit
	if !decodeStrict(w, r, &req) {
		return
	}
	// Where codes and tokens go (redirect URIs), whether users are asked
	// (first party) and admin power are changed only after the password:
	// users who consented before would follow a new redirect URI unasked.
	sensitive := req.Scopes != nil && containsString(*req.Scopes, admin.Scope) ||
		req.FirstParty != nil && *req.FirstParty || req.RedirectURIs != nil || req.PostLogoutRedirectURIs != nil
	if sensitive && !s.consoleReauthed(w, r, by) {
		return
	}
	c, err := s.console.Clients.Update(r.Context(), by, r.PathValue("id"), admin.Edit{Name: req.Name, Scopes: req.Scopes, Audience: req.Audience,
		Delivery: req.Delivery, RedirectURIs: req.RedirectURIs, PostLogoutRedirectURIs: req.PostLogoutRedirectURIs,
		BackchannelLogoutURI: req.BackchannelLogoutURI, FirstParty: req.FirstParty})
	if !s.consoleClientFailed(w, r, err) {
		writeJSON(w, http.StatusOK, map[string]any{"client": clientJSON(c)})
	}
}

// consoleRotateSecret gives a confidential client a new secret, shown once.
func (s *Server) consoleRotateSecret(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	secret, err := s.console.Clients.RotateSecret(r.Context(), by, r.PathValue("id"))
	if !s.consoleClientFailed(w, r, err) {
		writeJSON(w, http.StatusOK, map[string]any{"client_id": r.PathValue("id"), "client_secret": secret})
	}
}

// consoleDeleteClient deletes a client.
func (s *Server) consoleDeleteClient(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	err := s.console.Clients.Delete(r.Context(), by, r.PathValue("id"))
	if !s.consoleClientFailed(w, r, err) {
		writeJSON(w, http.StatusOK, map[string]any{"client_id": r.PathValue("id"), "deleted": true})
	}
}

// decodeStrict is decode, refusing members v does not have: a registration
// with a misspelt setting ("redirect_uri") must fail, not silently make a
// client without it.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "request body too large")
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !decode(w, r, v) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(reflect.New(reflect.TypeOf(v).Elem()).Interface()); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body has a member this endpoint does not know: "+strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	return true
}

// consoleKeys shows the signing-key ring.
func (s *Server) consoleKeys(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	list := s.console.Keys.List()
	out := make([]adminKeyJSON, 0, len(list))
	for _, k := range list {
		out = append(out, adminKeyJSON{ID: k.ID, Algorithm: k.Algorithm, Family: k.Family, State: k.State, CreatedAt: k.CreatedAt,
			NotBefore: k.NotBefore, NotAfter: optTime(k.NotAfter), RevokedAt: optTime(k.RevokedAt)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// consoleRotate rotates every key family now.
func (s *Server) consoleRotate(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	nk, err := s.console.Keys.Rotate(r.Context(), by)
	if err != nil && len(nk) == 0 {
		s.fail(w, r, err)
		return
	}
	ids := make([]string, 0, len(nk))
	for _, k := range nk {
		ids = append(ids, k.ID)
	}
	body := map[string]any{"rotated": ids}
	if err != nil {
		body["error_description"] = err.Error()
	}
	writeJSON(w, http.StatusOK, body)
}

// consoleRevokeKey revokes one key.
func (s *Server) consoleRevokeKey(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	res, err := s.console.Keys.Revoke(r.Context(), by, r.PathValue("kid"))
	if errors.Is(err, keys.ErrUnknownKey) {
		writeError(w, http.StatusNotFound, "not_found", "no such key")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kid": res.Key.ID, "revoked": true, "already": res.Already, "replaced_by": res.Rotated.ID})
}

// eventFilter reads the events filters: type (repeatable or
// comma-separated), user, ip, from and to (RFC 3339), before (the
// cursor), limit.
func eventFilter(w http.ResponseWriter, r *http.Request) (latch.EventFilter, bool) {
	var f latch.EventFilter
	q := r.URL.Query()
	for _, t := range q["type"] {
		for _, x := range strings.Split(t, ",") {
			if x = strings.TrimSpace(x); x != "" {
				if len(x) > 64 || len(f.Types) >= 32 {
					writeError(w, http.StatusBadRequest, "invalid_request", "type: at most 32 types of at most 64 bytes")
					return f, false
				}
				f.Types = append(f.Types, x)
			}
		}
	}
	var ok bool
	if f.UserID, ok = queryText(w, r, "user"); !ok {
		return f, false
	}
	if f.IP, ok = queryText(w, r, "ip"); !ok {
		return f, false
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid_request", p.name+" must be an RFC 3339 time, such as 2026-01-02T15:04:05Z")
				return f, false
			}
			*p.t = t
		}
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "invalid_request", "before must be an event id")
			return f, false
		}
		f.Before = n
	}
	if f.Limit, ok = queryLimit(w, r); !ok {
		return f, false
	}
	return f, true
}

// consoleEvents answers a page of the security log, newest first.
func (s *Server) consoleEvents(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	f, ok := eventFilter(w, r)
	if !ok {
		return
	}
	list, next, err := s.console.Events.Page(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]latch.Event, 0, len(list))
	for _, e := range list {
		out = append(out, e)
	}
	body := map[string]any{"events": out}
	if next != 0 {
		body["next"] = strconv.FormatInt(next, 10)
	}
	writeJSON(w, http.StatusOK, body)
}

// consoleExport streams every event matching the filters as CSV
// (format=csv, the default) or JSON lines (format=json), newest first.
func (s *Server) consoleExport(w http.ResponseWriter, r *http.Request, by admin.Caller) {
	f, ok := eventFilter(w, r)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		writeError(w, http.StatusBadRequest, "invalid_request", "format must be csv or json")
		return
	}
	// The export may take longer than one request's budget.
	ctx := r.Context()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	stamp := time.Now().UTC().Format("20060102-150405")
	var write func(latch.Event) error
	var flush func()
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="latch-events-`+stamp+`.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"id", "at", "type", "user_id", "session_id", "client_id", "ip", "user_agent", "detail"})
		write = func(e latch.Event) error {
			d := ""
			if len(e.Detail) > 0 {
				b, _ := json.Marshal(e.Detail)
				d = string(b)
			}
			return cw.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), e.Type, csvSafe(e.UserID), csvSafe(e.SessionID),
				csvSafe(e.ClientID), csvSafe(e.IP), csvSafe(e.UserAgent), csvSafe(d)})
		}
		flush = cw.Flush
	} else {
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="latch-events-`+stamp+`.jsonl"`)
		enc := json.NewEncoder(w)
		write = func(e latch.Event) error { return enc.Encode(e) }
		flush = func() {}
	}
	err := s.console.Events.Each(ctx, f, write)
	flush()
	if err != nil {
		s.log.Error("event export ended early", "err", err)
	}
}

// csvSafe defuses a value a spreadsheet would read as a formula (CSV
// injection): a leading =, +, -, @, tab or carriage return gets a quote.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
