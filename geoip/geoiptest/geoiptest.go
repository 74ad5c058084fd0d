// Package geoiptest writes small MaxMind databases for tests with
// github.com/maxmind/mmdbwriter, shaped like GeoLite2 City and ASN, so
// that no test needs a downloaded database.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Record places one network.
type Record struct {
	// Network is a CIDR ("203.0.113.0/24", "2001:db8::/32"); reserved
	// networks (loopback, documentation ranges) are allowed.
	Network string
	// Country is the ISO 3166-1 alpha-2 code, City the English name.
	Country, City string
	// Lat, Lon and AccuracyKm locate it; Located false leaves the
	// location out.
	Lat, Lon   float64
	AccuracyKm uint16
	Located    bool
	// ASN and ASOrg name the network's autonomous system (ASN database).
	ASN   uint32
	ASOrg string
}

// Write writes a City and an ASN database of records into dir and
// returns their paths.
func Write(t testing.TB, dir string, records []Record) (cityPath, asnPath string) {
	t.Helper()
	cityPath, asnPath = filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	WriteCity(t, cityPath, records)
	WriteASN(t, asnPath, records)
	return cityPath, asnPath
}

// WriteCity writes a GeoLite2-City shaped database of records to path.
func WriteCity(t testing.TB, path string, records []Record) {
	t.Helper()
	write(t, path, "GeoLite2-City", records, func(r Record) mmdbtype.Map {
		m := mmdbtype.Map{}
		if r.Country != "" {
			m["country"] = mmdbtype.Map{
				"iso_code":   mmdbtype.String(r.Country),
				"geoname_id": mmdbtype.Uint32(1),
				"names":      mmdbtype.Map{"en": mmdbtype.String(r.Country), "de": mmdbtype.String(r.Country)},
			}
			m["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(r.Country)}
		}
		if r.City != "" {
			m["city"] = mmdbtype.Map{"names": mmdbtype.Map{
				"en": mmdbtype.String(r.City), "ja": mmdbtype.String(r.City),
			}}
		}
		if r.Located {
			m["location"] = mmdbtype.Map{
				"latitude":        mmdbtype.Float64(r.Lat),
				"longitude":       mmdbtype.Float64(r.Lon),
				"accuracy_radius": mmdbtype.Uint16(r.AccuracyKm),
				"time_zone":       mmdbtype.String("UTC"),
			}
		}
		return m
	})
}

// WriteASN writes a GeoLite2-ASN shaped database of records to path.
func WriteASN(t testing.TB, path string, records []Record) {
	t.Helper()
	write(t, path, "GeoLite2-ASN", records, func(r Record) mmdbtype.Map {
		return mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(r.ASN),
			"autonomous_system_organization": mmdbtype.String(r.ASOrg),
		}
	})
}

func write(t testing.TB, path, dbType string, records []Record, value func(Record) mmdbtype.Map) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		IncludeReservedNetworks: true,
		RecordSize:              28,
	})
	if err != nil {
		t.Fatalf("geoiptest: new %s tree: %v", dbType, err)
	}
	for _, r := range records {
		_, network, err := net.ParseCIDR(r.Network)
		if err != nil {
			t.Fatalf("geoiptest: network %q: %v", r.Network, err)
		}
		if err := tree.Insert(network, value(r)); err != nil {
			t.Fatalf("geoiptest: insert %s: %v", r.Network, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatalf("geoiptest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
}
