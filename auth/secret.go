package auth

import (
	"errors"

	"github.com/latchauth/latch/secret"
)

// MinClientSecretBits is the least estimated entropy, in bits, of a client
// secret chosen by the operator.
const MinClientSecretBits = secret.MinBits

// ErrWeakClientSecret: a confidential client's secret is too short or too
// predictable. The error that wraps it says how to make a good one.
var ErrWeakClientSecret = errors.New("weak client secret")

// secretBits is secret.Bits, the estimate CreateClient applies.
func secretBits(s string) float64 { return secret.Bits(s) }
