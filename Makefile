# Tollgate — run `make help` for the list of targets.

GO            ?= go
FUZZTIME      ?= 10s
GOLANGCI_LINT ?= golangci-lint
GOLANGCI_VER  ?= v2.15.0

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run a development gateway (SQLite in ./tollgate-data, demo upstream, http://127.0.0.1:8080)
	$(GO) run ./cmd/tollgate serve --dev

.PHONY: build
build: ## Build bin/tollgate
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/tollgate ./cmd/tollgate

.PHONY: test
test: ## Run every test with the race detector
	$(GO) test -race -count=1 ./...

.PHONY: test-short
test-short: ## Run the tests without the slow ones (no race detector)
	$(GO) test -short ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s)
	GO=$(GO) FUZZTIME=$(FUZZTIME) .ci/fuzz

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: fmt-check
fmt-check: ## Fail if a file is not gofmt-formatted
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: lint
lint: ## golangci-lint with the curated linters of .golangci.yml (installs it if missing)
	@command -v $(GOLANGCI_LINT) >/dev/null 2>&1 || { \
	  echo "installing golangci-lint $(GOLANGCI_VER)"; \
	  GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VER); }
	@PATH="$$PATH:$$($(GO) env GOPATH)/bin" $(GOLANGCI_LINT) run ./...

.PHONY: bench
bench: build ## Tollgate vs a bare reverse proxy vs the backend under wrk, one run (~8 min; Redis target if Redis answers); BENCH_FLAGS=-help for options
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/tollgate-bench ./cmd/tollgate-bench
	bin/tollgate-bench -tollgate bin/tollgate $(BENCH_FLAGS)

.PHONY: microbench
microbench: ## Go micro-benchmarks of the hot path (auth, limits, metering, signatures; the Redis limiter against the real Redis)
	$(GO) test -run '^$$' -bench . -benchmem ./internal/credentials/ ./internal/oauth/ ./internal/tokens/ ./internal/reqsign/ ./internal/counters/memory/ ./internal/counters/redis/ ./internal/apikey/ ./internal/ipallow/ ./internal/clientip/ ./internal/limits/ ./internal/usage/ ./internal/metrics/ ./internal/gateway/ ./internal/httpx/ ./internal/store/sqlite/ ./internal/siwx/ ./internal/eip3009/ ./internal/evm/ ./internal/respsign/ ./internal/whsig/

.PHONY: clean
clean: ## Remove build output and the development data directory
	rm -rf bin tollgate-data
