# Latch — the two commands that matter:
#   make run    start Latch on 127.0.0.1:8080 with embedded SQLite in ./latch-data
#   make test   run every test (vet, unit, end-to-end, race detector)

GO       ?= go
PKGS     ?= ./...
BENCH    ?= .
COUNT    ?= 5

.PHONY: run build test test-short bench bench-peers fmt vet interop-deps sdk-test

run:
	$(GO) run ./cmd/latch serve

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/latch ./cmd/latch

# The verifier is its own module (what resource servers import, with the
# fewest dependencies); the example is a module that requires it as a user
# would. Both are vetted and tested with the main module; examples/sso (two
# OpenID Connect relying parties, go-oidc + x/oauth2) too, and e2e drives it
# in Chromium.
vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would rewrite:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)
	cd verifier && $(GO) vet ./...
	cd examples/resource-server && $(GO) vet ./...
	cd examples/sso && $(GO) vet ./...

test: vet interop-deps
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	cd verifier && $(GO) test -race -count=1 -timeout 10m ./...
	cd examples/sso && $(GO) test -race -count=1 -timeout 5m ./...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...
	@$(MAKE) --no-print-directory sdk-test

# The browser SDK's own tests (node's test runner, no dependencies).
sdk-test:
	@if command -v node >/dev/null 2>&1; then cd sdk/js && node --test; \
	elif echo "$$LATCH_TEST_REQUIRE" | grep -q node; then echo "node is required (LATCH_TEST_REQUIRE) but missing"; exit 1; \
	else echo "node not found: the SDK tests (sdk/js) are skipped"; fi

# JS clients for ./interop/ (pinned in interop/js/package-lock.json);
# reinstalled only when the lock changes. Without npm the interop tests skip
# (and fail where LATCH_TEST_REQUIRE names node, as in CI).
interop-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  test interop/js/node_modules/.package-lock.json -nt interop/js/package-lock.json || (cd interop/js && npm ci --no-audit --no-fund); \
	else echo "npm not found: the interop tests (./interop/) will skip"; fi

# Quick loop without the race detector.
test-short:
	$(GO) test -count=1 $(PKGS)
	cd verifier && $(GO) test -count=1 ./...

# Go benchmarks: token issuance and verification beside the raw signature
# primitives, revocation set, password hashing. Summarise with benchstat.
bench:
	{ $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) ./keys/ ./password/ && \
	  cd verifier && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) ./ ./revocation/; } | tee bench.out

# Latch against golang-jwt, jwx and go-jose, in the bench module (its own
# go.mod, so peers never enter the main module): writes bench/results/.
bench-peers:
	cd bench && ./run.sh

fmt:
	gofmt -w .
