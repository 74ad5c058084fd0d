package password

import "context"

// HoldSlot takes a hashing slot as Hash and Verify do and returns the
// function that gives it back, so tests can fill the limiter
// deterministically.
func (h *Hasher) HoldSlot(ctx context.Context) (release func(), err error) {
	if err := h.acquire(ctx, 1); err != nil {
		return nil, err
	}
	return func() { h.release(1) }, nil
}

// Waiting returns the number of callers waiting for a slot.
func (h *Hasher) Waiting() int64 { return h.waiting.Load() }

// Slots returns the concurrency bound.
func (h *Hasher) Slots() int { return int(h.slots) }

// DummyHash returns the string VerifyDummy verifies against.
func (h *Hasher) DummyHash() string { return h.dummy }

// UseCheapLimits lowers the bounds on stored hashes so that each fuzz input
// costs at most about a millisecond: argon2id up to 256 KiB and 2 passes,
// bcrypt cost 4.
func (h *Hasher) UseCheapLimits() {
	h.lim = limits{maxMemory: 256, maxTime: 2, maxBcryptCost: 4}
}
