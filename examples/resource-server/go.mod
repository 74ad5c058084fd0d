module github.com/latchauth/latch/examples/resource-server

go 1.26.8

require github.com/latchauth/latch/verifier v0.0.0

require (
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
)

// Inside Latch's repository the example builds against the verifier next
// to it; outside, drop this line and require a released version.
replace github.com/latchauth/latch/verifier => ../../verifier
