package password

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Length bounds of the password policy, in Unicode code points.
const (
	MinLength = 8
	MaxLength = 256
)

// PolicyError is returned by Check when a password breaks the policy. Its
// message is meant for the user (the server puts it in error_description)
// and never contains the password.
type PolicyError struct {
	// Code is a stable machine-readable reason: "invalid_utf8",
	// "too_short", "too_long", "whitespace_only" or "equals_email".
	Code string
	// Message is a human-readable sentence, e.g. "password must be at
	// least 8 characters".
	Message string
}

// Error returns the human-readable message.
func (e *PolicyError) Error() string { return e.Message }

// Check applies the password policy to a new password for the account with
// the given email. The password must be valid UTF-8, MinLength to MaxLength
// characters long counted in Unicode code points, not only whitespace, and
// not the email address itself (compared trimmed and case-insensitively).
// The error, if any, is a *PolicyError.
//
// Check does not alter the password: it is hashed and later compared byte
// for byte, without trimming or Unicode normalisation.
func Check(password, email string) error {
	if !utf8.ValidString(password) {
		return &PolicyError{Code: "invalid_utf8", Message: "password must be valid UTF-8 text"}
	}
	switch n := utf8.RuneCountInString(password); {
	case n < MinLength:
		return &PolicyError{Code: "too_short", Message: fmt.Sprintf("password must be at least %d characters", MinLength)}
	case n > MaxLength:
		return &PolicyError{Code: "too_long", Message: fmt.Sprintf("password must be at most %d characters", MaxLength)}
	}
	if strings.TrimSpace(password) == "" {
		return &PolicyError{Code: "whitespace_only", Message: "password must not consist only of spaces"}
	}
	if e := strings.TrimSpace(email); e != "" && strings.EqualFold(strings.TrimSpace(password), e) {
		return &PolicyError{Code: "equals_email", Message: "password must not be your email address"}
	}
	return nil
}
