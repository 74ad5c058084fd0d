package keys

import (
	"fmt"
	"strings"
	"time"
)

// Signing algorithms (JWS "alg" values) a Ring can use.
const (
	EdDSA = "EdDSA" // Ed25519; the default: fast signing, small tokens
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	RS256 = "RS256" // RSA PKCS #1 v1.5 with SHA-256, 2048-bit keys
)

// Defaults of Config.
const (
	DefaultAlgorithm      = EdDSA
	DefaultRotationPeriod = 30 * 24 * time.Hour
	DefaultJWKSMaxAge     = 15 * time.Minute
	DefaultTokenLifetime  = 5*time.Minute + 30*time.Second
	// DefaultIDTokenLifetime is the default of Config.IDTokenLifetime.
	DefaultIDTokenLifetime = time.Hour + 30*time.Second
)

// publishMargin is how much longer than the JWKS max-age a new key is
// published before it signs, so that every cache has fetched it.
const publishMargin = 10 * time.Minute

// Limits of Config.
const (
	maxJWKSMaxAge      = 24 * time.Hour
	minRotationPeriod  = time.Hour
	rsaBits            = 2048
	acceptedAlgorithms = "EdDSA (default), ES256, RS256"
)

// maxTokenLifetime is the longest access-token lifetime the server's
// configuration accepts (tokens.access_ttl 24h) plus its longest leeway
// (30s): every lifetime that config validation accepts must start.
const maxTokenLifetime = 24*time.Hour + 30*time.Second

// Config says how the ring rotates. Zero fields take their defaults.
type Config struct {
	// Algorithm of new keys: EdDSA (default), ES256 or RS256. Changing it
	// schedules a normal rotation to a key of the new algorithm.
	Algorithm string
	// RotationPeriod is how long each key signs before its successor
	// activates; default 30 days.
	RotationPeriod time.Duration
	// JWKSMaxAge is the Cache-Control max-age of the JWKS; default 15
	// minutes. New keys are published JWKSMaxAge + 10 minutes before they
	// sign.
	JWKSMaxAge time.Duration
	// TokenLifetime is the longest access-token lifetime plus leeway;
	// default 5 minutes + 30 seconds. A retired access-token key stays
	// published for TokenLifetime + JWKSMaxAge after its successor
	// activates.
	TokenLifetime time.Duration
	// IDTokenLifetime is the longest lifetime of an id_token or logout
	// token plus leeway; default 1 hour + 30 seconds. A retired FamilyID
	// key stays published for IDTokenLifetime + JWKSMaxAge after its
	// successor activates.
	IDTokenLifetime time.Duration
}

// WithDefaults returns c with zero fields set to their defaults and the
// algorithm name in its canonical case.
func (c Config) WithDefaults() Config {
	switch strings.ToUpper(strings.TrimSpace(c.Algorithm)) {
	case "":
		c.Algorithm = DefaultAlgorithm
	case "EDDSA":
		c.Algorithm = EdDSA
	case "ES256":
		c.Algorithm = ES256
	case "RS256":
		c.Algorithm = RS256
	}
	if c.RotationPeriod == 0 {
		c.RotationPeriod = DefaultRotationPeriod
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if c.TokenLifetime == 0 {
		c.TokenLifetime = DefaultTokenLifetime
	}
	if c.IDTokenLifetime == 0 {
		c.IDTokenLifetime = DefaultIDTokenLifetime
	}
	return c
}

// Validate reports the first setting of c (after defaults) that is not
// acceptable, naming the setting and the accepted values.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch c.Algorithm {
	case EdDSA, ES256, RS256:
	default:
		return fmt.Errorf("keys: algorithm %q is not supported; accepted values: %s", c.Algorithm, acceptedAlgorithms)
	}
	if c.JWKSMaxAge < 0 || c.JWKSMaxAge > maxJWKSMaxAge {
		return fmt.Errorf("keys: JWKS max-age %v is out of range; accepted: up to %v, 0 for the default %v", c.JWKSMaxAge, maxJWKSMaxAge, DefaultJWKSMaxAge)
	}
	if c.TokenLifetime < 0 || c.TokenLifetime > maxTokenLifetime {
		return fmt.Errorf("keys: token lifetime %v is out of range; accepted: up to %v, 0 for the default %v", c.TokenLifetime, maxTokenLifetime, DefaultTokenLifetime)
	}
	if c.IDTokenLifetime < 0 || c.IDTokenLifetime > maxTokenLifetime {
		return fmt.Errorf("keys: id_token lifetime %v is out of range; accepted: up to %v, 0 for the default %v", c.IDTokenLifetime, maxTokenLifetime, DefaultIDTokenLifetime)
	}
	if c.RotationPeriod < minRotationPeriod || c.RotationPeriod <= c.PublishDelay() {
		return fmt.Errorf("keys: rotation period %v is too short; accepted: at least %v and longer than the publish delay (JWKS max-age + %v = %v); default %v",
			c.RotationPeriod, minRotationPeriod, publishMargin, c.PublishDelay(), DefaultRotationPeriod)
	}
	return nil
}

// PublishDelay is how long a new key is published in the JWKS before it
// signs: JWKSMaxAge + 10 minutes, so every cache has fetched it first.
func (c Config) PublishDelay() time.Duration {
	return c.WithDefaults().JWKSMaxAge + publishMargin
}

// retention is how long a replaced key of family stays published after its
// successor activates: until every token it signed has expired
// (TokenLifetime, or IDTokenLifetime for FamilyID) and every cache of the
// JWKS has refreshed (JWKSMaxAge).
func (c Config) retention(family string) time.Duration {
	c = c.WithDefaults()
	if family == FamilyID {
		return c.IDTokenLifetime + c.JWKSMaxAge
	}
	return c.TokenLifetime + c.JWKSMaxAge
}
