// Package geoip finds where an IP address is with MaxMind databases
// (GeoLite2 or GeoIP2 City, and ASN) through
// github.com/oschwald/maxminddb-golang/v2. A DB implements latch.Locator.
//
// Only the fields Latch uses are decoded: the country's ISO code, the
// English city name, the location and its accuracy radius, and the
// autonomous system's number and organisation.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/latchauth/latch"
	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is a pair of opened databases, either of which may be absent. It is
// safe for concurrent use.
type DB struct {
	city *maxminddb.Reader
	asn  *maxminddb.Reader
}

// Open opens the City database at cityPath and the ASN database at
// asnPath; an empty path leaves that database out. Errors name the
// setting (geoip.city_db, geoip.asn_db) and the path.
func Open(cityPath, asnPath string) (*DB, error) {
	db := &DB{}
	if cityPath != "" {
		r, err := maxminddb.Open(cityPath)
		if err != nil {
			return nil, fmt.Errorf("geoip.city_db: open %s: %w", cityPath, err)
		}
		db.city = r
	}
	if asnPath != "" {
		r, err := maxminddb.Open(asnPath)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("geoip.asn_db: open %s: %w", asnPath, err)
		}
		db.asn = r
	}
	return db, nil
}

// HasCity tells whether a City database is open: without one, Lookup
// knows no country, city or location.
func (db *DB) HasCity() bool { return db != nil && db.city != nil }

// HasASN tells whether an ASN database is open.
func (db *DB) HasASN() bool { return db != nil && db.asn != nil }

// Close releases the databases.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	var errs []error
	if db.city != nil {
		errs = append(errs, db.city.Close())
		db.city = nil
	}
	if db.asn != nil {
		errs = append(errs, db.asn.Close())
		db.asn = nil
	}
	return errors.Join(errs...)
}

// cityRecord is the part of a City (or Country) record that Lookup reads.
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	City struct {
		Names struct {
			En string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Location struct {
		Latitude       float64 `maxminddb:"latitude"`
		Longitude      float64 `maxminddb:"longitude"`
		AccuracyRadius uint16  `maxminddb:"accuracy_radius"`
	} `maxminddb:"location"`
}

// asnRecord is the part of an ASN record that Lookup reads.
type asnRecord struct {
	Number uint   `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// records are reused between lookups: decoding into an interface would
// otherwise move them to the heap on every call.
type records struct {
	city cityRecord
	asn  asnRecord
}

var pool = sync.Pool{New: func() any { return new(records) }}

// Lookup returns the Place of ip, as far as the databases know it: the
// zero Place for an address that does not parse, that they do not hold,
// or without databases. A damaged record reads as unknown.
func (db *DB) Lookup(ip string) latch.Place {
	var p latch.Place
	if db == nil || (db.city == nil && db.asn == nil) {
		return p
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return p
	}
	addr = addr.Unmap()
	r := pool.Get().(*records)
	defer pool.Put(r)
	if db.city != nil {
		r.city = cityRecord{}
		if err := db.city.Lookup(addr).Decode(&r.city); err == nil {
			rec := &r.city
			p.Country = rec.Country.ISOCode
			if p.Country == "" {
				p.Country = rec.RegisteredCountry.ISOCode
			}
			p.City = rec.City.Names.En
			// A record without a location has neither coordinate; none
			// is at 0°N 0°E.
			if rec.Location.Latitude != 0 || rec.Location.Longitude != 0 {
				p.Lat, p.Lon = rec.Location.Latitude, rec.Location.Longitude
				p.AccuracyKm = float64(rec.Location.AccuracyRadius)
				p.Located = true
			}
		}
	}
	if db.asn != nil {
		r.asn = asnRecord{}
		if err := db.asn.Lookup(addr).Decode(&r.asn); err == nil {
			p.ASN, p.ASOrg = r.asn.Number, r.asn.Org
		}
	}
	return p
}

var _ latch.Locator = (*DB)(nil)
