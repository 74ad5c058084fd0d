// Package cluster holds the multi-instance tests of Latch: several
// `latch serve` processes sharing one PostgreSQL schema and one Redis, and
// the faults such a deployment must survive (an instance killed mid-request,
// Redis restarted, PostgreSQL unreachable), and `latch gateway` end to end
// in headless Chromium: two gateway processes behind one origin in front of
// an SPA and an API (gateway_test.go). Everything is in the tests;
// this file only names the package.
package cluster
