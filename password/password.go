// Package password hashes and verifies user passwords and enforces the
// password policy of Latch.
//
// New hashes are argon2id (RFC 9106) in the PHC string format that other
// argon2 libraries read:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// where salt and hash are standard base64 without padding. The default
// parameters are the OWASP minimum for argon2id (19 MiB, 2 passes, 1 lane).
// bcrypt hashes ($2a$, $2b$, $2y$) of imported users are verified too, and
// reported for rehashing, as is any argon2id hash whose parameters differ
// from the Hasher's: the caller stores a fresh [Hasher.Hash] of the password
// after a successful login.
//
// Each argon2id computation allocates its whole memory parameter (19 MiB by
// default), so a [Hasher] runs at most a fixed number of them at once and
// makes callers wait a bounded time for a slot before failing with
// [ErrBusy]; the server answers 503 with Retry-After rather than letting
// memory grow with the number of login attempts. A stored hash made with
// more memory than the Hasher's parameters takes as many slots as its
// memory needs, so the bound holds whatever the stored parameters; one
// that needs more than all the slots together is refused.
//
// Passwords are compared byte-exact: nothing is trimmed, case-folded or
// Unicode-normalised, so a password typed with a composed "é" (U+00E9) does
// not match one stored with "e" followed by a combining accent. Clients send
// what the user typed. [Check] applies the password policy to new
// passwords.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
)

// Errors returned by a Hasher. Callers compare with errors.Is; the errors
// returned are wrapped with detail that never contains the password, the
// salt or the hash.
var (
	// ErrBusy means every hashing slot stayed taken for the Hasher's
	// maximum wait. The request should be answered with 503 and a
	// Retry-After header.
	ErrBusy = errors.New("password: too many password hashes in progress")
	// ErrUnsupportedHash means a stored hash is in neither the argon2id PHC
	// format nor a bcrypt format.
	ErrUnsupportedHash = errors.New("password: unsupported hash format (want argon2id or bcrypt)")
	// ErrMalformedHash means a stored hash has a supported prefix but does
	// not parse, or its parameters are outside the accepted bounds.
	ErrMalformedHash = errors.New("password: malformed hash")
)

// Params are the argon2id cost parameters of new hashes.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism (lanes).
	Threads uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived hash in bytes.
	KeyLen uint32
}

// DefaultParams are the OWASP minimum for argon2id: 19 MiB of memory, two
// passes, one lane, a 16-byte salt and a 32-byte hash. About 22 ms a hash on
// one core of the reference machine.
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters. Hashes read from storage may be weaker than
// DefaultParams (they are verified and reported for rehashing) but must lie
// within these bounds, so that a corrupt or hostile string cannot make
// Verify hang or allocate without limit. Params for new hashes must lie
// between DefaultParams and these maxima.
const (
	// MaxMemory is the largest accepted memory cost: 1 GiB, in KiB.
	MaxMemory = 1 << 20
	// MaxTime is the largest accepted number of passes.
	MaxTime = 64
	// MaxSaltLen is the largest accepted salt, in bytes.
	MaxSaltLen = 1024
	// MaxKeyLen is the largest accepted hash, in bytes.
	MaxKeyLen = 1024
	// MaxBcryptCost is the largest accepted bcrypt cost (2^16 rounds,
	// several seconds).
	MaxBcryptCost = 16

	minStoredSaltLen = 8  // RFC 9106 minimum
	minStoredKeyLen  = 16 // shorter tags make online guessing collisions likely
	maxEncodedLen    = 4096
)

// Validate reports whether p may be used for new hashes: every field at
// least its value in DefaultParams and at most the accepted maximum. The
// error names the field and the bound.
func (p Params) Validate() error {
	d := DefaultParams
	var errs []error
	check := func(field string, v, min, max uint64, unit string) {
		if v < min {
			errs = append(errs, fmt.Errorf("password: %s %d%s is below the minimum %d%s", field, v, unit, min, unit))
		} else if v > max {
			errs = append(errs, fmt.Errorf("password: %s %d%s is above the maximum %d%s", field, v, unit, max, unit))
		}
	}
	check("Memory", uint64(p.Memory), uint64(d.Memory), MaxMemory, " KiB")
	check("Time", uint64(p.Time), uint64(d.Time), MaxTime, "")
	check("Threads", uint64(p.Threads), uint64(d.Threads), 255, "")
	check("SaltLen", uint64(p.SaltLen), uint64(d.SaltLen), MaxSaltLen, " bytes")
	check("KeyLen", uint64(p.KeyLen), uint64(d.KeyLen), MaxKeyLen, " bytes")
	return errors.Join(errs...)
}

// limits bound what Verify accepts from a stored hash. They are fields of
// the Hasher only so that the fuzz test can lower them to keep each input
// cheap; production code always uses defaultLimits.
type limits struct {
	maxMemory, maxTime uint32
	maxBcryptCost      int
}

var defaultLimits = limits{maxMemory: MaxMemory, maxTime: MaxTime, maxBcryptCost: MaxBcryptCost}

// Hasher hashes and verifies passwords with bounded concurrency. It is safe
// for concurrent use; one Hasher should serve the whole process so that the
// bound holds.
type Hasher struct {
	params Params
	// sem holds one unit per slot: a computation takes
	// ceil(memory / params.Memory) units, at least one, so that memory
	// in use stays within slots × params.Memory.
	sem     *semaphore.Weighted
	slots   int64
	maxWait time.Duration
	lim     limits
	waiting atomic.Int64 // callers waiting for a slot; read by tests
	// dummy is an argon2id string with the current parameters, a random
	// salt and a random hash, which no password matches. Verifying against
	// it costs exactly what verifying a real hash costs, because an argon2
	// output is indistinguishable from random bytes.
	dummy string
}

// DefaultMaxWait is how long a caller waits for a hashing slot when
// NewHasher is given a zero maxWait.
const DefaultMaxWait = 2 * time.Second

// NewHasher returns a Hasher that makes new hashes with p and runs at most
// maxConcurrent hash or verify computations at once (runtime.GOMAXPROCS(0)
// when zero). A caller waits at most maxWait for a slot (DefaultMaxWait when
// zero) before getting ErrBusy. Memory in use by hashing is thus bounded by
// about maxConcurrent times p.Memory KiB, plus what the garbage collector
// has not yet reclaimed: verifying a stored hash with a larger memory
// parameter takes several slots (see Verify).
func NewHasher(p Params, maxConcurrent int, maxWait time.Duration) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if maxConcurrent < 0 {
		return nil, fmt.Errorf("password: maxConcurrent %d is negative", maxConcurrent)
	}
	if maxWait < 0 {
		return nil, fmt.Errorf("password: maxWait %v is negative", maxWait)
	}
	if maxConcurrent == 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	if maxWait == 0 {
		maxWait = DefaultMaxWait
	}
	h := &Hasher{
		params:  p,
		sem:     semaphore.NewWeighted(int64(maxConcurrent)),
		slots:   int64(maxConcurrent),
		maxWait: maxWait,
		lim:     defaultLimits,
	}
	salt := make([]byte, p.SaltLen)
	key := make([]byte, p.KeyLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("password: reading random salt: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("password: reading random bytes: %w", err)
	}
	h.dummy = encodePHC(p, salt, key)
	return h, nil
}

// Params returns the parameters of new hashes.
func (h *Hasher) Params() Params { return h.params }

// slotsFor is the number of slots a computation with memory KiB takes:
// enough slots of the Hasher's own memory parameter to cover it, at least
// one.
func (h *Hasher) slotsFor(memory uint32) int64 {
	m := uint64(h.params.Memory)
	return max(1, int64((uint64(memory)+m-1)/m))
}

// acquire takes n hashing slots, waiting at most h.maxWait. It returns
// ErrBusy when the wait runs out and ctx.Err() when ctx ends first.
// Waiters are served in order, so a large request is not starved by
// small ones.
func (h *Hasher) acquire(ctx context.Context, n int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.sem.TryAcquire(n) {
		return nil
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	wctx, cancel := context.WithTimeout(ctx, h.maxWait)
	defer cancel()
	if err := h.sem.Acquire(wctx, n); err != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrBusy
	}
	return nil
}

func (h *Hasher) release(n int64) { h.sem.Release(n) }

// Hash returns the argon2id PHC string of password with the Hasher's
// parameters and a fresh random salt. It fails with ErrBusy or ctx.Err()
// if no hashing slot frees up in time. The password is hashed as given,
// byte for byte; apply Check to new passwords first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	p := h.params
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading random salt: %w", err)
	}
	if err := h.acquire(ctx, 1); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	h.release(1)
	return encodePHC(p, salt, key), nil
}

// Verify reports whether password matches the stored hash encoded, an
// argon2id PHC string or a bcrypt hash ($2a$, $2b$, $2y$).
//
// On a match, rehash reports that the caller should replace the stored hash
// with Hash(password): always for bcrypt, and for argon2id whenever the
// stored parameters (including salt and hash lengths) differ from the
// Hasher's, stronger or weaker. rehash is false when ok is false.
//
// A mismatch is ok == false with a nil error. err is non-nil only when no
// comparison could be made: the hash is in an unsupported format
// (ErrUnsupportedHash), is malformed or has parameters out of bounds
// (ErrMalformedHash), no slot freed up in time (ErrBusy), or ctx ended
// (ctx.Err()).
//
// An argon2id hash whose memory parameter exceeds the Hasher's takes
// ceil(m / Params().Memory) slots at once, so the memory bound of
// NewHasher holds; one that would need more slots than the Hasher has is
// refused with ErrMalformedHash before any work. Error text never contains the password or the hash.
//
// bcrypt uses at most the first 72 bytes of a password, as every bcrypt
// implementation does; the argon2id hash that replaces it uses them all.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok bool, rehash bool, err error) {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		ph, err := parsePHC(encoded, h.lim)
		if err != nil {
			return false, false, err
		}
		n := h.slotsFor(ph.params.Memory)
		if n > h.slots {
			return false, false, malformed("argon2id memory %d KiB is more than the hasher's bound of %d KiB (%d concurrent hashes of %d KiB); raise the concurrency or rehash",
				ph.params.Memory, h.slots*int64(h.params.Memory), h.slots, h.params.Memory)
		}
		if err := h.acquire(ctx, n); err != nil {
			return false, false, err
		}
		key := argon2.IDKey([]byte(password), ph.salt, ph.params.Time, ph.params.Memory, ph.params.Threads, ph.params.KeyLen)
		h.release(n)
		if subtle.ConstantTimeCompare(key, ph.key) != 1 {
			return false, false, nil
		}
		return true, ph.params != h.params, nil
	case isBcrypt(encoded):
		if err := checkBcrypt(encoded, h.lim.maxBcryptCost); err != nil {
			return false, false, err
		}
		if err := h.acquire(ctx, 1); err != nil {
			return false, false, err
		}
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		h.release(1)
		switch {
		case err == nil:
			return true, true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, nil
		default:
			// checkBcrypt accepts only what the library parses; keep a
			// safety net that does not echo the library's message.
			return false, false, fmt.Errorf("%w: bcrypt hash rejected", ErrMalformedHash)
		}
	default:
		return false, false, ErrUnsupportedHash
	}
}

// VerifyDummy spends the time of a Verify against a hash with the Hasher's
// current parameters, through the same concurrency limit, and matches
// nothing. Call it when the account named in a login does not exist, so
// that the response time does not reveal whether it does.
//
// Its error is that of Verify: ErrBusy or ctx.Err() when no slot was
// obtained, nil otherwise. A caller that answers ErrBusy from Verify with
// 503 should do the same here, so that load does not reveal it either.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}
