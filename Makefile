# berth — see README.md. `make demo` runs the main job, `make test` the tests.
SHELL    := /bin/bash
GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# berth's CLI embeds docker's and compose's commands: their version
# commands print the commit, its date and the compose module's version.
# Recursive (=): computed only when a build expands LDFLAGS.
CLI_LDFLAGS = -X github.com/docker/cli/cli/version.GitCommit=$(shell git rev-parse --short HEAD 2>/dev/null) \
	-X github.com/docker/cli/cli/version.BuildTime=$(shell git log -1 --format=%cI 2>/dev/null) \
	-X github.com/docker/compose/v5/internal.Version=$(shell $(GO) list -m -f '{{.Version}}' github.com/docker/compose/v5)
LDFLAGS  = -s -w -X github.com/berth-runtime/berth/internal/version.Version=$(VERSION) $(CLI_LDFLAGS)
PREFIX   ?= /usr/local
FUZZTIME ?= 30s
export PATH := /usr/local/go/bin:$(PATH)

# The last commit whose store kept CRI protobuf (schema 1): the upgrade e2e
# test runs a pod under it, then migrates its store under this build.
SCHEMA1_COMMIT := 85f9b83

# Packages whose tests need root (they call RequiresRoot / requiresRoot).
ROOT_PKGS = $(shell bash hack/root-pkgs.sh)

.PHONY: all build deps test test-unit test-root test-e2e test-compat kubelet-e2e fuzz bench demo install clean vet

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

deps:
	bash hack/install-deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	bash hack/verify-imports.sh

# All three tiers. CI runs this as root.
test: vet test-unit test-root test-e2e test-compat

# Unit tests: no root, no real runtime. Root-only tests skip themselves.
test-unit:
	$(GO) test -count=1 ./...

# Tests of packages that need root (mounts, mknod, chown, overlayfs).
test-root:
	@if [ "$$(id -u)" -ne 0 ]; then echo "test-root: needs root, skipped"; exit 0; fi
	BERTH_ROOT_TESTS=1 $(GO) test -count=1 $(ROOT_PKGS)

# A live berthd through its real socket, with a registry on loopback.
test-e2e: build
	@if [ "$$(id -u)" -ne 0 ]; then echo "test-e2e: needs root, skipped"; exit 0; fi
	@set -o pipefail; old=$$(bash hack/build-old.sh $(SCHEMA1_COMMIT) $(BIN)/schema1) && \
		BERTH_ROOT_TESTS=1 BERTH_BIN=$(BIN) BERTH_OLD_BIN=$$old $(GO) test -count=1 -timeout 20m -v ./test/e2e/... 2>&1 \
		| tee $(BIN)/e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' \
		|| { echo "test-e2e failed; the log without debug lines ($(BIN)/e2e.log has all):"; grep -v 'level=DEBUG' $(BIN)/e2e.log | tail -300; exit 1; }

# The docker door: the real docker CLI (and docker-compose, python3-docker
# where installed) against a private berthd's Engine API socket. -p 2: the
# daemons have networks of their own, but 2 cores.
test-compat: build
	@if [ "$$(id -u)" -ne 0 ]; then echo "test-compat: needs root, skipped"; exit 0; fi
	@set -o pipefail; BERTH_ROOT_TESTS=1 BERTH_BIN=$(BIN) $(GO) test -count=1 -timeout 30m -v ./test/compat/... $(COMPAT_ARGS) 2>&1 \
		| tee $(BIN)/compat.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' \
		|| { echo "test-compat failed; the log without debug lines ($(BIN)/compat.log has all):"; grep -v 'level=DEBUG' $(BIN)/compat.log | tail -300; exit 1; }

# A real kubelet (built once from the Go module proxy by hack/build-kubelet.sh,
# cached under /var/tmp/berth-kubelet) runs static pods on a private berthd.
kubelet-e2e: build
	@if [ "$$(id -u)" -ne 0 ]; then echo "kubelet-e2e: needs root, skipped"; exit 0; fi
	@set -o pipefail; kubelet=$$(bash hack/build-kubelet.sh) && \
		BERTH_ROOT_TESTS=1 BERTH_BIN=$(BIN) BERTH_KUBELET=$$kubelet $(GO) test -count=1 -timeout 20m -v -run '^TestKubelet$$' ./test/e2e/ 2>&1 \
		| tee $(BIN)/kubelet-e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go|^    ' \
		|| { echo "kubelet-e2e failed; the log without debug lines ($(BIN)/kubelet-e2e.log has all):"; grep -v 'level=DEBUG' $(BIN)/kubelet-e2e.log | tail -300; exit 1; }

# The unpacker's fuzzer writes layers: keep them on tmpfs, and do not let
# minimisation eat the whole budget on 2 cores.
fuzz:
	mkdir -p /dev/shm/berth-fuzz
	TMPDIR=/dev/shm/berth-fuzz BERTH_ROOT_TESTS=1 $(GO) test -run '^$$' -fuzz FuzzApply -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./imageservice/unpack/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./imageservice/reference/
	rm -rf /dev/shm/berth-fuzz

bench: build
	$(GO) run ./hack/bench --bin $(BIN)

demo: deps build
	bash hack/demo.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/berthd $(DESTDIR)$(PREFIX)/bin/berthd

# critest (cri-tools' CRI validation suite) against a private berthd with
# test/critest/config.toml, via the offline harness in ../shared/critest.
# Prerequisites (see hack/critest.sh): root; that harness's registry and
# images (start-registry.sh && build-images.sh); critest (+ crictl) on PATH or
# in /var/tmp/berth-harness/bin, built by hand from cri-tools.
# Extra run-critest.sh flags: make critest CRITEST_ARGS='-f Streaming'.
.PHONY: critest
critest: build
	bash hack/critest.sh $(CRITEST_ARGS)

clean:
	rm -rf $(BIN)
