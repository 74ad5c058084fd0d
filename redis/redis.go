// Package redis carries Latch's fan-out between instances over Redis
// pub/sub: when one instance revokes something or rotates keys, the others
// hear of it within milliseconds instead of at their next poll.
//
// Redis holds no state of its own here. A message only says "the durable
// feed moved"; receivers catch up from the store by cursor. A lost message,
// a Redis restart or an outage therefore loses nothing: instances fall back
// to polling the store and catch up as before.
//
// Every key and channel name starts with a prefix (Options.Prefix,
// "latch" by default), so that several deployments can share one Redis:
// pub/sub channels are global to a server and ignore the database number
// of the URL, so only distinct prefixes keep deployments apart.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Topics published on the channel.
const (
	// TopicRevocations: the revocation feed has new entries.
	TopicRevocations = "revocations"
	// TopicKeys: the signing-key ring changed.
	TopicKeys = "keys"
)

// DefaultPrefix starts every key and channel name when Options.Prefix is
// empty.
const DefaultPrefix = "latch"

// DefaultChannel is the pub/sub channel with the default prefix, shared
// by every instance of one deployment.
const DefaultChannel = DefaultPrefix + ":events"

// Fanout publishes and receives pokes between instances.
type Fanout struct {
	client  goredis.UniversalClient
	prefix  string
	channel string
	log     *slog.Logger
}

// Options configure Open.
type Options struct {
	// Prefix starts every key and channel name ("PREFIX:events");
	// empty means DefaultPrefix. Deployments sharing one Redis need
	// distinct prefixes.
	Prefix string
	// Channel overrides the pub/sub channel; empty means PREFIX:events.
	Channel string
	// Log receives warnings about the connection; nil means slog.Default().
	Log *slog.Logger
}

// Open connects to Redis at rawURL and checks that it answers.
//
// The URL is redis://[user:password@]host:port[/db] for one node, with
// repeated addr=host:port parameters for a cluster, or with
// master_name=NAME (and the sentinels as host and addr parameters) for
// Sentinel. Use rediss:// for TLS.
func Open(ctx context.Context, rawURL string, o Options) (*Fanout, error) {
	opts, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	f := newFanout(goredis.NewUniversalClient(opts), o)
	if err := f.Ping(ctx); err != nil {
		f.client.Close()
		return nil, err
	}
	return f, nil
}

// Lazy is Open without the check that Redis answers: the client connects
// when first used. An instance whose Redis is down at start uses it to pick
// the fan-out up once Redis is back.
func Lazy(rawURL string, o Options) (*Fanout, error) {
	opts, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	return newFanout(goredis.NewUniversalClient(opts), o), nil
}

func newFanout(c goredis.UniversalClient, o Options) *Fanout {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Channel == "" {
		o.Channel = o.Prefix + ":events"
	}
	return &Fanout{client: c, prefix: o.Prefix, channel: o.Channel, log: o.Log}
}

// Channel is the pub/sub channel the Fanout publishes and listens on.
func (f *Fanout) Channel() string { return f.channel }

// Key returns name under the Fanout's prefix ("PREFIX:name"): every key
// Latch keeps in Redis is named through it.
func (f *Fanout) Key(name string) string { return f.prefix + ":" + name }

// parse turns a URL into universal options without ever echoing the URL
// (it may hold a password) in an error.
func parse(rawURL string) (*goredis.UniversalOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, errors.New("redis: invalid URL (not shown: it may hold a password); want redis://host:port")
	}
	q := u.Query()
	master := q.Get("master_name")
	q.Del("master_name")
	u.RawQuery = q.Encode()
	if len(q["addr"]) == 0 && master == "" {
		o, err := goredis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis: invalid URL (not shown): %s", redactErr(err))
		}
		return &goredis.UniversalOptions{
			Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		}, nil
	}
	o, err := goredis.ParseClusterURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("redis: invalid URL (not shown): %s", redactErr(err))
	}
	return &goredis.UniversalOptions{
		Addrs: o.Addrs, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig, MasterName: master,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
	}, nil
}

// redactErr keeps the kind of a parse failure but not the URL.
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " failed"
	}
	return "unparseable"
}

// Ping reports whether Redis answers.
func (f *Fanout) Ping(ctx context.Context) error {
	if err := f.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Publish tells the other instances that topic changed. It waits at most a
// second: the poke is an accelerator, and a caller must never stall on it.
func (f *Fanout) Publish(ctx context.Context, topic string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := f.client.Publish(ctx, f.channel, topic).Err(); err != nil {
		return fmt.Errorf("redis: publish %s: %w", topic, err)
	}
	return nil
}

// Poke publishes topic in the background and logs a failure: callers on a
// request path never wait on the fan-out. A nil Fanout (no Redis
// configured) does nothing.
func (f *Fanout) Poke(ctx context.Context, topic string) {
	if f == nil {
		return
	}
	go func() {
		if err := f.Publish(ctx, topic); err != nil {
			f.log.Debug("redis poke failed; other instances will see the change at their next poll", "topic", topic, "err", err)
		}
	}()
}

// Subscribe calls fn for every topic published, until ctx ends. After a
// broken connection it resubscribes by itself (with backoff) and calls
// fn(TopicRevocations) and fn(TopicKeys) once it is back, since pokes sent
// meanwhile were lost: the receiver catches up from the store.
func (f *Fanout) Subscribe(ctx context.Context, fn func(topic string)) {
	backoff := 100 * time.Millisecond
	first, failed := true, false
	for ctx.Err() == nil {
		ps := f.client.Subscribe(ctx, f.channel)
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("redis fan-out unavailable; instances fall back to polling the store", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			failed = true
			continue
		}
		if !first || failed {
			f.log.Info("redis fan-out is back; catching up from the store")
			fn(TopicRevocations)
			fn(TopicKeys)
		}
		first, backoff = false, 100*time.Millisecond
		// go-redis does not abandon a blocked read when ctx is cancelled;
		// closing the subscription does.
		stop := context.AfterFunc(ctx, func() { ps.Close() })
		f.receive(ctx, ps, fn)
		stop()
		ps.Close()
	}
}

// receive delivers messages until the subscription breaks or ctx ends.
func (f *Fanout) receive(ctx context.Context, ps *goredis.PubSub, fn func(string)) {
	for {
		msg, err := ps.ReceiveTimeout(ctx, 30*time.Second)
		if err != nil {
			var timeout interface{ Timeout() bool }
			if errors.As(err, &timeout) && timeout.Timeout() {
				// Idle: check the connection is still alive.
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			if ctx.Err() == nil {
				f.log.Warn("redis fan-out subscription lost", "err", err)
			}
			return
		}
		if m, ok := msg.(*goredis.Message); ok {
			fn(m.Payload)
		}
	}
}

// Close releases the connections.
func (f *Fanout) Close() error { return f.client.Close() }
