package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/bff"
	"github.com/latchauth/latch/gateway"
	"github.com/latchauth/latch/postgres"
	"github.com/latchauth/latch/redis"
	"github.com/latchauth/latch/sqlite"
)

// sessionStore is the gateway's durable session store.
type sessionStore interface {
	latch.GatewaySessionStore
	Ping(ctx context.Context) error
	Close() error
}

// openGatewaySessions builds the gateway's browser sessions: its own store
// (SQLite in data_dir, or PostgreSQL: a database apart from the auth
// server's), tokens sealed under a key derived from the gateway's KEK,
// Redis (if configured) to wake the waiters of a refresh at once. The
// store and Redis are closed when ctx ends.
func openGatewaySessions(ctx context.Context, cfg gateway.Config, d GatewaySessionDeps) (gateway.Sessions, []gateway.ReadyCheck, error) {
	var st sessionStore
	if strings.HasPrefix(cfg.Store, "postgres://") || strings.HasPrefix(cfg.Store, "postgresql://") {
		pg, err := postgres.Open(ctx, cfg.Store)
		if err != nil {
			return nil, nil, fmt.Errorf("store: %w", err)
		}
		st = pg
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("data_dir: %w", err)
		}
		lite, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "gateway.db"))
		if err != nil {
			return nil, nil, fmt.Errorf("store in %s: %w", cfg.DataDir, err)
		}
		st = lite
	}
	var fan *redis.Fanout
	if cfg.Redis != "" {
		f, err := redis.Lazy(cfg.Redis, redis.Options{Log: d.Logger, Prefix: "latch-gateway"})
		if err != nil {
			st.Close()
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		fan = f
	}
	m, err := bff.New(cfg, bff.Deps{
		Store: st, Sealer: d.KEK.Derive("gateway sessions v1"), Verifier: d.Verifier,
		Fanout: fan, Log: d.Logger, Registry: d.Registry,
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	go func() {
		<-ctx.Done()
		m.Close()
		if fan != nil {
			fan.Close()
		}
		st.Close()
	}()
	ready := []gateway.ReadyCheck{{Name: "session store", Check: st.Ping}}
	if fan != nil {
		// Redis only speeds up refresh waits: reported, never required.
		ready = append(ready, gateway.ReadyCheck{Name: "redis (optional)", Check: func(ctx context.Context) error {
			if err := fan.Ping(ctx); err != nil {
				d.Logger.Warn("redis unreachable; refresh waiters poll the store", "err", err)
			}
			return nil
		}})
	}
	return m, ready, nil
}
