package latch

// Place is where an IP address is, as a geo-IP database tells it (package
// geoip). Every field may be empty: without a database, or for an address
// the database does not know.
type Place struct {
	// Country is the ISO 3166-1 alpha-2 code ("KR", "DE").
	Country string
	// City is the English city name.
	City string
	// Lat and Lon are the location's coordinates, AccuracyKm its radius
	// of uncertainty (0 when unknown); Located says whether they are
	// known at all.
	Lat, Lon   float64
	AccuracyKm float64
	Located    bool
	// ASN is the autonomous system number of the network, ASOrg its
	// organisation.
	ASN   uint
	ASOrg string
}

// Locator finds the Place of an IP address. A Locator without databases
// returns the zero Place.
type Locator interface {
	Lookup(ip string) Place
}
