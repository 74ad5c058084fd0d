package instance

import (
	"context"
	"log/slog"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/auth"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/geoip"
	"github.com/latchauth/latch/protect"
	"github.com/latchauth/latch/risk"
)

// protection is what account protection is built from: the geo-IP
// databases (geoip.*) and the risk engine (risk.*).
type protection struct {
	geo    *geoip.DB
	engine *risk.Engine
}

// openProtection opens the geo-IP databases and builds the risk engine,
// saying at start which country-based features are off for want of a
// database.
func openProtection(cfg config.Config, log *slog.Logger) (*protection, error) {
	engine, err := risk.New(cfg.Risk)
	if err != nil {
		return nil, err // validated by config: not reached
	}
	geo, err := geoip.Open(cfg.GeoIP.CityDB, cfg.GeoIP.ASNDB)
	if err != nil {
		return nil, err
	}
	if !geo.HasCity() {
		log.Info("geo-IP: no geoip.city_db; country rules, new-country, impossible-travel and country-change signals are off (set geoip.city_db to a MaxMind City database)")
	}
	if !geo.HasASN() {
		log.Info("geo-IP: no geoip.asn_db; new-network (ASN) and network-change signals are off")
	}
	return &protection{geo: geo, engine: engine}, nil
}

// locator is the geo-IP databases as a latch.Locator, or nil without any.
func (p *protection) locator() latch.Locator {
	if !p.geo.HasCity() && !p.geo.HasASN() {
		return nil
	}
	return p.geo
}

// screensRefresh tells whether refreshes are worth screening: with no
// rule and no geo-IP database only the browser and address comparison
// would be left, and the refresh path (thousands a second) stays bare.
func (p *protection) screensRefresh() bool {
	cfg := p.engine.Config()
	return cfg.HasRules() || p.locator() != nil
}

// guards are the guards of svc, built in this one place: SetGuards
// replaces them all.
func (p *protection) guards(svc *auth.Service, st latch.Store, challenger auth.Challenger, signIn auth.SignInGuard, devices auth.KnownDevices, log *slog.Logger, now func() time.Time) auth.Guards {
	g := auth.Guards{Challenger: challenger, SignIn: signIn, Devices: devices}
	if p.screensRefresh() {
		g.Refresh = protect.NewRefreshGuard(p.engine, p.locator(), st,
			func(ctx context.Context, userID, sessionID, reason string) error {
				return svc.RevokeSessionFor(ctx, userID, sessionID, reason, auth.Device{})
			},
			protect.RefreshOptions{Log: log, Clock: now})
	}
	return g
}

func (p *protection) close() error { return p.geo.Close() }
