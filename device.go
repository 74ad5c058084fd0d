package latch

import (
	"context"
	"time"
)

// Event types of sign-in alerts.
const (
	// EventNewDeviceSignIn: a sign-in from a device or country the
	// account had not used; the user was emailed. Detail: alert_id,
	// device_id, reasons, signals.
	EventNewDeviceSignIn = "new_device_sign_in"
	// EventRiskChallenged: a sign-in sent to a step-up challenge.
	EventRiskChallenged = "risk_challenged"
	// EventDeviceConfirmed: the user answered an alert "yes, it was me".
	EventDeviceConfirmed = "device_confirmed"
	// EventNotMe: the user answered an alert "this wasn't me": every
	// session revoked, the account locked until a password reset.
	EventNotMe = "not_me"
)

// Answers to a sign-in alert.
const (
	AlertAnswerMe    = "me"
	AlertAnswerNotMe = "not_me"
)

// Device is a browser or app a user signed in from. A browser is known
// by its device cookie (CookieID); a client that holds no cookie by its
// user-agent family (Family: browser and OS with its major version). The
// IP address never names a device.
type Device struct {
	// ID names the device in the account API ("dev_…").
	ID     string
	UserID string
	// CookieID is the id the device cookie carries; empty for a device
	// that was never given one (a native app, a command-line client).
	CookieID string
	// Family is the user-agent family key ("Chrome|Windows 10").
	Family string
	// Name is the user's name for it (empty until they set one).
	Name    string
	Browser string
	OS      string
	// CreatedAt is the first sign-in from the device, LastSeenAt the
	// latest, with its address and place.
	CreatedAt  time.Time
	LastSeenAt time.Time
	LastIP     string
	LastPlace  Place
	// ConfirmedAt is when the user answered "yes, it was me" for it;
	// zero while they did not.
	ConfirmedAt time.Time
}

// DeviceRetention is how long a device unseen is kept: as long as its
// cookie lives (400 days). Prune forgets older ones.
const DeviceRetention = 400 * 24 * time.Hour

// Places are the countries and networks (autonomous systems) an account
// has signed in from.
type Places struct {
	Countries []string
	ASNs      []uint
}

// SignInAlert is a new-device alert mailed to a user, with its two
// single-use links ("yes, it was me" and "this wasn't me"), stored only
// as the SHA-256 of their tokens. One answer spends both.
type SignInAlert struct {
	// ID names the alert (and its event); the links carry it beside
	// their token.
	ID       string
	UserID   string
	DeviceID string
	// MeHash and NotMeHash are the hashes of the two links' tokens.
	MeHash    []byte
	NotMeHash []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	// What the email told: where and from what.
	IP      string
	Country string
	City    string
	Browser string
	OS      string
	// Answer is AlertAnswerMe, AlertAnswerNotMe, or empty while
	// unanswered; AnsweredAt is when.
	Answer     string
	AnsweredAt time.Time
}

// DeviceStore keeps the devices and places of accounts and their sign-in
// alerts.
type DeviceStore interface {
	// Devices returns the user's devices, most recently seen first.
	Devices(ctx context.Context, userID string) ([]*Device, error)
	// Places returns the countries and networks the user signed in from.
	Places(ctx context.Context, userID string) (*Places, error)
	// DeviceKnown reports whether the user has a device with the cookie
	// id (false for an empty id).
	DeviceKnown(ctx context.Context, userID, cookieID string) (bool, error)
	// RecordDeviceUse stores d (inserting it, or updating the row with
	// its ID: last seen, address, place, and CookieID if it had none)
	// and adds the country and ASN of d.LastPlace to the user's places.
	// ErrNotFound if the user does not exist.
	RecordDeviceUse(ctx context.Context, d *Device) error
	// RenameDevice sets the name of the user's device; ErrNotFound if the
	// user has no device with the id.
	RenameDevice(ctx context.Context, userID, id, name string) error
	// ForgetDevice deletes the user's device: its next sign-in is a new
	// device. ErrNotFound if the user has no device with the id.
	ForgetDevice(ctx context.Context, userID, id string) error
	// CreateSignInAlert stores a. ErrConflict if its ID or a hash is
	// taken.
	CreateSignInAlert(ctx context.Context, a *SignInAlert) error
	// SignInAlert returns the alert one of whose link hashes is hash and
	// that is usable at at (unanswered, not expired), without spending
	// it, and which answer the hash gives; ErrNotFound otherwise.
	SignInAlert(ctx context.Context, hash []byte, at time.Time) (*SignInAlert, string, error)
	// AnswerSignInAlert answers the usable alert one of whose link
	// hashes is hash with the answer that link gives, in one conditional
	// statement (of concurrent answers exactly one succeeds), and returns
	// it. An answer AlertAnswerMe also marks the alert's device
	// confirmed at at, in the same transaction. ErrNotFound if no usable
	// alert has the hash.
	AnswerSignInAlert(ctx context.Context, hash []byte, at time.Time) (*SignInAlert, error)
	// SignInAlerts returns the user's latest alerts, newest first, at
	// most limit.
	SignInAlerts(ctx context.Context, userID string, limit int) ([]*SignInAlert, error)
}
