package auth

import (
	"context"

	"github.com/latchauth/latch/throttle"
)

// ErrRateLimited: too many sign-in attempts from one address.
// ErrAccountLocked: too many failed sign-ins for one email from this
// source, or from everywhere (see package throttle). Both come as a
// *ThrottleError that says when to retry.
var (
	ErrRateLimited   = throttle.ErrRateLimited
	ErrAccountLocked = throttle.ErrAccountLocked
)

// ThrottleError is a refused sign-in and when it may be tried again.
type ThrottleError = throttle.Error

// ThrottleConfig bounds sign-in attempts (see throttle.Config).
type ThrottleConfig = throttle.Config

// AllowAddress admits one attempt from ip against the per-address budget
// that sign-in and registration draw on (ThrottleConfig.PerIPPerMinute),
// or returns a *ThrottleError of kind ErrRateLimited. Other flows that
// can be abused from one address (a password-reset request) spend from
// the same budget.
func (s *Service) AllowAddress(ip string) error {
	return s.throttle.AllowAddress(context.Background(), ip)
}

// knownDevice returns the device-cookie id of c if the device is one the
// user signed in from before (Guards.Devices), "" otherwise. For an
// unknown email (userID "") it asks all the same, so that the answer
// takes as long, and never counts the device as known.
func (s *Service) knownDevice(ctx context.Context, userID string, c Device) string {
	if c.DeviceID == "" || s.guards.Devices == nil {
		return ""
	}
	known, err := s.guards.Devices.Known(ctx, userID, c.DeviceID)
	if err != nil {
		if userID != "" {
			s.log.Warn("sign-in throttle: known device check failed; counting the device as unknown", "user_id", userID, "err", err)
		}
		return ""
	}
	if !known || userID == "" {
		return ""
	}
	return c.DeviceID
}
