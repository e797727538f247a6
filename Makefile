# nopii. `make test` is what CI runs (.ci/run); it needs Go and the
# PostgreSQL server binaries (scripts/install-postgres installs them on
# Debian/Ubuntu), nothing else.

GO        ?= go
# The release is charts/nopii/Chart.yaml's appVersion (one place to bump). A
# build from the commit tagged v<release> is that version; any other build is
# <release>-dev.<commit>[.dirty], which is also a valid image tag.
RELEASE   := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/nopii/Chart.yaml)
VERSION   ?= $(shell if [ "$$(git describe --tags --exact-match --dirty 2>/dev/null)" = "v$(RELEASE)" ]; then \
	echo "$(RELEASE)"; else echo "$(RELEASE)-dev.$$(git describe --always --dirty=.dirty 2>/dev/null || echo unknown)"; fi)
IMAGE     ?= ghcr.io/nopii/nopii
LDFLAGS   := -X github.com/nopii/nopii/cmd.version=$(VERSION)
TESTFLAGS ?=
PKGS      ?= ./...

# Go files to format-check: everything but testdata, which may hold
# deliberately odd Go.
GOFILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')

.PHONY: build version image test bench lint demo fuzz clean postgres-check

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/nopii ./cmd/nopii

# The version that build and image stamp (charts/chart_test.go checks it
# against the chart's appVersion).
version:
	@echo $(VERSION)

# The container image (Dockerfile: static binary on distroless, non-root).
# Needs Docker or a Docker-compatible CLI (podman: make image DOCKER=podman).
DOCKER ?= docker
image:
	@if ! command -v $(DOCKER) >/dev/null 2>&1; then \
		echo "make image: '$(DOCKER)' not found, so no image was built. Where Docker runs: make image (or DOCKER=podman make image)"; \
		exit 1; \
	fi
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
		echo "make image: '$(DOCKER)' cannot reach its daemon, so no image was built. Start it, or build where one runs: make image"; \
		exit 1; \
	fi
	$(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

# The tests and the demo start private PostgreSQL clusters: stop early, with
# the command that installs the server binaries, when there are none.
postgres-check:
	@scripts/install-postgres --check

test: postgres-check
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(TESTFLAGS) $(PKGS)

bench:
	$(GO) run ./bench

lint:
	@unformatted="$$(gofmt -l $(GOFILES))"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	@staticcheck="$$(command -v staticcheck || ls "$$($(GO) env GOPATH)/bin/staticcheck" 2>/dev/null || true)"; \
	if [ -n "$$staticcheck" ]; then \
		echo "$$staticcheck ./..."; "$$staticcheck" ./...; \
	else \
		echo "staticcheck not installed, skipped: go install honnef.co/go/tools/cmd/staticcheck@latest"; \
	fi

demo: postgres-check
	$(GO) run ./internal/demo

# Every fuzz target for FUZZTIME each, retried once on failure (CI runs them briefly; run longer by
# hand: make fuzz FUZZTIME=5m). The seed corpora also run in `make test`.
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in ./config ./redact ./rulesets; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || \
			{ echo "retrying $$f once (Go's fuzz engine sometimes stops with 'context deadline exceeded'; a real crasher is saved under testdata/fuzz and fails again)"; \
			  $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; }; \
		done; \
	done

clean:
	rm -rf bin
