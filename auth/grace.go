package auth

import (
	"crypto/hmac"
	"net/netip"
	"time"

	"github.com/latchauth/latch"
)

// GraceBurst is how long after a rotation replays of the previous refresh
// token count as the same burst as the rotation itself: requests the
// device sent before it could have seen the rotation's answer (tabs of one
// browser refreshing together, a client that retries at once on a lost
// response). Replays in the burst are answered without counting against
// Config.RefreshGraceReplays; later ones are counted.
const GraceBurst = 2 * time.Second

// GraceRule decides whether the previous refresh token, presented again
// inside the grace window, gets the successor. It must come from the
// device that made the rotation — the same authenticating client, the same
// user agent and the same IP network (/24 for IPv4, /64 for IPv6), so a
// phone that retries from a new address in another network counts as
// another device — and, after the rotation's burst, at most Replays times
// per rotation. Anything else is reuse.
type GraceRule struct {
	Burst   time.Duration
	Replays int
}

func (s *Service) graceRule() GraceRule {
	return GraceRule{Burst: GraceBurst, Replays: s.cfg.RefreshGraceReplays}
}

// Allows checks a replay by device at now of the token that preceded
// sess's current generation. It returns the replay to record, or the reason
// it is reuse: other_device or replays_exhausted.
func (g GraceRule) Allows(sess *latch.Session, device []byte, now time.Time) (latch.GraceReplay, string) {
	if len(sess.RotatedBy) == 0 || !hmac.Equal(device, sess.RotatedBy) {
		return latch.GraceReplay{}, "other_device"
	}
	counted := now.Sub(sess.RotatedAt) > g.Burst
	if counted && sess.GraceReplays >= g.Replays {
		return latch.GraceReplay{}, "replays_exhausted"
	}
	return latch.GraceReplay{SessionID: sess.ID, Generation: sess.Generation, Counted: counted, Limit: g.Replays}, ""
}

// device is the fingerprint of the device a refresh comes from: a MAC,
// under the service's key, of the client that authenticated the request
// (via, "" for none), the IP network and the user agent. Only this hash is
// stored; the user agent is stored once, with the session.
func (s *Service) device(via string, c Device) []byte {
	msg := make([]byte, 0, len(via)+len(c.IP)+len(c.UserAgent)+3)
	msg = append(msg, via...)
	msg = append(msg, 0)
	msg = append(msg, network(c.IP)...)
	msg = append(msg, 0)
	msg = append(msg, c.UserAgent...)
	return s.sealer.MAC("latch refresh-token device v1", msg)
}

// network is the network an address belongs to for the grace rule: its
// /24 for IPv4 (IPv4-mapped IPv6 included), its /64 for IPv6, the string
// itself if it is not an address.
func network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "?" + ip
	}
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return "?" + ip
	}
	return p.String()
}
