# The verbs people use. `make help` lists them. Everything a fresh machine
# needs (Go modules, npm packages, the third-party protos) is installed by
# the targets themselves.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
BUF := $(GO) tool -modfile=tools/go.mod buf
GOLANGCI_LINT := $(GO) tool -modfile=tools/lint/go.mod golangci-lint
TS := clients/ts
# The interceptors' test service: its own template (Go only), so that it
# stays out of gen/ and the TypeScript clients.
TESTSERVICE_TEMPLATE := buf.gen.testservice.yaml
TESTSERVICE_GEN := interceptors/internal/testservice/gen
BROWSER := testdata/browser
# The demo web app: a TypeScript single-page app on the client package.
WEB := clients/web
# make web serves the app here; the API's -cors-origins is set to match.
WEB_PORT ?= 5173
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the server on 127.0.0.1:8080 with ./data/guard.db
	$(GO) run ./cmd/server

# One check at a time: running them side by side (make -j2) was measured
# slower on two cores, where each build already keeps both busy.
.PHONY: test
test: fmt-check vet lint go-test check-generated ts-typecheck ts-test web-test ## everything CI checks
	@echo "make test: all checks passed"

.PHONY: go-test
go-test: browser-deps ## go test -race ./...
	$(GO) test -race -count=1 ./...

.PHONY: fmt-check
fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet ./...
	$(GO) vet ./...

.PHONY: lint
lint: buf-lint ## golangci-lint (pinned in tools/lint/go.mod) and buf lint
	$(GOLANGCI_LINT) run ./...

.PHONY: buf-lint
buf-lint: third_party
	$(BUF) lint

# docs/policy.md and docs/openapi.yaml are written after buf generate, so
# that they document the Go just generated. They go through temporary files
# so a failing run leaves the committed ones intact.
.PHONY: generate
generate: third_party $(TS)/node_modules ## regenerate gen/ (Go), clients/ts/gen (TypeScript), the interceptors' test service, docs/policy.md and docs/openapi.yaml from the protos
	$(BUF) lint
	$(BUF) generate
	$(BUF) generate --template $(TESTSERVICE_TEMPLATE)
	$(GO) run ./cmd/server policy > docs/policy.md.tmp || { rm -f docs/policy.md.tmp; exit 1; }
	mv docs/policy.md.tmp docs/policy.md
	$(GO) run ./cmd/server openapi > docs/openapi.yaml.tmp || { rm -f docs/openapi.yaml.tmp; exit 1; }
	mv docs/openapi.yaml.tmp docs/openapi.yaml

# check-generated regenerates into a temporary directory and compares, so it
# never writes to the tree while other checks read it.
.PHONY: check-generated
check-generated: third_party $(TS)/node_modules ## fail if regeneration would change anything
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate -o "$$tmp"; \
	$(BUF) generate --template $(TESTSERVICE_TEMPLATE) -o "$$tmp"; \
	$(GO) run ./cmd/server policy > "$$tmp/policy.md"; \
	$(GO) run ./cmd/server openapi > "$$tmp/openapi.yaml"; \
	stale=0; \
	for d in gen $(TS)/gen $(TESTSERVICE_GEN); do diff -r -q "$$d" "$$tmp/$$d" || stale=1; done; \
	diff -q docs/policy.md "$$tmp/policy.md" || stale=1; \
	diff -q docs/openapi.yaml "$$tmp/openapi.yaml" || stale=1; \
	if [ $$stale = 1 ]; then echo "generated files are stale: run make generate and commit the result"; exit 1; fi

.PHONY: ts-typecheck
ts-typecheck: $(TS)/node_modules ## typecheck the TypeScript client: generated code, src and tests
	cd $(TS) && npm run --silent typecheck

# The tests build the Go server once and start servers of their own on
# free loopback ports (see clients/ts/test/run.ts).
.PHONY: ts-test
ts-test: $(TS)/node_modules ## build the TypeScript client (clients/ts/dist) and run its tests against a real server
	cd $(TS) && npm run --silent build && npm test --silent

# The web app is bundled (esbuild) with the client package, so the client
# is built first.
.PHONY: web-build
web-build: $(TS)/node_modules $(WEB)/node_modules ## build the web app into clients/web/dist (typechecked)
	cd $(TS) && npm run --silent build
	cd $(WEB) && npm run --silent typecheck && npm run --silent build

# Builds the server and starts its own servers on free loopback ports;
# skipped without Chromium, except with CI=true (see clients/web/e2e).
.PHONY: web-test
web-test: browser-deps web-build ## the web app's end-to-end tests in headless Chromium against a real server
	cd $(WEB) && GO='$(GO)' node --test --test-concurrency=1 e2e/

.PHONY: web
web: web-build ## serve the web app on http://localhost:5173 against a local Guard server (Ctrl-C stops both)
	cd $(WEB) && GO='$(GO)' WEB_PORT='$(WEB_PORT)' node scripts/demo.mjs

$(WEB)/node_modules: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $@

# ./interceptors/... includes redislimiter's BenchmarkAllow: a decision in
# Redis at 127.0.0.1:6379 beside ratelimit.Memory (skipped without Redis);
# ./internal/server's BenchmarkGetNoteEngines needs PostgreSQL at
# 127.0.0.1:5432 (skipped without it; see internal/pgtest).
.PHONY: bench
bench: ## benchmarks: full chain vs bare handler (paired ratio), observability, token verify, key probes, log lines
	$(GO) test -run '^$$' -bench . -benchmem -count=1 . ./internal/server/ ./internal/token/ ./internal/lockout/... ./internal/boundedmap/ ./internal/loghandler/ ./internal/password/ ./service/auth/ ./interceptors/...

# Builds its own server (-tags guardload), starts a full and a bare one on
# loopback and prints Markdown tables (docs/performance.md); 1 min 40 s on
# two cores, 2 min 40 s with an empty build cache. Not part of make test.
# Narrower runs: make load LOAD_FLAGS='-protocols=grpc -c=64 -duration=5s'
# (go run ./internal/cmd/load -h lists the flags).
.PHONY: load
load: ## load test of the whole server: full security chain vs bare, per protocol and concurrency (ratios)
	$(GO) run ./internal/cmd/load -go=$(GO) $(LOAD_FLAGS)

# One target after another, each with one worker (the fuzzer takes every
# core otherwise) and at most 5s spent minimizing each new input: the
# default 60s, on a multi-kilobyte descriptor, would eat a bounded run.
# Failing inputs land in the package's testdata/fuzz/, where go test
# replays them with the committed seed corpora.
FUZZ = $(GO) test -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -parallel 1

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 30s), one after another
	$(FUZZ) -fuzz '^FuzzVerify$$' ./internal/token
	$(FUZZ) -fuzz '^FuzzParseAPIKey$$' ./service/auth
	$(FUZZ) -fuzz '^FuzzParseRefreshToken$$' ./service/auth
	$(FUZZ) -fuzz '^FuzzDecode$$' ./internal/pagetoken
	$(FUZZ) -fuzz '^FuzzNewTable$$' ./interceptors/policy
	$(FUZZ) -fuzz '^FuzzDecodeValidate$$' ./internal/server

# The third-party protos are printed from descriptors that go.mod pins;
# cheap, so always redone.
.PHONY: third_party
third_party:
	rm -rf third_party/proto
	$(GO) run ./internal/cmd/printprotos third_party/proto

$(TS)/node_modules: $(TS)/package.json $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund
	touch $@

.PHONY: browser-deps
browser-deps: /usr/bin/chromium $(BROWSER)/node_modules ## Chromium (Debian package) and playwright-core for the real-browser test

# Debian's Chromium; playwright never downloads a browser of its own here.
# Without root the install is skipped with a message and the browser test
# skips itself (outside CI).
/usr/bin/chromium:
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "browser-deps: /usr/bin/chromium is missing and installing it needs root:"; \
		echo "  sudo apt-get update && sudo apt-get install -y chromium"; \
		echo "browser-deps: the real-browser test will be skipped until then"; \
	else \
		echo "browser-deps: installing Chromium (apt-get install chromium)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

$(BROWSER)/node_modules: $(BROWSER)/package.json $(BROWSER)/package-lock.json
	cd $(BROWSER) && npm ci --no-audit --no-fund
	touch $@

# examples/adopt is a separate Go module that adopts Guard the way another
# service would: its own go.mod, proto and committed gen/. Its checks hang
# off the usual verbs (go-test, vet, lint, generate, check-generated) from
# here, so the verbs' own rules stay as they are.
ADOPT := examples/adopt
# buf runs inside the example, on its buf.yaml and buf.gen.yaml; the plugins
# are the tool lines of this repository's go.mod (see its buf.gen.yaml).
ADOPT_BUF := $(GO) -C $(ADOPT) tool -modfile=$(CURDIR)/tools/go.mod buf
# The example compiles against a copy of Guard's policy options, which
# must stay identical to the original.
POLICY_PROTO := proto/guard/policy/v1/policy.proto

go-test: adopt-test
vet: adopt-vet
lint: adopt-lint
generate: adopt-generate
check-generated: adopt-check-generated

.PHONY: adopt-test
adopt-test: ## the example's tests (examples/adopt); part of go-test
	$(GO) -C $(ADOPT) test -race -count=1 ./...

.PHONY: adopt-vet
adopt-vet:
	$(GO) -C $(ADOPT) vet ./...

.PHONY: adopt-lint
adopt-lint:
	$(ADOPT_BUF) lint
	$(GO) -C $(ADOPT) tool -modfile=$(CURDIR)/tools/lint/go.mod golangci-lint run ./...

.PHONY: adopt-generate
adopt-generate: ## refresh the example's copy of policy.proto and regenerate its gen/; part of generate
	cp $(POLICY_PROTO) $(ADOPT)/proto/guard/policy/v1/policy.proto
	$(ADOPT_BUF) lint
	$(ADOPT_BUF) generate

.PHONY: adopt-check-generated
adopt-check-generated:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(ADOPT_BUF) generate -o "$$tmp"; \
	stale=0; \
	diff -r -q $(ADOPT)/gen "$$tmp/gen" || stale=1; \
	diff -q $(POLICY_PROTO) $(ADOPT)/proto/guard/policy/v1/policy.proto || stale=1; \
	if [ $$stale = 1 ]; then echo "examples/adopt: generated files or the copy of policy.proto are stale: run make generate and commit the result"; exit 1; fi
