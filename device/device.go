// Package device recognises the browsers and apps users sign in from.
//
// A browser carries a long-lived device cookie (__Host-latch_device:
// HttpOnly, Secure, SameSite=Lax, about 400 days) whose value is a random
// id and a MAC of it under the server's key: only Latch makes one. A
// device is known for a user when the user signed in with its cookie
// before. A client that holds no cookie (a native app, a command-line
// client) is known by its user-agent family: browser and operating system
// with its major version. A browser that comes without its cookie (a fresh
// profile, cleared cookies) is a new device: the family alone would let
// anyone with the same common browser pass as the owner. An IP address
// never names a device: a change of network is not a new device.
package device

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mssola/useragent"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/tag"
)

// Cookie names: with the __Host- prefix wherever the issuer is secure
// (https, or a loopback address for development), without it otherwise.
const (
	CookieName         = "__Host-latch_device"
	InsecureCookieName = "latch_device"
)

// CookieMaxAge is the device cookie's lifetime: 400 days, the longest a
// browser keeps a cookie (RFC 6265bis).
const CookieMaxAge = 400 * 24 * time.Hour

// macPurpose keys the MAC of the device cookie.
const macPurpose = "latch device cookie v1"

// Registry issues and checks device cookies and recognises the devices of
// users. It implements auth.KnownDevices.
type Registry struct {
	store  latch.DeviceStore
	mac    func(purpose string, msg []byte) []byte
	secure bool
}

// New returns a Registry over the store; mac is the server's keyed MAC
// (the key-encryption key's derived MAC, as for the SSO cookie). secure
// says whether cookies get the Secure attribute and the __Host- prefix.
func New(store latch.DeviceStore, mac func(purpose string, msg []byte) []byte, secure bool) *Registry {
	return &Registry{store: store, mac: mac, secure: secure}
}

// CookieName returns the name of the device cookie.
func (r *Registry) CookieName() string {
	if r.secure {
		return CookieName
	}
	return InsecureCookieName
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns 128 random bits, base32.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

func (r *Registry) value(id string) string {
	return tag.Sign(r.mac, macPurpose, id)
}

// Check returns the id of a device cookie value whose MAC is right
// (compared in constant time), or false.
func (r *Registry) Check(value string) (string, bool) {
	id, ok := tag.Open(r.mac, macPurpose, value, 26)
	if !ok || len(id) != 26 {
		return "", false
	}
	return id, true
}

type ctxKey struct{}

// state is what the middleware learnt of a request's device cookie.
type state struct {
	id    string
	fresh bool // no valid cookie came: id is new, to be set at sign-in
}

// Middleware puts the checked device id of each request in its context
// (see ID). A browser request without a valid cookie gets a fresh id that
// SetCookie writes once a sign-in succeeded, so that the device recorded
// at sign-in and the cookie the browser keeps carry the same id.
func (r *Registry) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var st state
		if c, err := req.Cookie(r.CookieName()); err == nil {
			st.id, _ = r.Check(c.Value)
		}
		if st.id == "" && Browser(req) {
			st = state{id: newID(), fresh: true}
		}
		if st.id != "" {
			req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, st))
		}
		next.ServeHTTP(w, req)
	})
}

// ID returns the device id of the request's context: the checked
// cookie's, or a fresh one for a browser without a cookie; empty for a
// client that holds no cookie.
func ID(ctx context.Context) string {
	st, _ := ctx.Value(ctxKey{}).(state)
	return st.id
}

// SetCookie writes the device cookie after a successful sign-in, when the
// browser did not present a valid one (a present cookie is refreshed too,
// so it lives 400 days from the last sign-in).
func (r *Registry) SetCookie(w http.ResponseWriter, req *http.Request) {
	st, ok := req.Context().Value(ctxKey{}).(state)
	if !ok || st.id == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: r.CookieName(), Value: r.value(st.id), Path: "/",
		MaxAge: int(CookieMaxAge / time.Second), Secure: r.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// Browser reports whether the request may come from a browser: it sends
// Fetch Metadata (Sec-Fetch-Site), or names itself Mozilla/ as every
// browser does (older ones and web views send no Fetch Metadata). A
// browser is known by its device cookie only: its user-agent family is
// the client's to claim, so an intruder naming the owner's browser must
// not pass for it. Apps and command-line clients, which keep no cookie,
// are known by user-agent family.
func Browser(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Site") != "" || strings.HasPrefix(r.UserAgent(), "Mozilla/")
}

// Known reports whether the user signed in from the device with the
// cookie id before (and did not forget it). It implements
// auth.KnownDevices.
func (r *Registry) Known(ctx context.Context, userID, deviceID string) (bool, error) {
	ok, err := r.store.DeviceKnown(ctx, userID, deviceID)
	if err != nil {
		return false, fmt.Errorf("device: known: %w", err)
	}
	return ok, nil
}

var _ auth.KnownDevices = (*Registry)(nil)

// Recognize finds, among the user's devices, the one a sign-in comes from:
// by cookie id when d has one, by user-agent family among the devices
// that never held a cookie otherwise. It returns nil for a new device.
func Recognize(devices []*latch.Device, d auth.Device) *latch.Device {
	if d.DeviceID != "" {
		for _, dev := range devices {
			if dev.CookieID != "" && subtle.ConstantTimeCompare([]byte(dev.CookieID), []byte(d.DeviceID)) == 1 {
				return dev
			}
		}
		return nil
	}
	fam := Family(d.UserAgent)
	for _, dev := range devices {
		if dev.CookieID == "" && dev.Family == fam {
			return dev
		}
	}
	return nil
}

// NewID returns a fresh device record id ("dev_…").
func NewID() string { return "dev_" + newID() }

// Family is the user-agent family key of a User-Agent header: the browser
// and the operating system with its major version ("Chrome|Windows 10"),
// so that browser updates do not make a new device; for a client that is
// not a browser, its product name ("curl|").
func Family(ua string) string {
	if !strings.HasPrefix(ua, "Mozilla/") {
		name, _, _ := strings.Cut(ua, "/")
		name, _, _ = strings.Cut(name, " ")
		return strings.ToLower(name) + "|"
	}
	u := useragent.New(ua)
	name, _ := u.Browser()
	os := u.OSInfo()
	major, _, _ := strings.Cut(os.Version, ".")
	major, _, _ = strings.Cut(major, "_")
	return name + "|" + strings.TrimSpace(os.Name+" "+major)
}

// Describe names the browser and operating system of a User-Agent header
// for people ("Chrome 120", "Windows 10"), or "" for what it cannot tell.
func Describe(ua string) (browser, os string) {
	if ua == "" || !strings.HasPrefix(ua, "Mozilla/") {
		name, _, _ := strings.Cut(ua, " ")
		return name, ""
	}
	u := useragent.New(ua)
	name, version := u.Browser()
	if u.Bot() {
		name, version = "Bot", ""
	}
	if major, _, _ := strings.Cut(version, "."); major != "" && name != "" {
		browser = name + " " + major
	} else {
		browser = name
	}
	info := u.OSInfo()
	os = info.Name
	switch {
	case strings.HasPrefix(os, "Mac OS X") || os == "macOS":
		os = "macOS"
	case os == "Windows" || os == "Linux" || os == "Android" || os == "iOS":
		if major, _, _ := strings.Cut(info.Version, "."); major != "" && major != "0" {
			os += " " + major
		}
	case os == "" && u.Platform() != "":
		os = u.Platform()
	}
	return browser, os
}

// ErrNotFound: the user has no device with the id.
var ErrNotFound = errors.New("no such device")

// MaxNameLength bounds a device name, in bytes.
const MaxNameLength = 100

// List returns the user's devices, most recently seen first.
func (r *Registry) List(ctx context.Context, userID string) ([]*latch.Device, error) {
	list, err := r.store.Devices(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("device: list: %w", err)
	}
	return list, nil
}

// Rename names the user's device (trimmed; empty clears the name).
func (r *Registry) Rename(ctx context.Context, userID, id, name string) error {
	err := r.store.RenameDevice(ctx, userID, id, strings.TrimSpace(name))
	if errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("device: rename: %w", err)
	}
	return nil
}

// Forget deletes the user's device: its next sign-in is a new device, and
// throttling no longer spares it.
func (r *Registry) Forget(ctx context.Context, userID, id string) error {
	err := r.store.ForgetDevice(ctx, userID, id)
	if errors.Is(err, latch.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("device: forget: %w", err)
	}
	return nil
}
