package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/testenv"
	"github.com/latchauth/latch/redis"
)

func sharedURL() string { return "redis://127.0.0.1:6379/0" }

func channel() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "latch-test:" + hex.EncodeToString(b)
}

func openShared(t *testing.T, ch string) *redis.Fanout {
	t.Helper()
	f, err := redis.Open(t.Context(), sharedURL(), redis.Options{Channel: ch})
	if err != nil {
		testenv.Unavailable(t, testenv.Redis, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// receive collects topics delivered to a subscriber.
func subscribe(t *testing.T, f *redis.Fanout) <-chan string {
	got := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Subscribe(ctx, func(topic string) { got <- topic }) }()
	t.Cleanup(func() { cancel(); <-done })
	return got
}

func waitTopic(t *testing.T, got <-chan string, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case topic := <-got:
			if topic == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}

func TestPublishSubscribe(t *testing.T) {
	ch := channel()
	a, b := openShared(t, ch), openShared(t, ch)
	got := subscribe(t, b)
	// The subscription is asynchronous: publish until it is heard.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := a.Publish(t.Context(), redis.TopicRevocations); err != nil {
			t.Fatal(err)
		}
		select {
		case topic := <-got:
			if topic != redis.TopicRevocations {
				t.Fatalf("topic = %q", topic)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing received")
		}
	}
}

func TestOpenErrorsHideTheURL(t *testing.T) {
	for _, u := range []string{"http://user:hunter2@x", "redis://user:hunter2@127.0.0.1:1/0", "redis://:hunter2@[::1", "nonsense"} {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := redis.Open(ctx, u, redis.Options{})
		cancel()
		if err == nil {
			t.Fatalf("%q: opened", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

// TestResubscribeAfterRestart runs a private redis-server, restarts it, and
// checks that the subscriber comes back by itself and asks its owner to
// catch up from the store (pokes sent during the outage are lost).
func TestResubscribeAfterRestart(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, testenv.Redis, err)
	}
	port := freePort(t)
	startServer := func() *exec.Cmd {
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitPort(t, port)
		return cmd
	}
	srv := startServer()
	defer func() { srv.Process.Kill(); srv.Wait() }()

	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	sub, err := redis.Open(t.Context(), url, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := subscribe(t, sub)
	time.Sleep(100 * time.Millisecond) // let the subscription settle

	srv.Process.Kill()
	srv.Wait()
	srv = startServer()
	// After the restart the subscriber reconnects and asks for a catch-up.
	waitTopic(t, got, redis.TopicRevocations, 15*time.Second)

	pub, err := redis.Open(t.Context(), url, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pub.Publish(t.Context(), redis.TopicKeys)
		select {
		case topic := <-got:
			if topic == redis.TopicKeys {
				return
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the restart")
		}
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redis-server did not listen on %d", port)
}

// TestPrefixesKeepDeploymentsApart: two deployments on one Redis, told
// apart only by their prefix, do not hear each other's pokes. The proof
// that a crossing poke had its chance: it was published before a poke of
// the other deployment that did arrive, on what would be the same
// channel, whose order Redis keeps.
func TestPrefixesKeepDeploymentsApart(t *testing.T) {
	suffix := channel()[len("latch-test:"):]
	open := func(prefix string) *redis.Fanout {
		f, err := redis.Open(t.Context(), sharedURL(), redis.Options{Prefix: prefix})
		if err != nil {
			testenv.Unavailable(t, testenv.Redis, err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a1, a2 := open("blue-"+suffix), open("blue-"+suffix)
	b1, b2 := open("green-"+suffix), open("green-"+suffix)
	if a1.Channel() == b1.Channel() || a1.Key("x") == b1.Key("x") {
		t.Fatalf("prefixes share names: channels %q %q, keys %q %q", a1.Channel(), b1.Channel(), a1.Key("x"), b1.Key("x"))
	}
	if want := "blue-" + suffix + ":events"; a1.Channel() != want {
		t.Fatalf("channel %q, want %q", a1.Channel(), want)
	}
	gotA, gotB := subscribe(t, a2), subscribe(t, b2)
	// Subscriptions are asynchronous: poke each deployment until it hears.
	hear := func(pub *redis.Fanout, got <-chan string, topic string) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if err := pub.Publish(t.Context(), topic); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-got:
				if g != topic {
					t.Fatalf("heard %q, want %q", g, topic)
				}
				return
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: nothing received", topic)
			}
		}
	}
	hear(a1, gotA, redis.TopicKeys)
	hear(b1, gotB, redis.TopicKeys)
	// Now a poke in blue, then a marker in green: green hears its marker
	// and nothing of blue's poke, which went out first.
	if err := a1.Publish(t.Context(), redis.TopicRevocations); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, gotA, redis.TopicRevocations, 5*time.Second)
	const marker = "marker"
	if err := b1.Publish(t.Context(), marker); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case g := <-gotB:
			switch g {
			case marker:
				return
			case redis.TopicRevocations:
				t.Fatal("green heard blue's poke")
			}
		case <-deadline:
			t.Fatal("green heard nothing of its own marker")
		}
	}
}

func TestDefaultPrefix(t *testing.T) {
	f, err := redis.Lazy(sharedURL(), redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Channel() != redis.DefaultChannel || f.Channel() != "latch:events" || f.Key("lock") != "latch:lock" {
		t.Fatalf("default names: channel %q, key %q", f.Channel(), f.Key("lock"))
	}
}
