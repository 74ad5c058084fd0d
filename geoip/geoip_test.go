package geoip_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/geoip"
	"github.com/latchauth/latch/geoip/geoiptest"
)

var records = []geoiptest.Record{
	{Network: "203.0.113.0/24", Country: "KR", City: "Seoul", Lat: 37.5665, Lon: 126.978, AccuracyKm: 20, Located: true, ASN: 4766, ASOrg: "Korea Telecom"},
	{Network: "198.51.100.0/24", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, AccuracyKm: 50, Located: true, ASN: 3320, ASOrg: "Deutsche Telekom AG"},
	{Network: "192.0.2.0/24", Country: "US"},
	{Network: "2001:db8::/32", Country: "JP", City: "Tokyo", Lat: 35.68, Lon: 139.69, AccuracyKm: 100, Located: true, ASN: 2516, ASOrg: "KDDI"},
}

func open(t *testing.T) *geoip.DB {
	t.Helper()
	city, asn := geoiptest.Write(t, t.TempDir(), records)
	db, err := geoip.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLookup(t *testing.T) {
	db := open(t)
	for _, tc := range []struct {
		ip   string
		want latch.Place
	}{
		{"203.0.113.9", latch.Place{Country: "KR", City: "Seoul", Lat: 37.5665, Lon: 126.978, AccuracyKm: 20, Located: true, ASN: 4766, ASOrg: "Korea Telecom"}},
		{"198.51.100.1", latch.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, AccuracyKm: 50, Located: true, ASN: 3320, ASOrg: "Deutsche Telekom AG"}},
		{"::ffff:198.51.100.1", latch.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, AccuracyKm: 50, Located: true, ASN: 3320, ASOrg: "Deutsche Telekom AG"}},
		{"192.0.2.7", latch.Place{Country: "US"}}, // a country without a location
		{"2001:db8::1", latch.Place{Country: "JP", City: "Tokyo", Lat: 35.68, Lon: 139.69, AccuracyKm: 100, Located: true, ASN: 2516, ASOrg: "KDDI"}},
		{"10.0.0.1", latch.Place{}},  // not in the databases
		{"not an ip", latch.Place{}}, // does not parse
		{"", latch.Place{}},
	} {
		if got := db.Lookup(tc.ip); got != tc.want {
			t.Errorf("Lookup(%q) = %+v, want %+v", tc.ip, got, tc.want)
		}
	}
}

func TestOpenEitherOrNone(t *testing.T) {
	dir := t.TempDir()
	city, asn := geoiptest.Write(t, dir, records)
	onlyASN, err := geoip.Open("", asn)
	if err != nil {
		t.Fatal(err)
	}
	defer onlyASN.Close()
	if got := onlyASN.Lookup("203.0.113.9"); got != (latch.Place{ASN: 4766, ASOrg: "Korea Telecom"}) || onlyASN.HasCity() || !onlyASN.HasASN() {
		t.Errorf("ASN only: %+v", got)
	}
	onlyCity, err := geoip.Open(city, "")
	if err != nil {
		t.Fatal(err)
	}
	defer onlyCity.Close()
	if got := onlyCity.Lookup("203.0.113.9"); got.Country != "KR" || got.ASN != 0 || !onlyCity.HasCity() || onlyCity.HasASN() {
		t.Errorf("city only: %+v", got)
	}
	none, err := geoip.Open("", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := none.Lookup("203.0.113.9"); got != (latch.Place{}) {
		t.Errorf("no databases: %+v", got)
	}
	var nilDB *geoip.DB
	if got := nilDB.Lookup("203.0.113.9"); got != (latch.Place{}) {
		t.Errorf("nil DB: %+v", got)
	}
}

func TestOpenErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.mmdb")
	junk := filepath.Join(dir, "junk.mmdb")
	if err := os.WriteFile(junk, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ city, asn, want string }{
		{missing, "", "geoip.city_db: open " + missing},
		{"", missing, "geoip.asn_db: open " + missing},
		{junk, "", "geoip.city_db: open " + junk},
		{"", junk, "geoip.asn_db: open " + junk},
	} {
		_, err := geoip.Open(tc.city, tc.asn)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Open(%q, %q) = %v, want an error starting %q", tc.city, tc.asn, err, tc.want)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	city, asn := geoiptest.Write(b, b.TempDir(), records)
	db, err := geoip.Open(city, asn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.Run("city+asn", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			db.Lookup("203.0.113.9")
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			db.Lookup("10.0.0.1")
		}
	})
}

// TestLookupConcurrent: lookups share reused records safely (run with
// -race).
func TestLookupConcurrent(t *testing.T) {
	db := open(t)
	done := make(chan bool)
	for i := range 4 {
		go func() {
			ok := true
			for range 500 {
				ip, want := "203.0.113.9", "KR"
				if i%2 == 1 {
					ip, want = "198.51.100.1", "DE"
				}
				if db.Lookup(ip).Country != want {
					ok = false
				}
			}
			done <- ok
		}()
	}
	for range 4 {
		if !<-done {
			t.Error("a concurrent lookup returned another address's place")
		}
	}
}
