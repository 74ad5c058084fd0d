package cluster_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// keyBound is how soon every instance must apply a key revocation or an
// immediate rotation made with the command line: at once with Redis, at
// the next one-second check of the key-ring version without.
const keyBound = 5 * time.Second

// kidOf returns the kid of an access token's JOSE header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &h) != nil || h.Kid == "" {
		t.Fatalf("access token without a readable kid: %q", head)
	}
	return h.Kid
}

// publishes reports whether n's JWKS lists kid.
func (c *cluster) publishes(n *node, kid string) bool {
	c.t.Helper()
	return slices.Contains(c.jwksOrder(n), kid)
}

// jwksOrder returns the kids n publishes in the JWKS's order: the active
// key first.
func (c *cluster) jwksOrder(n *node) []string {
	c.t.Helper()
	r := c.must(n, "GET", "/.well-known/jwks.json", nil)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if r.code != http.StatusOK || json.Unmarshal(r.raw, &set) != nil {
		c.t.Fatalf("JWKS on %s: %s", n.name, r)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// eventually polls cond on every node until it holds on all of them and
// returns how long the slowest took; it fails the test after keyBound.
func (c *cluster) eventually(what string, since time.Time, cond func(n *node) bool) time.Duration {
	c.t.Helper()
	var slowest time.Duration
	for _, n := range c.nodes {
		for !cond(n) {
			if time.Since(since) > keyBound {
				c.t.Fatalf("%s: not so on %s %v after the command (bound %v)", what, n.name, time.Since(since).Round(time.Millisecond), keyBound)
			}
			time.Sleep(10 * time.Millisecond)
		}
		slowest = max(slowest, time.Since(since))
	}
	return slowest
}

var newKeyLine = regexp.MustCompile(`new \w+ (?:access )?key (\S+) signs from`)

// keysCmd runs `latch keys ARGS` against the shared store and returns the
// kid of the key it says signs now, if any.
func (c *cluster) keysCmd(args ...string) (out, newKid string) {
	c.t.Helper()
	// The flags go before the arguments: a kid may begin with '-' and
	// follows "--" (base64url thumbprints do, one in 64).
	args = append([]string{"keys", args[0], "--data-dir", filepath.Join(c.t.TempDir(), "cli")}, args[1:]...)
	out, err := c.run("", args...)
	if err != nil {
		c.t.Fatalf("latch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if m := newKeyLine.FindStringSubmatch(out); m != nil {
		newKid = m[1]
	}
	return out, newKid
}

// TestKeyRevocationAcrossInstances answers a stolen signing key on three
// instances: `latch keys revoke` of the active kid makes every instance
// stop publishing and trusting it within seconds, and sign with a fresh
// key; `latch keys rotate --now` works while a scheduled rotation is
// pending and every instance signs with the new key within seconds, with
// Redis and without it.
func TestKeyRevocationAcrossInstances(t *testing.T) {
	c := newCluster(t, options{})
	c.addUser(email, password)
	n1 := c.nodes[0]

	victim := c.login(n1)
	stolen := kidOf(t, victim.access)
	for _, n := range c.nodes {
		if r := c.me(n, victim.access); r.code != http.StatusOK || !c.publishes(n, stolen) {
			t.Fatalf("before the revocation, %s: /v1/me %s, publishes %s: %v", n.name, r, stolen, c.publishes(n, stolen))
		}
	}

	at := time.Now()
	out, fresh := c.keysCmd("revoke", "--", stolen)
	if fresh == "" || fresh == stolen || !strings.Contains(out, "revoked") {
		t.Fatalf("latch keys revoke of the active key did not rotate:\n%s", out)
	}
	took := c.eventually("the revoked key is neither published nor trusted", at, func(n *node) bool {
		return !c.publishes(n, stolen) && c.me(n, victim.access).code == http.StatusUnauthorized
	})
	t.Logf("keys revoke → every instance refuses the key: %v", took.Round(time.Millisecond))
	for _, n := range c.nodes {
		if kid := kidOf(t, c.login(n).access); kid != fresh {
			t.Fatalf("login on %s after the revocation: token of key %s, want the new key %s", n.name, kid, fresh)
		}
	}
	// The victim's session survives: its refresh gets a token of the new
	// key, which every instance accepts.
	next := c.mustRefresh(c.nodes[1], victim.refresh)
	if kid := kidOf(t, next.access); kid != fresh {
		t.Fatalf("refresh after the revocation: key %s, want %s", kid, fresh)
	}
	for _, n := range c.nodes {
		if r := c.me(n, next.access); r.code != http.StatusOK {
			t.Fatalf("token of the new key on %s: %s", n.name, r)
		}
	}

	// rotate --now while a scheduled rotation is pending, first with
	// Redis, then without (the instances' one-second version check).
	for _, withRedis := range []bool{true, false} {
		if !withRedis {
			c.redis.kill()
		}
		out, _ := c.keysCmd("rotate")
		if !strings.Contains(out, "pending") {
			t.Fatalf("latch keys rotate:\n%s", out)
		}
		pending := ""
		for line := range strings.SplitSeq(out, "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[1] == "access" && f[3] == "pending" {
				pending = f[0]
			}
		}
		at := time.Now()
		out, now := c.keysCmd("rotate", "--now")
		if now == "" || pending == "" || !strings.Contains(out, pending) {
			t.Fatalf("latch keys rotate --now with pending key %q:\n%s", pending, out)
		}
		// The JWKS lists the active key first; poll it rather than sign
		// in (sign-ins are rate limited).
		took := c.eventually("every instance signs with the immediate key", at, func(n *node) bool {
			kids := c.jwksOrder(n)
			return len(kids) > 0 && kids[0] == now && !slices.Contains(kids, pending)
		})
		for _, n := range c.nodes {
			if kid := kidOf(t, c.login(n).access); kid != now {
				t.Fatalf("login on %s: token of key %s, want the immediate key %s", n.name, kid, now)
			}
		}
		t.Logf("rotate --now (Redis %v) → every instance signs with the new key: %v", withRedis, took.Round(time.Millisecond))
	}
	c.no500s(c.nodes...)
}
