# Walrus for Go — developer entry points. Every target is a thin wrapper over a
# go command or a script in scripts/, so anything here can be run by hand too.
GO       ?= go
BIN      ?= bin
FUZZTIME ?= 10s
# bench settings (override: make bench BENCH_MESSAGES=1000000)
BENCH_ADDRS    ?= 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093
BENCH_MESSAGES ?= 200000
BENCH_CLIENTS  ?= 16
BENCH_PIPELINE ?= 64
BENCH_SIZE     ?= 100
BENCH_TOPICS   ?= 4
BENCH_FLAGS = --addrs $(BENCH_ADDRS) --clients $(BENCH_CLIENTS) --pipeline $(BENCH_PIPELINE) --topics $(BENCH_TOPICS)

.PHONY: all build test test-race cluster-up cluster-down cluster-wipe bench fuzz lint clean

all: build

## build: compile bin/walrus and bin/walrus-cli
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN) ./cli/...

## test: the README's test command (exactly what .ci/run runs)
test:
	$(GO) test -race -timeout 30m ./...

## test-short: the same without -race and without the multi-process suites
test-short:
	$(GO) test -short ./...

## cluster-up: build, then start the 3-node local cluster in the background
cluster-up: build
	NO_BUILD=1 BIN=$(abspath $(BIN)) scripts/cluster-up.sh

## cluster-down: stop the local cluster (SIGTERM, then SIGKILL after a deadline)
cluster-down:
	scripts/cluster-down.sh

## cluster-wipe: delete the local cluster's data and logs (refuses while running)
cluster-wipe:
	scripts/cluster-wipe.sh

## bench: produce then consume (and verify) against the local cluster
bench: build
	$(BIN)/walrus-cli bench produce $(BENCH_FLAGS) --messages $(BENCH_MESSAGES) --size $(BENCH_SIZE)
	$(BIN)/walrus-cli bench consume $(BENCH_FLAGS)

## fuzz: run every fuzz target briefly (FUZZTIME each)
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
